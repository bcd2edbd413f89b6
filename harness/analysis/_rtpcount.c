/* RTP stream statistics over a stream's columns, compiled: what RtpStream.finish counts
 * with numpy, for the columns the compiled fast path hands over (memoryviews), so that a
 * capture with media is analysed without importing numpy (~0.03 s of CPU, a third of
 * a one-call capture's run).
 *
 * count(no, t, seq, ts, pt, size, clock, powers, window) -> tuple | None
 *   no, seq, ts, pt, size: int64 buffers, t: a float64 buffer, all of one length n >= 1,
 *   in frame order; clock: the payload type's clock rate; powers: a float64 buffer of
 *   (15/16)**k, k = 0 .. at least min(n - 1, window) - 1 (rtpstats.powers);
 *   window: the jitter window (rtp.JITTER_WINDOW).
 *   Gives (packets, bytes, pts, first_t, last_t, first_frame, last_frame, expected, lost,
 *   duplicates, reordered, gaps, gap_missing, max_gap, max_gap_frames, max_gap_times,
 *   jitter), pts a sorted tuple; None for columns it does not take (empty, unequal).
 *
 * ascending(no) -> bool: whether an int64 buffer never goes down (rtp._joined).
 *
 * The numbers are numpy's to the bit: integers are exact either way, and each float is
 * made by the same IEEE operations in the same order (built with -ffp-contract=off: no
 * fused multiply-subtract), numpy's pairwise summation included (rtpstats.pairwise_sum
 * is the reference; tests/unit/test_analysis_streams.py compares all three).
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

/* numpy's pairwise sum of a float64 array (8 lanes, blocks of 128): rtpstats.pairwise_sum */
static double pairwise_sum(const double *a, Py_ssize_t n) {
    if (n < 8) {
        double res = 0.0;
        for (Py_ssize_t i = 0; i < n; i++)
            res += a[i];
        return res;
    }
    if (n <= 128) {
        double r[8];
        for (int k = 0; k < 8; k++)
            r[k] = a[k];
        Py_ssize_t i = 8, whole = n - n % 8;
        for (; i < whole; i += 8)
            for (int k = 0; k < 8; k++)
                r[k] += a[i + k];
        double res = ((r[0] + r[1]) + (r[2] + r[3])) + ((r[4] + r[5]) + (r[6] + r[7]));
        for (; i < n; i++)
            res += a[i];
        return res;
    }
    Py_ssize_t half = n / 2;
    half -= half % 8;
    return pairwise_sum(a, half) + pairwise_sum(a + half, n - half);
}

typedef struct {
    int64_t value, index;
} Item;

static int by_value_then_index(const void *x, const void *y) {
    const Item *a = x, *b = y;
    if (a->value != b->value)
        return a->value < b->value ? -1 : 1;
    return a->index < b->index ? -1 : (a->index > b->index);
}

static int by_int64(const void *x, const void *y) {
    int64_t a = *(const int64_t *)x, b = *(const int64_t *)y;
    return a < b ? -1 : (a > b);
}

typedef struct {
    int64_t expected, lost, duplicates, reordered, gaps, gap_missing;
} SeqCounts;

