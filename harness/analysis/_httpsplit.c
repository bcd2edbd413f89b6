/* HTTP/1.1 message framing over a reassembled TCP stream, compiled: http.read_http runs
 * once per TCP segment of an HTTP connection (Janus' REST API: every request and every
 * long-poll reply, bodies often chunked and split over segments), and in Python its head
 * and chunk parsing is most of the cost of the TCP side of a handshake-heavy capture.
 *
 * split_http(buf, cls) -> (messages, used) | None
 *   buf: bytes or bytearray, the unread bytes of one direction;
 *   cls: called as cls(start, head, body, upgrade) for each complete message;
 *   used: bytes taken by the messages (the caller drops them);
 *   None when this call meets anything the Python version would read with rules this
 *   code does not repeat: a head with a non-ASCII byte (latin-1 case and white space), a
 *   chunk-size line other than plain hex digits (int(x, 16) takes signs, "0x", "_",
 *   white space, extensions), or a number too long for 64 bits. http.read_http_python then
 *   reads the whole call; it is the reference the tests compare this with.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stdint.h>
#include <string.h>

#define DECLINE (-2)  /* hand the call to the Python version */
#define PARTIAL (-1)  /* the message is not complete yet */

/* str.strip()'s white space among ASCII characters */
static int is_space(unsigned char c) {
    return c == ' ' || (c >= 0x09 && c <= 0x0D) || (c >= 0x1C && c <= 0x1F);
}

static unsigned char lower(unsigned char c) {
    return (c >= 'A' && c <= 'Z') ? (unsigned char)(c + 32) : c;
}

/* First index >= from of "\r\n" (want == 2) or "\r\n\r\n" (want == 4) in b[0:n], or -1. */
static Py_ssize_t find_crlf(const unsigned char *b, Py_ssize_t n, Py_ssize_t from, int want) {
    Py_ssize_t i = from;
    while (i <= n - want) {
        const unsigned char *p = memchr(b + i, '\r', (size_t)(n - want + 1 - i));
        if (p == NULL)
            return -1;
        i = p - b; /* (b[i + 1] and, for want == 4, b[i + 3] are within b[0:n]) */
        if (p[1] == '\n' && (want == 2 || (p[2] == '\r' && p[3] == '\n')))
            return i;
        i++;
    }
    return -1;
}

/* Is any byte of b[s:e] 0x80 or above? Eight at a time. */
static int any_high(const unsigned char *b, Py_ssize_t s, Py_ssize_t e) {
    Py_ssize_t i = s;
    for (; i + 8 <= e; i += 8) {
        uint64_t w;
        memcpy(&w, b + i, 8);
        if (w & 0x8080808080808080ULL)
            return 1;
    }
    for (; i < e; i++)
        if (b[i] >= 0x80)
            return 1;
    return 0;
}

/* Case-insensitive: does b[s:e] contain the lower-case ASCII word `w`? */
static int contains(const unsigned char *b, Py_ssize_t s, Py_ssize_t e, const char *w) {
    Py_ssize_t k = (Py_ssize_t)strlen(w);
    for (Py_ssize_t i = s; i + k <= e; i++) {
        Py_ssize_t j = 0;
        while (j < k && lower(b[i + j]) == (unsigned char)w[j])
            j++;
        if (j == k)
            return 1;
    }
    return 0;
}

static int equals(const unsigned char *b, Py_ssize_t s, Py_ssize_t e, const char *w,
                  Py_ssize_t k) {
    if (e - s != k)
        return 0;
    for (Py_ssize_t j = 0; j < k; j++)
        if (lower(b[s + j]) != (unsigned char)w[j])
            return 0;
    return 1;
}

typedef struct {
    Py_ssize_t start_end; /* the start line is b[off:start_end] */
    int chunked, upgrade;
    long long length;
} Head;

enum { TE, CL, UP, NAMES };
static const char *NAME[NAMES] = {"transfer-encoding", "content-length", "upgrade"};
static const Py_ssize_t NAME_LEN[NAMES] = {17, 14, 7};

