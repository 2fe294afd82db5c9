"""The client side shared by ``chatctl join``, ``chatctl send`` and ``chatctl bench``.

- :mod:`~chatctl.client.settings`: server, token and config resolution (cheap to import)
- :mod:`~chatctl.client.token_source`: where the token comes from (``TokenSource``:
  ``get()``, ``refresh()``), read again whenever a fresh one is needed
- :mod:`~chatctl.client.renewal`: a stream's token: re-read at every connection, renewed
  with a ``refresh`` frame before it expires, waited for after a refusal
- :mod:`~chatctl.client.stream`: one room as an async iterator of typed events: the one
  reconnect loop and the one resend policy, consumed by ``join`` (both) and ``send``
- :mod:`~chatctl.client.events`: the typed events and states of the stream
- :mod:`~chatctl.client.room`: its parts: a connection attempt, backoff, resume, the outbox
- :mod:`~chatctl.client.sanitize`: the one sanitiser for text on its way to a terminal
- :mod:`~chatctl.client.lines`: stdin read line by line in a thread, bounded
- :mod:`~chatctl.client.output`: stdout: lines out, a full disk or a reader gone
- :mod:`~chatctl.client.send`: ``chatctl send``
- :mod:`~chatctl.client.join`: ``chatctl join`` for scripts (the terminal UI is in
  :mod:`chatctl.ui`)
"""
