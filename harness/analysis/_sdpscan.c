/* SDP lines filed in one call, compiled: sdp._parse reads every line of every SDP of a
 * capture (thousands in a signalling-heavy one), and in Python the per-line split,
 * partition and dict filing is most of the cost of reading them.
 *
 * scan(text) -> (count, first, index, types, origin, connection, malformed, sections) | None
 *   exactly what sdp.scan_python returns (it is the reference the tests compare this
 *   with); sections: (m= line number, m= line, attribute index, first c= line, end).
 *   A line is made a str only where it is kept (o=, c=, m= and malformed lines): the
 *   a= lines, most of an SDP, leave their name and value only.
 *   None for a text with a non-ASCII character (str.split() and str.islower() know more
 *   white space and letters than this code): sdp.scan_python then reads it.
 *
 * clocks(text) -> [(payload type, clock rate), ...] | None
 *   exactly what sdp.clocks_python returns: the m= sections' a=rtpmap lines whose type
 *   and rate are digits (a rate of 0 gives none), in order. The analyzer's walk reads
 *   them off each SDP's text (RTP clocks) and leaves the parsing for after it; in Python
 *   finding and splitting those lines cost ~7 us an SDP. None for non-ASCII text.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <string.h>

static PyObject *ascii_str(const char *s, Py_ssize_t n) {
    PyObject *o = PyUnicode_New(n, 127);
    if (o != NULL && n > 0)
        memcpy(PyUnicode_1BYTE_DATA(o), s, (size_t)n);
    return o;
}

/* Append `item` to `list` and release it (NULL: the error that made it stands). */
static int append_new(PyObject *list, PyObject *item) {
    if (item == NULL)
        return -1;
    int rc = PyList_Append(list, item);
    Py_DECREF(item);
    return rc;
}

/* The characters of an ASCII str: 1, or 0 for other text (the Python readers take it),
 * -1 for no str. */
static int ascii_text(PyObject *arg, const char **text, Py_ssize_t *size) {
    if (!PyUnicode_Check(arg)) {
        PyErr_SetString(PyExc_TypeError, "takes a str");
        return -1;
    }
    if (PyUnicode_READY(arg) < 0)
        return -1;
    if (!PyUnicode_IS_ASCII(arg))
        return 0;
    *text = (const char *)PyUnicode_1BYTE_DATA(arg);
    *size = PyUnicode_GET_LENGTH(arg);
    return 1;
}

/* Interned names by their characters: an SDP's a= lines name a few dozen attributes, its
 * session-level lines a few types, so a name is looked up here instead of made and
 * hashed again for each line (the dicts and the frozenset then match it by identity). */
#define NAME_SLOTS 512
#define NAME_LONGEST 32
static PyObject *names[NAME_SLOTS];

static PyObject *name_str(const char *s, Py_ssize_t n) {
    if (n > NAME_LONGEST)
        return ascii_str(s, n);
    unsigned h = 2166136261u; /* FNV-1a */
    for (Py_ssize_t i = 0; i < n; i++)
        h = (h ^ (unsigned char)s[i]) * 16777619u;
    PyObject **slot = &names[(h ^ (unsigned)n) & (NAME_SLOTS - 1)];
    PyObject *o = *slot;
    if (o != NULL && PyUnicode_GET_LENGTH(o) == n &&
        memcmp(PyUnicode_1BYTE_DATA(o), s, (size_t)n) == 0)
        return Py_NewRef(o);
    if ((o = ascii_str(s, n)) == NULL)
        return NULL;
    PyUnicode_InternInPlace(&o);
    Py_XSETREF(*slot, Py_NewRef(o));
    return o;
}

/* a (number, text) pair: steals nothing */
static PyObject *pair(PyObject *no, PyObject *text) { return PyTuple_Pack(2, no, text); }

/* Append (no, value) to index[name] (a new list under the interned name when absent). */
static int file_attr(PyObject *index, const char *s, Py_ssize_t n, PyObject *no) {
    const char *colon = memchr(s, ':', (size_t)n);
    Py_ssize_t nlen = colon ? colon - s : n;
    PyObject *name = name_str(s, nlen);
    if (name == NULL)
        return -1;
    PyObject *value = colon ? ascii_str(colon + 1, n - nlen - 1) : ascii_str(s, 0);
    if (value == NULL) {
        Py_DECREF(name);
        return -1;
    }
    PyObject *item = pair(no, value);
    Py_DECREF(value);
    if (item == NULL) {
        Py_DECREF(name);
        return -1;
    }
    int rc = -1;
    PyObject *found = PyDict_GetItemWithError(index, name);
    if (found != NULL) {
        rc = PyList_Append(found, item);
    } else if (!PyErr_Occurred()) {
        PyObject *list = PyList_New(1);
        if (list != NULL) {
            Py_INCREF(item);
            PyList_SET_ITEM(list, 0, item);
            rc = PyDict_SetItem(index, name, list);
            Py_DECREF(list);
        }
    }
    Py_DECREF(item);
    Py_DECREF(name);
    return rc;
}

