"""One declaration per setting of ``chatctl serve``, read by everything that shows or takes it.

A :class:`Setting` says a setting's name, type, default, help, environment variable, bounds
and section once. ``chatctl serve``'s flags (chatctl/cli/serve.py builds its signature from
them, as httpie's ``cli/definition.py`` is the one list its parser, help and docs read),
:class:`~chatctl.server.options.ServeOptions`, the man page and completions (generated from
those flags by scripts/generate.py) and the serve-settings table of docs/configuration.md
all come from these declarations.

Settings of the server itself are the fields of ``ServeOptions``, declared with
:func:`setting`; a broker's own options are declared in its registry entry
(:mod:`chatctl.broker.registry`), so that a broker brings its flags with it. This module
imports nothing of chatctl: the broker registry, the server and the CLI all read it.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

#: the sections of ``chatctl serve --help`` (its panels), of its man page and of the table in
#: docs/configuration.md, in the order they are shown
SECTIONS = ("Listening", "Tokens", "Storage", "Workers", "Limits", "Connections", "Logging")


@dataclass(frozen=True)
class Setting:
    """Everything about one setting: what its flag, its field, --help, man and docs say."""

    #: the Python name; the flag is ``--name`` with dashes unless ``flag`` says otherwise
    name: str
    help: str
    #: the type the program uses (``int``, ``float``, ``Path | None``, ``tuple[str, ...]``…)
    type: Any = str
    default: Any = None
    section: str = "Listening"
    #: environment variable read when the flag is not given
    env: str | None = None
    min: float | None = None
    max: float | None = None
    #: the value's name in --help and man (derived from the type and name when ``None``)
    metavar: str | None = None
    #: the flag, when it is not ``--name`` (e.g. ``--allowed-origin`` of ``allowed_origins``)
    flag: str | None = None
    #: a boolean that is a bare switch (``--memory``), not a ``--x/--no-x`` pair
    switch: bool = False
    #: turns the flag's text into the value; raises ``ValueError`` with a message otherwise
    parser: Callable[[str], Any] | None = None
    #: the default as --help shows it, when not the value itself (``7d`` for 604800 s)
    shown_default: str | None = None
    case_sensitive: bool = True
    hidden: bool = False
    #: where the value goes: a field of ServerSettings (``rates.conn_rate``; several are
    #: fed the same value), or the keyword of a broker's constructor
    target: tuple[str, ...] = ()
    #: what the value becomes there (e.g. 0 -> None for "off")
    convert: Callable[[Any], Any] | None = None

    @property
    def option(self) -> str:
        """The flag, e.g. ``--history-ttl``."""
        return self.flag or "--" + self.name.replace("_", "-")

    @property
    def key(self) -> str:
        """The broker constructor's keyword for a broker option (its first target)."""
        return self.target[0] if self.target else self.name

    def value_for(self, value: Any) -> Any:
        """``value`` as its target takes it."""
        return self.convert(value) if self.convert is not None else value


def setting(
    default: Any,
    *,
    help: str,
    section: str,
    **more: Any,
) -> Any:
    """A dataclass field carrying its :class:`Setting` (name and type come from the field)."""
    spec = Setting(name="", help=help, section=section, **more)
    return dataclasses.field(default=default, metadata={"setting": spec})


def declared(cls: type, hints: dict[str, Any]) -> tuple[Setting, ...]:
    """The settings of a dataclass declared with :func:`setting`, with names, types and
    defaults filled in from its fields (``hints``: its resolved annotations)."""
    out = []
    for f in dataclasses.fields(cls):
        spec = f.metadata.get("setting")
        if spec is None:
            continue
        out.append(dataclasses.replace(spec, name=f.name, type=hints[f.name], default=f.default))
    return tuple(out)
