/* Page sharing between the zygote and its workers (issue 14; worker/page_share.py).
 *
 * Python 3.11 writes a reference count into every object a worker's code touches, so a forked
 * worker copies thousands of the zygote's pages, and a third of them end up holding the very
 * bytes the zygote had (the counts went up and down again). The kernel cannot know that.
 *
 * share():  in the zygote, before the first fork: copy the given anonymous ranges into one
 *           memfd and map that file privately over each range (MAP_PRIVATE | MAP_FIXED). The
 *           memory holds the same bytes; it is now backed by a file, so a forked worker maps the
 *           file's pages (shared) and only the pages it writes become its own copies.
 * revert(): in a worker: every page of those ranges that the worker copied and that holds the
 *           file's bytes again is dropped with MADV_DONTNEED, which for a private file mapping
 *           puts the shared file page back (madvise(2): "private mappings ... will have the
 *           original content of the file" after MADV_DONTNEED).
 *
 * Both run with the GIL held and write nothing into the ranges between their reads and their
 * mmap/madvise calls, so no Python code can change a byte in between. Ranges that another
 * thread may write without the GIL (thread stacks, glibc arenas, the brk heap) are never given
 * to them (worker/page_share.py chooses the ranges).
 */
#define _GNU_SOURCE
#define PY_SSIZE_T_CLEAN
#include <Python.h>

#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <unistd.h>

#ifndef MADV_POPULATE_READ
#define MADV_POPULATE_READ 22 /* Linux 5.14; older kernels answer EINVAL, ignored */
#endif

#define PM_PRESENT (1ULL << 63)
#define PM_EXCLUSIVE (1ULL << 56)
#define PM_FILE (1ULL << 61) /* file page or shared anon: Documentation/admin-guide/mm/pagemap.rst */
#define MEMFD_NAME "vitrine-zygote"
#define MEMFD_PATH "/memfd:" MEMFD_NAME

typedef struct {
    uintptr_t start;
    size_t len;
    off_t offset;
} range_t;

/* ranges: a sequence of (start, length); all parsed before anything is changed */
static range_t *parse_ranges(PyObject *seq, Py_ssize_t *count) {
    PyObject *fast = PySequence_Fast(seq, "ranges must be a sequence");
    if (fast == NULL) {
        return NULL;
    }
    Py_ssize_t n = PySequence_Fast_GET_SIZE(fast);
    range_t *out = PyMem_RawCalloc(n ? (size_t)n : 1, sizeof(range_t));
    if (out == NULL) {
        Py_DECREF(fast);
        PyErr_NoMemory();
        return NULL;
    }
    long page = sysconf(_SC_PAGESIZE);
    for (Py_ssize_t i = 0; i < n; i++) {
        PyObject *item = PySequence_Fast_GET_ITEM(fast, i);
        unsigned long long start = 0, len = 0;
        int ok = PyArg_ParseTuple(item, "KK", &start, &len);
        if (!ok) {
            PyMem_RawFree(out);
            Py_DECREF(fast);
            return NULL;
        }
        if (start % page || len % page || len == 0) {
            PyMem_RawFree(out);
            Py_DECREF(fast);
            PyErr_SetString(PyExc_ValueError, "ranges must be page-aligned and not empty");
            return NULL;
        }
        out[i].start = (uintptr_t)start;
        out[i].len = (size_t)len;
    }
    Py_DECREF(fast);
    *count = n;
    return out;
}

static int write_all(int fd, const char *buf, size_t len, off_t offset) {
    while (len > 0) {
        ssize_t done = pwrite(fd, buf, len, offset);
        if (done < 0) {
            if (errno == EINTR) {
                continue;
            }
            return -1;
        }
        buf += done;
        len -= (size_t)done;
        offset += done;
    }
    return 0;
}

/* share(ranges) -> (fd, view address, view length): the memfd now backing the ranges (laid
 * end to end in it) and a read-only shared view of it */
