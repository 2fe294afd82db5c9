"""The client side shared by ``chatctl join``, ``chatctl send`` and ``chatctl bench``.

- :mod:`~chatctl.client.settings`: server, token and config resolution (cheap to import)
- the token a client connects with: where it comes from and how a stream renews it live in
  :mod:`chatctl.tokens` (:mod:`~chatctl.tokens.source`, :mod:`~chatctl.tokens.renewal`)
- :mod:`~chatctl.client.stream`: one room as an async iterator of typed events: the one
  reconnect loop and the one resend policy, consumed by ``join`` (both) and ``send``
- :mod:`~chatctl.client.events`: the typed events and states of the stream
- its parts, one job each:

  - :mod:`~chatctl.client.connect`: one connection attempt, its failures as exceptions
    (final ones, or :class:`~chatctl.client.connect.Retryable`)
  - :mod:`~chatctl.client.room`: one room's attempts up to the welcome, and the resume
    position (``?since=LAST&epoch=E``) carried across them
  - :mod:`~chatctl.client.attempts`: the stream's attempts until a welcome, backoff
    between them, a refused token waited out
  - :mod:`~chatctl.client.backoff`: capped exponential backoff with jitter between attempts
  - :mod:`~chatctl.client.closing`: close codes said in words
  - :mod:`~chatctl.client.outbox`: messages not acknowledged yet, with their client ids
  - :mod:`~chatctl.client.pacer`: sends kept under the rate limit the server announced
  - :mod:`~chatctl.client.resend`: the resend policy: the outbox sent in order, paced,
    again after a reconnect and from a message refused with a retryable code
- :mod:`~chatctl.client.sanitize`: the one sanitiser for text on its way to a terminal
- :mod:`~chatctl.client.lines`: stdin read line by line in a thread, bounded
- :mod:`~chatctl.client.output`: stdout: lines out, a full disk or a reader gone
- :mod:`~chatctl.client.send`: ``chatctl send``
- :mod:`~chatctl.client.join`: ``chatctl join`` for scripts (the terminal UI is in
  :mod:`chatctl.ui`)
"""
