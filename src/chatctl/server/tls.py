"""TLS for ``wss://`` served directly (no proxy in front)."""

from __future__ import annotations

import ssl
from pathlib import Path

from chatctl.errors import ConfigError


def server_context(certfile: Path, keyfile: Path | None = None) -> ssl.SSLContext:
    """A server context with TLS 1.2 or later and the certificate chain in ``certfile``
    (PEM, leaf first) and its key in ``keyfile`` (or in ``certfile`` when omitted)."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    try:
        ctx.load_cert_chain(certfile, keyfile)
    except FileNotFoundError as exc:
        raise ConfigError(f"cannot read TLS file {exc.filename}: {exc.strerror}") from None
    except ssl.SSLError as exc:
        raise ConfigError(
            f"cannot load TLS certificate {certfile} with key {keyfile or certfile}: "
            f"{exc.reason or exc}"
        ) from None
    except OSError as exc:
        raise ConfigError(f"cannot read TLS certificate or key: {exc.strerror or exc}") from None
    return ctx