static PyObject *share(PyObject *self, PyObject *args) {
    PyObject *seq;
    if (!PyArg_ParseTuple(args, "O", &seq)) {
        return NULL;
    }
    Py_ssize_t n = 0;
    range_t *ranges = parse_ranges(seq, &n);
    if (ranges == NULL) {
        return NULL;
    }
    off_t total = 0;
    for (Py_ssize_t i = 0; i < n; i++) {
        total += (off_t)ranges[i].len;
    }
    int fd = memfd_create(MEMFD_NAME, MFD_CLOEXEC);
    if (fd < 0 || ftruncate(fd, total) < 0) {
        int saved = errno;
        if (fd >= 0) {
            close(fd);
        }
        PyMem_RawFree(ranges);
        errno = saved;
        return PyErr_SetFromErrno(PyExc_OSError);
    }
    /* First every copy, then every mapping: a failed write leaves the memory untouched. */
    off_t offset = 0;
    for (Py_ssize_t i = 0; i < n; i++) {
        if (write_all(fd, (const char *)ranges[i].start, ranges[i].len, offset) < 0) {
            int saved = errno;
            close(fd);
            PyMem_RawFree(ranges);
            errno = saved;
            return PyErr_SetFromErrno(PyExc_OSError);
        }
        offset += (off_t)ranges[i].len;
    }
    /* Nothing in the ranges has been written since (this thread runs no Python code and holds
     * the GIL; the zygote has no other thread). */
    offset = 0;
    for (Py_ssize_t i = 0; i < n; i++) {
        void *at = mmap((void *)ranges[i].start, ranges[i].len, PROT_READ | PROT_WRITE,
                        MAP_PRIVATE | MAP_FIXED, fd, offset);
        if (at == MAP_FAILED) {
            /* the range may be gone already (MAP_FIXED): the process cannot go on safely */
            char msg[160];
            int len = snprintf(msg, sizeof msg,
                               "vitrine pageshare: mmap over %p (%zu bytes) failed: %s\n",
                               (void *)ranges[i].start, ranges[i].len, strerror(errno));
            if (len > 0) {
                (void)!write(2, msg, (size_t)len);
            }
            abort();
        }
        offset += (off_t)ranges[i].len;
    }
    /* A new mapping has no page table entries, and fork() does not copy them for a file
     * mapping the parent never wrote (mm/memory.c, vma_needs_copy()): every worker would then
     * fault in, one by one, each page it only reads (measured: worker start-up CPU 29 -> 57 ms).
     * So fill them here, and write one byte of each range with its own value, which gives the
     * mapping its anonymous part and makes fork() copy the entries as it did before. */
    for (Py_ssize_t i = 0; i < n; i++) {
        (void)madvise((void *)ranges[i].start, ranges[i].len, MADV_POPULATE_READ);
        volatile unsigned char *first = (volatile unsigned char *)ranges[i].start;
        *first = *first;
    }
    PyMem_RawFree(ranges);
    /* A read-only shared view of the whole file, for revert() to compare against without a
     * copy (it is never written, so fork() copies no page table entries for it). */
    void *view = mmap(NULL, (size_t)total, PROT_READ, MAP_SHARED, fd, 0);
    if (view == MAP_FAILED) {
        return PyErr_SetFromErrno(PyExc_OSError);
    }
    return Py_BuildValue("iKK", fd, (unsigned long long)(uintptr_t)view,
                         (unsigned long long)total);
}

/* revert()'s working memory: fresh anonymous mappings, never the memfd's (a buffer inside a
 * shared range could be compared, and given back, while revert() still writes to it). */
static void *scratch(size_t len) {
    void *at = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    return at == MAP_FAILED ? NULL : at;
}

/* The private mappings of our memfd, read from /proc/self/maps now (under the GIL: no Python
 * code can map or unmap anything until revert() returns). A range the zygote or the worker
 * unmapped since share() (pymalloc returns empty arenas) is not in it, and memory mapped again
 * at such an address is anonymous, not ours: it is never given back. Returns the count, or -1
 * with errno set; *out is a scratch() mapping of *out_len bytes. */
