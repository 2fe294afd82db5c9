"""Where a client's token comes from, read again whenever a fresh one is needed: at every
reconnect, and before the current token expires (the client then sends it to the server in a
``refresh`` frame, see docs/protocol.md).

::

    source = settings.token         # a TokenSource
    token = source.get()            # the last token read (read once if none yet): a Token
    token = source.refresh()        # read the source again
    token.exp, token.sub            # its unverified claims (the server verifies)

=========================================  ===============================================
origin                                     ``refresh()``
=========================================  ===============================================
``--token VALUE``, ``CHATCTL_TOKEN``       the same token: a fixed value cannot be renewed
``--token -``                              the same token: stdin is read once
``--token-file``, ``CHATCTL_TOKEN_FILE``   reads the file again
``--token-command``,                       runs the command again (through the shell, like
``CHATCTL_TOKEN_COMMAND``                  git's credential helpers): stdout is the token
``token``/``token_file``/``token_command``  reads config.toml again, then what it names
in config.toml
minted from the local secret               reads the secret again and mints a new token
=========================================  ===============================================

A source that cannot be read raises :class:`TokenUnavailable` (an
:class:`~chatctl.errors.AuthError`: exit status 3 at start-up) with one line saying why; the
last token read stays the current one. ``fixed`` says why a source cannot be renewed (None
when it can). Never logs or prints a token.
"""

from __future__ import annotations

import base64
import json
import math
import subprocess
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from chatctl.errors import AuthError

#: Seconds a ``--token-command`` may run before it counts as failed.
COMMAND_TIMEOUT = 30.0
#: A token is renewed a fifth of its lifetime before ``exp``, but at most this many seconds
#: before and at least :data:`MIN_RENEW_MARGIN` seconds before.
MAX_RENEW_MARGIN = 60.0
MIN_RENEW_MARGIN = 1.0
#: Lifetime assumed for a token without ``iat``.
DEFAULT_LIFETIME = 600.0


class TokenUnavailable(AuthError):
    """The token source could not be read (file missing, command failed, nothing in it)."""


def token_claims(token: str) -> dict[str, Any]:
    """The unverified claims of a JWT (to name its user, know its expiry), or {}."""
    try:
        payload = token.split(".")[1]
        claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    except (IndexError, ValueError):
        return {}
    return claims if isinstance(claims, dict) else {}


def _time(value: object) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value) if math.isfinite(value) else None


@dataclass(frozen=True)
class Token:
    """A token as read from its source, with the claims a client reads without verifying
    them: ``sub`` (whose token it is) and ``exp``/``iat`` (when to renew it)."""

    value: str
    sub: str | None = None
    exp: float | None = None
    iat: float | None = None

    def __repr__(self) -> str:  # never the token itself
        return f"Token(sub={self.sub!r}, exp={self.exp!r})"

    @classmethod
    def parse(cls, value: str) -> Token:
        claims = token_claims(value)
        sub = claims.get("sub")
        return cls(
            value,
            sub if isinstance(sub, str) else None,
            _time(claims.get("exp")),
            _time(claims.get("iat")),
        )

    def expired(self, now: float | None = None) -> bool:
        """True when ``exp`` has passed (by the client's clock)."""
        return self.exp is not None and self.exp <= (time.time() if now is None else now)

    def renew_at(self) -> float | None:
        """The wall-clock time to fetch a fresh token: a fifth of the lifetime before ``exp``
        (1 to 60 s before it); None for a token without ``exp``."""
        if self.exp is None:
            return None
        lifetime = self.exp - self.iat if self.iat is not None else DEFAULT_LIFETIME
        margin = min(MAX_RENEW_MARGIN, max(MIN_RENEW_MARGIN, lifetime / 5))
        return self.exp - margin