/* Close the open section: (no, line, index, cline, end) appended to sections. */
static int close_section(PyObject *sections, PyObject *mno, PyObject *mline, PyObject *index,
                         PyObject *cline, Py_ssize_t end) {
    PyObject *e = PyLong_FromSsize_t(end);
    if (e == NULL)
        return -1;
    PyObject *t = PyTuple_Pack(5, mno, mline, index, cline ? cline : Py_None, e);
    Py_DECREF(e);
    return append_new(sections, t);
}

static PyObject *scan(PyObject *self, PyObject *arg) {
    const char *text;
    Py_ssize_t size;
    int ok = ascii_text(arg, &text, &size);
    if (ok <= 0)
        return ok < 0 ? NULL : Py_NewRef(Py_None);

    PyObject *session = PyDict_New(), *types = PyFrozenSet_New(NULL);
    PyObject *malformed = PyList_New(0), *sections = PyList_New(0);
    PyObject *origin = NULL, *connection = NULL, *cline = NULL;
    PyObject *mno = NULL, *mline = NULL, *index = NULL; /* the open section */
    PyObject *no = NULL, *line = NULL, *result = NULL;
    Py_ssize_t first = -1, count = 0;
    if (!session || !types || !malformed || !sections)
        goto done;
    index = session;
    Py_INCREF(index);

    Py_ssize_t pos = 0;
    for (;;) {
        const char *s = text + pos;
        const char *nl = memchr(s, '\n', (size_t)(size - pos));
        Py_ssize_t n = nl ? nl - s : size - pos;
        Py_ssize_t next = pos + n + 1;
        while (n > 0 && s[n - 1] == '\r') /* split(): CRs at a line's end are dropped */
            n--;
        count++;
        if (n > 0) {
            no = PyLong_FromSsize_t(count);
            if (no == NULL)
                goto done;
            if (n >= 2 && s[0] == 'a' && s[1] == '=') {
                if (file_attr(index, s + 2, n - 2, no) < 0)
                    goto done;
            } else if (n >= 2 && s[0] == 'm' && s[1] == '=') {
                if ((line = ascii_str(s, n)) == NULL)
                    goto done;
                if (mno != NULL) {
                    if (close_section(sections, mno, mline, index, cline, count - 1) < 0)
                        goto done;
                    Py_CLEAR(mno);
                    Py_CLEAR(mline);
                    Py_CLEAR(cline);
                } else {
                    first = count - 1;
                }
                Py_DECREF(index);
                index = PyDict_New();
                if (index == NULL)
                    goto done;
                mno = no;
                mline = line;
                Py_INCREF(no);
                Py_INCREF(line);
            } else if (mno == NULL) {
                PyObject *head = name_str(s, n >= 2 ? 2 : n);
                if (head == NULL)
                    goto done;
                int rc = PySet_Add(types, head);
                Py_DECREF(head);
                if (rc < 0)
                    goto done;
                if (n >= 2 && s[0] == 'o' && s[1] == '=' && origin == NULL) {
                    if ((line = ascii_str(s, n)) == NULL || (origin = pair(no, line)) == NULL)
                        goto done;
                } else if (n >= 2 && s[0] == 'c' && s[1] == '=' && connection == NULL) {
                    if ((connection = ascii_str(s + 2, n - 2)) == NULL)
                        goto done;
                }
            } else if (n >= 2 && s[0] == 'c' && s[1] == '=') {
                if (cline == NULL &&
                    ((line = ascii_str(s, n)) == NULL || (cline = pair(no, line)) == NULL))
                    goto done;
            } else if (!(n >= 2 && s[1] == '=' && s[0] >= 'a' && s[0] <= 'z')) {
                if ((line = ascii_str(s, n)) == NULL)
                    goto done;
                if (append_new(malformed, pair(no, line)) < 0)
                    goto done;
            }
            Py_CLEAR(no);
            Py_CLEAR(line);
        }
        if (nl == NULL)
            break;
        pos = next;
    }
    if (mno != NULL && close_section(sections, mno, mline, index, cline, count) < 0)
        goto done;
    if (PyDict_GET_SIZE(session) > 0) {
        PyObject *a = ascii_str("a=", 2);
        if (a == NULL)
            goto done;
        int rc = PySet_Add(types, a);
        Py_DECREF(a);
        if (rc < 0)
            goto done;
    }
    result = Py_BuildValue("(nnOOOOOO)", count, first < 0 ? count : first, session, types,
                           origin ? origin : Py_None, connection ? connection : Py_None,
                           malformed, sections);
done:
    Py_XDECREF(session);
    Py_XDECREF(types);
    Py_XDECREF(malformed);
    Py_XDECREF(sections);
    Py_XDECREF(origin);
    Py_XDECREF(connection);
    Py_XDECREF(cline);
    Py_XDECREF(mno);
    Py_XDECREF(mline);
    Py_XDECREF(index);
    Py_XDECREF(no);
    Py_XDECREF(line);
    return result;
}

