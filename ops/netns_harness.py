"""Several machines on one: each "host" is a Linux network namespace joined to this machine
by a veth pair, so a test can cut a host off (`ip link set <veth> down`) for real.

Layout (one `Network` per test, names unique per process: `vt<pid><host>`):

- this machine's loopback interface carries the *service address* (`10.231.X.254/32`), the
  one address every host reaches PostgreSQL, Redis and the sandbox at;
- host `a`: namespace `vt<pid>a`, veth `vt<pid>ah` (this side, `10.231.X.1/30`) to
  `vt<pid>an` (inside, `10.231.X.2/30`), and a route to the service address via this side;
  host `b` the same on `10.231.X.4/30`, and so on;
- `Forwarder`: an asyncio TCP relay from the service address to a loopback server (PostgreSQL
  listens on 127.0.0.1 only and the sandbox refuses other addresses). Traffic from a host is
  relayed from that host's own loopback source address (`127.0.0.<n>`), so the sandbox's
  request log (`peer`) tells which host made a call.

Cutting a host's veth drops its packets both ways without closing anything, as a switch or
cable failure does: connections hang until TCP gives up or the link returns. Namespaces,
links and the processes inside are removed by `close()`, also at interpreter exit.
Needs root and iproute2 (`unavailable()` says why not, in one line).
"""

from __future__ import annotations

import asyncio
import atexit
import contextlib
import fcntl
import os
import re
import shutil
import signal
import subprocess
from dataclasses import dataclass, field

PREFIX = "10.231"  # a /24 of it per network, chosen free under a lock
LOCK_PATH = "/run/vitrine-netns.lock"  # root only, as the namespaces are


def _ip(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    res = subprocess.run(["ip", *args], capture_output=True, text=True, timeout=15)
    if check and res.returncode != 0:
        raise RuntimeError(f"ip {' '.join(args)}: {res.stderr.strip()}")
    return res


def unavailable() -> str | None:
    """Why namespaces cannot be made here (one line), or None when they can."""
    if os.geteuid() != 0:
        return "network namespaces need root (CI runs as root)"
    if shutil.which("ip") is None:
        return "iproute2 (`ip`) is not installed"
    probe = f"vt{os.getpid()}p"
    res = _ip("netns", "add", probe, check=False)
    if res.returncode != 0:
        return f"cannot create a network namespace: {res.stderr.strip()}"
    _ip("netns", "delete", probe, check=False)
    return None


@dataclass
class Host:
    """One machine: a namespace, the veth pair to it and its addresses."""

    name: str
    netns: str
    veth: str  # this machine's side: `ip link set <veth> down` cuts the host off
    host_ip: str  # this machine's side of the /30
    ns_ip: str  # the host's own address
    source: str  # loopback address its forwarded traffic comes from (127.0.0.x)

    @property
    def launcher(self) -> list[str]:
        """Prefix that runs a command on this host."""
        return [shutil.which("ip") or "ip", "netns", "exec", self.netns]

    def pids(self) -> list[int]:
        """Every process running in the namespace."""
        res = _ip("netns", "pids", self.netns, check=False)
        return [int(p) for p in res.stdout.split() if p.isdigit()]


@dataclass
class Network:
    """Namespaces with veth pairs and a service address; `create()`, then `close()`."""

    names: tuple[str, ...] = ("a", "b")
    tag: str = field(default_factory=lambda: f"vt{os.getpid()}")
    hosts: dict[str, Host] = field(default_factory=dict)
    service_ip: str = ""
    _made: list[tuple[str, str]] = field(default_factory=list)  # (netns|link|addr, name)

    def create(self) -> Network:
        """Make everything (removed again if any step fails)."""
        atexit.register(self.close)
        try:
            self._create()
        except BaseException:
            self.close()
            raise
        return self

    def _create(self) -> None:
        with open(LOCK_PATH, "a") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)  # two test processes must not pick the same /24
            self._remove_leftovers()
            net = self._free_subnet()
            self.service_ip = f"{net}.254"
            # on this machine's loopback interface (always up; no dummy driver needed): a
            # host's packets to it arrive on its veth and are delivered locally
            _ip("addr", "add", f"{self.service_ip}/32", "dev", "lo")
            self._made.append(("addr", f"{self.service_ip}/32"))
            for n, name in enumerate(self.names):
                self.hosts[name] = self._add_host(name, net, n)

    def _add_host(self, name: str, net: str, n: int) -> Host:
        ns, veth, inner = f"{self.tag}{name}", f"{self.tag}{name}h", f"{self.tag}{name}n"
        host = Host(name, ns, veth, f"{net}.{4 * n + 1}", f"{net}.{4 * n + 2}", f"127.0.0.{n + 2}")
        _ip("netns", "add", ns)
        self._made.append(("netns", ns))
        _ip("link", "add", veth, "type", "veth", "peer", "name", inner)
        self._made.append(("link", veth))
        _ip("link", "set", inner, "netns", ns)
        _ip("addr", "add", f"{host.host_ip}/30", "dev", veth)
        _ip("link", "set", veth, "up")
        _ip("-n", ns, "link", "set", "lo", "up")
        _ip("-n", ns, "addr", "add", f"{host.ns_ip}/30", "dev", inner)
        _ip("-n", ns, "link", "set", inner, "up")
        # only the service address is reachable from the host: no default route, no NAT
        _ip("-n", ns, "route", "add", f"{self.service_ip}/32", "via", host.host_ip)
        return host

    def _free_subnet(self) -> str:
        used = set(
            re.findall(rf"inet {re.escape(PREFIX)}\.(\d+)\.", _ip("-o", "-4", "addr").stdout)
        )
        for third in range(1, 255):
            if str(third) not in used:
                return f"{PREFIX}.{third}"
        raise RuntimeError(f"no free /24 left in {PREFIX}.0.0/16")

    def _remove_leftovers(self) -> None:
        """Links and namespaces of an earlier run in a process that had this pid."""
        for ns in _ip("netns", "list", check=False).stdout.split("\n"):
            name = ns.split(" ")[0]
            if name.startswith(self.tag) and name[len(self.tag) :].isalpha():
                _ip("netns", "delete", name, check=False)
        for link in (f"{self.tag}{n}h" for n in self.names):
            _ip("link", "delete", link, check=False)

    # --- faults -------------------------------------------------------------------------
    def cut(self, name: str) -> None:
        """The host's cable is pulled: nothing in or out, no connection is closed."""
        _ip("link", "set", self.hosts[name].veth, "down")

    def restore(self, name: str) -> None:
        _ip("link", "set", self.hosts[name].veth, "up")

    def host_of(self, address: str) -> str | None:
        """Which host a forwarded call came from (the sandbox's `peer`), or None."""
        for host in self.hosts.values():
            if address in (host.source, host.ns_ip):
                return host.name
        return None

    def close(self) -> None:
        """Kill whatever still runs in the namespaces, then remove namespaces and links."""
        for host in self.hosts.values():
            for pid in host.pids():
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
        for kind, name in reversed(self._made):
            if kind == "netns":
                _ip("netns", "delete", name, check=False)
            elif kind == "addr":
                _ip("addr", "del", name, "dev", "lo", check=False)
            else:
                _ip("link", "delete", name, check=False)
        self._made.clear()
        with contextlib.suppress(Exception):
            atexit.unregister(self.close)


