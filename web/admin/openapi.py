"""The admin API's OpenAPI document (`/openapi.json`), built by quart-schema from the routes.

On top of what quart-schema writes: bearer security, bounded integer path parameters, the
error answers every operation may give (400/401/404/409), and non-JSON bodies (CSV, metrics).
"""

from __future__ import annotations

import copy
from collections.abc import Iterable
from typing import Any

from pydantic import TypeAdapter
from quart import Quart
from quart_schema import QuartSchema
from quart_schema.openapi import OpenAPIProvider
from werkzeug.routing import IntegerConverter, Rule

from web.admin.api import MAX_ID, OPTIONAL_BODY_ATTRIBUTE, ErrorBody

ERROR_REF = {"$ref": "#/components/schemas/ErrorBody"}
COMMON_ERRORS = {
    "400": "Invalid request: `fields` names what is wrong",
    "401": "Missing or wrong admin token",
    "404": "No such object",
    "409": "The object is not in a state that allows this",
}
TEXT_BODIES = {".csv": "text/csv", "/metrics": "text/plain"}


def _error_response(description: str) -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": ERROR_REF}}}


class AdminOpenAPIProvider(OpenAPIProvider):
    def schema(self) -> dict[str, Any]:
        doc = super().schema()
        doc["components"]["schemas"]["ErrorBody"] = TypeAdapter(ErrorBody).json_schema()
        return doc

    def generate_rules(self) -> Iterable[Rule]:
        """The JSON API and /metrics; the console's pages and files are not part of it."""
        return (
            rule
            for rule in super().generate_rules()
            if rule.rule.startswith("/api/") or rule.rule == "/metrics"
        )

    def build_path_parameter(self, name: str, converter: Any) -> dict[str, Any]:
        param = super().build_path_parameter(name, converter)
        if isinstance(converter, IntegerConverter):
            param["schema"] = {"type": "integer", "minimum": 0, "maximum": MAX_ID}
            param["example"] = 1
        return param

    def build_paths(self, rule: Rule) -> tuple[dict, dict]:
        paths, components = super().build_paths(rule)
        func = self._app.view_functions[rule.endpoint]
        for operations in paths.values():
            for method, op in operations.items():
                op = operations[method] = copy.deepcopy(op)
                self._complete(rule, func, op)
        return paths, components

    def _complete(self, rule: Rule, func: Any, op: dict[str, Any]) -> None:
        responses = op["responses"] = {str(k): v for k, v in op["responses"].items()}
        text_type = next(
            (t for suffix, t in TEXT_BODIES.items() if rule.rule.endswith(suffix)), None
        )
        if text_type:
            responses["200"] = {
                "description": "OK",
                "content": {text_type: {"schema": {"type": "string"}}},
            }
        elif not any(code.startswith("2") for code in responses):
            responses["200"] = {
                "description": "OK",
                "content": {"application/json": {"schema": {"type": "object"}}},
            }
        for code, text in COMMON_ERRORS.items():
            if code not in responses:
                responses[code] = _error_response(text)
            elif not responses[code].get("description"):
                responses[code]["description"] = text
        for response in responses.values():
            response.setdefault("description", "")
            if not response["description"]:
                response["description"] = "OK"
        if "requestBody" in op:
            op["requestBody"]["required"] = not getattr(func, OPTIONAL_BODY_ATTRIBUTE, False)


def install_openapi(app: Quart) -> QuartSchema:
    """quart-schema on the admin app: `/openapi.json` only (no CDN-hosted doc pages)."""
    return QuartSchema(
        app,
        openapi_path="/openapi.json",
        redoc_ui_path=None,
        scalar_ui_path=None,
        swagger_ui_path=None,
        info={
            "title": "Vitrine admin API",
            "version": "1.0.0",
            "description": "Operators' API: every route needs "
            "`Authorization: Bearer <ADMIN_API_TOKEN>`.",
        },
        security_schemes={"bearer": {"type": "http", "scheme": "bearer"}},
        security=[{"bearer": []}],
        openapi_provider_class=AdminOpenAPIProvider,
        conversion_preference="pydantic",
    )