/* The head b[off:end] (without its blank line), as http._head reads it; DECLINE or 0. */
static int parse_head(const unsigned char *b, Py_ssize_t off, Py_ssize_t end, Head *h) {
    Py_ssize_t vs[NAMES] = {0, 0, 0}, ve[NAMES] = {0, 0, 0};
    int found[NAMES] = {0, 0, 0};
    if (any_high(b, off, end))
        return DECLINE;
    Py_ssize_t eol = find_crlf(b, end, off, 2);
    h->start_end = eol < 0 ? end : eol;
    Py_ssize_t ls = h->start_end;
    while (ls < end) { /* ls is at a "\r\n" that ends the previous line */
        ls += 2;
        Py_ssize_t le = find_crlf(b, end, ls, 2);
        if (le < 0)
            le = end;
        const unsigned char *colon = memchr(b + ls, ':', (size_t)(le - ls));
        Py_ssize_t ks = ls, ke = colon ? colon - b : le;
        Py_ssize_t s = colon ? ke + 1 : le, e = le;
        while (ks < ke && is_space(b[ks]))
            ks++;
        while (ke > ks && is_space(b[ke - 1]))
            ke--;
        while (s < e && is_space(b[s]))
            s++;
        while (e > s && is_space(b[e - 1]))
            e--;
        for (int k = 0; k < NAMES; k++)
            if (equals(b, ks, ke, NAME[k], NAME_LEN[k])) {
                found[k] = 1;
                vs[k] = s;
                ve[k] = e;
            }
        ls = le;
    }
    h->chunked = found[TE] && contains(b, vs[TE], ve[TE], "chunked");
    h->length = 0;
    if (!h->chunked && found[CL] && ve[CL] > vs[CL]) {
        Py_ssize_t i = vs[CL];
        while (i < ve[CL] && b[i] >= '0' && b[i] <= '9')
            i++;
        if (i == ve[CL]) { /* str.isdigit(): int() of it */
            if (ve[CL] - vs[CL] > 18)
                return DECLINE;
            for (i = vs[CL]; i < ve[CL]; i++)
                h->length = h->length * 10 + (b[i] - '0');
        }
    }
    /* start.split(" ")[1:2] == ["101"] and "websocket" in upgrade.lower() */
    h->upgrade = 0;
    const unsigned char *sp = memchr(b + off, ' ', (size_t)(h->start_end - off));
    if (sp != NULL && found[UP]) {
        Py_ssize_t f = sp - b + 1, fe = f;
        while (fe < h->start_end && b[fe] != ' ')
            fe++;
        h->upgrade = fe - f == 3 && memcmp(b + f, "101", 3) == 0 &&
                     contains(b, vs[UP], ve[UP], "websocket");
    }
    return 0;
}

/* http._dechunk from pos: the body's end in *pos (or PARTIAL / DECLINE); pieces into
 * `spans` (start, size pairs) when not NULL, their total in *total. */
static int dechunk(const unsigned char *b, Py_ssize_t n, Py_ssize_t *pos, Py_ssize_t *total,
                   Py_ssize_t *spans, Py_ssize_t *nspans, Py_ssize_t cap) {
    Py_ssize_t p = *pos;
    *total = 0;
    *nspans = 0;
    for (;;) {
        Py_ssize_t eol = find_crlf(b, n, p, 2);
        if (eol < 0)
            return PARTIAL;
        if (eol == p || eol - p > 15)
            return DECLINE;
        long long size = 0;
        for (Py_ssize_t i = p; i < eol; i++) {
            unsigned char c = b[i];
            int v = (c >= '0' && c <= '9') ? c - '0'
                    : (c >= 'a' && c <= 'f') ? c - 'a' + 10
                    : (c >= 'A' && c <= 'F') ? c - 'A' + 10
                                             : -1;
            if (v < 0)
                return DECLINE;
            size = size * 16 + v;
        }
        Py_ssize_t start = eol + 2;
        if (size == 0) {
            Py_ssize_t trailer = find_crlf(b, n, start, 2);
            if (trailer < 0)
                return PARTIAL;
            *pos = trailer + 2;
            return 0;
        }
        if (size > n || start + size + 2 > n)
            return PARTIAL;
        if (spans != NULL) {
            if (*nspans >= cap)
                return DECLINE;
            spans[2 * *nspans] = start;
            spans[2 * *nspans + 1] = (Py_ssize_t)size;
        }
        (*nspans)++;
        *total += (Py_ssize_t)size;
        p = start + (Py_ssize_t)size + 2;
    }
}

#define MAX_CHUNKS 256

