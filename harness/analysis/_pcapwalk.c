/* The one loop of the analyser that numpy cannot do: following a classic pcap's
 * record chain (each record's offset depends on the previous record's length).
 * In Python it costs ~0.35 us a frame, a fifth of a whole `harness analyze` run on an
 * RTP-heavy file; here it is a few ns. pcapio.py keeps the Python loop as the
 * fallback and as the reference the tests compare this with.
 *
 * walk(data, big_endian, max_frame, scale) -> (starts, lengths, times, end, broke)
 *   starts:  the offset of each whole record's frame bytes (native int64s);
 *   lengths: each record's captured length (native int64s);
 *   times:   each record's time, seconds + fraction * scale (native float64s: the same
 *            two roundings as Python's `sec + frac * scale`, pyproject builds this file
 *            with -ffp-contract=off so no fused multiply-add changes a last bit);
 *   end:     the offset after the last whole record (the Python loop's `off`);
 *   broke:   True if a record's length ran past the file or over max_frame.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stdint.h>
#include <string.h>

static Py_ssize_t u32(const unsigned char *p, int big) {
    return big ? ((Py_ssize_t)p[0] << 24 | p[1] << 16 | p[2] << 8 | p[3])
               : ((Py_ssize_t)p[3] << 24 | p[2] << 16 | p[1] << 8 | p[0]);
}

static PyObject *walk(PyObject *self, PyObject *args) {
    Py_buffer buf;
    int big;
    Py_ssize_t max_frame;
    double scale;
    (void)self;
    if (!PyArg_ParseTuple(args, "y*pnd", &buf, &big, &max_frame, &scale))
        return NULL;
    const unsigned char *d = buf.buf;
    Py_ssize_t n = buf.len, off = 24, last = n - 16, count = 0;
    /* A record is at least 16 bytes: that bounds the count, so one allocation each. */
    Py_ssize_t cap = n > 24 ? (n - 24) / 16 + 1 : 1;
    int broke = 0;
    PyObject *starts = PyBytes_FromStringAndSize(NULL, cap * 8);
    PyObject *lengths = PyBytes_FromStringAndSize(NULL, cap * 8);
    PyObject *times = PyBytes_FromStringAndSize(NULL, cap * 8);
    if (!starts || !lengths || !times)
        goto fail;
    int64_t *s = (int64_t *)PyBytes_AS_STRING(starts), *l = (int64_t *)PyBytes_AS_STRING(lengths);
    double *t = (double *)PyBytes_AS_STRING(times);
    while (off <= last) {
        /* Each record's place is read from the one before: a chain of dependent loads
         * that the CPU cannot run ahead on, so fetch the bytes a few records ahead. */
        if (off + 4096 < n)
            __builtin_prefetch(d + off + 4096);
        Py_ssize_t incl = u32(d + off + 8, big);
        Py_ssize_t start = off + 16;
        if (start + incl > n || incl > max_frame) {
            broke = 1;
            break;
        }
        double sec = (double)u32(d + off, big), frac = (double)u32(d + off + 4, big);
        double part = frac * scale;
        t[count] = sec + part;
        l[count] = incl;
        s[count++] = start;
        off = start + incl;
    }
    PyBuffer_Release(&buf);
    if (_PyBytes_Resize(&starts, count * 8) < 0 || _PyBytes_Resize(&lengths, count * 8) < 0 ||
        _PyBytes_Resize(&times, count * 8) < 0) {
        Py_XDECREF(starts);
        Py_XDECREF(lengths);
        Py_XDECREF(times);
        return NULL;
    }
    return Py_BuildValue("NNNnO", starts, lengths, times, off, broke ? Py_True : Py_False);
fail:
    PyBuffer_Release(&buf);
    Py_XDECREF(starts);
    Py_XDECREF(lengths);
    Py_XDECREF(times);
    return NULL;
}

static PyMethodDef methods[] = {
    {"walk", walk, METH_VARARGS, "Offsets, lengths and times of a classic pcap's records."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {PyModuleDef_HEAD_INIT, "_pcapwalk", NULL, -1, methods};

PyMODINIT_FUNC PyInit__pcapwalk(void) { return PyModule_Create(&module); }