static Py_ssize_t our_mappings(range_t **out, size_t *out_len) {
    int maps = open("/proc/self/maps", O_RDONLY | O_CLOEXEC);
    if (maps < 0) {
        return -1;
    }
    size_t cap = (size_t)1 << 22, len = 0; /* 4 MB of text: ~40,000 mappings */
    char *text = scratch(cap);
    if (text == NULL) {
        close(maps);
        return -1;
    }
    for (;;) {
        ssize_t got = read(maps, text + len, cap - 1 - len);
        if (got < 0 && errno == EINTR) {
            continue;
        }
        if (got <= 0) {
            break;
        }
        len += (size_t)got;
        if (len == cap - 1) {
            break; /* more mappings than that: the rest keep their copies */
        }
    }
    close(maps);
    text[len] = '\0';
    size_t lines = 1;
    for (size_t i = 0; i < len; i++) {
        lines += text[i] == '\n';
    }
    *out_len = lines * sizeof(range_t);
    range_t *found = scratch(*out_len);
    if (found == NULL) {
        munmap(text, cap);
        return -1;
    }
    Py_ssize_t n = 0;
    for (char *line = text; line != NULL && *line;) {
        char *next = strchr(line, '\n');
        if (next != NULL) {
            *next++ = '\0';
        }
        unsigned long start, end, offset;
        char perms[8];
        int name_at = 0;
        if (sscanf(line, "%lx-%lx %7s %lx %*s %*s %n", &start, &end, perms, &offset, &name_at) == 4 &&
            name_at > 0 && strcmp(perms, "rw-p") == 0 &&
            strncmp(line + name_at, MEMFD_PATH, strlen(MEMFD_PATH)) == 0) {
            found[n].start = start;
            found[n].len = end - start;
            found[n].offset = (off_t)offset;
            n++;
        }
        line = next;
    }
    munmap(text, cap);
    *out = found;
    return n;
}

#define BATCH 512 /* pagemap entries read at a time (on the stack) */

/* The runs to give back, handed to the kernel UIO_MAXIOV at a time: process_madvise() on
 * ourselves takes MADV_DONTNEED since Linux 6.13 and flushes the TLB once per call (the
 * worker's other threads make every flush an interrupt to each CPU they ran on), where one
 * madvise() per run, ~1,000 runs at a worker's start, cost most of revert()'s time. Older
 * kernels refuse it (EINVAL): then one madvise() per run. */
typedef struct {
    struct iovec iov[1024];
    size_t n;
    long long dropped; /* bytes */
    int pidfd;
} drops_t;

static void drop_flush(drops_t *d) {
    size_t done = 0;
    if (d->n && d->pidfd >= 0) {
        long got = syscall(SYS_process_madvise, d->pidfd, d->iov, d->n, MADV_DONTNEED, 0);
        if (got >= 0) {
            /* all of them or, after an error part way, the leading runs it covered; the rest
             * go one by one below (a run given back twice is only looked at again) */
            size_t left = (size_t)got;
            while (done < d->n && left >= d->iov[done].iov_len) {
                left -= d->iov[done].iov_len;
                d->dropped += (long long)d->iov[done].iov_len;
                done++;
            }
        } else {
            close(d->pidfd);
            d->pidfd = -1; /* not on this kernel: madvise() from now on */
        }
    }
    for (size_t i = done; i < d->n; i++) {
        if (madvise(d->iov[i].iov_base, d->iov[i].iov_len, MADV_DONTNEED) == 0) {
            d->dropped += (long long)d->iov[i].iov_len;
        }
    }
    d->n = 0;
}

static void drop_add(drops_t *d, uintptr_t start, size_t len) {
    d->iov[d->n].iov_base = (void *)start;
    d->iov[d->n].iov_len = len;
    if (++d->n == sizeof d->iov / sizeof d->iov[0]) {
        drop_flush(d);
    }
}

