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
 *
 * walk_ng(data) -> (starts, lengths, times, links, linktypes, errors, truncated, secrets)
 *   the same for a pcapng image (the format Wireshark and dumpcap write: most captures
 *   users bring), block by block as pcapio._walk_ng does, which it mirrors line for line:
 *   links are each frame's interface's link type (int64s), linktypes every interface's,
 *   errors the same texts, truncated 0 or 1, secrets (type, bytes) of every decryption
 *   secrets block (a key log Wireshark embeds). Times are ticks * the interface's unit, the
 *   unit 2.0 ** -n or 10.0 ** -n as Python computes it (libm's pow, exact for 2).
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <math.h>
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


static uint32_t rd32(const unsigned char *p, int big) { return (uint32_t)u32(p, big); }

static unsigned rd16(const unsigned char *p, int big) {
    return big ? (unsigned)(p[0] << 8 | p[1]) : (unsigned)(p[1] << 8 | p[0]);
}

/* An interface's time unit from its if_tsresol option (default microseconds). */
static double tsresol(const unsigned char *d, Py_ssize_t off, Py_ssize_t end, int big) {
    while (off + 4 <= end) {
        unsigned code = rd16(d + off, big), olen = rd16(d + off + 2, big);
        if (code == 0)
            break;
        if (code == 9 && olen >= 1) {
            unsigned v = d[off + 4];
            return v & 0x80 ? ldexp(1.0, -(int)(v & 0x7F)) : pow(10.0, -(double)v);
        }
        off += 4 + ((olen + 3) & ~3u);
    }
    return 1e-6;
}

typedef struct {
    unsigned link;
    double tick;
    Py_ssize_t snap; /* the snap length, 0 for none */
} Iface;

static int note(PyObject *list, PyObject *text) {
    if (!text)
        return -1;
    int r = PyList_Append(list, text);
    Py_DECREF(text);
    return r;
}

static PyObject *walk_ng(PyObject *self, PyObject *args) {
    Py_buffer buf;
    (void)self;
    if (!PyArg_ParseTuple(args, "y*", &buf))
        return NULL;
    const unsigned char *d = buf.buf;
    Py_ssize_t n = buf.len, off = 0, count = 0, nif = 0, ifcap = 8;
    /* A packet block is at least 16 bytes: that bounds the count, so one allocation each. */
    Py_ssize_t cap = n / 16 + 1;
    int big = 0, truncated = 0;
    Iface *ifaces = PyMem_Malloc(ifcap * sizeof(Iface));
    PyObject *starts = PyBytes_FromStringAndSize(NULL, cap * 8);
    PyObject *lengths = PyBytes_FromStringAndSize(NULL, cap * 8);
    PyObject *times = PyBytes_FromStringAndSize(NULL, cap * 8);
    PyObject *links = PyBytes_FromStringAndSize(NULL, cap * 8);
    PyObject *linktypes = PyList_New(0), *errors = PyList_New(0), *secrets = PyList_New(0);
    if (!ifaces || !starts || !lengths || !times || !links || !linktypes || !errors || !secrets)
        goto fail;
    int64_t *s = (int64_t *)PyBytes_AS_STRING(starts), *l = (int64_t *)PyBytes_AS_STRING(lengths);
    int64_t *k = (int64_t *)PyBytes_AS_STRING(links);
    double *t = (double *)PyBytes_AS_STRING(times);
    while (off + 12 <= n) {
        uint32_t btype = rd32(d + off, big);
        Py_ssize_t blen = (Py_ssize_t)rd32(d + off + 4, big);
        if (btype == 0x0A0D0D0A) { /* a section header: its byte order, no interfaces yet */
            big = !(d[off + 8] == 0x4d && d[off + 9] == 0x3c && d[off + 10] == 0x2b &&
                    d[off + 11] == 0x1a);
            btype = rd32(d + off, big);
            blen = (Py_ssize_t)rd32(d + off + 4, big);
            nif = 0;
        }
        if (blen < 12 || blen % 4 || off + blen > n) {
            truncated = 1;
            if (note(errors, PyUnicode_FromFormat("block at offset %zd: bad length %zd", off,
                                                  blen)) < 0)
                goto fail;
            break;
        }
        Py_ssize_t body = off + 8;
        if (btype == 1 && blen >= 20) {
            if (nif == ifcap) {
                Iface *more = PyMem_Realloc(ifaces, 2 * ifcap * sizeof(Iface));
                if (!more)
                    goto fail;
                ifaces = more;
                ifcap *= 2;
            }
            unsigned link = rd16(d + body, big);
            ifaces[nif].link = link;
            ifaces[nif].snap = (Py_ssize_t)rd32(d + body + 4, big);
            ifaces[nif++].tick = tsresol(d, body + 8, off + blen - 4, big);
            if (note(linktypes, PyLong_FromUnsignedLong(link)) < 0)
                goto fail;
        } else if (btype == 6 && blen >= 32) {
            uint32_t ifid = rd32(d + body, big);
            uint64_t hi = rd32(d + body + 4, big), lo = rd32(d + body + 8, big);
            Py_ssize_t capl = (Py_ssize_t)rd32(d + body + 12, big);
            if ((Py_ssize_t)ifid >= nif || body + 20 + capl > off + blen - 4) {
                if (note(errors, PyUnicode_FromFormat(
                                     "packet block at offset %zd: bad interface or length",
                                     off)) < 0)
                    goto fail;
            } else {
                s[count] = body + 20;
                l[count] = capl;
                t[count] = (double)(hi << 32 | lo) * ifaces[ifid].tick;
                k[count++] = ifaces[ifid].link;
            }
        } else if (btype == 10 && blen >= 20) { /* decryption secrets */
            Py_ssize_t slen = (Py_ssize_t)rd32(d + body + 4, big);
            if (slen <= blen - 20 &&
                note(secrets, Py_BuildValue("(ky#)", (unsigned long)rd32(d + body, big),
                                            (const char *)d + body + 8, slen)) < 0)
                goto fail;
        } else if (btype == 3 && blen >= 16 && nif) {
            /* as long as it was, or as the first interface's snap length cut it */
            Py_ssize_t orig = (Py_ssize_t)rd32(d + body, big), snap = ifaces[0].snap;
            Py_ssize_t len = orig < blen - 16 ? orig : blen - 16;
            s[count] = body + 4;
            l[count] = snap && snap < len ? snap : len;
            t[count] = 0.0;
            k[count++] = ifaces[0].link;
        }
        off += blen;
    }
    if (off < n && !truncated) {
        truncated = 1;
        if (note(errors, PyUnicode_FromFormat("%zd trailing bytes after block at offset %zd",
                                              n - off, off)) < 0)
            goto fail;
    }
    PyMem_Free(ifaces);
    ifaces = NULL;
    PyBuffer_Release(&buf);
    if (_PyBytes_Resize(&starts, count * 8) < 0 || _PyBytes_Resize(&lengths, count * 8) < 0 ||
        _PyBytes_Resize(&times, count * 8) < 0 || _PyBytes_Resize(&links, count * 8) < 0) {
        Py_XDECREF(starts);
        Py_XDECREF(lengths);
        Py_XDECREF(times);
        Py_XDECREF(links);
        Py_DECREF(linktypes);
        Py_DECREF(errors);
        Py_DECREF(secrets);
        return NULL;
    }
    return Py_BuildValue("NNNNNNiN", starts, lengths, times, links, linktypes, errors, truncated,
                         secrets);
fail:
    PyMem_Free(ifaces);
    PyBuffer_Release(&buf);
    Py_XDECREF(starts);
    Py_XDECREF(lengths);
    Py_XDECREF(times);
    Py_XDECREF(links);
    Py_XDECREF(linktypes);
    Py_XDECREF(errors);
    Py_XDECREF(secrets);
    return NULL;
}

static PyMethodDef methods[] = {
    {"walk", walk, METH_VARARGS, "Offsets, lengths and times of a classic pcap's records."},
    {"walk_ng", walk_ng, METH_VARARGS, "The same, with link types and damage, of a pcapng image."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {PyModuleDef_HEAD_INIT, "_pcapwalk", NULL, -1, methods};

PyMODINIT_FUNC PyInit__pcapwalk(void) { return PyModule_Create(&module); }
