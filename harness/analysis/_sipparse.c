/* One SIP message (RFC 3261) split into its start line, headers and body, compiled:
 * sip.parse runs once per SIP message of a capture, and in Python its line by line
 * partition/strip/lower is most of the cost of SIP signalling.
 *
 * parse(p, cls) -> cls(method, status, reason, uri, headers, body) | False | None
 *   p: the bytes of one complete message;
 *   cls: sip.SipMessage, called once the message is read;
 *   False when the start line is not SIP (sip.parse_python returns None then);
 *   None when this call meets anything the Python version reads with rules this code
 *   does not repeat: a non-ASCII byte in the head (UTF-8 decoding with replacement,
 *   Unicode white space and case), or a status code or Content-Length too long for 64
 *   bits (int() of it). sip.parse_python then reads the message; it is the reference
 *   the tests compare this with.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stdint.h>
#include <string.h>

#define DECLINE (-2) /* hand the call to the Python version */
#define NOT_SIP (-1) /* the start line is not SIP */
#define FAILED (-3)  /* a Python error is set */

static const char *METHODS[] = {"INVITE", "ACK",      "BYE",    "CANCEL",  "REGISTER",
                                "OPTIONS", "PRACK",   "SUBSCRIBE", "NOTIFY", "PUBLISH",
                                "INFO",   "REFER",    "MESSAGE", "UPDATE", NULL};

/* sip.COMPACT: the compact form's letter -> the full name */
static const char *compact(unsigned char c) {
    switch (c) {
    case 'i': return "call-id";
    case 'm': return "contact";
    case 'e': return "content-encoding";
    case 'l': return "content-length";
    case 'c': return "content-type";
    case 'f': return "from";
    case 's': return "subject";
    case 'k': return "supported";
    case 't': return "to";
    case 'v': return "via";
    default: return NULL;
    }
}

/* str.strip()'s white space among ASCII characters */
static int is_space(unsigned char c) {
    return c == ' ' || (c >= 0x09 && c <= 0x0D) || (c >= 0x1C && c <= 0x1F);
}

static void strip(const unsigned char *b, Py_ssize_t *s, Py_ssize_t *e) {
    while (*s < *e && is_space(b[*s]))
        (*s)++;
    while (*e > *s && is_space(b[*e - 1]))
        (*e)--;
}

/* b[s:e] as a str (ASCII), lower-cased when asked */
static PyObject *ascii(const unsigned char *b, Py_ssize_t s, Py_ssize_t e, int lower) {
    PyObject *u = PyUnicode_New(e - s, 127);
    if (u == NULL)
        return NULL;
    Py_UCS1 *out = PyUnicode_1BYTE_DATA(u);
    if (lower) {
        for (Py_ssize_t i = s; i < e; i++)
            *out++ = (b[i] >= 'A' && b[i] <= 'Z') ? (Py_UCS1)(b[i] + 32) : b[i];
    } else if (e > s) {
        memcpy(out, b + s, (size_t)(e - s));
    }
    return u;
}

/* No byte of b[0:n] is above 0x7F (read eight at a time: the head of every message). */
static int all_ascii(const unsigned char *b, Py_ssize_t n) {
    uint64_t seen = 0, w;
    Py_ssize_t i = 0;
    for (; i + 8 <= n; i += 8) {
        memcpy(&w, b + i, 8);
        seen |= w;
    }
    for (; i < n; i++)
        seen |= b[i];
    return (seen & 0x8080808080808080ULL) == 0;
}

/* Header names, lower-cased, made once each: a capture's messages repeat a few dozen names,
 * and a name kept here (interned, its hash computed once) is shared by every message that
 * spells it in any case, where each header line made, hashed and freed its own. A slot is
 * found by a hash of the lower-cased name; a name whose slot holds another is made anew. */
#define NAME_SLOTS 256
#define NAME_LONGEST 32
static PyObject *names[NAME_SLOTS];

