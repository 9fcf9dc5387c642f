"""What every admin API blueprint shares: paging, error bodies, JSON helpers, error handlers."""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from datetime import datetime
from functools import wraps
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError
from quart import Quart, current_app, g, request
from quart_schema import RequestSchemaValidationError, ResponseSchemaValidationError
from quart_schema.validation import QUART_SCHEMA_REQUEST_ATTRIBUTE, DataSource
from tortoise.exceptions import ValidationError as TortoiseValidationError

from shop import inputs
from shop.inputs import MAX_ID  # one bound for every id (re-exported)
from web.common import BoundedIntConverter  # noqa: F401 - re-exported for web.admin

log = logging.getLogger(__name__)

MAX_LIMIT = 500
DEFAULT_LIMIT = 50


class Strict(BaseModel):
    """Request bodies: unknown fields are refused, so a typo is an error and not a no-op."""

    model_config = ConfigDict(extra="forbid")


class PageQuery(BaseModel):
    """`limit` (1–500, default 50) and `offset` (0–100000)."""

    limit: int = Field(DEFAULT_LIMIT, ge=1, le=MAX_LIMIT)
    offset: int = Field(0, ge=0, le=100_000)


class PageInfo(BaseModel):
    total: int
    limit: int
    offset: int


class ErrorBody(BaseModel):
    """Every error answer: a machine code, a sentence for people, and the bad fields if any."""

    error: str
    message: str
    fields: list[dict[str, Any]] | None = None


class ActionReason(Strict):
    reason: str = Field(min_length=1, max_length=1000)


class OptionalNote(Strict):
    note: str | None = Field(None, max_length=2000)


OPTIONAL_BODY_ATTRIBUTE = "_vitrine_optional_body"


def json_body(model: type[BaseModel], *, optional: bool = False) -> Callable:
    """Validate the JSON body against `model` (documented in OpenAPI); passes `data=`.

    Unlike quart-schema's `validate_request`, an empty body is `{}` when `optional`, and
    the body is read as JSON whatever the Content-Type says (curl users forget it).
    """

    def decorator(func: Callable) -> Callable:
        setattr(func, QUART_SCHEMA_REQUEST_ATTRIBUTE, (model, DataSource.JSON))
        setattr(func, OPTIONAL_BODY_ATTRIBUTE, optional)

        @wraps(func)
        async def wrapper(*args: Any, **kwargs: Any) -> Any:
            raw = await request.get_data(as_text=False)
            if not raw.strip() and optional:
                payload: Any = {}
            else:
                try:
                    payload = json.loads(raw)
                except ValueError as exc:
                    raise RequestSchemaValidationError(
                        ValueError(f"the body is not valid JSON: {exc}")) from exc
            try:
                data = model.model_validate(payload)
            except ValidationError as exc:
                raise RequestSchemaValidationError(exc) from exc
            return await current_app.ensure_async(func)(*args, data=data, **kwargs)

        return wrapper

    return decorator


def iso(value: datetime | None) -> str | None:
    return value.isoformat() if value else None


def actor() -> str:
    """Who is acting: set by the auth hook (`admin:token:<label>`)."""
    return str(getattr(g, "actor", "admin:unknown"))


def error(status: int, code: str, message: str, **extra: Any) -> tuple[dict[str, Any], int]:
    """An error answer (a dict, so `validate_response(ErrorBody, status)` can check it)."""
    return {"error": code, "message": message, **extra}, status


class QueryArgError(ValueError):
    """A query argument that `shop.inputs` refused; `field` names it in the 400 body."""

    def __init__(self, field: str, message: str) -> None:
        self.field = field
        super().__init__(message)


def query_id(name: str) -> int | None:
    """An optional id in the query string (0..2**31-1, ASCII digits); a 400 naming it if not."""
    raw = request.args.get(name)
    if raw is None or raw == "":
        return None
    try:
        return inputs.parse_quantity(raw, lo=0, hi=MAX_ID)
    except inputs.InvalidInput as refusal:
        raise RequestSchemaValidationError(QueryArgError(name, refusal.message("en"))) from None


def _field_errors(exc: Exception) -> list[dict[str, Any]]:
    if isinstance(exc, QueryArgError):
        return [{"field": exc.field, "message": str(exc)}]
    if isinstance(exc, ValidationError):
        return [{"field": ".".join(str(p) for p in e["loc"]) or "body", "message": e["msg"]}
                for e in exc.errors(include_url=False)]
    return [{"field": "body", "message": str(exc) or type(exc).__name__}]


def install_api_errors(app: Quart) -> None:
    """Validation errors → 400 naming the fields; a response that breaks its schema → logged 500."""

    @app.errorhandler(RequestSchemaValidationError)
    async def _invalid(exc: RequestSchemaValidationError):  # type: ignore[no-untyped-def]
        fields = _field_errors(exc.validation_error)
        names = ", ".join(f["field"] for f in fields)
        return error(400, "validation_error", f"invalid request: {names}", fields=fields)

    @app.errorhandler(TortoiseValidationError)
    async def _bad_value(exc: TortoiseValidationError):  # type: ignore[no-untyped-def]
        # A filter value the column cannot hold (e.g. a 45-character payment id): bad input.
        return error(400, "validation_error", str(exc))

    @app.errorhandler(ResponseSchemaValidationError)
    async def _bad_response(exc: ResponseSchemaValidationError):  # type: ignore[no-untyped-def]
        log.error("response broke its schema: %s", exc.validation_error)
        return error(500, "internal_error", "the response did not match its schema; logged")
