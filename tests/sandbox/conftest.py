"""Fixtures for the sandbox tests: an in-process sandbox, its client, real disnake bot processes."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from sandbox.discord.client import Bot, DiscordSandbox
from sandbox.server import RunningSandbox, run_sandbox

BOTS_DIR = Path(__file__).parent / "bots"
ROOT = Path(__file__).resolve().parents[2]


class BotProcess:
    """A disnake bot script running in its own process; collects its stdout lines."""

    def __init__(self, proc: asyncio.subprocess.Process) -> None:
        self.proc = proc
        self.lines: list[str] = []
        self._new_line = asyncio.Event()
        self._reader = asyncio.get_running_loop().create_task(self._read())

    async def _read(self) -> None:
        assert self.proc.stdout is not None
        async for raw in self.proc.stdout:
            self.lines.append(raw.decode(errors="replace").rstrip("\n"))
            self._new_line.set()

    async def wait_line(self, prefix: str, wait_s: float = 10.0) -> str:
        """The first output line starting with prefix (waits for it)."""

        async def scan() -> str:
            while True:
                for line in self.lines:
                    if line.startswith(prefix):
                        return line
                if self._reader.done():
                    raise AssertionError(f"bot exited without {prefix!r}: {self.output()}")
                self._new_line.clear()
                await self._new_line.wait()

        try:
            return await asyncio.wait_for(scan(), wait_s)
        except TimeoutError:
            raise AssertionError(f"no {prefix!r} line in {wait_s}s: {self.output()}") from None

    async def exception(self, wait_s: float = 15.0) -> dict:
        """The EXC report printed when disnake's start() raised; also waits for the exit."""
        line = await self.wait_line("EXC ", wait_s)
        await asyncio.wait_for(self.proc.wait(), wait_s)
        return json.loads(line[4:])

    def output(self) -> str:
        return "\n".join(self.lines[-60:])

    async def stop(self) -> None:
        if self.proc.returncode is None:
            self.proc.terminate()
        try:
            await asyncio.wait_for(self.proc.wait(), 10)
        except TimeoutError:
            self.proc.kill()
            await self.proc.wait()
        with contextlib.suppress(asyncio.CancelledError):
            await self._reader


@pytest.fixture
async def sandbox() -> AsyncIterator[RunningSandbox]:
    """The Discord stand-in on a free loopback port (Mercado Pago not started)."""
    async with run_sandbox("127.0.0.1", 0, mp_port=None) as sb:
        yield sb


@pytest.fixture
async def dc(sandbox: RunningSandbox) -> AsyncIterator[DiscordSandbox]:
    async with DiscordSandbox(sandbox.discord_base) as client:
        yield client


@pytest.fixture
async def spawn_bot(sandbox: RunningSandbox):
    """Factory: start tests/sandbox/bots/<script> against the sandbox with a bot token."""
    started: list[BotProcess] = []

    async def spawn(
        bot: Bot | str, *, zlib: bool = True, intents: str = "default", script: str = "shop_bot.py"
    ) -> BotProcess:
        token = bot.token if isinstance(bot, Bot) else bot
        env = dict(
            os.environ,
            DISCORD_API_BASE=sandbox.discord_api_base,
            BOT_TOKEN=token,
            BOT_ZLIB="1" if zlib else "0",
            BOT_INTENTS=intents,
            PYTHONPATH=str(ROOT),
            PYTHONUNBUFFERED="1",
        )
        proc = await asyncio.create_subprocess_exec(
            sys.executable,
            str(BOTS_DIR / script),
            env=env,
            cwd=str(ROOT),
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT,
        )
        bp = BotProcess(proc)
        started.append(bp)
        return bp

    yield spawn
    for bp in started:
        await bp.stop()