static PyObject *header_name(const unsigned char *b, Py_ssize_t s, Py_ssize_t e) {
    unsigned char low[NAME_LONGEST];
    Py_ssize_t n = e - s;
    unsigned h = (unsigned)n;
    if (n > NAME_LONGEST)
        return ascii(b, s, e, 1);
    for (Py_ssize_t i = 0; i < n; i++) {
        unsigned char c = b[s + i];
        low[i] = (c >= 'A' && c <= 'Z') ? (unsigned char)(c + 32) : c;
        h = h * 31 + low[i];
    }
    PyObject **slot = &names[(h ^ h >> 8) % NAME_SLOTS];
    if (*slot != NULL && PyUnicode_GET_LENGTH(*slot) == n &&
        memcmp(PyUnicode_1BYTE_DATA(*slot), low, (size_t)n) == 0)
        return Py_NewRef(*slot);
    PyObject *name = ascii(low, 0, n, 0);
    if (name != NULL && *slot == NULL) {
        PyUnicode_InternInPlace(&name);
        *slot = Py_NewRef(name);
    }
    return name;
}

/* First index >= from of the pattern `pat` (length k) in b[0:n], or -1. */
static Py_ssize_t find(const unsigned char *b, Py_ssize_t n, Py_ssize_t from, const char *pat,
                       Py_ssize_t k) {
    while (from <= n - k) {
        const unsigned char *p = memchr(b + from, pat[0], (size_t)(n - k + 1 - from));
        if (p == NULL)
            return -1;
        from = p - b;
        if (memcmp(b + from, pat, (size_t)k) == 0)
            return from;
        from++;
    }
    return -1;
}

/* The line at ls (lines end at "\n", one "\r" before it dropped): its end in *le, the
 * next line's start in *next (> end when this was the last line). */
static void line(const unsigned char *b, Py_ssize_t end, Py_ssize_t ls, Py_ssize_t *le,
                 Py_ssize_t *next) {
    const unsigned char *nl = memchr(b + ls, '\n', (size_t)(end - ls));
    if (nl == NULL) {
        *le = end;
        *next = end + 1;
        return;
    }
    *le = nl - b;
    *next = *le + 1;
    if (*le > ls && b[*le - 1] == '\r')
        (*le)--;
}

static int all_digits(const unsigned char *b, Py_ssize_t s, Py_ssize_t e) {
    if (e <= s)
        return 0;
    for (Py_ssize_t i = s; i < e; i++)
        if (b[i] < '0' || b[i] > '9')
            return 0;
    return 1;
}

static long long number(const unsigned char *b, Py_ssize_t s, Py_ssize_t e) {
    long long v = 0;
    for (Py_ssize_t i = s; i < e; i++)
        v = v * 10 + (b[i] - '0');
    return v;
}

