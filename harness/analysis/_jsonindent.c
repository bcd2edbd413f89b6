/* `harness analyze --json` text: json.dumps(obj, indent=width, default=str), byte for byte.
 * With `indent`, Python 3.11's json module runs its pure-Python encoder (the C one serves
 * indent=None only): 0.076 s for the 4 MB text of a handshake-heavy capture. Its C
 * encoder's compact text, re-indented, took 0.030 s; writing the indented text here in
 * one pass into the str returned takes 0.008 s.
 *
 * dumps(obj, width) -> str | None
 *   the text, by the pure encoder's rules (json/encoder.py `_make_iterencode` with
 *   ensure_ascii and default=str); None for what it does not take on exactly (float
 *   subclasses, keys json refuses, a dict changing size under it, objects whose
 *   __class__ claims a JSON type, nesting deeper than MAX_DEPTH, any error): jsonout.py
 *   then calls json.dumps, which answers (or raises) as it always does, and which the
 *   tests compare this with.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stdint.h>
#include <string.h>

#include "floatrepr.h"

#define MAX_DEPTH 200 /* deeper (or circular) is left to json, which raises past ~990 */

/* The text is written straight into the str returned (grown, then cut to length), so
 * its 4 MB are not copied once more at the end. */
typedef struct {
    PyObject *text; /* an ASCII str of `cap` characters, `len` of them written */
    char *buf;      /* its characters */
    Py_ssize_t len, cap;
    Py_ssize_t width;
} Out;

static int grow(Out *o, Py_ssize_t n) {
    Py_ssize_t cap = o->cap * 2;
    if (cap < o->len + n)
        cap = o->len + n + 4096;
    if (PyUnicode_Resize(&o->text, cap) < 0)
        return -1;
    o->buf = (char *)PyUnicode_1BYTE_DATA(o->text);
    o->cap = cap;
    return 0;
}

/* Room for `n` more bytes; 0, or -1 with an exception. */
static inline int reserve(Out *o, Py_ssize_t n) {
    return o->len + n <= o->cap ? 0 : grow(o, n);
}

/* '\n' and `level` indents. */
static int newline(Out *o, Py_ssize_t level) {
    Py_ssize_t n = level * o->width;
    if (reserve(o, n + 1) < 0)
        return -1;
    o->buf[o->len++] = '\n';
    memset(o->buf + o->len, ' ', n);
    o->len += n;
    return 0;
}

static int put(Out *o, const char *s, Py_ssize_t n) {
    if (reserve(o, n) < 0)
        return -1;
    memcpy(o->buf + o->len, s, n);
    o->len += n;
    return 0;
}

/* 0: as is; 1: \\-letter; 2: \\u00XX (json's S_CHAR: ' '..'~' but '"' and '\\'). */
static unsigned char escape_kind[128];
static char escape_letter[128];
static const char hexdigits[] = "0123456789abcdef";

static void init_escapes(void) {
    for (int c = 0; c < 128; c++)
        escape_kind[c] = (c < ' ' || c == 127) ? 2 : 0;
    const char *from = "\"\\\b\f\n\r\t", *to = "\"\\bfnrt";
    for (int i = 0; from[i]; i++) {
        escape_kind[(unsigned char)from[i]] = 1;
        escape_letter[(unsigned char)from[i]] = to[i];
    }
}

static inline char *put_u(char *d, Py_UCS4 c) {
    *d++ = '\\';
    *d++ = 'u';
    *d++ = hexdigits[(c >> 12) & 0xf];
    *d++ = hexdigits[(c >> 8) & 0xf];
    *d++ = hexdigits[(c >> 4) & 0xf];
    *d++ = hexdigits[c & 0xf];
    return d;
}

#if PY_LITTLE_ENDIAN && defined(__GNUC__)
/* The high bit of each of the eight ASCII bytes at `p` that needs an escape (< 0x20, '"',
 * '\\', 0x7f); the borrows may flag bytes after the first one too, the first is exact. */
static inline uint64_t escapes8(const unsigned char *p) {
    const uint64_t ones = 0x0101010101010101ULL, highs = 0x8080808080808080ULL;
    uint64_t x;
    memcpy(&x, p, 8);
    uint64_t q = x ^ (ones * '"'), b = x ^ (ones * '\\');
    return (((x - ones * 0x20) | (q - ones) | (b - ones)) & ~x & highs) | ((x + ones) & highs);
}
#endif

/* How many of the ASCII characters p[0:n] need no escape (one in 70 of a summary's
 * strings has one): eight at a time where words are little-endian. */
