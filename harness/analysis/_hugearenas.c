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
 *
 * enable_if_cheap(margin=1.0) installs it only where a huge page costs less than the
 * small pages it stands for. On a VM whose host hands memory back and forth (virtio-balloon) a fresh
 * huge page was measured to cost far more than 512 small ones (a handshake-heavy run:
 * 0.99 s median CPU with them, 0.52 s without); on others they save a tenth of the run
 * (fewer faults, and fewer TLB misses over a heap of a hundred megabytes). So it times
 * the first touch of the first region's first huge page against PROBE_PAGES small pages
 * of a mapping advised against huge pages, scaled to 512, and keeps the region (it is
 * the first arenas' memory) or gives it back. probe() -> (huge page ns, its small pages'
 * ns) of that test, or None before it.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stdint.h>
#include <sys/mman.h>
#include <time.h>

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

static void install(void) {
    if (!installed) {
        PyObject_GetArenaAllocator(&before);
        PyObjectArenaAllocator mine = {NULL, arena_alloc, arena_free};
        PyObject_SetArenaAllocator(&mine);
        installed = 1;
    }
}

static PyObject *enable(PyObject *self, PyObject *unused) {
    install();
    Py_RETURN_NONE;
}

#define PROBE_PAGES 32
static long long probe_huge_ns = -1, probe_small_ns = -1;

static long long now_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

/* 1 when the first huge page of a fresh region costs less than `margin` times what its
 * small pages would. */
static int huge_pages_pay(double margin) {
    if (!regions && new_region() < 0)
        return 0;
    long long t0 = now_ns();
    *(volatile char *)regions->start = 0; /* memory no arena holds yet: pymalloc writes it */
    long long huge = now_ns() - t0;
    size_t n = (size_t)PROBE_PAGES * 4096;
    char *small = mmap(NULL, n, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (small == MAP_FAILED)
        return 0;
#ifdef MADV_NOHUGEPAGE
    madvise(small, n, MADV_NOHUGEPAGE);
#endif
    t0 = now_ns();
    for (size_t o = 0; o < n; o += 4096)
        ((volatile char *)small)[o] = 0;
    long long pages = now_ns() - t0;
    munmap(small, n);
    probe_huge_ns = huge;
    probe_small_ns = pages * (long long)(HUGE_PAGE / n);
    return (double)huge < (double)probe_small_ns * margin;
}

static PyObject *enable_if_cheap(PyObject *self, PyObject *args) {
    double margin = 1.0; /* the tests pass 0: never cheap enough, the region given back */
    if (!PyArg_ParseTuple(args, "|d", &margin))
        return NULL;
    if (installed)
        Py_RETURN_TRUE;
    if (probe_huge_ns < 0 && huge_pages_pay(margin)) {
        install();
        Py_RETURN_TRUE;
    }
    /* the region goes back: nothing was handed out of it */
    for (struct region *r = regions, *next; r != NULL; r = next) {
        next = r->next;
        munmap(r->start, REGION);
        PyMem_RawFree(r);
    }
    regions = NULL;
    next_free = region_end = NULL;
    n_regions = advised = 0;
    Py_RETURN_FALSE;
}

static PyObject *probe(PyObject *self, PyObject *unused) {
    if (probe_huge_ns < 0)
        Py_RETURN_NONE;
    return Py_BuildValue("(LL)", probe_huge_ns, probe_small_ns);
}

static PyObject *stats(PyObject *self, PyObject *unused) {
    return Py_BuildValue("(Nllll)", PyBool_FromLong(installed), n_regions, advised, handed_out,
                         n_free);
}

static PyMethodDef methods[] = {
    {"enable", enable, METH_NOARGS, "Take pymalloc's arenas from huge pages from now on."},
    {"enable_if_cheap", enable_if_cheap, METH_VARARGS,
     "enable_if_cheap(margin=1.0): enable() if a huge page costs less than margin times its "
     "small pages here (timed once): installed?"},
    {"probe", probe, METH_NOARGS, "(huge page ns, its small pages' ns) of that test, or None"},
    {"stats", stats, METH_NOARGS,
     "(installed, regions, regions advised, arenas handed out, arenas on the free list)"},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT, "_hugearenas", "pymalloc's arenas from transparent huge pages.", -1,
    methods,
};

PyMODINIT_FUNC PyInit__hugearenas(void) { return PyModule_Create(&module); }