class TokenSource:
    """One place a token is read from (see the module docstring for each kind).

    ``read`` returns the token text or raises :class:`TokenUnavailable`; ``origin`` names the
    source in messages (``--token-file ~/t``, ``CHATCTL_TOKEN``); ``fixed``, when set, says
    why it cannot be renewed and makes :meth:`refresh` return the token already read.
    Safe to call from a worker thread (``asyncio.to_thread(source.refresh)``).
    """

    def __init__(self, read: Callable[[], str], origin: str, *, fixed: str | None = None):
        self._read = read
        self.origin = origin
        self.fixed = fixed
        self._token: Token | None = None
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        return f"TokenSource({self.origin!r}, renewable={self.renewable})"

    @property
    def renewable(self) -> bool:
        return self.fixed is None

    @property
    def current(self) -> Token | None:
        """The last token read, if any (never reads)."""
        return self._token

    def get(self) -> Token:
        """The last token read; the source is read the first time."""
        token = self._token
        return token if token is not None else self.refresh()

    def refresh(self) -> Token:
        """Read the source again and return what it holds now (the same token for a fixed
        source). Raises :class:`TokenUnavailable`; the current token is then unchanged."""
        with self._lock:
            if self._token is not None and self.fixed is not None:
                return self._token
            value = self._read().strip()
            if not value:
                raise TokenUnavailable(f"{self.origin}: no token in it")
            if not value.isascii() or any(c.isspace() for c in value):
                raise TokenUnavailable(f"{self.origin}: not a token (it holds spaces or lines)")
            self._token = Token.parse(value)
            return self._token


# --------------------------------------------------------------------------- the sources


def fixed_source(value: str, origin: str, *, why: str | None = None) -> TokenSource:
    """A token given as a value (``--token``, ``CHATCTL_TOKEN``, ``--token -``)."""
    reason = why or f"{origin} is a fixed value: use --token-file or --token-command to renew it"
    return TokenSource(lambda: value, origin, fixed=reason)


def read_token_file(path: Path, what: str = "token file") -> str:
    try:
        token = path.expanduser().read_text().strip()
    except OSError as exc:
        raise TokenUnavailable(f"cannot read {what} {path}: {exc.strerror or exc}") from None
    except UnicodeDecodeError:
        raise TokenUnavailable(f"{what} {path} is not text") from None
    if not token:
        raise TokenUnavailable(f"{what} {path} is empty")
    return token


def file_source(path: Path, origin: str) -> TokenSource:
    """A file holding the token (``--token-file``, ``CHATCTL_TOKEN_FILE``), read each time."""
    return TokenSource(lambda: read_token_file(path), origin)


def run_token_command(command: str, *, timeout: float = COMMAND_TIMEOUT) -> str:
    """Run ``command`` through the shell; its stdout is the token. A non-zero exit, a
    timeout or an empty output raises :class:`TokenUnavailable` with the command's stderr."""
    try:
        done = subprocess.run(
            command,
            shell=True,
            stdin=subprocess.DEVNULL,
            capture_output=True,
            timeout=timeout,
            check=False,
        )
    except subprocess.TimeoutExpired:
        raise TokenUnavailable(f"token command did not finish within {timeout:g} s") from None
    except OSError as exc:
        raise TokenUnavailable(f"cannot run the token command: {exc.strerror or exc}") from None
    stderr = " ".join(done.stderr.decode(errors="replace").split())
    if len(stderr) > 300:
        stderr = stderr[:299] + "…"
    if done.returncode != 0:
        status = (
            f"killed by signal {-done.returncode}"
            if done.returncode < 0
            else f"exit status {done.returncode}"
        )
        raise TokenUnavailable(
            f"token command failed ({status})" + (f": {stderr}" if stderr else "")
        )
    token = done.stdout.decode(errors="replace").strip()
    if not token:
        raise TokenUnavailable(
            "token command printed no token" + (f" (stderr: {stderr})" if stderr else "")
        )
    return token


def command_source(command: str, origin: str) -> TokenSource:
    """A command that prints the token (``--token-command``), run again each time."""
    return TokenSource(lambda: run_token_command(command), origin)