/* Extended sequence numbers (RFC 3550 A.3): each step a signed 16-bit difference. */
static int sequence(const int64_t *seq, Py_ssize_t n, SeqCounts *c) {
    int64_t min_step = 0;
    for (Py_ssize_t i = 1; i < n; i++) {
        int64_t s = (((seq[i] - seq[i - 1]) + 0x8000) & 0xFFFF) - 0x8000;
        if (i == 1 || s < min_step)
            min_step = s;
    }
    if (n == 1 || min_step >= 0) { /* never going back: no sort (RtpStream.finish) */
        int64_t distinct = 1, total = 0;
        for (Py_ssize_t i = 1; i < n; i++) {
            int64_t s = (((seq[i] - seq[i - 1]) + 0x8000) & 0xFFFF) - 0x8000;
            distinct += s != 0;
            total += s;
            if (s > 1) {
                c->gaps++;
                c->gap_missing += s - 1;
            }
        }
        c->expected = total + 1;
        c->duplicates = n - distinct;
        c->lost = c->expected - distinct > 0 ? c->expected - distinct : 0;
        return 0;
    }
    int64_t *ext = PyMem_Malloc(sizeof(int64_t) * (size_t)n);
    Item *items = PyMem_Malloc(sizeof(Item) * (size_t)n);
    char *is_first = PyMem_Calloc((size_t)n, 1);
    if (ext == NULL || items == NULL || is_first == NULL) {
        PyMem_Free(ext);
        PyMem_Free(items);
        PyMem_Free(is_first);
        PyErr_NoMemory();
        return -1;
    }
    ext[0] = seq[0];
    for (Py_ssize_t i = 1; i < n; i++)
        ext[i] = ext[i - 1] + ((((seq[i] - seq[i - 1]) + 0x8000) & 0xFFFF) - 0x8000);
    for (Py_ssize_t i = 0; i < n; i++) {
        items[i].value = ext[i];
        items[i].index = i;
    }
    qsort(items, (size_t)n, sizeof(Item), by_value_then_index);
    int64_t unique = 0;
    for (Py_ssize_t i = 0; i < n; i++)
        if (i == 0 || items[i].value != items[i - 1].value) { /* its first occurrence */
            is_first[items[i].index] = 1;
            unique++;
        }
    c->expected = items[n - 1].value - items[0].value + 1;
    c->duplicates = n - unique;
    c->lost = c->expected - unique > 0 ? c->expected - unique : 0;
    int64_t highest = ext[0];
    for (Py_ssize_t i = 1; i < n; i++) {
        int64_t jump = ext[i] - highest;
        if (jump < 0 && is_first[i])
            c->reordered++;
        if (jump > 1) {
            c->gaps++;
            c->gap_missing += jump - 1;
        }
        if (ext[i] > highest)
            highest = ext[i];
    }
    PyMem_Free(ext);
    PyMem_Free(items);
    PyMem_Free(is_first);
    return 0;
}

/* The payload types, sorted and distinct, as a tuple. */
static PyObject *payload_types(const int64_t *pt, Py_ssize_t n) {
    Py_ssize_t i = 1;
    while (i < n && pt[i] == pt[0])
        i++;
    if (i == n) /* the usual stream: one payload type */
        return Py_BuildValue("(L)", (long long)pt[0]);
    int64_t *sorted = PyMem_Malloc(sizeof(int64_t) * (size_t)n);
    if (sorted == NULL)
        return PyErr_NoMemory();
    memcpy(sorted, pt, sizeof(int64_t) * (size_t)n);
    qsort(sorted, (size_t)n, sizeof(int64_t), by_int64);
    PyObject *out = PyList_New(0);
    for (Py_ssize_t k = 0; out != NULL && k < n; k++) {
        if (k && sorted[k] == sorted[k - 1])
            continue;
        PyObject *v = PyLong_FromLongLong(sorted[k]);
        if (v == NULL || PyList_Append(out, v) < 0)
            Py_CLEAR(out);
        Py_XDECREF(v);
    }
    PyMem_Free(sorted);
    if (out == NULL)
        return NULL;
    PyObject *tuple = PyList_AsTuple(out);
    Py_DECREF(out);
    return tuple;
}