static Py_ssize_t plain_prefix(const unsigned char *p, Py_ssize_t n) {
    Py_ssize_t i = 0;
#if PY_LITTLE_ENDIAN && defined(__GNUC__)
    for (; i + 8 <= n; i += 8) {
        uint64_t m = escapes8(p + i);
        if (m)
            return i + (__builtin_ctzll(m) >> 3);
    }
#endif
    while (i < n && !escape_kind[p[i]])
        i++;
    return i;
}

/* json's encode_basestring_ascii (c_encode_basestring_ascii): quoted, ASCII only. */
static int put_str(Out *o, PyObject *s) {
    Py_ssize_t n = PyUnicode_GET_LENGTH(s);
    if (PyUnicode_IS_ASCII(s)) {
        const unsigned char *p = PyUnicode_1BYTE_DATA(s);
        Py_ssize_t plain = plain_prefix(p, n);
        if (reserve(o, plain == n ? n + 2 : 6 * n + 2) < 0)
            return -1;
        char *d = o->buf + o->len;
        *d++ = '"';
        /* runs that need no escape, each followed by one that does (an SDP's CRLFs) */
        for (Py_ssize_t i = 0;;) {
            memcpy(d, p + i, plain);
            d += plain;
            i += plain;
            if (i == n)
                break;
            unsigned char c = p[i++];
            if (escape_kind[c] == 1) {
                *d++ = '\\';
                *d++ = escape_letter[c];
            } else {
                d = put_u(d, c);
            }
            plain = plain_prefix(p + i, n - i);
        }
        *d++ = '"';
        o->len = d - o->buf;
        return 0;
    }
    int kind = PyUnicode_KIND(s);
    const void *data = PyUnicode_DATA(s);
    if (reserve(o, 12 * n + 2) < 0)
        return -1;
    char *d = o->buf + o->len;
    *d++ = '"';
    for (Py_ssize_t i = 0; i < n; i++) {
        Py_UCS4 c = PyUnicode_READ(kind, data, i);
        if (c < 128) {
            switch (escape_kind[c]) {
            case 0:
                *d++ = (char)c;
                break;
            case 1:
                *d++ = '\\';
                *d++ = escape_letter[c];
                break;
            default:
                d = put_u(d, c);
            }
        } else if (c >= 0x10000) {
            d = put_u(d, Py_UNICODE_HIGH_SURROGATE(c));
            d = put_u(d, Py_UNICODE_LOW_SURROGATE(c));
        } else {
            d = put_u(d, c);
        }
    }
    *d++ = '"';
    o->len = d - o->buf;
    return 0;
}

/* int.__repr__ (IntEnum and other subclasses included); 0, or -1 with an exception. */
static int put_int(Out *o, PyObject *v) {
    int overflow;
    long long x = PyLong_AsLongLongAndOverflow(v, &overflow);
    if (x == -1 && PyErr_Occurred())
        return -1;
    if (!overflow) {
        char tmp[24], *e = tmp + sizeof tmp, *d = e;
        unsigned long long u = x < 0 ? 0ULL - (unsigned long long)x : (unsigned long long)x;
        do {
            *--d = (char)('0' + u % 10);
            u /= 10;
        } while (u);
        if (x < 0)
            *--d = '-';
        return put(o, d, e - d);
    }
    PyObject *r = PyLong_Type.tp_repr(v); /* may raise past 4300 digits, as json.dumps */
    if (!r)
        return -1;
    int rc = put(o, (const char *)PyUnicode_DATA(r), PyUnicode_GET_LENGTH(r));
    Py_DECREF(r);
    return rc;
}

/* json's floatstr for an exact float: NaN, Infinity, -Infinity, else float.__repr__
 * (floatrepr.h: Ryu's digits, not dtoa's). */
static int put_float(Out *o, double d) {
    if (Py_IS_NAN(d))
        return put(o, "NaN", 3);
    if (Py_IS_INFINITY(d))
        return d > 0 ? put(o, "Infinity", 8) : put(o, "-Infinity", 9);
    char r[32];
    return put(o, r, float_repr(d, r));
}

/* A hint (never a read: harmless on any address) that `p` is read soon: the values of a
 * summary lie all over the heap, and asking for the next AHEAD items of a list or dict
 * before reading the first has their loads overlap (a tenth of the time on capture c). */
#define AHEAD 16
#if defined(__GNUC__)
#define PREFETCH(p) __builtin_prefetch(p)
#else
#define PREFETCH(p) ((void)(p))
#endif

/* Results of encode(): written, error (exception set), or not taken on (no exception). */
#define DONE 0
#define FAIL (-1)
#define DECLINE (-2)

static int encode(Out *o, PyObject *v, Py_ssize_t level);