/* revert(view, view_len) -> (copied pages seen, pages given back): share()'s view */
static PyObject *revert(PyObject *self, PyObject *args) {
    unsigned long long view_at = 0, view_len = 0;
    if (!PyArg_ParseTuple(args, "KK", &view_at, &view_len)) {
        return NULL;
    }
    const char *view = (const char *)(uintptr_t)view_at;
    range_t *ranges = NULL;
    size_t ranges_len = 0;
    Py_ssize_t n = our_mappings(&ranges, &ranges_len);
    if (n < 0) {
        return PyErr_SetFromErrno(PyExc_OSError);
    }
    long page = sysconf(_SC_PAGESIZE);
    int pagemap = open("/proc/self/pagemap", O_RDONLY | O_CLOEXEC);
    if (pagemap < 0) {
        int saved = errno;
        munmap(ranges, ranges_len);
        errno = saved;
        return PyErr_SetFromErrno(PyExc_OSError);
    }
    long long copied = 0, given_back = 0;
    uint64_t entries[BATCH];
    int failed = 0;
    drops_t drops = {.n = 0, .dropped = 0, .pidfd = (int)syscall(SYS_pidfd_open, getpid(), 0)};
    for (Py_ssize_t i = 0; i < n && !failed; i++) {
        size_t pages = ranges[i].len / (size_t)page;
        uintptr_t run_start = 0;
        size_t run_len = 0;
        for (size_t first = 0; first < pages && !failed; first += BATCH) {
            size_t batch = pages - first < BATCH ? pages - first : BATCH;
            uintptr_t base = ranges[i].start + first * (size_t)page;
            off_t at = (off_t)(base / (uintptr_t)page) * (off_t)sizeof(uint64_t);
            ssize_t got = pread(pagemap, entries, batch * sizeof(uint64_t), at);
            if (got != (ssize_t)(batch * sizeof(uint64_t))) {
                failed = got < 0 ? errno : EIO;
                break;
            }
            for (size_t p = 0; p < batch; p++) {
                int drop = 0;
                char *addr = (char *)(base + p * (size_t)page);
                /* present, anonymous and this process's alone: a copy it made (the zygote's
                 * own copies, which it shares, cost this process nothing) */
                if ((entries[p] & PM_PRESENT) && (entries[p] & PM_EXCLUSIVE) &&
                    !(entries[p] & PM_FILE)) {
                    copied++;
                    size_t file_off = (size_t)ranges[i].offset + (first + p) * (size_t)page;
                    if (file_off + (size_t)page <= view_len &&
                        memcmp(addr, view + file_off, (size_t)page) == 0) {
                        drop = 1;
                    }
                }
                if (drop) {
                    if (run_len == 0) {
                        run_start = (uintptr_t)addr;
                    }
                    run_len += (size_t)page;
                } else if (run_len) {
                    drop_add(&drops, run_start, run_len);
                    run_len = 0;
                }
            }
        }
        if (run_len) {
            drop_add(&drops, run_start, run_len);
        }
    }
    drop_flush(&drops);
    given_back = drops.dropped / page;
    /* the view's page table entries were only for the comparisons: dropping them (a shared,
     * never written mapping: nothing is lost) gives back ~0.1 MB of page tables per worker */
    (void)madvise((void *)view, (size_t)view_len, MADV_DONTNEED);
    if (drops.pidfd >= 0) {
        close(drops.pidfd);
    }
    close(pagemap);
    munmap(ranges, ranges_len);
    if (failed) {
        errno = failed;
        return PyErr_SetFromErrno(PyExc_OSError);
    }
    return Py_BuildValue("LL", copied, given_back);
}

static PyMethodDef methods[] = {
    {"share", share, METH_VARARGS,
     "share(ranges) -> (fd, view, length): back these ranges by one memfd, mapped privately"},
    {"revert", revert, METH_VARARGS,
     "revert(view, length) -> (copied, given back): drop copied pages equal to the file's"},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT, "_pageshare", "Zygote page sharing (worker/page_share.py).", -1,
    methods,
};

PyMODINIT_FUNC PyInit__pageshare(void) { return PyModule_Create(&module); }
