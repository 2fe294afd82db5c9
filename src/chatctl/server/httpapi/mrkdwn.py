"""Slack's text format ("mrkdwn") as the plain text a terminal shows.

Tools written for Slack's incoming webhooks (Grafana, Alertmanager, slackapi's GitHub
action) encode links and mentions in angle brackets and escape ``&``, ``<`` and ``>``:
``Disk full on <https://grafana.example/d/abc|host-1> &amp; rising``. Posted as is, a
reader sees the brackets and entities; :func:`plain_text` shows what Slack's own clients
show instead, in text: ``Disk full on host-1 (https://grafana.example/d/abc) & rising``.

Only Slack's own forms are converted; anything else in brackets (a lone ``<``, an
unbalanced or unknown one, HTML-looking tags) stays as it was, so a post is never refused
or mangled over its formatting. The ``*bold*``/``_italic_`` marks are left too: they read
well as they are.
"""

from __future__ import annotations

import re

#: one bracketed token on one line: Slack's links and mentions never hold ``<``, ``>`` or
#: a line break
_BRACKETED = re.compile(r"<([^<>\n]*)>")
#: a link's target: any ``scheme://…`` URL, or one of the schemes without ``//`` that Slack
#: links (``std::vector`` or ``C:\\path`` are not links)
_URL = re.compile(r"(?:[A-Za-z][A-Za-z0-9+.-]*://|(?i:mailto|tel|sms):)[^\s|]+")
#: the id of ``<@U123>``, ``<#C123>`` and ``<!subteam^S123>``, and the command of ``<!…>``
_ID = re.compile(r"[A-Za-z0-9_.-]+")
#: the special mentions shown as ``@NAME`` whatever their label
_BROADCASTS = frozenset({"channel", "here", "everyone"})
#: the only entities Slack escapes; one pass, so ``&amp;lt;`` is ``&lt;`` (as if ``&amp;``
#: were decoded last, as Slack's clients do)
_ENTITY = re.compile(r"&(amp|lt|gt);")
_ENTITIES = {"amp": "&", "lt": "<", "gt": ">"}


def plain_text(text: str) -> str:
    """``text`` in Slack's format as plain text: ``<URL|label>`` is ``label (URL)``, ``<URL>``
    the URL (a ``mailto:`` link its address); ``<!channel>``, ``<!here>`` and
    ``<!everyone>`` are ``@channel``, ``@here``, ``@everyone``; ``<!subteam^ID|@team>``
    and ``<!date^…|fallback>`` their label; ``<@U123>`` and ``<#C123|name>`` are ``@U123``
    and ``#name``; then ``&lt;``, ``&gt;`` and ``&amp;`` are decoded (no other entity)."""
    return _ENTITY.sub(_entity, _BRACKETED.sub(_bracketed, text))


def _entity(match: re.Match[str]) -> str:
    return _ENTITIES[match.group(1)]


def _bracketed(match: re.Match[str]) -> str:
    """What one ``<…>`` shows; itself, brackets and all, when it is none of Slack's forms."""
    target, _, label = match.group(1).partition("|")
    label = label.strip()
    if target.startswith("!"):
        command, _, argument = target[1:].partition("^")
        if not _ID.fullmatch(command):
            return match.group(0)
        if command in _BROADCASTS:
            return "@" + command
        if label:  # <!subteam^ID|@team>, <!date^…|fallback>
            return label
        if command == "subteam" and _ID.fullmatch(argument):
            return "@" + argument
        return match.group(0)
    if target[:1] in ("@", "#"):
        sigil, ident = target[0], target[1:]
        if not _ID.fullmatch(ident):
            return match.group(0)
        if not label:
            return target
        return label if label.startswith(sigil) else sigil + label
    if _URL.fullmatch(target):
        shown = target.partition(":")[2] if target.lower().startswith("mailto:") else target
        bare = target.partition("://")[2].rstrip("/")
        if not label or label in (target, shown, bare):  # Slack's auto-links repeat the URL
            return shown
        return f"{label} ({shown})"
    return match.group(0)