/* The headers of lines [from, end) into `headers`, as sip.parse_python's loop reads them. */
static int read_headers(const unsigned char *b, Py_ssize_t from, Py_ssize_t end,
                        PyObject *headers) {
    PyObject *name = NULL; /* the last header's name, for folded lines */
    Py_ssize_t ls = from, le, next;
    while (ls <= end) {
        line(b, end, ls, &le, &next);
        if (le > ls && (b[ls] == ' ' || b[ls] == '\t') && name != NULL &&
            PyUnicode_GET_LENGTH(name) > 0) {
            /* a folded line: headers[name][-1] += " " + line.strip() */
            Py_ssize_t s = ls, e = le;
            strip(b, &s, &e);
            PyObject *values = PyDict_GetItemWithError(headers, name);
            if (values == NULL) /* the name was stored with its value */
                goto failed;
            Py_ssize_t last = PyList_GET_SIZE(values) - 1;
            PyObject *old = PyList_GET_ITEM(values, last);
            Py_ssize_t k = PyUnicode_GET_LENGTH(old);
            PyObject *joined = PyUnicode_New(k + 1 + (e - s), 127);
            if (joined == NULL)
                goto failed;
            Py_UCS1 *out = PyUnicode_1BYTE_DATA(joined);
            memcpy(out, PyUnicode_1BYTE_DATA(old), (size_t)k);
            out[k] = ' ';
            memcpy(out + k + 1, b + s, (size_t)(e - s));
            PyList_SetItem(values, last, joined); /* steals joined, drops old */
            ls = next;
            continue;
        }
        const unsigned char *colon = memchr(b + ls, ':', (size_t)(le - ls));
        if (colon == NULL) {
            ls = next;
            continue;
        }
        Py_ssize_t ks = ls, ke = colon - b, vs = ke + 1, ve = le;
        strip(b, &ks, &ke);
        strip(b, &vs, &ve);
        const char *full = NULL;
        if (ke - ks == 1) {
            unsigned char c = b[ks];
            full = compact((c >= 'A' && c <= 'Z') ? (unsigned char)(c + 32) : c);
        }
        Py_XDECREF(name);
        name = full ? header_name((const unsigned char *)full, 0, (Py_ssize_t)strlen(full))
                    : header_name(b, ks, ke);
        if (name == NULL)
            goto failed;
        PyObject *value = ascii(b, vs, ve, 0), *one = value ? PyList_New(1) : NULL;
        if (one == NULL) {
            Py_XDECREF(value);
            goto failed;
        }
        PyList_SET_ITEM(one, 0, value); /* one holds it */
        /* a new name's list is `one`; a repeated name's value goes on its list */
        PyObject *values = PyDict_SetDefault(headers, name, one);
        if (values == NULL || (values != one && PyList_Append(values, value) < 0)) {
            Py_DECREF(one);
            goto failed;
        }
        Py_DECREF(one);
        ls = next;
    }
    Py_XDECREF(name);
    return 0;
failed:
    Py_XDECREF(name);
    return FAILED;
}

static PyObject *k_content_length, *k_cseq; /* interned: their hashes made once */

/* The first value of a header, as ASCII bytes in *v and *len; 0 if there is none. */
static int first_value(PyObject *headers, PyObject *key, const unsigned char **v,
                       Py_ssize_t *len) {
    PyObject *values = PyDict_GetItem(headers, key);
    if (values == NULL || PyList_GET_SIZE(values) == 0)
        return 0;
    PyObject *u = PyList_GET_ITEM(values, 0);
    *v = PyUnicode_1BYTE_DATA(u);
    *len = PyUnicode_GET_LENGTH(u);
    return 1;
}

typedef struct {
    PyObject *method, *status, *reason, *uri, *headers, *body;
} Parts;

static void clear(Parts *m) {
    Py_XDECREF(m->method);
    Py_XDECREF(m->status);
    Py_XDECREF(m->reason);
    Py_XDECREF(m->uri);
    Py_XDECREF(m->headers);
    Py_XDECREF(m->body);
}

