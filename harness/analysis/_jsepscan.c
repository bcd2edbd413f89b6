/* What the walk needs of a Janus message that carries a JSEP, without decoding the JSON.
 *
 * A handshake-heavy capture's Janus bodies that mention "jsep" (a few in each call) were
 * decoded whole by json's scanner to read three values: the JSEP's type and SDP, and the
 * session. Most of that work is the SDP string, whose every line ends in \r\n escapes
 * (the scanner joins a chunk per escape). Here the body is checked against JSON's grammar
 * in one pass, as json's scanner reads it, and only those values are made.
 *
 * jsep(body) -> (type, sdp, session) | None
 *   For a body that is one JSON object (http._json's rules: stripped, then JSON's white
 *   space only), or an array of them (a long poll's batch: its first object with one),
 *   whose last "jsep" member is an object with a string "sdp" and a string "type" (or
 *   none: ""): that type, that sdp, and str(doc.get("session_id") or doc.get("sender"))
 *   when that is true, else None (http.signalling's answer, as Analyzer._json_body
 *   reads it: http.jsep_read_python). None for everything else, and whenever this scan
 *   meets what it does not read the way json does: a byte outside ASCII, a \u escape in
 *   a key or in a value it returns, a number over 1000 characters (int() limits them),
 *   nesting over 64 deep, a session that is no string, integer, null or false. The
 *   caller then decodes the body with http.signalling: None is always a right answer.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stdint.h>
#include <string.h>

#define MAX_DEPTH 64
#define MAX_NUMBER 1000

enum { NONE, STR, INT, NUM, TRUE_, FALSE_, NULL_, ARRAY, OBJECT };

typedef struct {
    int kind;
    Py_ssize_t s, e; /* the value's bytes (a string's between its quotes) */
    int escapes;     /* a string's backslash escapes (-1: one is a \u escape) */
} Value;

typedef struct {
    const unsigned char *b;
    Py_ssize_t i, n;
} Scan;

static void ws(Scan *p) {
    while (p->i < p->n && (p->b[p->i] == ' ' || p->b[p->i] == '\t' || p->b[p->i] == '\n' ||
                           p->b[p->i] == '\r'))
        p->i++;
}

static int hex(unsigned char c) {
    return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
}

#define ONES 0x0101010101010101ULL
#define HIGHS 0x8080808080808080ULL

/* The first index >= i of b[:n] that is a quote, a backslash or a control character, or
 * n: eight bytes at a time (the body is ASCII: no byte has its high bit set). */
static Py_ssize_t plain_run(const unsigned char *b, Py_ssize_t i, Py_ssize_t n) {
    for (; i + 8 <= n; i += 8) {
        uint64_t w, q, s;
        memcpy(&w, b + i, 8);
        q = w ^ (ONES * '"');
        s = w ^ (ONES * '\\');
        /* a zero byte in q or s, or a byte below 0x20 in w */
        if (((q - ONES) & ~q & HIGHS) | ((s - ONES) & ~s & HIGHS) | ((w - ONES * 0x20) & ~w & HIGHS))
            break;
    }
    while (i < n && b[i] >= 0x20 && b[i] != '"' && b[i] != '\\')
        i++;
    return i;
}

/* A string at p->i (its quote): 0, or -1 where json's scanner raises (strict mode). */
static int string(Scan *p, Value *v) {
    Py_ssize_t i = p->i + 1;
    v->kind = STR, v->s = i, v->escapes = 0;
    const unsigned char *b = p->b;
    for (;;) {
        i = plain_run(b, i, p->n);
        if (i >= p->n)
            return -1;
        unsigned char c = b[i];
        if (c == '"')
            break;
        if (c < 0x20) /* a control character */
            return -1;
        if (c == '\\') {
            if (i + 1 >= p->n)
                return -1;
            unsigned char x = p->b[i + 1];
            if (x == 'u') {
                if (i + 5 >= p->n || !hex(p->b[i + 2]) || !hex(p->b[i + 3]) ||
                    !hex(p->b[i + 4]) || !hex(p->b[i + 5]))
                    return -1;
                v->escapes = -1;
                i += 6;
                continue;
            }
            if (!strchr("\"\\/bfnrt", x) || x == 0)
                return -1;
            if (v->escapes >= 0)
                v->escapes++;
            i += 2;
            continue;
        }
        i++;
    }
    v->e = i;
    p->i = i + 1;
    return 0;
}

