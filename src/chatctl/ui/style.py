"""The prompt-toolkit style of the input area and the status line (pgcli's ``pgstyle.py``).

The status line is in reverse video, which needs no colour: with ``NO_COLOR`` prompt-toolkit
drops the colours below and keeps the reverse and the bold. Messages are styled apart, by
:mod:`chatctl.ui.render`.
"""

from __future__ import annotations

from prompt_toolkit.styles import Style

STATUS_STYLES = {
    "bottom-toolbar": "reverse",
    "bottom-toolbar.text": "",
    "toolbar.room": "bold",
    "toolbar.sep": "",
    "toolbar.connected": "",
    "toolbar.offline": "bold ansiyellow",
    "toolbar.queued": "bold",
    "toolbar.mentions": "bold ansired",
    "toolbar.activity": "",
}


def create_style() -> Style:
    return Style.from_dict(STATUS_STYLES)
