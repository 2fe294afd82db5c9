"""Generate man/chatctl.1 and one man/chatctl-COMMAND.1 per subcommand, as roff.

NAME, SYNOPSIS, COMMANDS, ARGUMENTS and OPTIONS come from the CLI's own click tree (help
texts, defaults, ranges, environment variables). DESCRIPTION, EXAMPLES, ENVIRONMENT, FILES,
EXIT STATUS and SEE ALSO are hand-written in man/pages.toml, keyed by command name
("chatctl" is the top-level page). See that file's header for its markup and rules.

The generator fails loudly (exit 2) when the hand-written text and the CLI disagree: a page
for a command that does not exist (unless the page says ``pending = true``: then it is
skipped while the command is absent), a command without a page, a `chatctl CMD` or `--flag`
that does not exist, an exit status that is not in chatctl.status, an environment variable
named in ``--help`` but not described.

    python scripts/gen_man.py            # write
    python scripts/gen_man.py --check    # exit 1 if a checked-in page is stale
"""

from __future__ import annotations

import argparse
import re
import sys
import tomllib
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from genlib import ROOT, load_app_command, write_or_check

OUT = ROOT / "man"
DATA = OUT / "pages.toml"
SECTIONS = ("description", "examples", "environment", "files", "exit_status", "see_also")
GLOBAL_FLAGS = {"--help", "--version", "--traceback"}
CODE_RE = re.compile(r"`([^`]+)`")
FLAG_RE = re.compile(r"(?<![\w-])--[a-z][a-z0-9-]*")
CMD_RE = re.compile(r"\bchatctl[ -]([a-z][a-z0-9-]*)")
ENV_RE = re.compile(r"\b(?:CHATCTL_[A-Z0-9_]+|XDG_[A-Z_]+|NO_COLOR)\b")


class DataError(Exception):
    """man/pages.toml and the CLI disagree."""


# ----------------------------------------------------------------------------- roff


def esc(text: str) -> str:
    """Escape plain text for roff (backslashes, hyphens, leading control characters)."""
    text = text.replace("\\", "\\e").replace("-", "\\-")
    return "\n".join("\\&" + ln if ln.startswith((".", "'")) else ln for ln in text.split("\n"))


def inline(text: str) -> str:
    """Hand-written inline markup: `code` is bold, *word* is italic, the rest plain."""
    out: list[str] = []
    for i, part in enumerate(CODE_RE.split(text)):
        if i % 2:
            out.append(f"\\fB{esc(part)}\\fR")
        else:
            out.append(re.sub(r"\*([^*\s][^*]*)\*", r"\\fI\1\\fR", esc(part)))
    return "".join(out)


def blocks(text: str, keep: Callable[[str], bool] = lambda _: True) -> list[str]:
    """Paragraphs (blank-line separated) to roff: plain text, '- ' bullets, or an indented
    (two spaces) verbatim block. ``keep`` sees each paragraph or bullet's source text."""
    out: list[str] = []
    for para in re.split(r"\n\s*\n", text.strip()):
        lines = para.split("\n")
        if not lines[0].startswith("- ") and not keep(para):
            continue
        if all(ln.startswith("  ") for ln in lines):
            body = "\n".join(esc(ln[2:]) for ln in lines)
            out.append(f".PP\n.RS 4\n.nf\n{body}\n.fi\n.RE")
        elif lines[0].startswith("- "):
            items = [i for i in re.split(r"\n(?=- )", para) if keep(i)]
            out.append("\n".join(f".IP \\(bu 2\n{inline(flat(i[2:]))}" for i in items))
        else:
            out.append(f".PP\n{inline(flat(para))}")
    return out


def flat(text: str) -> str:
    return " ".join(ln.strip() for ln in text.strip().split("\n"))


def tagged(term: str, text: str) -> str:
    return f".TP\n{term}\n" + "\n".join(b.removeprefix(".PP\n") for b in blocks(text))


# ----------------------------------------------------------------------------- the CLI


