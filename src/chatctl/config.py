"""Where chatctl keeps its files, and the settings every command shares.

Precedence, lowest first: built-in defaults < ``config.toml`` < ``CHATCTL_*`` environment
variables < command-line flags. Files follow the XDG base directory spec:

- ``$XDG_CONFIG_HOME/chatctl/config.toml`` (default ``~/.config/chatctl``): client settings,
  created by nobody but the user (see docs/configuration.md).
- ``$XDG_CONFIG_HOME/chatctl/secret``: the HS256 secret ``chatctl serve`` creates (mode 0600)
  when none is configured, and ``chatctl token create`` reads by default.
- ``$XDG_STATE_HOME/chatctl/`` (default ``~/.local/state/chatctl``): input history, recent rooms.
- ``$XDG_DATA_HOME/chatctl/`` (default ``~/.local/share/chatctl``): ``chatctl serve``'s rooms
  (``chatctl.db``, SQLite), unless ``--data-dir``/``CHATCTL_DATA_DIR`` says otherwise.
"""

from __future__ import annotations

import contextlib
import math
import os
import secrets
import tomllib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from chatctl.errors import ConfigError

try:  # POSIX; elsewhere the state files are written without a lock
    import fcntl
except ImportError:  # pragma: no cover
    fcntl = None  # type: ignore[assignment]

DEFAULT_SERVER = "ws://127.0.0.1:8000"
DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 8000
#: RFC 7518 3.2: an HS256 key must be at least as long as the hash output.
MIN_SECRET_BYTES = 32


def config_dir() -> Path:
    base = os.environ.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    return Path(base) / "chatctl"


def state_dir() -> Path:
    base = os.environ.get("XDG_STATE_HOME") or str(Path.home() / ".local" / "state")
    return Path(base) / "chatctl"


def data_dir() -> Path:
    base = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(base) / "chatctl"


def config_file() -> Path:
    return Path(os.environ.get("CHATCTL_CONFIG") or config_dir() / "config.toml")


def default_secret_file() -> Path:
    return config_dir() / "secret"


def load_config_file(path: Path | None = None) -> dict[str, Any]:
    """Read ``config.toml``; a missing file is an empty config, a broken one a ConfigError."""
    path = path or config_file()
    try:
        with path.open("rb") as f:
            return tomllib.load(f)
    except FileNotFoundError:
        return {}
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise ConfigError(f"cannot read config file {path}: {exc}") from None


def read_secret_file(path: Path) -> bytes:
    try:
        data = path.read_bytes().strip()
    except OSError as exc:
        raise ConfigError(f"cannot read secret file {path}: {exc.strerror or exc}") from None
    if len(data) < MIN_SECRET_BYTES:
        raise ConfigError(
            f"secret file {path} holds fewer than {MIN_SECRET_BYTES} bytes; use a longer secret"
        )
    return data


def create_secret_file(path: Path) -> bytes:
    """Write a new random secret to ``path`` with mode 0600 (never overwriting one)."""
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    secret = secrets.token_urlsafe(32).encode()
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return read_secret_file(path)
    except OSError as exc:
        raise ConfigError(f"cannot create secret file {path}: {exc.strerror or exc}") from None
    with os.fdopen(fd, "wb") as f:
        f.write(secret + b"\n")
    return secret


@dataclass(frozen=True)
class SecretSource:
    """The HS256 secret and where it came from (for messages; never the secret itself)."""

    secret: bytes
    origin: str
    created: bool = False


def resolve_secret(secret_file: Path | None = None, *, create: bool = False) -> SecretSource | None:
    """Find the HS256 secret: ``--secret-file`` > ``CHATCTL_SECRET`` > ``CHATCTL_SECRET_FILE``
    > the default secret file. With ``create``, make the default file when nothing is set."""
    if secret_file is not None:
        return SecretSource(read_secret_file(secret_file), str(secret_file))
    env = os.environ.get("CHATCTL_SECRET")
    if env:
        if len(env.encode()) < MIN_SECRET_BYTES:
            raise ConfigError(
                f"CHATCTL_SECRET holds fewer than {MIN_SECRET_BYTES} bytes; use a longer secret"
            )
        return SecretSource(env.encode(), "CHATCTL_SECRET")
    env_file = os.environ.get("CHATCTL_SECRET_FILE")
    if env_file:
        return SecretSource(read_secret_file(Path(env_file)), env_file)
    default = default_secret_file()
    if default.exists():
        return SecretSource(read_secret_file(default), str(default))
    if create:
        return SecretSource(create_secret_file(default), str(default), created=True)
    return None


def parse_duration(text: str) -> float:
    """Parse ``90``, ``90s``, ``15m``, ``12h``, ``7d`` or ``1w`` into seconds."""
    units = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}
    text = text.strip().lower()
    unit = 1
    if text and text[-1] in units:
        unit = units[text[-1]]
        text = text[:-1]
    try:
        value = float(text)
    except ValueError:
        raise ValueError("expected a duration such as 90s, 15m, 12h or 7d") from None
    if not math.isfinite(value) or value <= 0:
        raise ValueError("a duration must be a positive number")
    return value * unit


@contextlib.contextmanager
def locked(lock_file: Path) -> Iterator[None]:
    """Hold an exclusive ``flock`` on ``lock_file`` (created 0600): the read-modify-write of a
    state file by several chatctl processes at once (recent rooms, read marks)."""
    if fcntl is None:  # pragma: no cover
        yield
        return
    fd = os.open(lock_file, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)  # closing releases the lock
