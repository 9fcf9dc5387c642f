"""Request size and uploads of the portal: in memory, bounded per route.

Every portal route accepts bodies of `FORM_MAX` (what `web.common` sets for both apps), except
the product-file upload, which takes a file as large as Discord lets a bot send
(`shop.product_files.MAX_FILE_BYTES`) plus the form around it. A declared `Content-Length` over
the route's limit is refused before anything is read or parsed (the CSRF check parses the
form, so this runs first); a body without one is cut at the upload limit by Quart.
Uploaded files are parsed into memory, never into a temporary file: werkzeug's default spills
a part over 500 KB to disk, in clear, and a product file or a stock list must not be.
"""

from __future__ import annotations

import io
from typing import IO, Any

from quart import Quart, abort, request
from quart.formparser import FormDataParser
from quart.wrappers.request import Request

from shop.product_files import MAX_FILE_BYTES
from web.portal.context import _

FORM_MAX = 2 * 1024 * 1024  # as web.common's MAX_CONTENT_LENGTH
UPLOAD_MAX = MAX_FILE_BYTES + 64 * 1024  # the file plus the form fields and multipart framing
UPLOAD_ENDPOINTS = frozenset({"kinds.upload_file"})


def _in_memory(
    total_content_length: int | None,
    content_type: str | None,
    filename: str | None,
    content_length: int | None = None,
) -> IO[bytes]:
    return io.BytesIO()


class InMemoryFormParser(FormDataParser):
    def __init__(self, **kwargs: Any) -> None:
        kwargs["stream_factory"] = _in_memory
        super().__init__(**kwargs)


class PortalRequest(Request):
    """A request whose body limit depends on the route, and whose files stay in memory."""

    form_data_parser_class = InMemoryFormParser

    @property
    def max_content_length(self) -> int | None:
        if self._max_content_length is not None:
            return self._max_content_length
        return UPLOAD_MAX if self.endpoint in UPLOAD_ENDPOINTS else FORM_MAX

    @max_content_length.setter
    def max_content_length(self, value: int | None) -> None:
        self._max_content_length = value


async def refuse_oversized() -> None:
    """before_request: 413 with a clear message when the declared body is over the limit."""
    declared = request.content_length
    limit = request.max_content_length
    if declared is not None and limit is not None and declared > limit:
        if request.endpoint in UPLOAD_ENDPOINTS:
            abort(413, description=_("kinds.file.too_large", max_mib=MAX_FILE_BYTES // 2**20))
        abort(413)


def install(app: Quart) -> None:
    """Use `PortalRequest` and check sizes before any other hook reads the body."""
    app.request_class = PortalRequest
    app.config["MAX_CONTENT_LENGTH"] = UPLOAD_MAX  # Quart's body cap; routes narrow it
    app.before_request(refuse_oversized)
