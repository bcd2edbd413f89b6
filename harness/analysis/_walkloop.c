/* Analyzer.run's per-frame loop in C. On a handshake-heavy capture the walk visits ~70k
 * frames, half of them STUN datagrams of a known flow that _stunparse.datagram takes
 * whole: in Python each still cost a loop iteration, the call of Analyzer._segment, its
 * udp_flows lookup and its result tests. Here those datagrams go from the segment list
 * straight to datagram() without entering Python; every other frame calls the same
 * Python methods as the Python loop, with the same arguments, in the same order.
 *
 * walk(walker, todo, times, segs, decoded, tcp, segment, datagram, udp_flows, events, a)
 *   todo, times: the frames left to walk (int64, 0-based) and their times (float64);
 *   segs: a list, the frames' net.segments answers (a Segment, a reason counted in
 *   a.skipped, or None);
 *   decoded(i, t): a frame net.segments left (None) decoded in Python: Segment or None;
 *   tcp(key, payload, seq, flags, t, no): walker._tcp; segment(no, t, seg): walker._segment;
 *   datagram: _stunparse.datagram; udp_flows: walker.udp_flows; events: walker.a.stun;
 *   a: walker.a, whose malformed["crash:<exception>"] counts a frame that raised.
 * Returns None when done, NotImplemented (nothing done) when its input is not what it
 * reads (other buffer formats, lengths that differ): the Python loop does it then.
 *
 * For a UDP segment of a flow in udp_flows it does what _segment does for one:
 *   msg = datagram(walker, flow, key, payload, t, no, events)
 *   NotImplemented: walker._udp(flow, key, payload, t, no)
 *   not True:       walker._recorded(flow, key, payload, t, no, msg)
 * and calls segment() for any other UDP segment (a new flow, a service port). */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <string.h>

#define TCP 6

static PyObject *s_udp, *s_recorded, *s_malformed, *s_skipped, *one, *tcp_proto;

typedef struct {
    PyObject *walker, *decoded, *tcp, *segment, *datagram, *udp_flows, *events, *a;
} walk_ctx;

/* a.<counts>[key] += 1 (a Counter: a missing key counts 0). */
static int count_in(PyObject *a, PyObject *counts_name, PyObject *key) {
    PyObject *counts = NULL, *was = NULL, *now = NULL;
    int rc = -1;
    if (!(counts = PyObject_GetAttr(a, counts_name)))
        return -1;
    if ((was = PyObject_GetItem(counts, key)) && (now = PyNumber_InPlaceAdd(was, one)))
        rc = PyObject_SetItem(counts, key, now);
    Py_XDECREF(now);
    Py_XDECREF(was);
    Py_DECREF(counts);
    return rc;
}

/* seg[k] as Python reads it (a new reference): a tuple's item, else __getitem__. */
static PyObject *item(PyObject *seg, Py_ssize_t k) {
    if (PyTuple_CheckExact(seg) && k < PyTuple_GET_SIZE(seg))
        return Py_NewRef(PyTuple_GET_ITEM(seg, k));
    PyObject *i = PyLong_FromSsize_t(k), *r;
    if (!i)
        return NULL;
    r = PyObject_GetItem(seg, i);
    Py_DECREF(i);
    return r;
}

static PyObject *call(PyObject *f, PyObject **args, size_t n) { /* args[-1] is free */
    return PyObject_Vectorcall(f, args, n | PY_VECTORCALL_ARGUMENTS_OFFSET, NULL);
}