static int read_message(const unsigned char *b, Py_ssize_t n, Parts *m) {
    Py_ssize_t head_end = find(b, n, 0, "\r\n\r\n", 4), body_start;
    if (head_end >= 0) {
        body_start = head_end + 4;
    } else if ((head_end = find(b, n, 0, "\n\n", 2)) >= 0) {
        body_start = head_end + 2;
    } else {
        head_end = body_start = n;
    }
    if (!all_ascii(b, head_end))
        return DECLINE;
    /* the start line: split(" ", 2) into three parts */
    Py_ssize_t le, next;
    line(b, head_end, 0, &le, &next);
    const unsigned char *sp1 = memchr(b, ' ', (size_t)le);
    if (sp1 == NULL)
        return NOT_SIP;
    Py_ssize_t a_end = sp1 - b, b_start = a_end + 1;
    const unsigned char *sp2 = memchr(b + b_start, ' ', (size_t)(le - b_start));
    if (sp2 == NULL)
        return NOT_SIP;
    Py_ssize_t b_end = sp2 - b, c_start = b_end + 1;
    if (a_end == 7 && memcmp(b, "SIP/2.0", 7) == 0) {
        if (!all_digits(b, b_start, b_end))
            return NOT_SIP;
        if (b_end - b_start > 18)
            return DECLINE;
        m->status = PyLong_FromLongLong(number(b, b_start, b_end));
        m->reason = ascii(b, c_start, le, 0);
        m->uri = PyUnicode_New(0, 127);
        m->method = NULL; /* from CSeq, below */
        if (m->status == NULL || m->reason == NULL || m->uri == NULL)
            return FAILED;
    } else {
        int known = 0;
        for (const char **k = METHODS; *k != NULL && !known; k++)
            known = (Py_ssize_t)strlen(*k) == a_end && memcmp(b, *k, (size_t)a_end) == 0;
        if (!known || le - c_start < 7 || memcmp(b + c_start, "SIP/2.0", 7) != 0)
            return NOT_SIP;
        m->method = ascii(b, 0, a_end, 0);
        m->status = Py_NewRef(Py_None);
        m->reason = PyUnicode_New(0, 127);
        m->uri = ascii(b, b_start, b_end, 0);
        if (m->method == NULL || m->reason == NULL || m->uri == NULL)
            return FAILED;
    }
    m->headers = PyDict_New();
    if (m->headers == NULL || read_headers(b, next, head_end, m->headers) < 0)
        return FAILED;
    /* the body, cut at Content-Length when that is digits */
    Py_ssize_t body_len = n - body_start;
    const unsigned char *v = NULL;
    Py_ssize_t vlen = 0;
    if (first_value(m->headers, k_content_length, &v, &vlen) && all_digits(v, 0, vlen)) {
        if (vlen > 18)
            return DECLINE;
        long long length = number(v, 0, vlen);
        if (length < body_len)
            body_len = (Py_ssize_t)length;
    }
    m->body = PyUnicode_DecodeUTF8((const char *)b + body_start, body_len, "replace");
    if (m->body == NULL)
        return FAILED;
    if (m->method == NULL) { /* a response: its method is CSeq's, as SipMessage.cseq reads it */
        Py_ssize_t s = 0, e = 0;
        if (first_value(m->headers, k_cseq, &v, &vlen)) {
            Py_ssize_t cs = 0, ce = vlen;
            strip(v, &cs, &ce);
            const unsigned char *sp = memchr(v + cs, ' ', (size_t)(ce - cs));
            if (sp != NULL) {
                s = sp - v + 1;
                e = ce;
                strip(v, &s, &e);
            }
        }
        m->method = ascii(v, s, e, 0);
        if (m->method == NULL)
            return FAILED;
    }
    return 0;
}

static PyObject *parse(PyObject *self, PyObject *const *args, Py_ssize_t nargs) {
    Py_buffer view;
    PyObject *cls;
    Parts m = {NULL, NULL, NULL, NULL, NULL, NULL};
    int r;
    if (nargs != 2) {
        PyErr_SetString(PyExc_TypeError, "parse(p, cls) takes 2 arguments");
        return NULL;
    }
    cls = args[1];
    if (PyBytes_CheckExact(args[0])) { /* what the walk hands it: no buffer to take */
        r = read_message((const unsigned char *)PyBytes_AS_STRING(args[0]),
                         PyBytes_GET_SIZE(args[0]), &m);
    } else {
        if (PyUnicode_Check(args[0])) { /* as "y*" refuses it */
            PyErr_SetString(PyExc_TypeError, "a bytes-like object is required, not 'str'");
            return NULL;
        }
        if (PyObject_GetBuffer(args[0], &view, PyBUF_SIMPLE) < 0)
            return NULL;
        r = read_message(view.buf, view.len, &m);
        PyBuffer_Release(&view);
    }
    if (r != 0) {
        clear(&m);
        if (r == FAILED)
            return NULL;
        if (r == NOT_SIP)
            Py_RETURN_FALSE;
        Py_RETURN_NONE;
    }
    PyObject *fields[] = {m.method, m.status, m.reason, m.uri, m.headers, m.body};
    PyObject *msg = PyObject_Vectorcall(cls, fields, 6, NULL);
    clear(&m);
    return msg;
}

/* ASCII white space as re's bytes patterns read \s: space and \t \n \v \f \r */
static int re_space(unsigned char c) { return c == ' ' || (c >= 0x09 && c <= 0x0D); }

