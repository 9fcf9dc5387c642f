"""Encrypted backup archives (`vitrine backup --with-secrets`) and where their secret comes from.

Format (version 1), all of it authenticated:

    VITRINE-ENCRYPTED-BACKUP 1\\n
    {"kdf": "scrypt", "n": .., "r": .., "p": .., "salt": .., "check": .., "nonce": ..,
     "cipher": "AES-256-GCM", "chunk": .., "secret": "passphrase" | "key-file"}\\n
    the .tar.gz in chunks of `chunk` bytes, each sealed with AES-256-GCM (+16 bytes of tag)

The key is scrypt(passphrase or key-file content); scrypt's 64 bytes give the AES key and a
`check` value stored in the header, so a wrong passphrase is told apart from a damaged file.
Chunks follow the STREAM construction (Hoang et al., 2015): nonce = 7-byte random prefix +
4-byte chunk counter + 1 byte "last chunk" flag, and the two header lines are the associated
data of every chunk, so chunks cannot be reordered, dropped, truncated or re-headed.
"""

from __future__ import annotations

import base64
import getpass
import hmac
import json
import os
from collections.abc import Mapping
from pathlib import Path
from typing import BinaryIO

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.scrypt import Scrypt

from core.errors import VitrineError

MAGIC = b"VITRINE-ENCRYPTED-BACKUP 1\n"
CHUNK = 1024 * 1024
TAG = 16
# OWASP's scrypt floor (N=2^17, r=8, p=1): ~0.5 s and 128 MiB once per backup or restore.
SCRYPT_N, SCRYPT_R, SCRYPT_P = 2**17, 8, 1
MAX_HEADER = 4096
PASSPHRASE_MIN = 12
KEY_FILE_MIN = 32
SECRET_MAX = 4096
PASSPHRASE_ENV = "VITRINE_BACKUP_PASSPHRASE"  # noqa: S105 - a variable name


class BackupError(VitrineError):
    """A backup or restore could not be completed; the message says what to do."""


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def _derive(secret: bytes, salt: bytes, n: int, r: int, p: int) -> tuple[bytes, bytes]:
    out = Scrypt(salt=salt, length=64, n=n, r=r, p=p).derive(secret)
    return out[:32], out[32:]


def _nonce(prefix: bytes, counter: int, last: bool) -> bytes:
    return prefix + counter.to_bytes(4, "big") + (b"\x01" if last else b"\x00")


class EncryptingWriter:
    """A write-only file object (for `tarfile` stream mode) that seals what it is given."""

    def __init__(self, out: BinaryIO, secret: bytes, kind: str) -> None:
        salt, prefix = os.urandom(16), os.urandom(7)
        key, check = _derive(secret, salt, SCRYPT_N, SCRYPT_R, SCRYPT_P)
        header = {
            "kdf": "scrypt",
            "n": SCRYPT_N,
            "r": SCRYPT_R,
            "p": SCRYPT_P,
            "salt": _b64(salt),
            "check": _b64(check),
            "nonce": _b64(prefix),
            "cipher": "AES-256-GCM",
            "chunk": CHUNK,
            "secret": kind,
        }
        self._aad = MAGIC + json.dumps(header).encode() + b"\n"
        self._out, self._aes, self._prefix = out, AESGCM(key), prefix
        self._buffer = bytearray()
        self._counter = 0
        out.write(self._aad)

    def _seal(self, data: bytes, last: bool) -> None:
        nonce = _nonce(self._prefix, self._counter, last)
        self._out.write(self._aes.encrypt(nonce, data, self._aad))
        self._counter += 1

    def write(self, data: bytes) -> int:
        self._buffer += data
        while len(self._buffer) > CHUNK:  # keep at least one byte back for the last chunk
            self._seal(bytes(self._buffer[:CHUNK]), last=False)
            del self._buffer[:CHUNK]
        return len(data)

    def close(self) -> None:
        """Seal the last chunk (possibly empty): without it a reader sees a truncated file."""
        self._seal(bytes(self._buffer), last=True)
        self._buffer.clear()


def is_encrypted(archive: Path) -> bool:
    try:
        with open(archive, "rb") as fh:
            return fh.read(len(MAGIC)) == MAGIC
    except OSError:
        return False


