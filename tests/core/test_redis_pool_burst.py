"""The shared Redis client waits for a free connection when more commands run at once than its
pool may open, instead of failing them (redis-py's plain asyncio pool raises
MaxConnectionsError past 100: the orchestrator's 1,000-bot mass start lost record writes)."""

from __future__ import annotations

import asyncio

from core import redis as core_redis


async def test_pool_burst_more_concurrent_commands_than_connections_all_succeed(redis_url):
    client = core_redis.connect(redis_url)
    try:
        burst = 3 * core_redis.MAX_CONNECTIONS
        # issued at once: with redis-py's plain pool the 101st fails with MaxConnectionsError
        results = await asyncio.gather(
            *(
                client.eval(
                    "redis.call('SET', KEYS[1], ARGV[1]) return ARGV[1]", 1, f"burst:{i}", i
                )
                for i in range(burst)
            )
        )
        assert sorted(int(r) for r in results) == list(range(burst))
        assert await client.dbsize() == burst
    finally:
        await client.aclose()
