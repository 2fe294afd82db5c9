"""The keys tokens are signed and verified with, and the algorithms each one pins.

An HS256 secret accepts only HS256, an RSA key only RS256/384/512, an EC key only
ES256/384/512. PEM keys are read here (``cryptography`` is imported only then); the HS256
secret's precedence (``--secret-file`` > ``CHATCTL_SECRET`` > ``CHATCTL_SECRET_FILE`` > the
file ``chatctl serve`` creates) is a setting: :func:`chatctl.config.resolve_secret`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from chatctl.errors import ConfigError

HMAC_ALGORITHMS = ["HS256"]
RSA_ALGORITHMS = ["RS256", "RS384", "RS512"]
EC_ALGORITHMS = ["ES256", "ES384", "ES512"]


def load_public_key(path: Path) -> tuple[Any, list[str]]:
    """Load a PEM public key and the algorithms it may verify."""
    from cryptography.hazmat.primitives.asymmetric import ec, rsa
    from cryptography.hazmat.primitives.serialization import load_pem_public_key

    try:
        key = load_pem_public_key(path.read_bytes())
    except OSError as exc:
        raise ConfigError(f"cannot read public key {path}: {exc.strerror or exc}") from None
    except ValueError as exc:
        raise ConfigError(f"{path} is not a PEM public key: {exc}") from None
    if isinstance(key, rsa.RSAPublicKey):
        return key, RSA_ALGORITHMS
    if isinstance(key, ec.EllipticCurvePublicKey):
        return key, EC_ALGORITHMS
    raise ConfigError(f"{path}: only RSA and EC public keys are supported")


def load_private_key(path: Path) -> tuple[Any, str]:
    """Load a PEM private key and the algorithm ``token create`` signs with."""
    from cryptography.hazmat.primitives.asymmetric import ec, rsa
    from cryptography.hazmat.primitives.serialization import load_pem_private_key

    try:
        key = load_pem_private_key(path.read_bytes(), password=None)
    except OSError as exc:
        raise ConfigError(f"cannot read private key {path}: {exc.strerror or exc}") from None
    except (ValueError, TypeError) as exc:
        raise ConfigError(f"{path} is not an unencrypted PEM private key: {exc}") from None
    if isinstance(key, rsa.RSAPrivateKey):
        return key, "RS256"
    if isinstance(key, ec.EllipticCurvePrivateKey):
        return key, "ES256"
    raise ConfigError(f"{path}: only RSA and EC private keys are supported")


def key_bytes(key: Any) -> bytes:
    """A key as bytes to compare: the secret itself, or a public key's DER encoding."""
    if isinstance(key, bytes):
        return key
    from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

    data: bytes = key.public_bytes(Encoding.DER, PublicFormat.SubjectPublicKeyInfo)
    return data
