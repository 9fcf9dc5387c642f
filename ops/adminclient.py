"""A small synchronous client of the admin API for the `vitrine` command."""

from __future__ import annotations

from typing import Any

import httpx

from core.settings import Settings
from ops.errors import CliError

DEFAULT_TIMEOUT = 20.0  # the control routes wait up to 10 s for the orchestrator


def admin_base_url(settings: Settings) -> str:
    host = settings.admin_bind
    if host in ("0.0.0.0", "::", ""):
        host = "127.0.0.1"
    if ":" in host:
        host = f"[{host}]"
    return f"http://{host}:{settings.admin_port}"


class AdminUnreachable(CliError):
    """The admin API did not answer at all (connection refused, timeout)."""

    exit_code = 3  # `vitrine` exits 3: nothing reached the admin API (ops.cli_actions)


class AdminClient:
    """Bearer-authenticated calls; every failure becomes one readable CliError line."""

    def __init__(
        self,
        settings: Settings,
        transport: httpx.BaseTransport | None = None,
        timeout: float = DEFAULT_TIMEOUT,
    ) -> None:
        self.base_url = admin_base_url(settings)
        self._client = httpx.Client(
            base_url=self.base_url,
            transport=transport,
            timeout=timeout,
            headers={"Authorization": f"Bearer {settings.admin_api_tokens[0]}"},
        )

    def __enter__(self) -> AdminClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self._client.close()

    def request(self, method: str, path: str, **kw: Any) -> Any:
        try:
            response = self._client.request(method, path, **kw)
        except httpx.TimeoutException:
            raise AdminUnreachable(
                f"admin API at {self.base_url} did not answer in time ({method} {path})"
            ) from None
        except httpx.HTTPError as exc:
            raise AdminUnreachable(
                f"admin API unreachable at {self.base_url} "
                f"({type(exc).__name__}); is the admin service running?"
            ) from None
        if response.status_code >= 400:
            raise CliError(_error_line(response))
        return response.json()

    def get(self, path: str, **params: Any) -> Any:
        clean = {k: v for k, v in params.items() if v is not None}
        return self.request("GET", path, params=clean)

    def post(self, path: str, body: dict[str, Any] | None = None) -> Any:
        return self.request("POST", path, json=body or {})


def _error_line(response: httpx.Response) -> str:
    try:
        body = response.json()
    except ValueError:
        body = {}
    if not isinstance(body, dict):
        body = {}
    if response.status_code == 401:
        return "admin API refused the token (401): check ADMIN_API_TOKEN"
    if body.get("error") == "orchestrator_timeout" or response.status_code == 504:
        return (
            "no orchestrator answered in time (504): the command stays queued; "
            "check `vitrine status` before repeating it"
        )
    message = body.get("message") or response.reason_phrase
    fields = body.get("fields") or []
    detail = "; ".join(
        f"{f.get('field')}: {f.get('message')}" for f in fields if isinstance(f, dict)
    )
    return f"admin API answered {response.status_code}: {message}" + (
        f" ({detail})" if detail else ""
    )
