"""The client side shared by ``chatctl join``, ``chatctl send`` and ``chatctl bench``.

- :mod:`~chatctl.client.settings`: server, token and config resolution (cheap to import)
- :mod:`~chatctl.client.core`: connect, reconnect with backoff, resume, the outbox of acks
- :mod:`~chatctl.client.lines`: stdin read line by line in a thread, bounded
- :mod:`~chatctl.client.send`: ``chatctl send``
- :mod:`~chatctl.client.join`: ``chatctl join`` for scripts (the terminal UI is in
  :mod:`chatctl.ui`)
"""
