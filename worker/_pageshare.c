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
#include <unistd.h>

#define PM_PRESENT (1ULL << 63)
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

/* share(ranges) -> fd of the memfd now backing them, ranges laid end to end in it */
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
    PyMem_RawFree(ranges);
    return PyLong_FromLong(fd);
}

/* The private mappings of our memfd, read from /proc/self/maps now (under the GIL: no Python
 * code can map or unmap anything until revert() returns). A range the zygote or the worker
 * unmapped since share() (pymalloc returns empty arenas) is not in it, and memory mapped again
 * at such an address is anonymous, not ours: it is never given back. */
static range_t *our_mappings(Py_ssize_t *count) {
    int maps = open("/proc/self/maps", O_RDONLY | O_CLOEXEC);
    if (maps < 0) {
        return NULL;
    }
    size_t cap = 1 << 16, len = 0;
    char *text = PyMem_RawMalloc(cap + 1);
    while (text != NULL) {
        ssize_t got = read(maps, text + len, cap - len);
        if (got < 0 && errno == EINTR) {
            continue;
        }
        if (got <= 0) {
            break;
        }
        len += (size_t)got;
        if (len == cap) {
            char *grown = PyMem_RawRealloc(text, cap * 2 + 1);
            if (grown == NULL) {
                PyMem_RawFree(text);
                text = NULL;
                break;
            }
            text = grown;
            cap *= 2;
        }
    }
    close(maps);
    if (text == NULL) {
        errno = ENOMEM;
        return NULL;
    }
    text[len] = '\0';
    size_t lines = 1;
    for (size_t i = 0; i < len; i++) {
        lines += text[i] == '\n';
    }
    range_t *out = PyMem_RawCalloc(lines, sizeof(range_t));
    Py_ssize_t n = 0;
    for (char *line = text; out != NULL && line != NULL && *line; ) {
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
            out[n].start = start;
            out[n].len = end - start;
            out[n].offset = (off_t)offset;
            n++;
        }
        line = next;
    }
    PyMem_RawFree(text);
    if (out == NULL) {
        errno = ENOMEM;
    }
    *count = n;
    return out;
}

/* revert(fd) -> (copied pages seen, pages given back): fd is share()'s memfd */
static PyObject *revert(PyObject *self, PyObject *args) {
    int fd;
    if (!PyArg_ParseTuple(args, "i", &fd)) {
        return NULL;
    }
    Py_ssize_t n = 0;
    range_t *ranges = our_mappings(&n);
    if (ranges == NULL) {
        return PyErr_SetFromErrno(PyExc_OSError);
    }
    long page = sysconf(_SC_PAGESIZE);
    int pagemap = open("/proc/self/pagemap", O_RDONLY | O_CLOEXEC);
    if (pagemap < 0) {
        int saved = errno;
        PyMem_RawFree(ranges);
        errno = saved;
        return PyErr_SetFromErrno(PyExc_OSError);
    }
    long long copied = 0, given_back = 0;
    uint64_t *entries = NULL;
    size_t entries_cap = 0;
    char *file_page = PyMem_RawMalloc((size_t)page);
    int failed = file_page == NULL ? ENOMEM : 0;
    for (Py_ssize_t i = 0; i < n && !failed; i++) {
        size_t pages = ranges[i].len / (size_t)page;
        if (pages > entries_cap) {
            uint64_t *grown = PyMem_RawRealloc(entries, pages * sizeof(uint64_t));
            if (grown == NULL) {
                failed = ENOMEM;
                break;
            }
            entries = grown;
            entries_cap = pages;
        }
        off_t at = (off_t)(ranges[i].start / (uintptr_t)page) * (off_t)sizeof(uint64_t);
        ssize_t got = pread(pagemap, entries, pages * sizeof(uint64_t), at);
        if (got != (ssize_t)(pages * sizeof(uint64_t))) {
            failed = got < 0 ? errno : EIO;
            break;
        }
        uintptr_t run_start = 0;
        size_t run_len = 0;
        for (size_t p = 0; p <= pages; p++) {
            int drop = 0;
            /* present and anonymous: a copy this process (or the zygote, before the fork) made */
            if (p < pages && (entries[p] & PM_PRESENT) && !(entries[p] & PM_FILE)) {
                copied++;
                char *addr = (char *)(ranges[i].start + p * (size_t)page);
                off_t file_off = ranges[i].offset + (off_t)(p * (size_t)page);
                if (pread(fd, file_page, (size_t)page, file_off) == page &&
                    memcmp(addr, file_page, (size_t)page) == 0) {
                    drop = 1;
                }
            }
            if (drop) {
                if (run_len == 0) {
                    run_start = ranges[i].start + p * (size_t)page;
                }
                run_len += (size_t)page;
            } else if (run_len) {
                if (madvise((void *)run_start, run_len, MADV_DONTNEED) == 0) {
                    given_back += (long long)(run_len / (size_t)page);
                }
                run_len = 0;
            }
        }
    }
    close(pagemap);
    PyMem_RawFree(file_page);
    PyMem_RawFree(entries);
    PyMem_RawFree(ranges);
    if (failed) {
        errno = failed;
        return PyErr_SetFromErrno(PyExc_OSError);
    }
    return Py_BuildValue("LL", copied, given_back);
}

static PyMethodDef methods[] = {
    {"share", share, METH_VARARGS,
     "share(ranges) -> fd: back these anonymous ranges by one memfd, mapped privately"},
    {"revert", revert, METH_VARARGS,
     "revert(fd) -> (copied, given back): drop copied pages equal to the file's"},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT, "_pageshare", "Zygote page sharing (worker/page_share.py).", -1,
    methods,
};

PyMODINIT_FUNC PyInit__pageshare(void) { return PyModule_Create(&module); }
