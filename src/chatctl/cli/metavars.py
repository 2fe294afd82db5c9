"""What ``--help`` shows for a parameter's value: ``ROOM``, ``N``, ``SECONDS``, ``FILE``, ``URL``
or ``text|json``, as man pages and most CLIs write them, instead of typer's ``<str>``,
``<int range> [x>=0]``, ``<bool>`` and ``{room}``.

A metavar given in the declaration wins; otherwise one is derived from the parameter:

=============================================  ==========================================
an argument                                    its name in capitals (``ROOM``, ``TEXT...``)
a flag (``--json``)                            nothing
a choice (``Literal["text", "json"]``)         the choices: ``text|json``
a path, or a name ending in ``_file``          ``FILE``
a name ending in ``url``                       ``URL``
a number named ``*timeout``, ``*interval`` or  ``SECONDS``
``*ttl``, or whose help starts with "Seconds"
another number                                 ``N``
anything else                                  the option's name in capitals (``HOST``)
=============================================  ==========================================

Ranges are checked when parsing (``--port 70000`` is a usage error that states the range),
not repeated in the help. The usage line writes a required argument bare and an optional one
in brackets (``chatctl send [OPTIONS] ROOM [TEXT]...``).

:func:`readable` changes the classes of the parameters of a built command to subclasses that
override typer's display methods (:data:`OVERRIDDEN`); ``tests/cli/test_help.py`` fails if typer
renames them.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from typer.core import TyperArgument, TyperCommand, TyperGroup, TyperOption

#: the names of typer's methods overridden here (tests/cli/test_help.py checks they exist)
OVERRIDDEN = {
    TyperArgument: ("display_type_rich", "_get_number_range_help_str", "_usage_display_name"),
    TyperOption: ("display_type_rich", "_get_number_range_help_str"),
    TyperCommand: ("get_help_option",),
}

_SECONDS = ("timeout", "interval", "ttl")


class _Argument(TyperArgument):
    def display_type_rich(self, ctx: Any) -> str | None:
        return None  # the name column says it (ROOM)

    def _get_number_range_help_str(self) -> str | None:
        return None

    def _usage_display_name(self) -> str:
        name = self.display_name_raw
        if self.required:
            return name
        bare = name.removesuffix("...")
        return f"[{bare}]" + name[len(bare) :]


class _Option(TyperOption):
    def display_type_rich(self, ctx: Any) -> str | None:
        return self.metavar or None

    def _get_number_range_help_str(self) -> str | None:
        return None


def readable_help_option(option: Any) -> Any:
    """``--help`` shows no ``<bool>`` either (typer creates that option when it is first
    needed, so the commands' ``get_help_option`` passes it through here)."""
    if isinstance(option, TyperOption) and not isinstance(option, _Option):
        option.__class__ = _Option
    return option


class _Command(TyperCommand):
    def get_help_option(self, ctx: Any) -> Any:
        return readable_help_option(super().get_help_option(ctx))


class _Group(TyperGroup):
    def get_help_option(self, ctx: Any) -> Any:
        return readable_help_option(super().get_help_option(ctx))


def derive(param: TyperArgument | TyperOption) -> str:
    """The metavar of a parameter declared without one (see the module's table)."""
    name = param.name or ""
    if isinstance(param, TyperArgument):
        return name.upper() + ("..." if param.nargs != 1 else "")
    if param.is_flag or param.count:
        return ""
    desc = param.type_descriptor
    if desc.is_choice:
        return "|".join(str(getattr(c, "value", c)) for c in desc.choices or ())
    annotation = desc.annotation
    if desc.is_path or name.endswith("_file") or annotation is Path:
        return "FILE"
    if name.endswith("url"):
        return "URL"
    if annotation in (int, float):
        seconds = name.endswith(_SECONDS) or (param.help or "").startswith("Seconds")
        return "SECONDS" if seconds else "N"
    return name.upper()


def readable(command: Any, *, recurse: bool = True) -> Any:
    """Give every parameter of ``command`` (and, with ``recurse``, of its subcommands) a
    readable metavar; return ``command``."""
    if type(command) is TyperCommand:
        command.__class__ = _Command
    elif type(command) is TyperGroup:
        command.__class__ = _Group
    for param in command.params:
        if isinstance(param, TyperArgument):
            if param.metavar is None:
                param.metavar = derive(param)
            param.__class__ = _Argument
        elif isinstance(param, TyperOption):
            if param.metavar is None:
                param.metavar = derive(param)
            param.__class__ = _Option
    for sub in getattr(command, "commands", {}).values() if recurse else ():
        readable(sub)
    return command
