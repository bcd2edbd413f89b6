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

/* a (number, text) pair: steals nothing */
static PyObject *pair(PyObject *no, PyObject *text) { return PyTuple_Pack(2, no, text); }

/* Append (no, value) to index[name] (a new list under the interned name when absent). */
static int file_attr(PyObject *index, const char *s, Py_ssize_t n, PyObject *no) {
    const char *colon = memchr(s, ':', (size_t)n);
    Py_ssize_t nlen = colon ? colon - s : n;
    PyObject *name = ascii_str(s, nlen);
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
            PyUnicode_InternInPlace(&name);
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
    if (t == NULL)
        return -1;
    int rc = PyList_Append(sections, t);
    Py_DECREF(t);
    return rc;
}

static PyObject *scan(PyObject *self, PyObject *arg) {
    if (!PyUnicode_Check(arg)) {
        PyErr_SetString(PyExc_TypeError, "scan() takes a str");
        return NULL;
    }
    if (PyUnicode_READY(arg) < 0)
        return NULL;
    if (!PyUnicode_IS_ASCII(arg))
        Py_RETURN_NONE;
    const char *text = (const char *)PyUnicode_1BYTE_DATA(arg);
    Py_ssize_t size = PyUnicode_GET_LENGTH(arg);

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
                PyObject *head = ascii_str(s, n >= 2 ? 2 : n);
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
                PyObject *t = pair(no, line);
                if (t == NULL)
                    goto done;
                int rc = PyList_Append(malformed, t);
                Py_DECREF(t);
                if (rc < 0)
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

static PyMethodDef methods[] = {
    {"scan", scan, METH_O,
     "scan(text) -> (count, first, index, types, origin, connection, malformed, sections)"
     " | None: sdp.scan_python, compiled."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT, "_sdpscan", "SDP lines filed in one call, compiled.", -1, methods,
};

PyMODINIT_FUNC PyInit__sdpscan(void) { return PyModule_Create(&module); }
