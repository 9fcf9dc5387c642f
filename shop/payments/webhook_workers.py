"""The two helpers that keep the webhook endpoint fast under bursts.

`EventWriter` group-commits `webhook_events`: deliveries arriving while a write is in flight
are inserted together in the next transaction (one commit, one fsync), and each request still
waits for its row to be durable before answering. `WebhookProcessor` reconciles accepted
events with a few workers off the request path.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any, cast

from tortoise.exceptions import IntegrityError
from tortoise.transactions import in_transaction

from shop.models import WebhookEvent
from shop.payments.service import PaymentServices
from shop.payments.webhook_intake import ACCEPTED, DUPLICATE, process_events, record_one

log = logging.getLogger(__name__)


class EventWriter:
    """A `Recorder` that batches concurrent inserts into one transaction; an accepted event
    whose dedupe_key is stored already (or earlier in the batch) is a duplicate, not stored."""

    def __init__(self, max_batch: int = 256) -> None:
        self.max_batch = max_batch
        self._pending: list[tuple[dict[str, Any], asyncio.Future[str]]] = []
        self._flusher: asyncio.Task[None] | None = None

    async def __call__(self, fields: dict[str, Any]) -> str:
        future: asyncio.Future[str] = asyncio.get_running_loop().create_future()
        self._pending.append((fields, future))
        if self._flusher is None or self._flusher.done():
            self._flusher = asyncio.create_task(self._flush())
        return await future

    async def _flush(self) -> None:
        while self._pending:
            batch = self._pending[: self.max_batch]
            del self._pending[: self.max_batch]
            try:
                outcomes = await self._write(batch)
            except IntegrityError:  # another process stored one of the keys meanwhile
                outcomes = await self._write_each(batch)
            except Exception as exc:  # noqa: BLE001 - every waiting request gets the error
                for _, future in batch:
                    if not future.done():
                        future.set_exception(exc)
                continue
            for (_, future), outcome in zip(batch, outcomes, strict=True):
                if not future.done():
                    future.set_result(outcome)

    async def _write(self, batch: list[tuple[dict[str, Any], asyncio.Future[str]]]) -> list[str]:
        keys = [f["dedupe_key"] for f, _ in batch if f.get("dedupe_key")]
        rows: list[WebhookEvent] = []
        outcomes: list[str] = []
        async with in_transaction() as conn:
            seen: set[str] = set()
            if keys:
                # tortoise types values_list(flat=True) as list[tuple]; it is a list of values.
                seen.update(
                    cast(
                        list[str],
                        await WebhookEvent.filter(dedupe_key__in=keys)
                        .using_db(conn)
                        .values_list("dedupe_key", flat=True),
                    )
                )
            for fields, _ in batch:
                key = fields.get("dedupe_key")
                if key and fields["outcome"] == ACCEPTED:
                    if key in seen:
                        outcomes.append(DUPLICATE)
                        continue
                    seen.add(key)
                rows.append(WebhookEvent(**fields))
                outcomes.append(str(fields["outcome"]))
            if rows:
                await WebhookEvent.bulk_create(rows, using_db=conn)
        return outcomes

    async def _write_each(
        self,
        batch: list[tuple[dict[str, Any], asyncio.Future[str]]],
    ) -> list[str]:
        return [await record_one(fields) for fields, _ in batch]


class WebhookProcessor:
    """Reconciles accepted events with a few workers, off the request path.

    At most one fetch per payment is in flight; events for a payment that arrive meanwhile
    wait and share the next fetch (which starts after all of them arrived, so none is
    skipped). A full queue leaves events `accepted`; the reconciler picks those up, as it
    does after a crash.
    """

    def __init__(
        self,
        svc: PaymentServices,
        workers: int = 4,
        max_queued: int = 10_000,
        actor: str = "system:webhook",
    ) -> None:
        self.svc = svc
        self.workers = workers
        self.max_queued = max_queued
        self.actor = actor
        self._waiting: dict[str, list[str]] = {}  # payment -> events not yet processed
        self._running: set[str] = set()
        self._queue: asyncio.Queue[str] = asyncio.Queue()

    def submit(self, dedupe_key: str, provider_id: str) -> bool:
        """Queue an event; False if the queue is full (the reconciler will process it)."""
        if provider_id in self._waiting:
            self._waiting[provider_id].append(dedupe_key)
            return True
        if provider_id not in self._running and self._queue.qsize() >= self.max_queued:
            return False
        self._waiting[provider_id] = [dedupe_key]
        if provider_id not in self._running:  # else queued again when the running one ends
            self._queue.put_nowait(provider_id)
        return True

    async def _work(self) -> None:
        while True:
            provider_id = await self._queue.get()
            self._running.add(provider_id)
            try:
                await process_events(
                    self.svc, self._waiting.pop(provider_id, []), provider_id, self.actor
                )
            except Exception:  # noqa: BLE001 - events stay `accepted`; the reconciler retries
                log.exception("processing webhooks for payment %s failed", provider_id)
            finally:
                self._running.discard(provider_id)
                if provider_id in self._waiting:
                    self._queue.put_nowait(provider_id)
                self._queue.task_done()

    async def run(self, stop: asyncio.Event, drain_timeout: float = 3.0) -> None:
        """Work until `stop` is set; what is still queued then stays `accepted`."""
        tasks = [asyncio.create_task(self._work()) for _ in range(self.workers)]
        try:
            await stop.wait()
            try:  # finish what is queued, briefly
                await asyncio.wait_for(self._queue.join(), drain_timeout)
            except TimeoutError:
                pass
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