@dataclass
class Cmd:
    path: str  # "chatctl token create"
    command: Any  # a click Command/Group
    children: list[Cmd] = field(default_factory=list)

    @property
    def options(self) -> set[str]:
        flags = {o for p in self.command.params for o in (*p.opts, *p.secondary_opts)}
        return flags.union(*(c.options for c in self.children))

    @property
    def envvars(self) -> set[str]:
        """Environment variables this command and its subcommands read or name in --help."""
        return self.own_envvars.union(*(c.envvars for c in self.children))

    @property
    def own_envvars(self) -> set[str]:
        names: set[str] = set()
        for p in self.command.params:
            env = getattr(p, "envvar", None)
            names.update([env] if isinstance(env, str) else env or [])
        names.update(ENV_RE.findall(epilog_section(self.command.epilog, "Environment")))
        return names


def epilog_section(epilog: str | None, title: str) -> str:
    """The part of a --help epilog from the line starting with ``title`` to the next line
    that starts at column 0 after a blank line (the next heading)."""
    m = re.search(rf"^{title}\b.*?(?=\n\n\S|\Z)", epilog or "", flags=re.M | re.S)
    return m.group(0) if m else ""


def walk(command: Any, path: str) -> Cmd:
    subs = getattr(command, "commands", {})
    kids = [walk(sub, f"{path} {name}") for name, sub in sorted(subs.items()) if not sub.hidden]
    return Cmd(path, command, kids)


def first_sentence(text: str | None) -> str:
    text = " ".join((text or "").split())
    return text.split(". ")[0].rstrip(".")


def metavar(param: Any) -> str:
    if param.metavar:
        return str(param.metavar)
    annotation = getattr(getattr(param, "type_descriptor", None), "annotation", None)
    if annotation is Path or str(annotation).endswith("Path | None"):
        return "FILE"
    return str(param.name).upper()


def synopsis(cmd: Cmd) -> str:
    words = cmd.path.split()
    out = [f".B {words[0]}" if len(words) == 1 else f".B {' '.join(words)}"]
    out.append(".RI [ OPTIONS ]")
    if cmd.children:
        out.append(".I COMMAND")
    for p in cmd.command.params:
        if p.param_type_name == "argument":
            name = metavar(p)
            out.append(f".I {name}" if p.required else f".RI [ {name} ]")
    return "\n".join(out)


def option_entry(p: Any) -> str:
    flags = [f"\\fB{esc(o)}\\fR" for o in sorted(p.opts, key=len)]
    if not getattr(p, "is_flag", False):
        flags[-1] += f" \\fI{esc(metavar(p))}\\fR"
    if p.secondary_opts:
        flags += [f"\\fB{esc(o)}\\fR" for o in p.secondary_opts]
    notes = []
    if p.multiple and "repeatable" not in (p.help or "").lower():
        notes.append("Repeatable.")
    if p.min is not None or p.max is not None:
        lo = "" if p.min is None else f"{p.min}"
        hi = "" if p.max is None else f"{p.max}"
        notes.append(f"Range: {lo}..{hi}." if lo and hi else f"At least {lo}." if lo else "")
    default = p.default
    if p.required:
        notes.append("Required.")
    elif default not in (None, False, [], ()) and not callable(default):
        notes.append(f"Default: {default}.")
    envs = [p.envvar] if isinstance(p.envvar, str) else list(p.envvar or [])
    if envs:
        notes.append(f"Environment: {', '.join(envs)}.")
    text = " ".join(filter(None, [p.help or "", *notes]))
    return f".TP\n{', '.join(flags)}\n{esc(text)}"


