"""What every admin API blueprint shares: paging, error bodies, JSON helpers, error handlers.

Every route validates its query string (`validate_querystring`) and JSON body (`json_body`)
with the pydantic models below; `install_api_errors` is the one place that turns a refused
request, a `ShopError` or an illegal state change into the JSON error body."""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from datetime import datetime
from functools import wraps
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator
from quart import Quart, current_app, g, request
from quart_schema import RequestSchemaValidationError, ResponseSchemaValidationError
from quart_schema.validation import QUART_SCHEMA_REQUEST_ATTRIBUTE, DataSource
from tortoise.exceptions import ValidationError as TortoiseValidationError

from core.errors import IllegalTransition
from core.i18n import normalize_locale
from shop import errors
from shop.inputs import MAX_ID  # noqa: F401 - one bound for every id (re-exported)
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


class BlankIsAbsent(BaseModel):
    """A query whose blank values (`?status=&tenant_id=`) mean "no filter", not a bad value."""

    @model_validator(mode="before")
    @classmethod
    def _drop_blanks(cls, data: Any) -> Any:
        if isinstance(data, dict):
            return {k: v for k, v in data.items() if v != ""}
        return data


class PageInfo(BaseModel):
    total: int
    limit: int
    offset: int


async def page_of(
    query: Any,
    args: PageQuery,
    order: tuple[str, ...],
    to_json: Callable[[Any], dict[str, Any]],
    equal: tuple[str, ...] = (),
) -> dict[str, Any]:
    """One page of a tortoise `query` as a list answer (`items`, `page`), filtered first on
    each field named in `equal` that `args` sets (not None)."""
    for name in equal:
        if (value := getattr(args, name)) is not None:
            query = query.filter(**{name: value})
    total = await query.count()
    rows = await query.order_by(*order).offset(args.offset).limit(args.limit)
    return {
        "items": [to_json(r) for r in rows],
        "page": {"total": total, "limit": args.limit, "offset": args.offset},
    }


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
                        ValueError(f"the body is not valid JSON: {exc}")
                    ) from exc
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


SHOP_ERROR_STATUS: dict[type[errors.ShopError], int] = {
    errors.OrderNotFound: 404,
    errors.PaymentNotFound: 404,
    errors.WithdrawalNotFound: 404,
    errors.InvalidStateChange: 409,
    errors.InvalidAmount: 400,
    errors.InvalidPixKey: 400,
    errors.InsufficientBalance: 409,
    errors.PaymentProviderUnavailable: 503,
    errors.PaymentProviderError: 502,
}


def shop_error_status(exc: errors.ShopError) -> int:
    """The HTTP status of a shop error (most specific class wins)."""
    for cls in type(exc).__mro__:
        if cls in SHOP_ERROR_STATUS:
            return SHOP_ERROR_STATUS[cls]
    return 400


def _locale() -> str:
    return normalize_locale(request.accept_languages.best_match(["pt-BR", "en"]) or None)


def _field_errors(exc: Exception) -> list[dict[str, Any]]:
    if isinstance(exc, ValidationError):
        return [
            {"field": ".".join(str(p) for p in e["loc"]) or "body", "message": e["msg"]}
            for e in exc.errors(include_url=False)
        ]
    return [{"field": "body", "message": str(exc) or type(exc).__name__}]


def install_api_errors(app: Quart) -> None:
    """Validation errors → 400 naming the fields; shop errors → their status
    (`SHOP_ERROR_STATUS`), in the caller's language; an illegal state change → 409; a response
    that breaks its schema → logged 500."""

    @app.errorhandler(RequestSchemaValidationError)
    async def _invalid(exc: RequestSchemaValidationError):
        fields = _field_errors(exc.validation_error)
        names = ", ".join(f["field"] for f in fields)
        return error(400, "validation_error", f"invalid request: {names}", fields=fields)

    @app.errorhandler(TortoiseValidationError)
    async def _bad_value(exc: TortoiseValidationError):
        # A filter value the column cannot hold (e.g. a 45-character payment id): bad input.
        return error(400, "validation_error", str(exc))

    @app.errorhandler(errors.ShopError)
    async def _shop_error(exc: errors.ShopError):
        extra: dict[str, Any] = {}
        if isinstance(exc, errors.PaymentProviderError):
            extra["provider_message"] = exc.provider_message
        return error(shop_error_status(exc), exc.code, exc.message(_locale()), **extra)

    @app.errorhandler(IllegalTransition)
    async def _illegal(exc: IllegalTransition):
        return error(409, "invalid_state", str(exc))

    @app.errorhandler(ResponseSchemaValidationError)
    async def _bad_response(exc: ResponseSchemaValidationError):
        log.error("response broke its schema: %s", exc.validation_error)
        return error(500, "internal_error", "the response did not match its schema; logged")
