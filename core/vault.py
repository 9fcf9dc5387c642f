"""Token vault: bot tokens encrypted at rest with MultiFernet (newest key first, for rotation)."""

from __future__ import annotations

import base64
import binascii
from collections.abc import Sequence

from cryptography.fernet import Fernet, InvalidToken, MultiFernet

from core.errors import VitrineError


class VaultError(VitrineError):
    """A ciphertext cannot be read with any configured key."""


_UNKNOWN_KEY = "token was encrypted with a key that is no longer configured"


class SecretToken:
    """A decrypted secret that never shows itself in logs, reprs or f-strings."""

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        self._value = value

    def reveal(self) -> str:
        """The plain value; call only where it is handed to Discord."""
        return self._value

    def last4(self) -> str:
        return self._value[-4:]

    def __repr__(self) -> str:
        return "SecretToken('****')"

    __str__ = __repr__

    def __format__(self, spec: str) -> str:
        return repr(self)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, SecretToken) and other._value == self._value

    def __hash__(self) -> int:
        return hash(self._value)


def validate_keys(keys: Sequence[str]) -> str | None:
    """Return what is wrong with a list of Fernet keys, or None when they are all usable."""
    if not keys:
        return "no key given"
    for index, key in enumerate(keys, start=1):
        try:
            raw = base64.urlsafe_b64decode(key.encode())
        except (binascii.Error, ValueError):
            return f"key #{index} is not url-safe base64"
        if len(raw) != 32:
            return f"key #{index} is not a Fernet key (32 bytes, url-safe base64)"
    return None


class TokenVault:
    """Encrypts with the first key, decrypts with any; `rotate` re-encrypts under the first."""

    def __init__(self, keys: Sequence[str]) -> None:
        problem = validate_keys(keys)
        if problem:
            raise VaultError(problem)
        self._fernet = MultiFernet([Fernet(k.encode()) for k in keys])
        self._primary = Fernet(keys[0].encode())

    def encrypt(self, token: str | SecretToken) -> str:
        plain = token.reveal() if isinstance(token, SecretToken) else token
        return self._fernet.encrypt(plain.encode()).decode()

    def decrypt(self, ciphertext: str) -> SecretToken:
        try:
            return SecretToken(self._fernet.decrypt(ciphertext.encode()).decode())
        except InvalidToken:
            raise VaultError(_UNKNOWN_KEY) from None

    def needs_rotation(self, ciphertext: str) -> bool:
        """True when the ciphertext was not written under the newest key."""
        try:
            self._primary.decrypt(ciphertext.encode())
        except InvalidToken:
            return True
        return False

    def rotate(self, ciphertext: str) -> str:
        """Re-encrypt under the newest key (no-op in meaning when it already is)."""
        try:
            return self._fernet.rotate(ciphertext.encode()).decode()
        except InvalidToken:
            raise VaultError(_UNKNOWN_KEY) from None


def generate_key() -> str:
    return Fernet.generate_key().decode()