/* A UDP segment: _segment's path for a known flow, else segment(no, t, seg). */
static PyObject *udp(walk_ctx *w, PyObject *seg, PyObject *t, PyObject *no) {
    PyObject *args[8] = {NULL};
    if (!PyTuple_CheckExact(seg) || PyTuple_GET_SIZE(seg) < 3) {
        args[1] = no, args[2] = t, args[3] = seg;
        return call(w->segment, args + 1, 3);
    }
    PyObject *key = PyTuple_GET_ITEM(seg, 1), *payload = PyTuple_GET_ITEM(seg, 2);
    PyObject *flow = PyDict_GetItemWithError(w->udp_flows, key); /* udp_flows.get(key) */
    if (!flow && PyErr_Occurred())
        return NULL;
    if (!flow || flow == Py_None) { /* a new flow: _segment makes it */
        args[1] = no, args[2] = t, args[3] = seg;
        return call(w->segment, args + 1, 3);
    }
    Py_INCREF(flow);
    Py_INCREF(key);
    Py_INCREF(payload);
    PyObject *r = NULL, *msg;
    args[1] = w->walker, args[2] = flow, args[3] = key, args[4] = payload, args[5] = t;
    args[6] = no, args[7] = w->events;
    if (!(msg = call(w->datagram, args + 1, 7)))
        goto done;
    args[7] = msg;
    if (msg == Py_NotImplemented)
        r = PyObject_VectorcallMethod(s_udp, args + 1, 6 | PY_VECTORCALL_ARGUMENTS_OFFSET, NULL);
    else if (msg != Py_True)
        r = PyObject_VectorcallMethod(s_recorded, args + 1, 7 | PY_VECTORCALL_ARGUMENTS_OFFSET,
                                      NULL);
    else
        r = Py_NewRef(Py_None);
    Py_DECREF(msg);
done:
    Py_DECREF(payload);
    Py_DECREF(key);
    Py_DECREF(flow);
    return r;
}

/* The body of the Python loop's try for frame i (0-based): 0, or -1 with an error set. */
static int step(walk_ctx *w, long long i, PyObject *t, PyObject *seg) {
    PyObject *no = NULL, *kind = NULL, *r = NULL, *args[7] = {NULL};
    int rc = -1;
    Py_INCREF(seg);
    if (seg == Py_None) { /* o = offs[i]; seg = frame(t, links[i], data[o : o + lens[i]]) */
        PyObject *io = PyLong_FromLongLong(i);
        if (!io)
            goto done;
        args[1] = io, args[2] = t;
        Py_SETREF(seg, call(w->decoded, args + 1, 2));
        Py_DECREF(io);
        if (!seg)
            goto done;
        if (seg == Py_None) {
            rc = 0;
            goto done;
        }
    } else if (PyUnicode_CheckExact(seg)) { /* a.skipped[seg] += 1: segments' reason */
        rc = count_in(w->a, s_skipped, seg);
        goto done;
    }
    if (!(kind = item(seg, 0)))
        goto done;
    int is_tcp = PyObject_RichCompareBool(kind, tcp_proto, Py_EQ);
    if (is_tcp < 0)
        goto done;
    if (is_tcp) { /* tcp(seg[1], seg[2], seg[3], seg[4], t, i + 1) */
        for (int k = 1; k <= 4; k++)
            if (!(args[k] = item(seg, k)))
                goto done_args;
        if (!(no = PyLong_FromLongLong(i + 1)))
            goto done_args;
        args[5] = t, args[6] = no;
        r = call(w->tcp, args + 1, 6);
    done_args:
        for (int k = 1; k <= 4; k++)
            Py_XDECREF(args[k]);
    } else { /* udp(i + 1, t, seg) */
        if (!(no = PyLong_FromLongLong(i + 1)))
            goto done;
        r = udp(w, seg, t, no);
    }
    if (r) {
        Py_DECREF(r);
        rc = 0;
    }
done:
    Py_XDECREF(no);
    Py_XDECREF(kind);
    Py_XDECREF(seg);
    return rc;
}

/* except Exception as exc: a.malformed[f"crash:{type(exc).__name__}"] += 1 (0, or -1
 * with the error set: not an Exception, or the counting failed). */
static int crashed(PyObject *a) {
    if (!PyErr_ExceptionMatches(PyExc_Exception))
        return -1;
#if PY_VERSION_HEX >= 0x030C0000
    PyObject *exc = PyErr_GetRaisedException();
#else
    PyObject *type, *exc, *tb;
    PyErr_Fetch(&type, &exc, &tb);
    PyErr_NormalizeException(&type, &exc, &tb);
    Py_XDECREF(type);
    Py_XDECREF(tb);
#endif
    PyObject *name = NULL, *key = NULL;
    int rc = -1;
    if (!exc) /* cannot happen: a raised exception is normalised to an instance */
        return -1;
    if ((name = PyObject_GetAttrString((PyObject *)Py_TYPE(exc), "__name__")) &&
        (key = PyUnicode_FromFormat("crash:%S", name)))
        rc = count_in(a, s_malformed, key);
    Py_XDECREF(key);
    Py_XDECREF(name);
    Py_DECREF(exc);
    return rc;
}