def generated_sections(cmd: Cmd, leaf_title: bool = False) -> list[str]:
    out: list[str] = []
    args = [p for p in cmd.command.params if p.param_type_name == "argument"]
    opts = [p for p in cmd.command.params if p.param_type_name == "option" and not p.hidden]
    if args:
        out.append(".SH ARGUMENTS" if not leaf_title else ".PP\n.I Arguments:")
        out += [f".TP\n\\fI{esc(metavar(p))}\\fR\n{esc(p.help or '')}" for p in args]
    if opts:
        out.append(".SH OPTIONS" if not leaf_title else ".PP\n.I Options:")
        panel = None
        for p in opts:  # the sections of a command's --help (its settings' sections)
            if getattr(p, "rich_help_panel", None) not in (None, panel):
                panel = p.rich_help_panel
                out.append(f".SS {esc(panel)}")
            out.append(option_entry(p))
    return out


# ----------------------------------------------------------------------------- pages


@dataclass
class Context:
    existing: dict[str, Cmd]  # page key ("chatctl", "serve", "token") -> command
    pending_absent: set[str]  # page keys whose commands are not on this branch


def check_item(text: str, key: str, cmd: Cmd, ctx: Context, data: dict[str, Any]) -> bool:
    """True to keep a hand-written item; False to drop it (it names a pending, absent
    command or option); DataError when it names something that does not exist at all."""
    codes = " ".join([*CODE_RE.findall(text), *[ln for ln in text.split("\n") if ln[:2] == "  "]])
    for name in CMD_RE.findall(codes):
        if name in ctx.pending_absent:
            return False
        if name not in ctx.existing:
            raise DataError(f"[{key}] names 'chatctl {name}', which is no chatctl command")
    valid = cmd.options | GLOBAL_FLAGS
    pending = set(data.get(key, {}).get("pending_options", []))
    for flag in FLAG_RE.findall(text):
        if flag in valid:
            continue
        if flag in pending:
            return False
        raise DataError(
            f"[{key}] mentions {flag}, which '{cmd.path}' does not have "
            f"(add it to [{key}].pending_options if it is coming in another branch)"
        )
    return True


def example_text(example: dict[str, str]) -> str:
    """An example's explanation, then its command lines as a verbatim block."""
    lines = example["command"].strip().split("\n")
    return example["text"].strip() + "\n\n" + "\n".join(f"  {ln}" for ln in lines)


