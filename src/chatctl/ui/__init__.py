"""The interactive ``chatctl join``: prompt-toolkit input, rich rendering.

- :mod:`~chatctl.ui.app`: the session (the room's event stream + input task in
  ``patch_stdout``)
- :mod:`~chatctl.ui.prompt`: the input line (completion, keys, status line) and the
  question before a multi-line paste is sent
- :mod:`~chatctl.ui.windowing`: the session's windows: opening, showing, closing, listing
- :mod:`~chatctl.ui.roomwindow`: opening a room's window and the task following its stream
- :mod:`~chatctl.ui.view`: the room's events as lines, and the state the status line shows
- :mod:`~chatctl.ui.commands`: the ``/commands``
- :mod:`~chatctl.ui.completer`: Tab completion of commands and user names
- :mod:`~chatctl.ui.keys`: the key bindings factory
- :mod:`~chatctl.ui.render`: events to ANSI lines (colours, mentions, sanitising)
"""