static int digits(Scan *p) {
    Py_ssize_t from = p->i;
    while (p->i < p->n && p->b[p->i] >= '0' && p->b[p->i] <= '9')
        p->i++;
    return p->i > from;
}

/* -?(0|[1-9]\d*)(\.\d+)?([eE][-+]?\d+)?, as json's NUMBER_RE matches it. */
static int number(Scan *p, Value *v) {
    Py_ssize_t i = p->i;
    v->s = i;
    if (p->b[i] == '-')
        i++;
    if (i >= p->n || p->b[i] < '0' || p->b[i] > '9')
        return -1;
    p->i = i;
    if (p->b[i] == '0')
        p->i++;
    else
        digits(p);
    v->kind = INT;
    if (p->i + 1 < p->n && p->b[p->i] == '.' && p->b[p->i + 1] >= '0' &&
        p->b[p->i + 1] <= '9') {
        p->i++;
        digits(p);
        v->kind = NUM;
    }
    if (p->i < p->n && (p->b[p->i] == 'e' || p->b[p->i] == 'E')) {
        Py_ssize_t at = p->i;
        p->i++;
        if (p->i < p->n && (p->b[p->i] == '+' || p->b[p->i] == '-'))
            p->i++;
        if (digits(p))
            v->kind = NUM;
        else
            p->i = at; /* no exponent: the number ends before the e */
    }
    v->e = p->i;
    return v->e - v->s > MAX_NUMBER ? -1 : 0;
}

static int word(Scan *p, const char *w, int kind, Value *v) {
    Py_ssize_t k = (Py_ssize_t)strlen(w);
    if (p->n - p->i < k || memcmp(p->b + p->i, w, (size_t)k) != 0)
        return -1;
    v->kind = kind, v->s = p->i, v->e = p->i + k;
    p->i += k;
    return 0;
}

/* Past a container's opening bracket and the blanks after it: 1 if it closes at once
 * (`close` read too), else 0. */
static int opened(Scan *p, char close) {
    p->i++;
    ws(p);
    if (p->i < p->n && p->b[p->i] == close) {
        p->i++;
        return 1;
    }
    return 0;
}

/* After a container's item: 1 at its `close` (read), 0 past a ',' and the blanks after
 * it, -1 for anything else. */
static int after_item(Scan *p, char close) {
    ws(p);
    if (p->i >= p->n)
        return -1;
    if (p->b[p->i] == close) {
        p->i++;
        return 1;
    }
    if (p->b[p->i] != ',')
        return -1;
    p->i++;
    ws(p);
    return 0;
}

static int value(Scan *p, int depth, Value *v);
static const char *INNER[] = {"type", "sdp"};

/* The members of the object at p->i ('{'); each key of `names` keeps its last value in
 * `found` (kind NONE: not there). With `inner`, the first name's value, when an object,
 * is read for INNER's members at once, into inner (the last such value's). */
