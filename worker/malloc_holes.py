"""Fill the free chunks of glibc's main heap in the zygote, before the fork.

The zygote's heap (`[heap]`, glibc's main arena) has free chunks between live ones after the
imports and the warm-up. A worker's allocations too big for pymalloc (> 512 bytes: big dicts,
buffers, zlib's inflate state) would reuse them, and each reuse copies an inherited 4 kB page.
Taken here and kept for the zygote's life, they push those allocations to the top of the heap,
fresh pages that the worker writes anyway. The pymalloc twin is `worker.zygote.fill_pymalloc_holes`.
"""

from __future__ import annotations

import ctypes
import platform

_FIELDS = "arena ordblks smblks hblks hblkhd usmblks fsmblks uordblks fordblks keepcost"


class _MallInfo2(ctypes.Structure):
    _fields_ = [(name, ctypes.c_size_t) for name in _FIELDS.split()]


# chunks taken from holes, never freed (the addresses are all the zygote needs to keep)
_KEPT: list[int] = []


def _libc() -> ctypes.CDLL | None:
    if platform.libc_ver()[0] != "glibc":
        return None
    libc = ctypes.CDLL("libc.so.6")  # glibc's soname on every architecture Linux has
    if not hasattr(libc, "mallinfo2"):  # glibc < 2.33
        return None
    libc.mallinfo2.restype = _MallInfo2
    libc.malloc.restype = ctypes.c_void_p
    libc.malloc.argtypes = [ctypes.c_size_t]
    libc.free.argtypes = [ctypes.c_void_p]
    libc.sbrk.restype = ctypes.c_void_p
    libc.sbrk.argtypes = [ctypes.c_ssize_t]
    return libc


def _sizes() -> list[int]:
    """64 kB down to 2 kB by halves, then every 16-byte size class from 1 kB down."""
    big = [1 << n for n in range(16, 10, -1)]
    return big + list(range(1024, 0, -16))


def fill_malloc_holes() -> tuple[int, int]:
    """Take every free chunk below the top of the main heap that a request of one of
    `_sizes()` gets; returns (free bytes in holes before, after). (0, 0) off glibc."""
    libc = _libc()
    if libc is None:
        return 0, 0
    info = libc.mallinfo2()
    before = info.fordblks - info.keepcost
    top = (libc.sbrk(0) or 0) - info.keepcost  # the top chunk: fresh memory from here on
    for size in _sizes():
        while True:
            ptr = libc.malloc(size)
            if not ptr:
                break
            # kept even when it came from the top: freed, a small chunk would wait in the
            # thread cache at the top's first page, for a worker to write into
            _KEPT.append(ptr)
            if ptr >= top:
                break  # no hole of this size is left
    info = libc.mallinfo2()
    return before, info.fordblks - info.keepcost