def _read_header(fh: BinaryIO) -> tuple[dict, bytes]:
    line = fh.readline(MAX_HEADER)
    try:
        header = json.loads(line)
        bounded = (
            header["kdf"] == "scrypt"
            and header["cipher"] == "AES-256-GCM"
            and 2 <= header["n"] <= 2**20
            and 1 <= header["r"] <= 16
            and 1 <= header["p"] <= 4
            and 1 <= header["chunk"] <= 16 * CHUNK
        )
    except (ValueError, KeyError, TypeError):
        bounded = False
    if not line.endswith(b"\n") or not bounded:
        raise BackupError("the archive's encryption header is damaged or from a newer Vitrine")
    return header, MAGIC + line


def decrypt_to(archive: Path, secret: bytes, target: Path) -> None:
    """Write the plain .tar.gz of an encrypted archive to `target` (0600), all of it checked."""
    with open(archive, "rb") as fh:
        fh.read(len(MAGIC))
        header, aad = _read_header(fh)
        try:
            key, check = _derive(
                secret, base64.b64decode(header["salt"]), header["n"], header["r"], header["p"]
            )
            prefix = base64.b64decode(header["nonce"])
            expected = base64.b64decode(header["check"])
        except (ValueError, TypeError):
            raise BackupError("the archive's encryption header is damaged") from None
        if not hmac.compare_digest(check, expected):
            how = "--key-file" if header.get("secret") == "key-file" else "the passphrase"
            raise BackupError(
                f"wrong passphrase or key file for this backup (it was encrypted "
                f"with {how}): nothing was restored"
            )
        aes, size = AESGCM(key), header["chunk"] + TAG
        fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "wb") as out:
            block, counter = fh.read(size), 0
            while True:
                following = fh.read(size) if len(block) == size else b""
                last = not following
                try:
                    out.write(aes.decrypt(_nonce(prefix, counter, last), block, aad))
                except InvalidTag:
                    raise BackupError(
                        "the archive is damaged or was altered (chunk "
                        f"{counter + 1} fails its check): nothing was "
                        "restored"
                    ) from None
                if last:
                    return
                block, counter = following, counter + 1


def _read_secret_file(path: str, what: str) -> bytes:
    try:
        with open(path, "rb") as fh:
            data = fh.read(SECRET_MAX + 1)
    except OSError as exc:
        raise BackupError(f"cannot read the {what} {path}: {exc.strerror}") from None
    if len(data) > SECRET_MAX:
        raise BackupError(f"the {what} {path} is larger than {SECRET_MAX} bytes")
    return data


def obtain_secret(
    passphrase_file: str | None,
    key_file: str | None,
    environ: Mapping[str, str],
    *,
    interactive: bool,
    confirm: bool,
) -> bytes:
    """The secret bytes from a key file, a passphrase file, the environment or a prompt."""
    if key_file:
        data = _read_secret_file(key_file, "key file").strip()
        if len(data) < KEY_FILE_MIN:
            raise BackupError(
                f"the key file {key_file} holds fewer than {KEY_FILE_MIN} bytes: "
                "make one with `vitrine gen-key > FILE`"
            )
        return data
    if passphrase_file:
        lines = _read_secret_file(passphrase_file, "passphrase file").splitlines()
        phrase = lines[0].decode(errors="replace") if lines else ""
    elif environ.get(PASSPHRASE_ENV):
        phrase = environ[PASSPHRASE_ENV]
    elif interactive:
        phrase = getpass.getpass("backup passphrase: ")
        if confirm and getpass.getpass("the same passphrase again: ") != phrase:
            raise BackupError("the two passphrases do not match: nothing was written")
    else:
        raise BackupError(
            "no passphrase for the encrypted archive (and no terminal to ask "
            "on): give --passphrase-file FILE, --key-file FILE or "
            f"{PASSPHRASE_ENV}"
        )
    if confirm and len(phrase) < PASSPHRASE_MIN:
        raise BackupError(f"the passphrase needs at least {PASSPHRASE_MIN} characters")
    if not phrase:
        raise BackupError("empty passphrase")
    return phrase.encode()
