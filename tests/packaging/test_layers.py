"""The package's import structure: no runtime import cycle, and no lower layer importing a
higher one (issue 21, "a tree that says where things live").

The imports are read with ``ast`` from the package that is imported (the checkout on
``PYTHONPATH``), nothing is executed. A module's *runtime* imports are the ``import`` and
``from … import`` statements that run when it is imported: at module level, also inside
``if``/``try``/``with`` and class bodies, but not under ``if TYPE_CHECKING:`` (annotations
only) and not inside functions (deferred on purpose: ``cli/`` imports prompt-toolkit, rich
or a broker only when a command needs them, so ``chatctl send`` starts fast).

``from chatctl.server import wire`` counts as an import of ``chatctl.server.wire``. The
implicit import of a module's parent packages is not an edge (a package's ``__init__`` that
imports its own submodules would otherwise be a cycle with each of them).
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import chatctl

PACKAGE = Path(chatctl.__file__).resolve().parent

#: The layers, lowest first, by the first part of the module's name under ``chatctl``
#: (``config`` is ``chatctl/config.py``, ``server`` every module of ``chatctl/server/``). A
#: module may import its own layer's modules and lower ones, never a higher layer's.
#: ``chatctl`` itself (its ``__init__``: the version) is below everything.
LAYERS: tuple[tuple[str, ...], ...] = (
    ("status",),  # exit statuses: imports nothing
    ("errors",),  # the exception types, each with its exit status
    ("protocol", "log", "config", "setting", "web"),  # wire format; logging; config; page
    ("recent", "tokens", "broker", "client"),  # what a server and a client are built on
    ("server", "ui", "bench"),  # the server, the terminal UI, the load generator
    ("cli", "__main__"),  # the command line, which may import anything (lazily, mostly)
)

#: Import edges (importer, imported) that are allowed to close a cycle when annotation-only
#: imports (``if TYPE_CHECKING:``) are counted too. Runtime cycles are never allowed.
KNOWN_TYPE_CYCLES: frozenset[tuple[str, str]] = frozenset(
    {
        # The Redis subscriber links and the feed that owns them name each other in
        # annotations only (a link reports to its feed); a Protocol of the nine things a link
        # uses of the feed would break it.
        ("chatctl.broker.redis.link", "chatctl.broker.redis.live"),
        # Pending: the metrics collector probes the whole ChatServer; the brokers' probes are
        # being reworked (issue 21.2), then it can take a protocol of what it reads.
        ("chatctl.server.metrics", "chatctl.server.app"),
    }
)


def _modules() -> dict[str, Path]:
    modules = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        parts = ["chatctl", *path.relative_to(PACKAGE).with_suffix("").parts]
        if parts[-1] == "__init__":
            parts.pop()
        modules[".".join(parts)] = path
    return modules


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _statements(body: list[ast.stmt], *, type_checking: bool) -> Iterator[ast.stmt]:
    """The statements that run when the module is imported (functions' bodies excluded);
    with ``type_checking``, also those under ``if TYPE_CHECKING:``."""
    for node in body:
        yield node
        if isinstance(node, ast.If):
            if type_checking or not _is_type_checking(node.test):
                yield from _statements(node.body, type_checking=type_checking)
            yield from _statements(node.orelse, type_checking=type_checking)
        elif isinstance(node, ast.Try):
            for block in (node.body, node.orelse, node.finalbody):
                yield from _statements(block, type_checking=type_checking)
            for handler in node.handlers:
                yield from _statements(handler.body, type_checking=type_checking)
        elif isinstance(node, (ast.With, ast.ClassDef)):
            yield from _statements(node.body, type_checking=type_checking)


def _imports(name: str, path: Path, modules: dict[str, Path], *, type_checking: bool) -> set[str]:
    """The chatctl modules ``name`` imports (each resolved to the module that holds it)."""
    tree = ast.parse(path.read_text(encoding="utf-8"), str(path))
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found: set[str] = set()
    for node in _statements(tree.body, type_checking=type_checking):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                source = ".".join([*base, *([node.module] if node.module else [])])
            else:
                source = node.module or ""
            for alias in node.names:
                full = f"{source}.{alias.name}"
                found.add(full if full in modules else source)
    resolved = set()
    for target in found:
        while target and target not in modules:
            target = target.rpartition(".")[0]
        if target.startswith("chatctl") and target != name:
            resolved.add(target)
    return resolved


def _graph(*, type_checking: bool) -> dict[str, set[str]]:
    modules = _modules()
    return {
        name: _imports(name, path, modules, type_checking=type_checking)
        for name, path in modules.items()
    }


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components of more than one module (Tarjan's algorithm)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for succ in sorted(graph[node]):
            if succ not in index:
                visit(succ)
                low[node] = min(low[node], low[succ])
            elif succ in on_stack:
                low[node] = min(low[node], index[succ])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return found


def _layer(module: str) -> int:
    parts = module.split(".")
    if len(parts) == 1:
        return -1  # chatctl/__init__.py
    for level, names in enumerate(LAYERS):
        if parts[1] in names:
            return level
    raise AssertionError(f"{module} is in no layer: add {parts[1]!r} to LAYERS in {__file__}")


def test_no_runtime_import_cycle() -> None:
    cycles = _cycles(_graph(type_checking=False))
    assert not cycles, f"runtime import cycles: {cycles}"


def test_no_lower_layer_imports_a_higher_one() -> None:
    wrong = [
        f"{importer} (layer {_layer(importer)}) imports {imported} (layer {_layer(imported)})"
        for importer, targets in sorted(_graph(type_checking=False).items())
        for imported in sorted(targets)
        if _layer(imported) > _layer(importer)
    ]
    assert not wrong, "\n".join(wrong)


def test_no_import_cycle_even_through_annotations_but_the_known_ones() -> None:
    """Annotation-only imports are no runtime cycle, but a circle of them still means two
    modules know each other: a small protocol of what one uses of the other, or a piece
    moved down, breaks it. The pending ones are listed, each edge still needed."""
    graph = _graph(type_checking=True)
    for importer, imported in KNOWN_TYPE_CYCLES:
        assert imported in graph[importer], f"stale entry in KNOWN_TYPE_CYCLES: {importer}"
        graph[importer].discard(imported)
    cycles = _cycles(graph)
    assert not cycles, f"import cycles counting `if TYPE_CHECKING:` imports: {cycles}"
    closing = {
        edge
        for edge in KNOWN_TYPE_CYCLES
        if any(edge[0] in cycle for cycle in _cycles(_graph(type_checking=True)))
    }
    assert closing == KNOWN_TYPE_CYCLES, f"no longer closes a cycle: {KNOWN_TYPE_CYCLES - closing}"


def test_the_walker_sees_what_it_must_and_skips_what_it_must(tmp_path: Path) -> None:
    """The walker itself: a runtime import, one under TYPE_CHECKING, one in a function."""
    source = (
        "from typing import TYPE_CHECKING\n"
        "from chatctl import errors\n"
        "from chatctl.server.wire import close_now\n"
        "try:\n    import chatctl.log\nexcept ImportError:\n    pass\n"
        "if TYPE_CHECKING:\n    from chatctl.cli import main\n"
        "def later() -> None:\n    from chatctl.ui import app\n"
    )
    path = tmp_path / "probe.py"
    path.write_text(source, encoding="utf-8")
    modules = _modules()
    runtime = _imports("chatctl.probe", path, modules, type_checking=False)
    assert runtime == {"chatctl.errors", "chatctl.server.wire", "chatctl.log"}
    typed = _imports("chatctl.probe", path, modules, type_checking=True)
    assert typed == runtime | {"chatctl.cli"}
    assert _cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
