/* Indenting compact JSON: `harness analyze --json` prints with indent=1, and Python 3.11's
 * json module then runs its pure-Python encoder (the C one serves indent=None only). On a
 * handshake-heavy capture that encoder is 0.07 s of a 1 s run; the C encoder's compact
 * text (separators "," and ":") re-indented here gives the same bytes for a tenth of it.
 * jsonout.py keeps json.dumps(indent=...) as the fallback and as the reference the tests
 * compare this with.
 *
 * indent(text, width) -> str | None
 *   text:  json.dumps(obj, separators=(",", ":")) output, ASCII (ensure_ascii);
 *   width: spaces per level, as json.dumps's `indent`;
 *   None when the text is not ASCII or not balanced (the caller then falls back).
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <string.h>

/* One pass over `s`: writes into `out` when it is not NULL; returns the output length,
 * or -1 if brackets do not balance or a string is not closed. */
static Py_ssize_t reindent(const char *s, Py_ssize_t n, Py_ssize_t width, char *out) {
    Py_ssize_t o = 0, level = 0, i = 0;
#define PUT(c)            \
    do {                  \
        if (out)          \
            out[o] = (c); \
        o++;              \
    } while (0)
#define NEWLINE()                                  \
    do {                                           \
        PUT('\n');                                 \
        if (out)                                   \
            memset(out + o, ' ', level * width);   \
        o += level * width;                        \
    } while (0)
    while (i < n) {
        char c = s[i++];
        if (c == '"') {
            PUT(c);
            for (;;) {
                if (i >= n)
                    return -1;
                char d = s[i++];
                PUT(d);
                if (d == '\\') {
                    if (i >= n)
                        return -1;
                    PUT(s[i]);
                    i++;
                } else if (d == '"') {
                    break;
                }
            }
        } else if (c == '{' || c == '[') {
            char close = c == '{' ? '}' : ']';
            PUT(c);
            if (level >= 100000) /* json.dumps never nests this deep (recursion limit) */
                return -1;
            if (i < n && s[i] == close) {
                PUT(close);
                i++;
            } else {
                level++;
                NEWLINE();
            }
        } else if (c == '}' || c == ']') {
            if (level == 0)
                return -1;
            level--;
            NEWLINE();
            PUT(c);
        } else if (c == ',') {
            PUT(c);
            NEWLINE();
        } else if (c == ':') {
            PUT(c);
            PUT(' ');
        } else {
            PUT(c);
        }
    }
#undef PUT
#undef NEWLINE
    return level == 0 ? o : -1;
}

static PyObject *indent(PyObject *self, PyObject *args) {
    PyObject *text;
    Py_ssize_t width;
    if (!PyArg_ParseTuple(args, "Un", &text, &width))
        return NULL;
    if (width < 0 || width > 64 || !PyUnicode_IS_ASCII(text))
        Py_RETURN_NONE;
    const char *s = (const char *)PyUnicode_DATA(text);
    Py_ssize_t n = PyUnicode_GET_LENGTH(text);
    Py_ssize_t size = reindent(s, n, width, NULL);
    if (size < 0)
        Py_RETURN_NONE;
    PyObject *out = PyUnicode_New(size, 127);
    if (!out)
        return NULL;
    reindent(s, n, width, (char *)PyUnicode_DATA(out));
    return out;
}

static PyMethodDef methods[] = {
    {"indent", indent, METH_VARARGS, "Indent compact ASCII JSON as json.dumps(indent=width)."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {PyModuleDef_HEAD_INIT, "_jsonindent", NULL, -1, methods};

PyMODINIT_FUNC PyInit__jsonindent(void) { return PyModule_Create(&module); }
