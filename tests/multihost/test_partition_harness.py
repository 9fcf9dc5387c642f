"""The multi-host harness itself, without root: the relay the hosts reach loopback services
through, and the one-line reason the partition tests skip with where namespaces cannot be
made."""

from __future__ import annotations

import asyncio

import pytest

from ops import netns_harness
from ops.netns_harness import Forwarder

pytestmark = pytest.mark.multihost


async def test_relay_carries_bytes_both_ways_from_the_host_s_own_source_address():
    seen: list[str] = []

    async def echo(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        seen.append(writer.get_extra_info("peername")[0])
        writer.write((await reader.readline()).upper())
        await writer.drain()
        writer.close()

    server = await asyncio.start_server(echo, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    relay = await Forwarder("127.0.0.1", port, {"127.0.0.1": "127.0.0.7"}).start()
    try:
        reader, writer = await asyncio.open_connection("127.0.0.1", relay.port)
        writer.write(b"pix pago\n")
        await writer.drain()
        assert await asyncio.wait_for(reader.readline(), 5) == b"PIX PAGO\n"
        writer.close()
        assert seen == ["127.0.0.7"], "the server sees which host called"
    finally:
        await relay.close()
        server.close()
        await server.wait_closed()


def test_without_root_the_partition_tests_skip_with_a_one_line_reason(monkeypatch):
    monkeypatch.setattr(netns_harness.os, "geteuid", lambda: 1000)
    reason = netns_harness.unavailable()
    assert reason and "root" in reason and "\n" not in reason


def test_without_iproute2_the_reason_says_so(monkeypatch):
    monkeypatch.setattr(netns_harness.os, "geteuid", lambda: 0)
    monkeypatch.setattr(netns_harness.shutil, "which", lambda name: None)
    assert "iproute2" in (netns_harness.unavailable() or "")