static int object(Scan *p, int depth, const char **names, int count, Value *found,
                  Value *inner) {
    if (opened(p, '}'))
        return 0;
    for (;;) {
        Value key, v;
        if (p->i >= p->n || p->b[p->i] != '"' || string(p, &key) < 0 || key.escapes < 0)
            return -1; /* a \u escape may spell a wanted key: json's to read */
        ws(p);
        if (p->i >= p->n || p->b[p->i] != ':')
            return -1;
        p->i++;
        ws(p);
        int first = count && key.escapes == 0 && key.e - key.s == (Py_ssize_t)strlen(names[0]) &&
                    memcmp(p->b + key.s, names[0], strlen(names[0])) == 0;
        if (inner && first && p->i < p->n && p->b[p->i] == '{' && depth + 1 <= MAX_DEPTH) {
            Value members[2] = {{NONE}, {NONE}};
            v.kind = OBJECT, v.s = p->i;
            if (object(p, depth + 1, INNER, 2, members, NULL) < 0)
                return -1;
            v.e = p->i;
            memcpy(inner, members, sizeof members);
        } else if (value(p, depth + 1, &v) < 0)
            return -1;
        for (int k = 0; k < count; k++) {
            Py_ssize_t len = (Py_ssize_t)strlen(names[k]);
            if (key.escapes == 0 && key.e - key.s == len &&
                memcmp(p->b + key.s, names[k], (size_t)len) == 0)
                found[k] = v;
        }
        int end = after_item(p, '}');
        if (end != 0)
            return end < 0 ? -1 : 0;
    }
}

static int array(Scan *p, int depth) {
    if (opened(p, ']'))
        return 0;
    for (;;) {
        Value v;
        if (value(p, depth + 1, &v) < 0)
            return -1;
        int end = after_item(p, ']');
        if (end != 0)
            return end < 0 ? -1 : 0;
    }
}

static int value(Scan *p, int depth, Value *v) {
    if (p->i >= p->n || depth > MAX_DEPTH)
        return -1;
    v->s = p->i;
    switch (p->b[p->i]) {
    case '"':
        return string(p, v);
    case '{':
        v->kind = OBJECT;
        if (object(p, depth, NULL, 0, NULL, NULL) < 0)
            return -1;
        v->e = p->i;
        return 0;
    case '[':
        v->kind = ARRAY;
        if (array(p, depth) < 0)
            return -1;
        v->e = p->i;
        return 0;
    case 't':
        return word(p, "true", TRUE_, v);
    case 'f':
        return word(p, "false", FALSE_, v);
    case 'n':
        return word(p, "null", NULL_, v);
    case 'N':
        return word(p, "NaN", NUM, v);
    case 'I':
        return word(p, "Infinity", NUM, v);
    case '-':
        if (p->i + 1 < p->n && p->b[p->i + 1] == 'I')
            return word(p, "-Infinity", NUM, v);
        return number(p, v);
    default:
        return number(p, v);
    }
}

static const char *TOP[] = {"jsep", "session_id", "sender"};

/* A long poll's batch, the array at p->i: `got` takes the members of its first object
 * whose "jsep" is an object (http._jsep's choice), if any. */
static int batch(Scan *p, Value *got, Value *inner) {
    int taken = 0;
    if (opened(p, ']'))
        return 0;
    for (;;) {
        if (p->i >= p->n)
            return -1;
        if (!taken && p->b[p->i] == '{') {
            Value mine[3] = {{NONE}, {NONE}, {NONE}}, members[2] = {{NONE}, {NONE}};
            if (object(p, 1, TOP, 3, mine, members) < 0)
                return -1;
            if (mine[0].kind == OBJECT) {
                memcpy(got, mine, sizeof mine);
                memcpy(inner, members, sizeof members);
                taken = 1;
            }
        } else {
            Value v;
            if (value(p, 1, &v) < 0)
                return -1;
        }
        int end = after_item(p, ']');
        if (end != 0)
            return end < 0 ? -1 : 0;
    }
}

/* A string value as Python has it (no \u escape in it: the caller checked). */
static PyObject *text(const unsigned char *b, const Value *v) {
    PyObject *u = PyUnicode_New(v->e - v->s - v->escapes, 127);
    if (!u)
        return NULL;
    Py_UCS1 *out = PyUnicode_1BYTE_DATA(u);
    for (Py_ssize_t i = v->s; i < v->e; i++) {
        const unsigned char *esc = memchr(b + i, '\\', (size_t)(v->e - i));
        Py_ssize_t run = esc ? esc - (b + i) : v->e - i;
        memcpy(out, b + i, (size_t)run); /* the bytes up to the next escape */
        out += run;
        i += run;
        if (i >= v->e)
            break;
        unsigned char c = b[++i];
        *out++ = c == 'b' ? '\b' : c == 'f' ? '\f' : c == 'n' ? '\n' : c == 'r' ? '\r'
               : c == 't' ? '\t' : c;
    }
    return u;
}

