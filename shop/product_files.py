"""Files of FILE variations: stored encrypted in the database, sent as a DM attachment.

The size limit is Discord's: a bot's message may carry files of at most 10 MiB each by
default ("Uploading Files", https://discord.com/developers/docs/reference#uploading-files;
the interaction payload announces the same figure as `attachment_size_limit`), and a bigger
one is refused with 413 / 40005 "Request entity too large". A DM has no server boost to raise
it, so 10 MiB is what every buyer can receive. The bytes go through the token vault (base64 in
the Fernet token) and live in `product_files`, so they are never on disk in clear and backups
(`ops.backup`, a database snapshot) carry them encrypted, as they carry stock.
"""

from __future__ import annotations

import base64
import hashlib
import re
import unicodedata
from dataclasses import dataclass

from core import audit
from core.vault import TokenVault
from shop.errors import ShopError
from shop.models import ProductFile, Variation

MAX_FILE_BYTES = 10 * 1024 * 1024  # Discord's default attachment limit for bots (see above)
MAX_NAME_CHARS = 100
_UNSAFE = re.compile(r"[^A-Za-z0-9._ -]+")


class FileRefused(ShopError):
    code = "file_refused"
    message_key = "kinds.file.refused"


class FileTooLarge(FileRefused):
    code = "file_too_large"
    message_key = "kinds.file.too_large"


class FileEmpty(FileRefused):
    code = "file_empty"
    message_key = "kinds.file.empty"


@dataclass(frozen=True)
class StoredFile:
    name: str
    size: int
    sha256: str


def clean_name(raw: str) -> str:
    """A filename safe as an attachment name: ASCII letters, digits, dot, dash, underscore,
    space; no path; at most `MAX_NAME_CHARS` (the extension kept)."""
    base = (raw or "").replace("\\", "/").rsplit("/", 1)[-1][:255]
    ascii_name = unicodedata.normalize("NFKD", base).encode("ascii", "ignore").decode()
    name = _UNSAFE.sub("_", ascii_name).strip(" .") or "arquivo"
    if len(name) > MAX_NAME_CHARS:
        stem, dot, ext = name.rpartition(".")
        ext = ext[:10] if dot else ""
        name = (stem if dot else name)[: MAX_NAME_CHARS - len(ext) - 1] + (f".{ext}" if ext else "")
    return name


def check_size(size: int) -> None:
    """`FileEmpty` / `FileTooLarge` (with the limit in MiB) before anything is read further."""
    if size <= 0:
        raise FileEmpty("empty file")
    if size > MAX_FILE_BYTES:
        raise FileTooLarge(f"{size} bytes > {MAX_FILE_BYTES}", max_mib=MAX_FILE_BYTES // 2**20)


async def store_file(
    vault: TokenVault, variation: Variation, filename: str, data: bytes, actor: str
) -> StoredFile:
    """Encrypt and keep the variation's file (replacing the previous one); audited."""
    check_size(len(data))
    stored = StoredFile(clean_name(filename), len(data), hashlib.sha256(data).hexdigest())
    content_enc = vault.encrypt(base64.b64encode(data).decode("ascii"))
    existing = await ProductFile.get_or_none(variation_id=variation.id)
    if existing is None:
        await ProductFile.create(
            tenant_id=variation.tenant_id,
            variation_id=variation.id,
            name=stored.name,
            size=stored.size,
            sha256=stored.sha256,
            content_enc=content_enc,
        )
    else:
        existing.update_from_dict(
            {
                "name": stored.name,
                "size": stored.size,
                "sha256": stored.sha256,
                "content_enc": content_enc,
            }
        )
        await existing.save()
    await audit.record(
        actor,
        "variation.file_uploaded",
        "variation",
        variation.id,
        tenant_id=variation.tenant_id,
        after={"name": stored.name, "size": stored.size, "sha256": stored.sha256},
    )
    return stored


async def file_info(variation_id: int) -> StoredFile | None:
    """Name, size and digest of a variation's file (no content is read)."""
    rows = await ProductFile.filter(variation_id=variation_id).values("name", "size", "sha256")
    if not rows:
        return None
    return StoredFile(rows[0]["name"], rows[0]["size"], rows[0]["sha256"])


async def load_file(vault: TokenVault, variation_id: int) -> tuple[str, bytes] | None:
    """(filename, plain bytes) of a variation's file; only ever called to deliver it."""
    row = await ProductFile.get_or_none(variation_id=variation_id)
    if row is None:
        return None
    return row.name, base64.b64decode(vault.decrypt(row.content_enc).reveal())