static PyObject *count(PyObject *self, PyObject *args) {
    Py_buffer b[8];
    long long clock;
    Py_ssize_t window;
    PyObject *result = NULL;
    memset(b, 0, sizeof(b));
    if (!PyArg_ParseTuple(args, "y*y*y*y*y*y*Ly*n", &b[0], &b[1], &b[2], &b[3], &b[4], &b[5],
                          &clock, &b[6], &window))
        return NULL;
    Py_ssize_t n = b[0].len / 8;
    int ok = n >= 1 && window >= 1;
    for (int k = 0; k < 6; k++)
        ok = ok && b[k].len == n * 8;
    Py_ssize_t m = n - 1 < window ? n - 1 : window; /* jitter terms */
    ok = ok && b[6].len >= m * 8;
    if (!ok) {
        result = Py_NewRef(Py_None);
        goto done;
    }
    const int64_t *no = b[0].buf, *seq = b[2].buf, *ts = b[3].buf, *pt = b[4].buf;
    const int64_t *size = b[5].buf;
    const double *t = b[1].buf, *powers = b[6].buf;
    int64_t bytes = 0;
    for (Py_ssize_t i = 0; i < n; i++)
        bytes += size[i];
    SeqCounts c = {0, 0, 0, 0, 0, 0};
    if (sequence(seq, n, &c) < 0)
        goto done;
    double max_gap = 0.0, jitter = 0.0;
    Py_ssize_t at = 0;
    if (n > 1) {
        max_gap = t[1] - t[0];
        for (Py_ssize_t i = 1; i < n - 1; i++) {
            double dt = t[i + 1] - t[i];
            if (dt > max_gap) { /* the first largest, as argmax */
                max_gap = dt;
                at = i;
            }
        }
        double *products = PyMem_Malloc(sizeof(double) * (size_t)m);
        if (products == NULL) {
            PyErr_NoMemory();
            goto done;
        }
        double rate = (double)clock;
        for (Py_ssize_t k = 0, i = n - 1 - m; k < m; k++, i++) { /* the last m differences */
            double dt = t[i + 1] - t[i];
            int64_t dts = (((ts[i + 1] - ts[i]) + 0x80000000LL) & 0xFFFFFFFFLL) - 0x80000000LL;
            double scaled = dt * rate;
            double d = fabs(scaled - (double)dts);
            products[k] = d * powers[m - 1 - k];
        }
        jitter = pairwise_sum(products, m) / 16;
        PyMem_Free(products);
    }
    PyObject *pts = payload_types(pt, n);
    if (pts == NULL)
        goto done;
    /* one packet: no gap, and the gap's frames and times keep RtpStream's (0, 0) */
    long long frame_a = n > 1 ? (long long)no[at] : 0, frame_b = n > 1 ? (long long)no[at + 1] : 0;
    double time_a = n > 1 ? t[at] : 0.0, time_b = n > 1 ? t[at + 1] : 0.0;
    result = Py_BuildValue(
        "(nLNddLLLLLLLLd(LL)(dd)d)", n, (long long)bytes, pts, t[0], t[n - 1],
        (long long)no[0], (long long)no[n - 1], (long long)c.expected, (long long)c.lost,
        (long long)c.duplicates, (long long)c.reordered, (long long)c.gaps,
        (long long)c.gap_missing, max_gap, frame_a, frame_b, time_a, time_b, jitter);
done:
    for (int k = 0; k < 7; k++)
        if (b[k].obj != NULL)
            PyBuffer_Release(&b[k]);
    return result;
}

/* ascending(no) -> bool: whether an int64 buffer never goes down (chunks joined in frame
 * order need no sort). */
static PyObject *ascending(PyObject *self, PyObject *arg) {
    Py_buffer b;
    if (PyObject_GetBuffer(arg, &b, PyBUF_SIMPLE) < 0)
        return NULL;
    const int64_t *v = b.buf;
    Py_ssize_t n = b.len / 8;
    int up = 1;
    for (Py_ssize_t i = 1; up && i < n; i++)
        up = v[i - 1] <= v[i];
    PyBuffer_Release(&b);
    return PyBool_FromLong(up);
}

static PyMethodDef methods[] = {
    {"ascending", ascending, METH_O, "ascending(no) -> bool: an int64 buffer never goes down."},
    {"count", count, METH_VARARGS,
     "count(no, t, seq, ts, pt, size, clock, powers, window) -> tuple | None: "
     "RtpStream.finish's numbers for a stream's columns."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT, "_rtpcount", "RTP stream statistics over columns, compiled.", -1,
    methods,
};

PyMODINIT_FUNC PyInit__rtpcount(void) { return PyModule_Create(&module); }