/* A list or tuple's items (held by `seq`, an exact list or tuple). */
static int encode_items(Out *o, PyObject *seq, Py_ssize_t level) {
    Py_ssize_t n = PySequence_Fast_GET_SIZE(seq);
    if (n == 0)
        return put(o, "[]", 2);
    if (put(o, "[", 1) < 0 || newline(o, level + 1) < 0)
        return FAIL;
    /* a list may change under default=str: json's `for value in lst` reads its size each step */
    for (Py_ssize_t i = 0; i < PySequence_Fast_GET_SIZE(seq); i++) {
        if (i && (put(o, ",", 1) < 0 || newline(o, level + 1) < 0))
            return FAIL;
        PyObject *item = PySequence_Fast_GET_ITEM(seq, i);
        for (Py_ssize_t j = i ? i + AHEAD : 1; j <= i + AHEAD && j < PySequence_Fast_GET_SIZE(seq); j++)
            PREFETCH(PySequence_Fast_GET_ITEM(seq, j));
        Py_INCREF(item);
        int rc = encode(o, item, level + 1);
        Py_DECREF(item);
        if (rc)
            return rc;
    }
    if (newline(o, level) < 0 || put(o, "]", 1) < 0)
        return FAIL;
    return DONE;
}

/* A dict key as json turns it into a string: str, float, True, False, None, int. */
static int encode_key(Out *o, PyObject *k) {
    if (PyUnicode_Check(k))
        return put_str(o, k) < 0 ? FAIL : DONE;
    if (PyFloat_CheckExact(k)) {
        if (put(o, "\"", 1) < 0 || put_float(o, PyFloat_AS_DOUBLE(k)) < 0)
            return FAIL;
        return put(o, "\"", 1) < 0 ? FAIL : DONE;
    }
    if (PyFloat_Check(k)) /* a subclass: json compares it with itself and infinity */
        return DECLINE;
    if (k == Py_True)
        return put(o, "\"true\"", 6) < 0 ? FAIL : DONE;
    if (k == Py_False)
        return put(o, "\"false\"", 7) < 0 ? FAIL : DONE;
    if (k == Py_None)
        return put(o, "\"null\"", 6) < 0 ? FAIL : DONE;
    if (PyLong_Check(k)) {
        if (put(o, "\"", 1) < 0 || put_int(o, k) < 0)
            return FAIL;
        return put(o, "\"", 1) < 0 ? FAIL : DONE;
    }
    return DECLINE; /* json raises TypeError (skipkeys is off) */
}

static int encode_pair(Out *o, PyObject *k, PyObject *v, Py_ssize_t level, int first) {
    if (!first && put(o, ",", 1) < 0)
        return FAIL;
    if (newline(o, level + 1) < 0)
        return FAIL;
    int rc = encode_key(o, k);
    if (rc)
        return rc;
    if (put(o, ": ", 2) < 0)
        return FAIL;
    return encode(o, v, level + 1);
}

static int encode_dict(Out *o, PyObject *d, Py_ssize_t level) {
    Py_ssize_t size = PyDict_GET_SIZE(d), pos = 0;
    if (size == 0)
        return put(o, "{}", 2);
    if (put(o, "{", 1) < 0)
        return FAIL;
    PyObject *k, *v;
    Py_ssize_t ahead = 0; /* a second walk, AHEAD entries on, only hints */
    for (int i = 0; i < AHEAD && PyDict_Next(d, &ahead, &k, &v); i++) {
        PREFETCH(k);
        PREFETCH(v);
    }
    int first = 1;
    while (PyDict_Next(d, &pos, &k, &v)) {
        PyObject *ak, *av;
        if (PyDict_Next(d, &ahead, &ak, &av)) {
            PREFETCH(ak);
            PREFETCH(av);
        }
        Py_INCREF(k);
        Py_INCREF(v);
        int rc = encode_pair(o, k, v, level, first);
        Py_DECREF(k);
        Py_DECREF(v);
        if (rc)
            return rc;
        if (PyDict_GET_SIZE(d) != size) /* json raises RuntimeError */
            return DECLINE;
        first = 0;
    }
    if (newline(o, level) < 0 || put(o, "}", 1) < 0)
        return FAIL;
    return DONE;
}

