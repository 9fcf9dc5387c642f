"""Page sharing between the zygote and its workers (worker/page_share.py, worker/_pageshare.c).

share() rewrites a process's own memory and give_back() drops pages, so each scenario runs in
a fresh Python process: a parent that builds objects, freezes and shares like the zygote, and a
forked child that runs like a worker. They print what they saw as JSON; the assertions here are
about what a worker's user would notice: every value still right after pages were given back,
a changed page never given back, memory really returned.
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from core.errors import ConfigError
from worker import page_share

ROOT = Path(__file__).resolve().parents[2]

pytestmark = pytest.mark.skipif(
    not page_share.available(), reason="worker/_pageshare.c not compiled (no C compiler)"
)

PRELUDE = textwrap.dedent(
    """
    import ctypes, gc, json, mmap, os, struct, sys, threading
    from worker import page_share

    PAGE = mmap.PAGESIZE

    def own_anon_pages():
        n = 0
        with open("/proc/self/maps") as maps, open("/proc/self/pagemap", "rb") as fh:
            for line in maps.read().splitlines():
                parts = line.split()
                if "w" not in parts[1]:
                    continue
                start, end = (int(x, 16) for x in parts[0].split("-"))
                fh.seek(start // PAGE * 8)
                data = fh.read((end - start) // PAGE * 8)
                for i in range(0, len(data), 8):
                    e = struct.unpack_from("<Q", data, i)[0]
                    if e >> 63 and e >> 56 & 1 and not e >> 61 & 1:
                        n += 1
        return n

    def child(body):
        r, w = os.pipe()
        pid = os.fork()
        if pid == 0:
            os.close(r)
            try:
                out = body()
            except BaseException as exc:
                out = {"error": repr(exc)}
            os.write(w, json.dumps(out).encode())
            os._exit(0)
        os.close(w)
        data = b""
        while chunk := os.read(r, 65536):
            data += chunk
        os.waitpid(pid, 0)
        return json.loads(data)
    """
)


def run(script: str) -> dict:
    proc = subprocess.run(
        [sys.executable, "-c", PRELUDE + textwrap.dedent(script)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    assert "error" not in result, result
    return result


def test_a_worker_gives_back_the_pages_it_only_read_and_every_value_stays_right():
    result = run(
        """
        N = 200_000
        table = {f"key{i}": [i, str(i) * 3] for i in range(N)}
        gc.collect()
        gc.freeze()
        said = page_share.share()

        def worker():
            before = own_anon_pages()
            # read everything: every reference count goes up and down, so every page holding
            # these objects is copied, with the zygote's bytes in it again
            total = sum(value[0] for value in table.values())
            copied_now = own_anon_pages()
            seen, dropped = page_share.give_back()
            after = own_anon_pages()
            again = sum(value[0] for value in table.values())
            strings = all(table[f"key{i}"][1] == str(i) * 3 for i in range(0, N, 97))
            return {"before": before, "copied": copied_now, "after": after, "seen": seen,
                    "dropped": dropped, "total": total, "again": again, "strings": strings}

        out = child(worker)
        out["said"] = said
        out["parent_total"] = sum(value[0] for value in table.values())
        print(json.dumps(out))
        """
    )
    expected = sum(range(200_000))
    assert "backed by a memfd" in result["said"]
    assert result["total"] == result["again"] == result["parent_total"] == expected
    assert result["strings"] is True
    assert result["copied"] - result["before"] > 1000, "reading should have copied pages"
    assert result["dropped"] > 1000
    # the pages really went back: the worker's own memory fell by what it gave back
    assert result["copied"] - result["after"] >= 0.9 * result["dropped"]


def test_a_page_the_worker_changed_is_never_given_back():
    result = run(
        """
        N = 100_000
        values = [[i] for i in range(N)]
        gc.collect()
        gc.freeze()
        page_share.share()

        def worker():
            for i in range(0, N, 10):
                values[i][0] = -i - 1
            page_share.give_back()
            page_share.give_back()
            wrong = [i for i in range(N) if values[i][0] != (-i - 1 if i % 10 == 0 else i)]
            return {"wrong": wrong[:10], "n_wrong": len(wrong)}

        out = child(worker)
        # and the zygote's own values never saw the worker's writes
        out["parent_wrong"] = sum(1 for i in range(N) if values[i][0] != i)
        print(json.dumps(out))
        """
    )
    assert result["n_wrong"] == 0, result["wrong"]
    assert result["parent_wrong"] == 0


def test_giving_back_while_another_thread_works_loses_no_write():
    result = run(
        """
        shared = [0] * 50_000
        gc.collect()
        gc.freeze()
        page_share.share()

        def worker():
            stop = threading.Event()
            counts = {"rounds": 0}

            def busy():
                while not stop.is_set():
                    counts["rounds"] += 1
                    for i in range(0, len(shared), 7):
                        shared[i] += 1
                    junk = [{"a": i} for i in range(200)]
                    del junk

            thread = threading.Thread(target=busy)
            thread.start()
            given = 0
            for _ in range(200):
                given += page_share.give_back()[1]
            stop.set()
            thread.join()
            rounds = counts["rounds"]
            wrong = sum(1 for i in range(0, len(shared), 7) if shared[i] != rounds)
            return {"rounds": rounds, "wrong": wrong, "given": given}

        print(json.dumps(child(worker)))
        """
    )
    assert result["rounds"] > 0
    assert result["wrong"] == 0


def test_memory_mapped_again_at_a_shared_address_is_not_the_files_and_is_kept():
    # pymalloc unmaps an empty arena; a later mapping at that address is anonymous memory
    # that happens to sit where the memfd was: giving it back would zero it.
    result = run(
        """
        libc = ctypes.CDLL(None, use_errno=True)
        libc.mmap.restype = ctypes.c_void_p
        libc.mmap.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int, ctypes.c_int,
                              ctypes.c_int, ctypes.c_long]
        libc.munmap.argtypes = [ctypes.c_void_p, ctypes.c_size_t]
        RW, PRIVATE_ANON, FIXED, NOREPLACE = 3, 0x22, 0x10, 0x100000
        SIZE = 16 * PAGE
        hint = 0x6A0000000000
        addr = libc.mmap(hint, SIZE, RW, PRIVATE_ANON | NOREPLACE, -1, 0)
        assert addr == hint, hex(addr or 0)
        ctypes.memset(addr, 0x5A, SIZE)
        page_share.share()
        with open("/proc/self/maps") as fh:
            line = next(l for l in fh if l.startswith(f"{hint:x}-"))
        assert "memfd:vitrine-zygote" in line, line

        def worker():
            libc.munmap(addr, SIZE)
            again = libc.mmap(addr, SIZE, RW, PRIVATE_ANON | FIXED, -1, 0)
            assert again == addr
            ctypes.memset(addr, 0x5A, SIZE)  # the file's bytes, in anonymous memory
            page_share.give_back()
            data = ctypes.string_at(addr, SIZE)
            return {"kept": data == b"\\x5a" * SIZE}

        print(json.dumps(child(worker)))
        """
    )
    assert result["kept"] is True


MAPS = """\
55d0c0000000-55d0c0021000 rw-p 00000000 00:00 0                          [heap]
7f0000000000-7f0000100000 rw-p 00000000 00:00 0
7f0000100000-7f0000200000 rw-p 00000000 00:00 0
7f1000000000-7f1000021000 rw-p 00000000 00:00 0
7f1000021000-7f1004000000 ---p 00000000 00:00 0
7f2000000000-7f2000001000 ---p 00000000 00:00 0
7f2000001000-7f2000801000 rw-p 00000000 00:00 0
7f3000000000-7f3000010000 rw-p 00000000 08:01 42                         /usr/lib/libz.so
7ffd00000000-7ffd00021000 rw-p 00000000 00:00 0                          [stack]
"""


def test_only_memory_no_other_thread_writes_without_the_gil_is_shared():
    ranges = page_share.shareable(MAPS)
    # the main heap and the two plain anonymous mappings; not a glibc thread arena (reserve
    # above), a thread stack (guard page below), a file or the main stack
    assert ranges == [
        (0x55D0C0000000, 0x21000),
        (0x7F0000000000, 0x100000),
        (0x7F0000100000, 0x100000),
    ]


def test_the_main_heap_is_kept_out_when_glibc_may_share_it_between_threads():
    assert page_share.heap_is_main_threads({}) is True
    for env in ({"MALLOC_ARENA_MAX": "1"}, {"GLIBC_TUNABLES": "glibc.malloc.arena_max=2"}):
        assert page_share.heap_is_main_threads(env) is False
    ranges = page_share.shareable(MAPS, heap=False)
    assert ranges == [(0x7F0000000000, 0x100000), (0x7F0000100000, 0x100000)]


def test_the_setting_is_on_or_off_and_nothing_else():
    assert page_share.requested({}) is True
    assert page_share.requested({"VITRINE_PAGE_SHARE": "OFF"}) is False
    with pytest.raises(ConfigError, match="VITRINE_PAGE_SHARE"):
        page_share.requested({"VITRINE_PAGE_SHARE": "sometimes"})