/* The message at `off`: its head in *h, its body in *body (new reference), its end in *next. */
static int frame(const unsigned char *b, Py_ssize_t n, Py_ssize_t off, Head *h,
                 Py_ssize_t *head_end, PyObject **body, Py_ssize_t *next) {
    Py_ssize_t end = find_crlf(b, n, off, 4);
    if (end < 0)
        return PARTIAL;
    if (parse_head(b, off, end, h) == DECLINE)
        return DECLINE;
    Py_ssize_t pos = end + 4;
    if (h->chunked) {
        Py_ssize_t spans[2 * MAX_CHUNKS], nspans, total;
        int r = dechunk(b, n, &pos, &total, spans, &nspans, MAX_CHUNKS);
        if (r != 0)
            return r;
        *body = PyBytes_FromStringAndSize(NULL, total);
        if (*body == NULL)
            return -3;
        char *out = PyBytes_AS_STRING(*body);
        for (Py_ssize_t k = 0; k < nspans; k++) {
            memcpy(out, b + spans[2 * k], (size_t)spans[2 * k + 1]);
            out += spans[2 * k + 1];
        }
    } else {
        if (h->length > n - pos)
            return PARTIAL;
        *body = PyBytes_FromStringAndSize((const char *)b + pos, (Py_ssize_t)h->length);
        if (*body == NULL)
            return -3;
        pos += (Py_ssize_t)h->length;
    }
    *head_end = end + 4;
    *next = pos;
    return 0;
}

/* One message at `off`: a (start, head, body, upgrade) tuple in *item, its end in *next. */
static int message(const unsigned char *b, Py_ssize_t n, Py_ssize_t off, PyObject **item,
                   Py_ssize_t *next, int *upgrade) {
    Head h;
    Py_ssize_t head_end;
    PyObject *body;
    int r = frame(b, n, off, &h, &head_end, &body, next);
    if (r != 0)
        return r;
    *item = Py_BuildValue("(s#y#NO)", (const char *)b + off, h.start_end - off,
                          (const char *)b + off, head_end - off, body,
                          h.upgrade ? Py_True : Py_False);
    if (*item == NULL)
        return -3;
    *upgrade = h.upgrade;
    return 0;
}

static PyObject *split_http(PyObject *self, PyObject *args) {
    PyObject *obj, *cls;
    if (!PyArg_ParseTuple(args, "OO", &obj, &cls))
        return NULL;
    Py_buffer view;
    if (PyObject_GetBuffer(obj, &view, PyBUF_SIMPLE) < 0)
        return NULL;
    const unsigned char *b = view.buf;
    Py_ssize_t n = view.len, off = 0;
    PyObject *items = PyList_New(0);
    int r = 0;
    while (items != NULL) {
        PyObject *item;
        Py_ssize_t next;
        int upgrade;
        r = message(b, n, off, &item, &next, &upgrade);
        if (r != 0)
            break;
        if (PyList_Append(items, item) < 0) {
            Py_DECREF(item);
            r = -3;
            break;
        }
        Py_DECREF(item);
        off = next;
        if (upgrade)
            break;
    }
    PyBuffer_Release(&view);
    if (items == NULL || r == -3) {
        Py_XDECREF(items);
        return NULL;
    }
    if (r == DECLINE) {
        Py_DECREF(items);
        Py_RETURN_NONE;
    }
    /* the messages are built once the buffer is released: cls is Python code */
    Py_ssize_t count = PyList_GET_SIZE(items);
    for (Py_ssize_t k = 0; k < count; k++) {
        PyObject *msg = PyObject_Call(cls, PyList_GET_ITEM(items, k), NULL);
        if (msg == NULL) {
            Py_DECREF(items);
            return NULL;
        }
        PyList_SetItem(items, k, msg); /* steals msg, drops the tuple */
    }
    return Py_BuildValue("(Nn)", items, off);
}

/* http.without_jsep: no "jsep", no "\u", no NUL, fewer than 100 '[' and '{'. */
static int without_jsep(const unsigned char *b, Py_ssize_t n) {
    const unsigned char *p = b, *e = b + n;
    if (memchr(b, 0, (size_t)n) != NULL || memmem(b, (size_t)n, "jsep", 4) != NULL)
        return 0;
    while ((p = memchr(p, '\\', (size_t)(e - p))) != NULL && ++p < e)
        if (*p == 'u')
            return 0;
    /* '[' and '{' counted eight bytes at a time: they differ in bit 0x20 only, so a byte
     * is one of them when it is 0x7B with that bit set; the zero bytes of w ^ 0x7B.. are
     * found exactly (no carry crosses a byte) */
    const uint64_t low7 = 0x7F7F7F7F7F7F7F7FULL;
    Py_ssize_t opens = 0, i = 0;
    for (; i + 8 <= n; i += 8) {
        uint64_t w;
        memcpy(&w, b + i, 8);
        uint64_t t = (w | 0x2020202020202020ULL) ^ 0x7B7B7B7B7B7B7B7BULL;
        opens += __builtin_popcountll(~(((t & low7) + low7) | t | low7));
    }
    for (; i < n; i++)
        opens += (b[i] == '[') | (b[i] == '{');
    return opens < 100;
}