/* The int of n ASCII digits (any length, as int() reads them). */
static PyObject *digits_int(const char *s, Py_ssize_t n) {
    if (n <= 18) {
        long long v = 0;
        for (Py_ssize_t i = 0; i < n; i++)
            v = v * 10 + (s[i] - '0');
        return PyLong_FromLongLong(v);
    }
    PyObject *str = ascii_str(s, n);
    if (str == NULL)
        return NULL;
    PyObject *v = PyLong_FromUnicodeObject(str, 10);
    Py_DECREF(str);
    return v;
}

static int all_digits(const char *s, Py_ssize_t n) {
    if (n == 0)
        return 0;
    for (Py_ssize_t i = 0; i < n; i++)
        if (s[i] < '0' || s[i] > '9')
            return 0;
    return 1;
}

/* (type, rate) of one a=rtpmap value `v` (n chars) appended to out when both are digits
 * and the rate is no 0: value.partition(" "), then the rate is the encoding's 2nd '/' field. */
static int add_clock(PyObject *out, const char *v, Py_ssize_t n) {
    const char *sp = memchr(v, ' ', (size_t)n);
    if (sp == NULL)
        return 0;
    Py_ssize_t ptn = sp - v;
    const char *enc = sp + 1, *end = v + n;
    const char *slash = memchr(enc, '/', (size_t)(end - enc));
    if (slash == NULL)
        return 0;
    const char *rate = slash + 1;
    const char *stop = memchr(rate, '/', (size_t)(end - rate));
    Py_ssize_t raten = (stop ? stop : end) - rate;
    if (!all_digits(v, ptn) || !all_digits(rate, raten))
        return 0;
    Py_ssize_t z = 0;
    while (z < raten && rate[z] == '0')
        z++;
    if (z == raten) /* int(rate) == 0 */
        return 0;
    PyObject *pt = digits_int(v, ptn), *r = pt ? digits_int(rate, raten) : NULL;
    PyObject *t = r ? PyTuple_Pack(2, pt, r) : NULL;
    Py_XDECREF(pt);
    Py_XDECREF(r);
    return append_new(out, t);
}

static PyObject *clocks(PyObject *self, PyObject *arg) {
    const char *text;
    Py_ssize_t size;
    int ok = ascii_text(arg, &text, &size);
    if (ok <= 0)
        return ok < 0 ? NULL : Py_NewRef(Py_None);
    PyObject *out = PyList_New(0);
    if (out == NULL)
        return NULL;
    /* from the first m= line (a text may start with it) */
    const char *p = text, *end = text + size;
    if (!(size >= 2 && text[0] == 'm' && text[1] == '=')) {
        for (p = text; (p = memchr(p, '\n', (size_t)(end - p))) != NULL; p++)
            if (end - p >= 3 && p[1] == 'm' && p[2] == '=')
                break;
        if (p == NULL)
            return out;
    }
    static const char key[] = "\na=rtpmap:";
    const Py_ssize_t klen = sizeof key - 1;
    while ((p = memchr(p, '\n', (size_t)(end - p))) != NULL) {
        if (end - p < klen || memcmp(p, key, (size_t)klen) != 0) {
            p++;
            continue;
        }
        const char *v = p + klen;
        const char *nl = memchr(v, '\n', (size_t)(end - v));
        const char *ve = nl ? nl : end;
        while (ve > v && ve[-1] == '\r') /* rstrip("\r") */
            ve--;
        if (add_clock(out, v, ve - v) < 0) {
            Py_DECREF(out);
            return NULL;
        }
        if (nl == NULL)
            break;
        p = nl;
    }
    return out;
}

static PyMethodDef methods[] = {
    {"scan", scan, METH_O,
     "scan(text) -> (count, first, index, types, origin, connection, malformed, sections)"
     " | None: sdp.scan_python, compiled."},
    {"clocks", clocks, METH_O,
     "clocks(text) -> [(payload type, clock rate), ...] | None: sdp.clocks_python, compiled."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT, "_sdpscan", "SDP lines filed in one call, compiled.", -1, methods,
};

PyMODINIT_FUNC PyInit__sdpscan(void) { return PyModule_Create(&module); }