static int ci_equal(const unsigned char *b, const char *w, Py_ssize_t k) {
    for (Py_ssize_t j = 0; j < k; j++) {
        unsigned char c = b[j];
        if (c >= 'A' && c <= 'Z')
            c += 32;
        if (c != (unsigned char)w[j])
            return 0;
    }
    return 1;
}

/* sip._LENGTH.search(b, off, end): the Content-Length in *value (-1: too long for 64
 * bits, so more than any buffer holds); 0 when there is none. */
static int content_length(const unsigned char *b, Py_ssize_t off, Py_ssize_t end,
                          long long *value) {
    for (Py_ssize_t i = off; i + 2 <= end; i++) {
        const unsigned char *cr = memchr(b + i, '\r', (size_t)(end - 1 - i));
        if (cr == NULL)
            break;
        i = cr - b;
        if (b[i + 1] != '\n')
            continue;
        Py_ssize_t k = i + 2;
        if (k + 14 <= end && ci_equal(b + k, "content-length", 14))
            k += 14;
        else if (k < end && (b[k] == 'l' || b[k] == 'L'))
            k += 1;
        else
            continue;
        while (k < end && re_space(b[k]))
            k++;
        if (k >= end || b[k] != ':')
            continue;
        k++;
        while (k < end && re_space(b[k]))
            k++;
        if (k >= end || b[k] < '0' || b[k] > '9')
            continue;
        long long v = 0;
        int digits = 0;
        for (; k < end && b[k] >= '0' && b[k] <= '9'; k++, digits++)
            v = digits < 18 ? v * 10 + (b[k] - '0') : -1;
        *value = v;
        return 1;
    }
    return 0;
}

/* sip.split_stream_python, compiled: (messages, used). */
static PyObject *split_stream(PyObject *self, PyObject *obj) {
    Py_buffer view;
    if (PyObject_GetBuffer(obj, &view, PyBUF_SIMPLE) < 0)
        return NULL;
    const unsigned char *b = view.buf;
    Py_ssize_t n = view.len, off = 0;
    PyObject *out = PyList_New(0);
    while (out != NULL) {
        while (off + 2 <= n && b[off] == '\r' && b[off + 1] == '\n') /* keep-alives */
            off += 2;
        Py_ssize_t end = -1;
        for (Py_ssize_t i = off; i + 4 <= n; i++) {
            const unsigned char *p = memchr(b + i, '\r', (size_t)(n - 3 - i));
            if (p == NULL)
                break;
            i = p - b;
            if (p[1] == '\n' && p[2] == '\r' && p[3] == '\n') {
                end = i;
                break;
            }
        }
        if (end < 0)
            break;
        long long length = 0;
        if (content_length(b, off, end, &length) && length < 0)
            break; /* more than any buffer */
        if (length > n - end - 4)
            break;
        Py_ssize_t total = end + 4 + (Py_ssize_t)length;
        PyObject *m = PyBytes_FromStringAndSize((const char *)b + off, total - off);
        if (m == NULL || PyList_Append(out, m) < 0) {
            Py_XDECREF(m);
            Py_CLEAR(out);
            break;
        }
        Py_DECREF(m);
        off = total;
    }
    PyBuffer_Release(&view);
    if (out == NULL)
        return NULL;
    return Py_BuildValue("(Nn)", out, off);
}

static PyMethodDef methods[] = {
    {"parse", (PyCFunction)(void (*)(void))parse, METH_FASTCALL,
     "parse(p, cls) -> message | False | None: sip.parse_python, compiled."},
    {"split_stream", split_stream, METH_O,
     "split_stream(buf) -> (messages, used): sip.split_stream_python, compiled."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT, "_sipparse", "SIP message parsing, compiled.", -1, methods,
};

PyMODINIT_FUNC PyInit__sipparse(void) {
    if (k_content_length == NULL)
        k_content_length = PyUnicode_InternFromString("content-length");
    if (k_cseq == NULL)
        k_cseq = PyUnicode_InternFromString("cseq");
    if (k_content_length == NULL || k_cseq == NULL)
        return NULL;
    return PyModule_Create(&module);
}