/* A 1-d contiguous buffer of 8-byte items of one of `formats` (native order). */
static int column(PyObject *o, Py_buffer *b, const char *formats) {
    if (PyObject_GetBuffer(o, b, PyBUF_FORMAT | PyBUF_C_CONTIGUOUS) < 0) {
        PyErr_Clear();
        return 0;
    }
    const char *f = b->format ? b->format : "B";
    if (*f == '@' || *f == '=')
        f++;
    if (b->ndim == 1 && b->itemsize == 8 && strlen(f) == 1 && strchr(formats, *f))
        return 1;
    PyBuffer_Release(b);
    return 0;
}

static PyObject *walk(PyObject *self, PyObject *const *args, Py_ssize_t nargs) {
    if (nargs != 11) {
        PyErr_SetString(PyExc_TypeError, "walk(walker, todo, times, segs, decoded, tcp, "
                                         "segment, datagram, udp_flows, events, a)");
        return NULL;
    }
    walk_ctx w = {args[0], args[4], args[5], args[6], args[7], args[8], args[9], args[10]};
    PyObject *segs = args[3], *a = args[10];
    if (!PyList_CheckExact(segs) || !PyDict_CheckExact(w.udp_flows))
        Py_RETURN_NOTIMPLEMENTED;
    Py_buffer todo, times;
    if (!column(args[1], &todo, "ql"))
        Py_RETURN_NOTIMPLEMENTED;
    if (!column(args[2], &times, "d")) {
        PyBuffer_Release(&todo);
        Py_RETURN_NOTIMPLEMENTED;
    }
    Py_ssize_t n = todo.len / 8;
    PyObject *r = NULL;
    if (times.len / 8 != n || PyList_GET_SIZE(segs) != n) { /* zip(strict=True) raises */
        r = Py_NewRef(Py_NotImplemented);
        goto done;
    }
    Py_INCREF(segs);
    const long long *frames = (const long long *)todo.buf;
    const double *at = (const double *)times.buf;
    for (Py_ssize_t k = 0; k < n; k++) {
        if (k >= PyList_GET_SIZE(segs)) { /* the list shrank under the walk */
            PyErr_SetString(PyExc_ValueError, "zip() argument 3 is shorter than arguments 1-2");
            goto fail;
        }
        PyObject *t = PyFloat_FromDouble(at[k]);
        if (!t)
            goto fail;
        int bad = ((k & 4095) == 4095 && PyErr_CheckSignals() < 0) ||
                  step(&w, frames[k], t, PyList_GET_ITEM(segs, k)) < 0;
        Py_DECREF(t);
        if (bad && crashed(a) < 0)
            goto fail;
    }
    r = Py_NewRef(Py_None);
fail:
    Py_DECREF(segs);
done:
    PyBuffer_Release(&times);
    PyBuffer_Release(&todo);
    return r;
}

static PyMethodDef module_methods[] = {
    {"walk", (PyCFunction)(void (*)(void))walk, METH_FASTCALL,
     "Analyzer.run's per-frame loop: None, or NotImplemented for input it does not read."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {PyModuleDef_HEAD_INIT, "_walkloop", NULL, -1, module_methods};

PyMODINIT_FUNC PyInit__walkloop(void) {
    if (!s_udp && !(s_udp = PyUnicode_InternFromString("_udp")))
        return NULL;
    if (!s_recorded && !(s_recorded = PyUnicode_InternFromString("_recorded")))
        return NULL;
    if (!s_malformed && !(s_malformed = PyUnicode_InternFromString("malformed")))
        return NULL;
    if (!s_skipped && !(s_skipped = PyUnicode_InternFromString("skipped")))
        return NULL;
    if (!one && !(one = PyLong_FromLong(1)))
        return NULL;
    if (!tcp_proto && !(tcp_proto = PyLong_FromLong(TCP)))
        return NULL;
    return PyModule_Create(&module);
}
