"""The test tree mirrors src/chatctl/ and keeps what tests share in tests/support/, so that
any test module can run alone or on any pytest-xdist worker."""

from __future__ import annotations

import ast
from pathlib import Path

from genlib import ROOT

TESTS = ROOT / "tests"


def imported_modules(path: Path) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            names.add(node.module)
    return names


def test_no_test_module_imports_another() -> None:
    test_modules = {p.stem for p in TESTS.rglob("*.py") if p.stem.startswith("test_")}
    offenders = {
        str(path.relative_to(ROOT)): sorted(
            name
            for name in imported_modules(path)
            if name.split(".")[-1] in test_modules or name.split(".")[-1] == "conftest"
        )
        for path in TESTS.rglob("*.py")
    }
    assert {k: v for k, v in offenders.items() if v} == {}


def test_only_the_root_conftest_is_at_the_top_of_tests() -> None:
    assert sorted(p.name for p in TESTS.glob("*.py")) == ["conftest.py"]


def test_each_folder_of_tests_mirrors_one_of_src_or_is_support_docs_or_packaging() -> None:
    src = {p.name for p in (ROOT / "src" / "chatctl").iterdir() if not p.name.startswith("_")}
    src |= {name.removesuffix(".py") for name in src}
    folders = {p.name for p in TESTS.iterdir() if p.is_dir() and not p.name.startswith((".", "_"))}
    assert folders - src == {"support", "docs", "packaging"}


def test_test_module_names_are_unique() -> None:
    """pytest imports test modules by their name (rootdir-based, no __init__.py)."""
    names = [p.name for p in TESTS.rglob("test_*.py")]
    assert sorted(names) == sorted(set(names))