class Forwarder:
    """A TCP relay from `listen_ip`:port (port chosen free) to 127.0.0.1:`target`. A client
    whose address is a key of `sources` is relayed from that loopback address instead of
    127.0.0.1, so the server sees which host called."""

    def __init__(self, listen_ip: str, target: int, sources: dict[str, str]) -> None:
        self.listen_ip, self.target, self.sources = listen_ip, target, sources
        self.port = 0
        self._server: asyncio.Server | None = None
        self._writers: set[asyncio.StreamWriter] = set()
        self._tasks: set[asyncio.Task[None]] = set()

    async def start(self) -> Forwarder:
        self._server = await asyncio.start_server(self._accept, self.listen_ip, 0)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    @property
    def address(self) -> str:
        return f"{self.listen_ip}:{self.port}"

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        peer = writer.get_extra_info("peername")[0]
        source = self.sources.get(peer, "127.0.0.1")
        try:
            up_reader, up_writer = await asyncio.open_connection(
                "127.0.0.1", self.target, local_addr=(source, 0)
            )
        except OSError:
            writer.close()
            return
        self._writers |= {writer, up_writer}
        pipes = [
            asyncio.create_task(self._pipe(reader, up_writer)),
            asyncio.create_task(self._pipe(up_reader, writer)),
        ]
        self._tasks.update(pipes)
        for task in pipes:
            task.add_done_callback(self._tasks.discard)

    async def _pipe(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while data := await reader.read(65536):
                writer.write(data)
                await writer.drain()
        except (ConnectionError, OSError):
            pass
        finally:
            self._writers.discard(writer)
            writer.close()

    async def close(self) -> None:
        if self._server is not None:
            self._server.close()
        for writer in list(self._writers):
            writer.transport.abort()
        for task in list(self._tasks):
            task.cancel()
        if self._tasks:
            await asyncio.wait(self._tasks, timeout=2)
        if self._server is not None:
            await self._server.wait_closed()
