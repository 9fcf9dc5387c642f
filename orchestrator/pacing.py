"""Start pacing: a token bucket, so a mass start does not IDENTIFY hundreds of bots in one
second. The per-bot count of logins per UTC day that the crash policy budgets is kept by the
workers, one per IDENTIFY (`worker.resume.count_login`): a start that RESUMEs spends none."""

from __future__ import annotations

import asyncio
import random
import time

import redis.asyncio as aioredis


class TokenBucket:
    """Paces worker starts so a mass start does not IDENTIFY hundreds of bots in one second."""

    def __init__(self, rate: float, burst: int, rng: random.Random) -> None:
        self.rate, self.burst, self.rng = rate, burst, rng
        self.tokens = float(burst)
        self.at = time.monotonic()
        self._lock = asyncio.Lock()

    async def take(self) -> None:
        async with self._lock:
            now = time.monotonic()
            self.tokens = min(self.burst, self.tokens + (now - self.at) * self.rate)
            self.at = now
            if self.tokens >= 1:
                self.tokens -= 1
                return
            wait = (1 - self.tokens) / self.rate
            self.tokens = 0.0
            self.at = now + wait
            # jitter within the slot: starts that queue together do not line up
            await asyncio.sleep(wait + self.rng.uniform(0, 0.5 / self.rate))


class StartPacer:
    """Admits one worker start at a time through the bucket."""

    def __init__(self, redis: aioredis.Redis, rate: float, burst: int, rng: random.Random) -> None:
        self.redis = redis
        self.bucket = TokenBucket(rate, burst, rng)

    async def admit(self, iid: int) -> None:
        """Wait for a slot (the worker counts its login, if it spends one)."""
        await self.bucket.take()
