/* The one loop of the analyser that numpy cannot do: following a classic pcap's
 * record chain (each record's offset depends on the previous record's length).
 * In Python it costs ~0.35 us a frame, a fifth of a whole `harness analyze` run on an
 * RTP-heavy file; here it is a few ns. pcapio.py keeps the Python loop as the
 * fallback and as the reference the tests compare this with.
 *
 * walk(data, big_endian, max_frame) -> (starts, stamps, end, broke)
 *   starts: the offset of each whole record's frame bytes (native int64s);
 *   stamps: each record's two time fields, seconds and fraction (native uint32 pairs);
 *   end:    the offset after the last whole record (the Python loop's `off`);
 *   broke:  True if a record's length ran past the file or over max_frame.
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
    if (!PyArg_ParseTuple(args, "y*pn", &buf, &big, &max_frame))
        return NULL;
    const unsigned char *d = buf.buf;
    Py_ssize_t n = buf.len, off = 24, last = n - 16, count = 0, cap = 1024;
    int broke = 0;
    int64_t *starts = PyMem_Malloc(cap * sizeof(int64_t));
    uint32_t *stamps = PyMem_Malloc(cap * 2 * sizeof(uint32_t));
    if (!starts || !stamps) {
        PyMem_Free(starts);
        PyMem_Free(stamps);
        PyBuffer_Release(&buf);
        return PyErr_NoMemory();
    }
    while (off <= last) {
        Py_ssize_t incl = u32(d + off + 8, big);
        Py_ssize_t start = off + 16;
        if (start + incl > n || incl > max_frame) {
            broke = 1;
            break;
        }
        if (count == cap) {
            int64_t *more = PyMem_Realloc(starts, 2 * cap * sizeof(int64_t));
            if (more)
                starts = more;
            uint32_t *more_stamps = PyMem_Realloc(stamps, 4 * cap * sizeof(uint32_t));
            if (more_stamps)
                stamps = more_stamps;
            if (!more || !more_stamps) {
                PyMem_Free(starts);
                PyMem_Free(stamps);
                PyBuffer_Release(&buf);
                return PyErr_NoMemory();
            }
            cap *= 2;
        }
        stamps[2 * count] = (uint32_t)u32(d + off, big);
        stamps[2 * count + 1] = (uint32_t)u32(d + off + 4, big);
        starts[count++] = start;
        off = start + incl;
    }
    PyBuffer_Release(&buf);
    PyObject *out = PyBytes_FromStringAndSize((const char *)starts, count * sizeof(int64_t));
    PyObject *times = PyBytes_FromStringAndSize((const char *)stamps, count * 2 * sizeof(uint32_t));
    PyMem_Free(starts);
    PyMem_Free(stamps);
    if (!out || !times) {
        Py_XDECREF(out);
        Py_XDECREF(times);
        return NULL;
    }
    return Py_BuildValue("NNnO", out, times, off, broke ? Py_True : Py_False);
}

static PyMethodDef methods[] = {
    {"walk", walk, METH_VARARGS, "Offsets of a classic pcap's records."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {PyModuleDef_HEAD_INIT, "_pcapwalk", NULL, -1, methods};

PyMODINIT_FUNC PyInit__pcapwalk(void) { return PyModule_Create(&module); }