/* str(value) when the value is true, Py_None when false, NULL (no error) to decline. */
static PyObject *session_text(const unsigned char *b, const Value *v, int *falsy) {
    *falsy = 0;
    switch (v->kind) {
    case NONE:
    case NULL_:
    case FALSE_:
        *falsy = 1;
        return NULL;
    case STR:
        if (v->escapes < 0)
            return NULL;
        if (v->e == v->s) {
            *falsy = 1;
            return NULL;
        }
        return text(b, v);
    case INT: {
        Py_ssize_t s = v->s + (b[v->s] == '-');
        if (v->e - s == 1 && b[s] == '0') { /* 0 and -0 */
            *falsy = 1;
            return NULL;
        }
        return PyUnicode_FromStringAndSize((const char *)b + v->s, v->e - v->s);
    }
    default:
        return NULL;
    }
}

static PyObject *jsep(PyObject *self, PyObject *obj) {
    Py_buffer view;
    if (PyObject_GetBuffer(obj, &view, PyBUF_SIMPLE) < 0)
        return NULL;
    const unsigned char *b = view.buf;
    Py_ssize_t s = 0, e = view.len;
    PyObject *r = NULL, *kind = NULL, *sdp = NULL, *session = NULL;
    for (Py_ssize_t i = 0; i < e; i++) /* ASCII only: a word at a time */
        if (i + 8 <= e) {
            uint64_t w;
            memcpy(&w, b + i, 8);
            if (w & 0x8080808080808080ULL)
                goto decline;
            i += 7;
        } else if (b[i] >= 0x80)
            goto decline;
    /* bytes.strip(): ASCII white space, \v and \f too */
    while (s < e && (b[s] == ' ' || (b[s] >= 0x09 && b[s] <= 0x0D)))
        s++;
    while (e > s && (b[e - 1] == ' ' || (b[e - 1] >= 0x09 && b[e - 1] <= 0x0D)))
        e--;
    Scan p = {b, s, e};
    Value got[3] = {{NONE}, {NONE}, {NONE}}, j[2] = {{NONE}, {NONE}};
    if (p.i >= p.n)
        goto decline;
    if ((b[p.i] == '{' ? object(&p, 0, TOP, 3, got, j) : b[p.i] == '[' ? batch(&p, got, j) : -1) <
        0)
        goto decline;
    ws(&p);
    if (p.i != p.n || got[0].kind != OBJECT || j[1].kind != STR || j[1].escapes < 0 ||
        (j[0].kind != NONE && (j[0].kind != STR || j[0].escapes < 0)))
        goto decline;
    int falsy;
    session = session_text(b, &got[1], &falsy);
    if (!session && !falsy)
        goto decline_or_error;
    if (!session) {
        session = session_text(b, &got[2], &falsy);
        if (!session && !falsy)
            goto decline_or_error;
        if (!session)
            session = Py_NewRef(Py_None);
    }
    kind = j[0].kind == NONE ? PyUnicode_New(0, 127) : text(b, &j[0]);
    sdp = kind ? text(b, &j[1]) : NULL;
    if (sdp)
        r = PyTuple_Pack(3, kind, sdp, session);
    goto done;
decline_or_error:
    if (PyErr_Occurred())
        goto done;
decline:
    r = Py_NewRef(Py_None);
done:
    Py_XDECREF(kind);
    Py_XDECREF(sdp);
    Py_XDECREF(session);
    PyBuffer_Release(&view);
    return r;
}

static PyMethodDef methods[] = {
    {"jsep", jsep, METH_O, "jsep(body) -> (type, sdp, session) | None: see _jsepscan.c."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {PyModuleDef_HEAD_INIT, "_jsepscan", NULL, -1, methods};

PyMODINIT_FUNC PyInit__jsepscan(void) { return PyModule_Create(&module); }