static PyObject *fallback = NULL; /* http.read_bodies_python, set by http.py */

static PyObject *set_fallback(PyObject *self, PyObject *f) {
    Py_INCREF(f);
    Py_XSETREF(fallback, f);
    Py_RETURN_NONE;
}

/* http.without_jsep(body), compiled: one pass over the body instead of six. */
static PyObject *py_without_jsep(PyObject *self, PyObject *obj) {
    Py_buffer view;
    if (PyObject_GetBuffer(obj, &view, PyBUF_SIMPLE) < 0)
        return NULL;
    int r = without_jsep(view.buf, view.len);
    PyBuffer_Release(&view);
    return PyBool_FromLong(r);
}

/* What tcpstreams keeps of split_http: the messages' count, the bytes used, whether the
 * last is a WebSocket upgrade, and their non-empty bodies. No message object is made. Where split_http would decline, the
 * fallback reads (buf, head) instead: this is http.read_bodies itself, no wrapper. */
static PyObject *bodies(PyObject *self, PyObject *const *args, Py_ssize_t nargs) {
    if (nargs != 2) {
        PyErr_SetString(PyExc_TypeError, "bodies(buf, head)");
        return NULL;
    }
    PyObject *obj = args[0];
    Py_buffer view;
    if (PyObject_GetBuffer(obj, &view, PyBUF_SIMPLE) < 0)
        return NULL;
    const unsigned char *b = view.buf;
    Py_ssize_t n = view.len, off = 0, count = 0;
    PyObject *out = PyList_New(0);
    int r = 0, upgrade = 0;
    while (out != NULL) {
        Head h;
        Py_ssize_t head_end, next;
        PyObject *body;
        r = frame(b, n, off, &h, &head_end, &body, &next);
        if (r != 0)
            break;
        count++;
        off = next;
        upgrade = h.upgrade;
        Py_ssize_t size = PyBytes_GET_SIZE(body);
        if (size && PyList_Append(out, body) < 0)
            r = -3;
        Py_DECREF(body);
        if (r != 0 || upgrade)
            break;
    }
    PyBuffer_Release(&view);
    if (out == NULL || r == -3) {
        Py_XDECREF(out);
        return NULL;
    }
    if (r == DECLINE) {
        Py_DECREF(out);
        if (fallback == NULL) {
            PyErr_SetString(PyExc_RuntimeError, "_httpsplit.bodies: no fallback set");
            return NULL;
        }
        return PyObject_CallFunctionObjArgs(fallback, obj, args[1], NULL);
    }
    PyObject *res = PyTuple_New(5), *messages = PyLong_FromSsize_t(count);
    PyObject *used = PyLong_FromSsize_t(off);
    if (res == NULL || messages == NULL || used == NULL) {
        Py_XDECREF(res);
        Py_XDECREF(messages);
        Py_XDECREF(used);
        Py_DECREF(out);
        return NULL;
    }
    PyTuple_SET_ITEM(res, 0, messages);
    PyTuple_SET_ITEM(res, 1, used);
    PyTuple_SET_ITEM(res, 2, Py_NewRef(Py_None));
    PyTuple_SET_ITEM(res, 3, PyBool_FromLong(upgrade));
    PyTuple_SET_ITEM(res, 4, out);
    return res;
}

static PyMethodDef methods[] = {
    {"split_http", split_http, METH_VARARGS,
     "split_http(buf, cls) -> (messages, used) | None: http.read_http_python, compiled."},
    {"bodies", (PyCFunction)(void (*)(void))bodies, METH_FASTCALL,
     "bodies(buf, head) -> (count, used, None, upgrade, bodies): http.read_bodies."},
    {"without_jsep", py_without_jsep, METH_O, "without_jsep(body) -> bool: http.without_jsep."},
    {"set_fallback", set_fallback, METH_O,
     "set_fallback(f): what bodies() calls with (buf, head) for input it declines."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT, "_httpsplit", "HTTP/1.1 message framing, compiled.", -1, methods,
};

PyMODINIT_FUNC PyInit__httpsplit(void) { return PyModule_Create(&module); }
