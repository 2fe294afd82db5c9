"""Tokens: what a JWT holds, how one is made, read, checked and renewed. One module per job;
nothing here imports the client, the server or the terminal UI (they import it), and this
``__init__`` imports nothing, so ``chatctl send`` loads only what it uses (no pyjwt, no
``cryptography``: a client reads its token's claims without verifying them).

- :mod:`~chatctl.tokens.claims`: :class:`Claims` (user, rooms read and written, rooms only
  read, ``admin``, ``jti``, ``iat``, ``exp``; ``allows(room)``, ``writes(room)``,
  ``check_room``), ``MAX_TOKEN_LIFETIME``
- :mod:`~chatctl.tokens.revocation`: :class:`Revocation` (a token id, or a user's tokens
  issued before a time, kept until they expire), :class:`RevocationList` (what is revoked
  now), and reading ``chatctl token revoke``'s arguments
- :mod:`~chatctl.tokens.keys`: PEM public and private keys and the algorithms each pins
  (the HS256 secret's precedence is a setting: :func:`chatctl.config.resolve_secret`)
- :mod:`~chatctl.tokens.verify`: :class:`Verifier`, a token -> claims or a ``TokenError``
  (the server's handshake and ``refresh`` frames)
- :mod:`~chatctl.tokens.mint`: ``mint`` signs a token; ``create_token`` is
  ``chatctl token create``'s work
- :mod:`~chatctl.tokens.inspect`: ``chatctl token inspect``: header and claims unverified,
  and the verdict
- :mod:`~chatctl.tokens.text`: ``format_time`` and ``one_line`` for token text shown to people
- :mod:`~chatctl.tokens.source`: the client's ``TokenSource`` (a value, a file, a command,
  config.toml, minted from the local secret), read again whenever a fresh token is needed
- :mod:`~chatctl.tokens.renewal`: the client's ``TokenKeeper`` (re-read at every connection,
  renewed with a ``refresh`` frame before ``exp``, waited for after a refusal), the token
  events of a stream, and ``TokenTrouble``, what ``chatctl join`` says about them

Elsewhere, by design: the command line is :mod:`chatctl.cli.token` (flags only);
the server's per-connection deadlines (closed with 4001 at ``exp`` plus the leeway, one
timer heap for all connections) are :mod:`chatctl.server.expiry`, part of the server's
connection state like its limits; ``join_link`` (a token's web page link on the configured
server) is in :mod:`chatctl.client.settings` next to the server URL it needs.
"""
