/* framing.sync, compiled: where the first TURN-TCP or RFC 4571 frame is in the bytes of
 * a binary TCP stream the capture joined mid-connection. Random bytes (a database's
 * connection, say) hold a candidate offset every 40 bytes or so, and in Python each one
 * cost a call of the frame-chain check: 0.25 s for 500 such connections, most of a run.
 *
 * sync(b, turn, rfc4571) -> (turn or rfc4571, offset) | None
 *   exactly what framing.sync_python returns (the reference the tests compare this with),
 *   `turn` and `rfc4571` being the names it answers with; any bytes-like `b`.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stdint.h>
#include <string.h>

#define SCAN 4096 /* framing.SCAN */
#define CHAIN 3   /* framing.CHAIN */

static const unsigned char MAGIC[4] = {0x21, 0x12, 0xA4, 0x42};

typedef Py_ssize_t (*frame_fn)(const uint8_t *, Py_ssize_t, Py_ssize_t);

static inline Py_ssize_t be16(const uint8_t *p) { return (Py_ssize_t)(p[0] << 8 | p[1]); }

/* framing._stun_at: the length of the RFC 8489 message at i, or 0 */
static Py_ssize_t stun_at(const uint8_t *b, Py_ssize_t n, Py_ssize_t i) {
    if (i + 20 > n || b[i] >= 4 || memcmp(b + i + 4, MAGIC, 4) != 0)
        return 0;
    Py_ssize_t len = be16(b + i + 2);
    return len % 4 == 0 ? 20 + len : 0;
}

/* framing.turn_frame */
static Py_ssize_t turn_frame(const uint8_t *b, Py_ssize_t n, Py_ssize_t i) {
    if (i + 4 > n)
        return -1;
    uint8_t c = b[i];
    if (c < 4)
        return i + 20 > n ? -1 : stun_at(b, n, i);
    if (c >= 0x40 && c <= 0x4F)
        return 4 + ((be16(b + i + 2) + 3) & ~(Py_ssize_t)3);
    return 0;
}

/* framing.rfc4571_frame */
static Py_ssize_t rfc4571_frame(const uint8_t *b, Py_ssize_t n, Py_ssize_t i) {
    if (i + 3 > n)
        return -1;
    Py_ssize_t len = be16(b + i);
    uint8_t c = b[i + 2];
    if (len < 4 || !(c < 4 || (c >= 20 && c <= 63) || (c >= 128 && c <= 191)))
        return 0;
    if (c < 4 && i + 22 <= n && !stun_at(b, n, i + 2))
        return 0;
    return 2 + len;
}

/* framing._chains: frames back to back from i, up to CHAIN or the end of what arrived */
static int chains(const uint8_t *b, Py_ssize_t n, Py_ssize_t i, frame_fn frame) {
    for (int k = 0; k < CHAIN; k++) {
        Py_ssize_t m = frame(b, n, i);
        if (m == -1 || (m > 0 && i + m >= n))
            return 1;
        if (m == 0)
            return 0;
        i += m;
    }
    return 1;
}

/* framing._full_chain: CHAIN complete frames back to back from i */
static int full_chain(const uint8_t *b, Py_ssize_t n, Py_ssize_t i, frame_fn frame) {
    for (int k = 0; k < CHAIN; k++) {
        Py_ssize_t m = frame(b, n, i);
        if (m <= 0 || i + m > n)
            return 0;
        i += m;
    }
    return 1;
}

/* framing._candidates(high) at i, the bytes seen ending at `end` */
static int candidate(const uint8_t *b, Py_ssize_t end, Py_ssize_t i, unsigned high) {
    if (i + 3 > end)
        return 0;
    uint8_t c = b[i], t = b[i + 2];
    if (c >= 0x40 && c <= 0x4F && t <= high)
        return 1;
    return c <= high && (t <= 0x03 || (t >= 0x14 && t <= 0x3F) || (t >= 0x80 && t <= 0xBF));
}

/* The offset and framing (0: TURN, 1: RFC 4571) of the first frame, or -1 */
static Py_ssize_t find(const uint8_t *b, Py_ssize_t n, int *kind) {
    if (n < 4)
        return -1;
    Py_ssize_t limit = n - 4 < SCAN ? n - 4 : SCAN;
    /* offsets a magic cookie anchors (4 or 6 bytes before it), tried in order */
    static uint8_t anchored[SCAN + 1];
    memset(anchored, 0, (size_t)limit + 1);
    for (Py_ssize_t at = 4; at <= limit + 8 && at + 4 <= n; at++) {
        if (b[at] == MAGIC[0] && memcmp(b + at, MAGIC, 4) == 0) {
            if (at - 4 <= limit)
                anchored[at - 4] = 1;
            if (at - 6 >= 0 && at - 6 <= limit)
                anchored[at - 6] = 1;
        }
    }
    for (Py_ssize_t i = 0; i <= limit; i++) {
        if (!anchored[i])
            continue;
        if (stun_at(b, n, i) && chains(b, n, i, turn_frame)) {
            *kind = 0;
            return i;
        }
        if (i + 22 <= n && stun_at(b, n, i + 2) && be16(b + i) == stun_at(b, n, i + 2)) {
            *kind = 1;
            return i;
        }
    }
    unsigned high = (unsigned)((n >> 8) < 255 ? (n >> 8) : 255);
    Py_ssize_t end = n < limit + 3 ? n : limit + 3;
    for (Py_ssize_t i = 0; i < end; i++) {
        if (!candidate(b, end, i, high))
            continue;
        if (b[i] >= 0x40 && b[i] <= 0x4F && chains(b, n, i, turn_frame) &&
            full_chain(b, n, i, turn_frame)) {
            *kind = 0;
            return i;
        }
        if (full_chain(b, n, i, rfc4571_frame)) {
            *kind = 1;
            return i;
        }
    }
    return -1;
}

static PyObject *py_sync(PyObject *self, PyObject *const *args, Py_ssize_t nargs) {
    if (nargs != 3) {
        PyErr_SetString(PyExc_TypeError, "sync(b, turn, rfc4571)");
        return NULL;
    }
    Py_buffer view;
    if (PyObject_GetBuffer(args[0], &view, PyBUF_SIMPLE) < 0)
        return NULL;
    int kind = 0;
    Py_ssize_t at = find((const uint8_t *)view.buf, view.len, &kind);
    PyBuffer_Release(&view);
    if (at < 0)
        Py_RETURN_NONE;
    return Py_BuildValue("(On)", args[1 + kind], at);
}

static PyMethodDef methods[] = {
    {"sync", (PyCFunction)(void (*)(void))py_sync, METH_FASTCALL,
     "framing.sync_python(b), compiled: (framing, offset) or None."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT, "_framesync", "framing.sync, compiled.", -1, methods,
};

PyMODINIT_FUNC PyInit__framesync(void) { return PyModule_Create(&module); }