def render_page(
    key: str, cmd: Cmd, page: dict[str, Any], ctx: Context, data: dict[str, Any]
) -> str:
    def keep(text: str) -> bool:
        return check_item(text, key, cmd, ctx, data)

    title = cmd.path.replace(" ", "-")
    from chatctl import __version__
    from chatctl.status import ExitStatus

    out = [
        '.\\" Generated by scripts/gen_man.py from the CLI and man/pages.toml; do not edit.',
        f'.TH {esc(title.upper())} 1 "" "chatctl {__version__}" "chatctl manual"',
        ".SH NAME",
        f"{esc(title)} \\- {esc(first_sentence(cmd.command.help))}",
        ".SH SYNOPSIS",
    ]
    leaves = [c for c in cmd.children if not c.children] if key != "chatctl" else []
    for i, c in enumerate(leaves or [cmd]):
        if i:
            out.append(".br")
        out.append(synopsis(c))
    out.append(".SH DESCRIPTION")
    out += blocks(page["description"], keep)
    if key == "chatctl":
        out.append(".SH COMMANDS")
        for c in cmd.children:
            name = c.path.split()[-1]
            out.append(
                f".TP\n\\fB{esc(name)}\\fR\n{esc(first_sentence(c.command.help))}. "
                f"See \\fB{esc(c.path.replace(' ', '-'))}\\fR(1)."
            )
        out += generated_sections(cmd)
    elif leaves:
        out.append(".SH COMMANDS")
        for c in leaves:
            out.append(f".SS {esc(c.path)}")
            out.append(".PP\n" + esc(" ".join((c.command.help or "").split())))
            out += generated_sections(c, leaf_title=True)
    else:
        out += generated_sections(cmd)
    examples = [e for e in page.get("examples", []) if keep(example_text(e))]
    if examples:
        out.append(".SH EXAMPLES")
        for e in examples:
            out += blocks(example_text(e))
    env = dict(page.get("environment", {}))
    needed = cmd.own_envvars if key == "chatctl" else cmd.envvars
    for name in sorted(needed - set(env)):
        # a declared setting's variable describes itself: "As --flag."
        owner = [p for p in cmd.command.params if p.envvar == name and not p.hidden]
        if not owner:
            raise DataError(f"[{key}] does not describe {name} (--help or an option names it)")
        env[name] = f"As `{owner[0].opts[0]}`: {first_sentence(owner[0].help)}"
    env_items = [tagged(f".B {esc(n)}", t) for n, t in env.items() if keep(f"`{n}` {t}")]
    if env_items:
        out += [".SH ENVIRONMENT", *env_items]
    files = [tagged(f".I {esc(n)}", t) for n, t in page.get("files", {}).items() if keep(t)]
    if files:
        out += [".SH FILES", *files]
    statuses = page.get("exit_status", {})
    if statuses:
        out.append(".SH EXIT STATUS")
        for code, text in statuses.items():
            if int(code) not in {s.value for s in ExitStatus}:
                raise DataError(f"[{key}].exit_status: {code} is not in chatctl.status")
            if keep(text):
                out.append(tagged(f".B {code}", text))
    refs = []
    for ref in page.get("see_also", []):
        m = re.fullmatch(r"([\w.-]+)\((\d)\)", ref)
        if not m:
            raise DataError(f"[{key}].see_also: {ref!r} is not NAME(SECTION)")
        name = m.group(1)
        if name.startswith("chatctl"):
            sub = name.removeprefix("chatctl-") if name != "chatctl" else "chatctl"
            if sub in ctx.pending_absent:
                continue
            if sub not in ctx.existing:
                raise DataError(f"[{key}].see_also: {ref} is no chatctl page")
        refs.append(f"\\fB{esc(name)}\\fR({m.group(2)})")
    if refs:
        out += [".SH SEE ALSO", ",\n".join(refs)]
    return "\n".join(out) + "\n"


def generate(data: dict[str, Any] | None = None, root: Any = None) -> dict[Path, str]:
    data = data if data is not None else tomllib.loads(DATA.read_text(encoding="utf-8"))
    tree = walk(root if root is not None else load_app_command(), "chatctl")
    existing = {"chatctl": tree, **{c.path.split()[1]: c for c in tree.children}}
    for key, page in data.items():
        unknown = set(page) - {*SECTIONS, "pending", "pending_options"}
        if unknown:
            raise DataError(f"[{key}] has unknown keys {sorted(unknown)}")
        if key not in existing and not page.get("pending"):
            raise DataError(f"[{key}] is a page for a command chatctl does not have")
        if "description" not in page:
            raise DataError(f"[{key}] needs a description")
    for key in existing:
        if key not in data:
            raise DataError(f"'{existing[key].path}' has no page in {DATA.name}; write one")
    ctx = Context(existing, {k for k in data if k not in existing})
    outputs: dict[Path, str] = {}
    for key, cmd in existing.items():
        if data[key].get("pending"):
            print(
                f"gen_man: [{key}] is marked pending but exists now: review it and drop 'pending'",
                file=sys.stderr,
            )
        for flag in sorted(set(data[key].get("pending_options", [])) & cmd.options):
            print(
                f"gen_man: [{key}] {flag} exists now: drop it from pending_options",
                file=sys.stderr,
            )
        name = "chatctl" if key == "chatctl" else f"chatctl-{key}"
        outputs[OUT / f"{name}.1"] = render_page(key, cmd, data[key], ctx, data)
    return outputs


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="only report stale pages")
    args = parser.parse_args(argv)
    try:
        outputs = generate()
    except DataError as exc:
        print(f"gen_man: {DATA.relative_to(ROOT)}: {exc}", file=sys.stderr)
        return 2
    return write_or_check(outputs, owned=OUT.glob("*.1"), check=args.check, name="gen_man")


if __name__ == "__main__":
    sys.exit(main())