/* A dict subclass, by `dct.items()` as json does (an OrderedDict's own order). */
static int encode_mapping(Out *o, PyObject *d, Py_ssize_t level) {
    int truth = PyObject_IsTrue(d);
    if (truth < 0)
        return FAIL;
    if (!truth)
        return put(o, "{}", 2);
    PyObject *items = PyMapping_Items(d);
    if (!items)
        return FAIL;
    int rc = put(o, "{", 1) < 0 ? FAIL : DONE;
    Py_ssize_t n = PyList_GET_SIZE(items);
    for (Py_ssize_t i = 0; i < n && !rc; i++) {
        PyObject *pair = PyList_GET_ITEM(items, i);
        if (!PyTuple_CheckExact(pair) || PyTuple_GET_SIZE(pair) != 2)
            rc = DECLINE;
        else
            rc = encode_pair(o, PyTuple_GET_ITEM(pair, 0), PyTuple_GET_ITEM(pair, 1), level, i == 0);
    }
    Py_DECREF(items);
    if (rc)
        return rc;
    if (n == 0) /* true but no items: json prints the brackets on two lines */
        return DECLINE;
    if (newline(o, level) < 0 || put(o, "}", 1) < 0)
        return FAIL;
    return DONE;
}

/* One value, by json's _iterencode order of tests. */
static int encode(Out *o, PyObject *v, Py_ssize_t level) {
    if (PyUnicode_Check(v))
        return put_str(o, v) < 0 ? FAIL : DONE;
    if (v == Py_None)
        return put(o, "null", 4) < 0 ? FAIL : DONE;
    if (v == Py_True)
        return put(o, "true", 4) < 0 ? FAIL : DONE;
    if (v == Py_False)
        return put(o, "false", 5) < 0 ? FAIL : DONE;
    if (PyLong_Check(v))
        return put_int(o, v) < 0 ? FAIL : DONE;
    if (PyFloat_CheckExact(v))
        return put_float(o, PyFloat_AS_DOUBLE(v)) < 0 ? FAIL : DONE;
    if (PyFloat_Check(v))
        return DECLINE;
    if (level >= MAX_DEPTH) /* deep or circular: json's own checks answer */
        return DECLINE;
    if (PyList_CheckExact(v) || PyTuple_CheckExact(v))
        return encode_items(o, v, level);
    if (PyDict_CheckExact(v))
        return encode_dict(o, v, level);
    if (PyList_Check(v) || PyTuple_Check(v)) {
        /* a subclass: json tests `not lst`, then iterates it */
        int truth = PyObject_IsTrue(v);
        if (truth < 0)
            return FAIL;
        if (!truth)
            return put(o, "[]", 2);
        PyObject *items = PySequence_List(v);
        if (!items)
            return FAIL;
        int rc = PyList_GET_SIZE(items) ? encode_items(o, items, level) : DECLINE;
        Py_DECREF(items);
        return rc;
    }
    if (PyDict_Check(v))
        return encode_mapping(o, v, level);
    /* default=str, unless isinstance() sees a JSON type through __class__ */
    PyObject *types[] = {(PyObject *)&PyUnicode_Type, (PyObject *)&PyLong_Type,
                         (PyObject *)&PyFloat_Type,   (PyObject *)&PyList_Type,
                         (PyObject *)&PyTuple_Type,   (PyObject *)&PyDict_Type};
    for (size_t i = 0; i < sizeof types / sizeof types[0]; i++) {
        int is = PyObject_IsInstance(v, types[i]);
        if (is < 0)
            return FAIL;
        if (is)
            return DECLINE;
    }
    PyObject *s = PyObject_Str(v);
    if (!s)
        return FAIL;
    int rc = put_str(o, s) < 0 ? FAIL : DONE;
    Py_DECREF(s);
    return rc;
}

static PyObject *dumps(PyObject *self, PyObject *args) {
    PyObject *obj, *indent;
    if (!PyArg_ParseTuple(args, "OO", &obj, &indent))
        return NULL;
    if (!PyLong_Check(indent)) /* json also takes a string */
        Py_RETURN_NONE;
    Py_ssize_t width = PyLong_AsSsize_t(indent);
    if (width < 0 || width > 64) { /* json's ' ' * width: < 0 as 0; > 64 is not worth it */
        PyErr_Clear();
        Py_RETURN_NONE;
    }
    Out o = {PyUnicode_New(1 << 16, 127), NULL, 0, 1 << 16, width};
    if (!o.text)
        return NULL;
    o.buf = (char *)PyUnicode_1BYTE_DATA(o.text);
    int rc = encode(&o, obj, 0);
    if (rc == DONE && PyUnicode_Resize(&o.text, o.len) == 0)
        return o.text;
    Py_XDECREF(o.text);
    PyErr_Clear(); /* the caller's slower path raises what json.dumps raises */
    Py_RETURN_NONE;
}

static PyMethodDef methods[] = {
    {"dumps", dumps, METH_VARARGS, "json.dumps(obj, indent=width, default=str), or None."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {PyModuleDef_HEAD_INIT, "_jsonindent", NULL, -1, methods};

PyMODINIT_FUNC PyInit__jsonindent(void) {
    init_escapes();
    return PyModule_Create(&module);
}
