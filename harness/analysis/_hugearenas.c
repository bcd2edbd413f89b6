/* pymalloc's arenas carved out of transparent huge pages, for a `harness analyze` process.
 *
 * A walk creates hundreds of thousands of small objects: pymalloc takes them from 1 MiB
 * arenas, each its own mmap, and the kernel backs every 4 KiB page of them with a fault
 * of its own on first touch. Those faults were about a sixth of a handshake-heavy run
 * (perf: exc_page_fault and below). Arenas taken from 2 MiB-aligned regions the kernel
 * is asked to back with huge pages (MADV_HUGEPAGE: honoured when THP is `always` or
 * `madvise`) fault once per 2 MiB instead.
 *
 * enable() installs the allocator (PyObject_SetArenaAllocator, a public API). Arenas of
 * the regions go back to a free list when pymalloc lets one go, and are reused; those of
 * the allocator before, and any other size, go to it. Nothing is ever unmapped: the
 * command's process ends with os._exit, as exitkeep.py explains. Library callers never
 * enable it. stats() -> (installed, regions, regions advised, arenas handed out, arenas
 * on the free list): a region the kernel refused the advice for (no THP) is plain memory.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stdint.h>
#include <sys/mman.h>

#define HUGE_PAGE ((size_t)2 << 20)
#define REGION ((size_t)32 << 20) /* reserved at a time: 16 huge pages */

static PyObjectArenaAllocator before;
static int installed;
static long n_regions, advised, handed_out, n_free;
static char *next_free, *region_end; /* the unused rest of the current region */
static void *free_list;              /* arenas pymalloc let go: each holds the next */
static size_t arena_size;            /* pymalloc's (ARENA_SIZE), from its first call */

struct region {
    char *start, *end;
    struct region *next;
};
static struct region *regions;

static int ours(void *p) {
    for (struct region *r = regions; r != NULL; r = r->next)
        if ((char *)p >= r->start && (char *)p < r->end)
            return 1;
    return 0;
}

static int new_region(void) {
    struct region *r = PyMem_RawMalloc(sizeof *r);
    if (r == NULL)
        return -1;
    char *raw = mmap(NULL, REGION + HUGE_PAGE, PROT_READ | PROT_WRITE,
                     MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    if (raw == MAP_FAILED) {
        PyMem_RawFree(r);
        return -1;
    }
    char *start = (char *)(((uintptr_t)raw + HUGE_PAGE - 1) & ~(uintptr_t)(HUGE_PAGE - 1));
    if (start > raw) /* the slop before and after the aligned region back to the kernel */
        munmap(raw, (size_t)(start - raw));
    munmap(start + REGION, (size_t)(raw + HUGE_PAGE - start));
#ifdef MADV_HUGEPAGE
    if (madvise(start, REGION, MADV_HUGEPAGE) == 0)
        advised++;
#endif
    n_regions++;
    r->start = next_free = start;
    r->end = region_end = start + REGION;
    r->next = regions;
    regions = r;
    return 0;
}

static void *arena_alloc(void *ctx, size_t size) {
    (void)ctx;
    if (arena_size == 0 && size > 0 && size <= HUGE_PAGE && REGION % size == 0)
        arena_size = size;
    if (size != arena_size)
        return before.alloc(before.ctx, size);
    if (free_list != NULL) {
        void *p = free_list;
        free_list = *(void **)p;
        n_free--;
        handed_out++;
        return p;
    }
    if (next_free == region_end && new_region() < 0)
        return before.alloc(before.ctx, size);
    void *p = next_free;
    next_free += size;
    handed_out++;
    return p;
}

static void arena_free(void *ctx, void *ptr, size_t size) {
    (void)ctx;
    if (ptr != NULL && size == arena_size && ours(ptr)) {
        *(void **)ptr = free_list;
        free_list = ptr;
        n_free++;
        return;
    }
    before.free(before.ctx, ptr, size);
}

static PyObject *enable(PyObject *self, PyObject *unused) {
    if (!installed) {
        PyObject_GetArenaAllocator(&before);
        PyObjectArenaAllocator mine = {NULL, arena_alloc, arena_free};
        PyObject_SetArenaAllocator(&mine);
        installed = 1;
    }
    Py_RETURN_NONE;
}

static PyObject *stats(PyObject *self, PyObject *unused) {
    return Py_BuildValue("(Nllll)", PyBool_FromLong(installed), n_regions, advised, handed_out,
                         n_free);
}

static PyMethodDef methods[] = {
    {"enable", enable, METH_NOARGS, "Take pymalloc's arenas from huge pages from now on."},
    {"stats", stats, METH_NOARGS,
     "(installed, regions, regions advised, arenas handed out, arenas on the free list)"},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT, "_hugearenas", "pymalloc's arenas from transparent huge pages.", -1,
    methods,
};

PyMODINIT_FUNC PyInit__hugearenas(void) { return PyModule_Create(&module); }
