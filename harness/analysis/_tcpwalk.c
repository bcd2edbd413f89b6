/* TcpStreams._tcp, compiled for the segments that need no Python of their own: on a
 * handshake-heavy capture (Janus' REST long poll, SIP over TCP) most TCP segments are a
 * bare SYN or FIN, an in-order piece of an HTTP message that is only held back, or a
 * whole message without a body, and the interpreter's frames for _tcp, _http and
 * _http_messages cost more than the C that frames the messages.
 *
 * segment is an instance method (PyInstanceMethod): self._tcp(key, p, seq, flags, t, no)
 * runs it. It changes the same TcpDirection and Flow slots as the Python version
 * (tcpstreams.TcpStreams._tcp_python), in the same order, calling http.read_bodies and
 * sip.split_stream as looked up at each call, and self._json_body / self._sip_message
 * for what they find (self._http_messages for an upgrade to WebSocket). The first data
 * segment of a direction seen opening that starts as SIP or HTTP does (framing.text_start:
 * sip.STARTS, then http.METHODS and "HTTP/1.") is told here too, as TcpStreams._detect
 * tells it: one in each direction of every connection of a long poll; and so is the bare
 * SYN (or SYN-ACK) that opens a direction, made here as _tcp_python makes it
 * (open_direction). Any other segment (a new direction's first segment with data, out of
 * order, a retransmission, a gap, bytes held while its mode is not yet known, TLS,
 * WebSocket, TURN-TCP, RFC 4571, an argument of an unexpected type) is handed whole to
 * self._tcp_python before anything is changed.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <structmember.h>

#define SYN 0x02

static PyObject *s_tcp, *s_http, *s_sip, *s_tcp_str, *s_json_body, *s_sip_message,
    *s_http_messages, *s_tcp_python, *s_read_bodies, *s_split_stream, *s_detect, *s_starts,
    *s_methods, *s_flows, *s_get, *s_new_flow;
static PyObject *one;
static PyObject *http_dict, *sip_dict; /* the modules' namespaces, set by tcpstreams.py */

/* Does the str `mode` equal `name` (an interned str)? */
static int mode_is(PyObject *mode, PyObject *name) {
    if (mode == name)
        return 1;
    return PyUnicode_CheckExact(mode) && PyUnicode_Compare(mode, name) == 0;
}

/* Slots of TcpDirection and Flow read and written in place, as Python 3.11's own
 * specialised attribute access does (the generic getattr costs as much as the rest). */
static PyTypeObject *dir_type, *flow_type;
/* TcpDirection's, then Flow's */
static Py_ssize_t o_next_seq, o_pending, o_buf, o_mode, o_head, o_flow, o_opened;
static Py_ssize_t o_packets, o_bytes, o_last_t, o_kinds;

#define SLOT(obj, off) (*(PyObject **)((char *)(obj) + (off)))

/* SLOT(obj, off) = value (a new reference taken) */
static void set_slot(PyObject *obj, Py_ssize_t off, PyObject *value) {
    PyObject *old = SLOT(obj, off);
    SLOT(obj, off) = Py_NewRef(value);
    Py_XDECREF(old);
}

/* The offset of `name`, a plain writable object slot of `type`; -1 with an exception. */
static Py_ssize_t slot_offset(PyTypeObject *type, const char *name) {
    PyObject *d = PyDict_GetItemString(type->tp_dict, name);
    if (d == NULL || !Py_IS_TYPE(d, &PyMemberDescr_Type) ||
        ((PyMemberDescrObject *)d)->d_member->type != T_OBJECT_EX ||
        (((PyMemberDescrObject *)d)->d_member->flags & READONLY)) {
        PyErr_Format(PyExc_TypeError, "%s.%s: not a slot", type->tp_name, name);
        return -1;
    }
    return ((PyMemberDescrObject *)d)->d_member->offset;
}

/* SLOT(obj, off) += by, for ints: the same as the Python statement. */
static int add_slot(PyObject *obj, Py_ssize_t off, PyObject *by) {
    PyObject *w = PyNumber_InPlaceAdd(SLOT(obj, off), by);
    if (w == NULL)
        return -1;
    PyObject *old = SLOT(obj, off);
    SLOT(obj, off) = w;
    Py_DECREF(old);
    return 0;
}

/* flow.kinds[kind] += by (a Counter: its __missing__ answers 0 for a new kind). */
static int count_kind(PyObject *flow, PyObject *kind, PyObject *by) {
    PyObject *kinds = SLOT(flow, o_kinds);
    if (kinds == NULL) {
        PyErr_SetString(PyExc_AttributeError, "kinds");
        return -1;
    }
    Py_INCREF(kinds);
    PyObject *v = PyObject_GetItem(kinds, kind);
    int r = -1;
    if (v != NULL) {
        PyObject *w = PyNumber_InPlaceAdd(v, by);
        Py_DECREF(v);
        if (w != NULL) {
            r = PyObject_SetItem(kinds, kind, w);
            Py_DECREF(w);
        }
    }
    Py_DECREF(kinds);
    return r;
}

/* d.next_seq = value & 0xFFFFFFFF */
static int set_next_seq(PyObject *d, long long value) {
    PyObject *v = PyLong_FromLongLong(value & 0xFFFFFFFFLL);
    if (v == NULL)
        return -1;
    PyObject *old = SLOT(d, o_next_seq);
    SLOT(d, o_next_seq) = v;
    Py_XDECREF(old);
    return 0;
}

/* buf += p[used:] if used else p */
static int keep_tail(PyObject *buf, PyObject *p, Py_ssize_t used) {
    PyObject *tail = used ? PySequence_GetSlice(p, used, PY_SSIZE_T_MAX) : Py_NewRef(p);
    if (tail == NULL)
        return -1;
    PyObject *r = PySequence_InPlaceConcat(buf, tail);
    Py_DECREF(tail);
    if (r == NULL)
        return -1;
    Py_DECREF(r);
    return 0;
}

/* On an Exception from a reader of the segment in place: buf += p (kept whole). */
static PyObject *failed_in_place(PyObject *buf, PyObject *p) {
    if (!PyErr_ExceptionMatches(PyExc_Exception))
        return NULL;
    PyObject *type, *value, *tb;
    PyErr_Fetch(&type, &value, &tb);
    PyObject *r = PySequence_InPlaceConcat(buf, p);
    if (r == NULL) { /* (as in Python: the new exception propagates) */
        Py_XDECREF(type);
        Py_XDECREF(value);
        Py_XDECREF(tb);
        return NULL;
    }
    Py_DECREF(r);
    PyErr_Restore(type, value, tb);
    return NULL;
}

/* The usual HTTP case of _tcp: read_bodies over `src` (d.buf grown by p, or p itself). */
static PyObject *http_segment(PyObject *self, PyObject *key, PyObject *d, PyObject *flow,
                              PyObject *buf, PyObject *p, PyObject *t, PyObject *no) {
    PyObject *src = p;
    if (PyByteArray_GET_SIZE(buf)) {
        PyObject *r = PySequence_InPlaceConcat(buf, p);
        if (r == NULL)
            return NULL;
        Py_DECREF(r);
        src = buf;
    }
    PyObject *res = NULL, *read = PyDict_GetItemWithError(http_dict, s_read_bodies);
    if (read == NULL) {
        if (!PyErr_Occurred())
            PyErr_SetString(PyExc_AttributeError, "http.read_bodies");
        goto fail;
    }
    PyObject *head = Py_NewRef(SLOT(d, o_head)); /* (set: checked by segment) */
    PyObject *args[2] = {src, head};
    Py_INCREF(read); /* (held: the call may rebind http.read_bodies) */
    res = PyObject_Vectorcall(read, args, 2, NULL);
    Py_DECREF(read);
    Py_DECREF(head);
    if (res == NULL)
        goto fail;
    if (!PyTuple_CheckExact(res) || PyTuple_GET_SIZE(res) != 5) {
        PyErr_SetString(PyExc_ValueError, "http.read_bodies: not a 5-tuple");
        goto fail;
    }
    PyObject *count = PyTuple_GET_ITEM(res, 0);
    set_slot(d, o_head, PyTuple_GET_ITEM(res, 2));
    int any = PyObject_IsTrue(count);
    if (any < 0)
        goto fail;
    if (any) {
        PyObject *upgrade = PyTuple_GET_ITEM(res, 3), *bodies = PyTuple_GET_ITEM(res, 4);
        int up = PyObject_IsTrue(upgrade);
        if (up < 0)
            goto fail;
        if (up || !PyList_CheckExact(bodies)) { /* rare: the Python version follows it */
            PyObject *a[10] = {self, flow, key, d, t, no, Py_False, count, upgrade, bodies};
            PyObject *r = PyObject_VectorcallMethod(s_http_messages, a, 10, NULL);
            if (r == NULL)
                goto fail;
            Py_DECREF(r);
        } else {
            if (count_kind(flow, s_http, count) < 0)
                goto fail;
            for (Py_ssize_t k = 0; k < PyList_GET_SIZE(bodies); k++) {
                PyObject *body = Py_NewRef(PyList_GET_ITEM(bodies, k));
                PyObject *a[6] = {self, flow, body, t, no, s_http};
                PyObject *r = PyObject_VectorcallMethod(s_json_body, a, 6, NULL);
                Py_DECREF(body);
                if (r == NULL)
                    goto fail;
                Py_DECREF(r);
            }
        }
    }
    Py_ssize_t used = PyNumber_AsSsize_t(PyTuple_GET_ITEM(res, 1), PyExc_OverflowError);
    if (used == -1 && PyErr_Occurred())
        goto fail;
    Py_DECREF(res);
    if (src == buf) {
        if (used && PySequence_DelSlice(buf, 0, used) < 0)
            return NULL;
    } else if (used < PyBytes_GET_SIZE(p) && keep_tail(buf, p, used) < 0)
        return NULL;
    Py_RETURN_NONE;
fail:
    Py_XDECREF(res);
    return src == p ? failed_in_place(buf, p) : NULL;
}

/* The usual SIP case of _tcp (nothing held back): the segment's whole messages read. */
static PyObject *sip_segment(PyObject *self, PyObject *flow, PyObject *buf, PyObject *p,
                             PyObject *t, PyObject *no) {
    PyObject *res = NULL, *split = PyDict_GetItemWithError(sip_dict, s_split_stream);
    if (split == NULL) {
        if (!PyErr_Occurred())
            PyErr_SetString(PyExc_AttributeError, "sip.split_stream");
        goto fail;
    }
    Py_INCREF(split);
    res = PyObject_CallOneArg(split, p);
    Py_DECREF(split);
    if (res == NULL)
        goto fail;
    if (!PyTuple_CheckExact(res) || PyTuple_GET_SIZE(res) != 2) {
        PyErr_SetString(PyExc_ValueError, "sip.split_stream: not a 2-tuple");
        goto fail;
    }
    PyObject *messages = PyTuple_GET_ITEM(res, 0);
    PyObject *it = PyObject_GetIter(messages);
    if (it == NULL)
        goto fail;
    PyObject *m;
    while ((m = PyIter_Next(it)) != NULL) {
        PyObject *r = NULL;
        if (count_kind(flow, s_sip, one) == 0) {
            PyObject *a[6] = {self, flow, m, t, no, s_tcp_str};
            r = PyObject_VectorcallMethod(s_sip_message, a, 6, NULL);
        }
        Py_DECREF(m);
        if (r == NULL) {
            Py_DECREF(it);
            goto fail;
        }
        Py_DECREF(r);
    }
    Py_DECREF(it);
    if (PyErr_Occurred())
        goto fail;
    Py_ssize_t used = PyNumber_AsSsize_t(PyTuple_GET_ITEM(res, 1), PyExc_OverflowError);
    if (used == -1 && PyErr_Occurred())
        goto fail;
    Py_DECREF(res);
    if (used < PyBytes_GET_SIZE(p) && keep_tail(buf, p, used) < 0)
        return NULL;
    Py_RETURN_NONE;
fail:
    Py_XDECREF(res);
    return failed_in_place(buf, p);
}

/* Does p start with one of the bytes in `tuple` (a module's tuple of bytes)? 1 or 0; -1
 * when the tuple is not one (the Python version then decides). */
static int starts_with_any(PyObject *p, PyObject *tuple) {
    if (tuple == NULL || !PyTuple_CheckExact(tuple))
        return -1;
    const char *s = PyBytes_AS_STRING(p);
    Py_ssize_t n = PyBytes_GET_SIZE(p);
    for (Py_ssize_t i = 0; i < PyTuple_GET_SIZE(tuple); i++) {
        PyObject *w = PyTuple_GET_ITEM(tuple, i);
        if (!PyBytes_CheckExact(w))
            return -1;
        Py_ssize_t k = PyBytes_GET_SIZE(w);
        if (k <= n && memcmp(s, PyBytes_AS_STRING(w), (size_t)k) == 0)
            return 1;
    }
    return 0;
}

/* framing.text_start(p): 2 for SIP, 1 for HTTP, 0 for neither, -1 to leave it to Python */
static int text_start(PyObject *p) {
    int r = starts_with_any(p, PyDict_GetItem(sip_dict, s_starts)); /* sip.STARTS */
    if (r != 0)
        return r < 0 ? -1 : 2;
    r = starts_with_any(p, PyDict_GetItem(http_dict, s_methods)); /* http.METHODS */
    if (r != 0)
        return r < 0 ? -1 : 1;
    return PyBytes_GET_SIZE(p) >= 7 && memcmp(PyBytes_AS_STRING(p), "HTTP/1.", 7) == 0;
}

/* TcpStreams._tcp_python's new direction for a SYN: d = self.tcp[key] = TcpDirection(),
 * d.opened = True, d.flow = self.flows.get(key) or self._new_flow(key, key, "tcp", None,
 * t, no); d (a new reference), or NULL with an exception. */
static PyObject *open_direction(PyObject *self, PyObject *tcp, PyObject *key, PyObject *t,
                                PyObject *no) {
    PyObject *d = PyObject_CallNoArgs((PyObject *)dir_type), *flows = NULL, *flow = NULL;
    if (d == NULL || PyDict_SetItem(tcp, key, d) < 0)
        goto fail;
    set_slot(d, o_opened, Py_True);
    if ((flows = PyObject_GetAttr(self, s_flows)) == NULL)
        goto fail;
    flow = PyObject_CallMethodOneArg(flows, s_get, key);
    Py_DECREF(flows);
    if (flow == NULL)
        goto fail;
    int truth = PyObject_IsTrue(flow);
    if (truth < 0)
        goto fail;
    if (!truth) {
        Py_DECREF(flow);
        PyObject *a[7] = {self, key, key, s_tcp_str, Py_None, t, no};
        if ((flow = PyObject_VectorcallMethod(s_new_flow, a, 7, NULL)) == NULL)
            goto fail;
    }
    set_slot(d, o_flow, flow);
    Py_DECREF(flow);
    return d;
fail:
    Py_XDECREF(flow);
    Py_XDECREF(d);
    return NULL;
}

static PyObject *python_version(PyObject *const *args) {
    PyObject *a[7] = {args[0], args[1], args[2], args[3], args[4], args[5], args[6]};
    return PyObject_VectorcallMethod(s_tcp_python, a, 7, NULL);
}

/* An int in [lo, hi] as *out, else 0 (and no exception). */
static int small_int(PyObject *obj, long long lo, long long hi, long long *out) {
    if (!PyLong_CheckExact(obj))
        return 0;
    int overflow;
    long long v = PyLong_AsLongLongAndOverflow(obj, &overflow);
    if (overflow || (v == -1 && PyErr_Occurred())) {
        PyErr_Clear();
        return 0;
    }
    *out = v;
    return v >= lo && v <= hi;
}

/* Are the slots set that a segment reads (as TcpDirection() and Flow() set them)? */
static int slots_set(PyObject *d, PyObject *flow) {
    return SLOT(d, o_next_seq) && SLOT(d, o_pending) && SLOT(d, o_buf) && SLOT(d, o_mode) &&
           SLOT(d, o_head) && SLOT(flow, o_packets) && SLOT(flow, o_bytes) &&
           SLOT(flow, o_kinds);
}

static PyObject *segment(PyObject *module, PyObject *const *args, Py_ssize_t nargs) {
    if (nargs != 7) {
        PyErr_SetString(PyExc_TypeError, "_tcp(key, p, seq, flags, t, no)");
        return NULL;
    }
    if (dir_type == NULL) {
        PyErr_SetString(PyExc_RuntimeError, "_tcpwalk.setup was not called");
        return NULL;
    }
    PyObject *self = args[0], *key = args[1], *p = args[2], *t = args[5], *no = args[6];
    long long seq, flags;
    if (!PyBytes_CheckExact(p) || !small_int(args[3], 0, 0xFFFFFFFFLL, &seq) ||
        !small_int(args[4], 0, 0xFFFF, &flags))
        return python_version(args);
    /* d = self.tcp.get(key): a new direction is made here for a bare SYN (or SYN-ACK),
     * in Python for anything else */
    PyObject *tcp = PyObject_GetAttr(self, s_tcp);
    if (tcp == NULL)
        return NULL;
    if (!PyDict_CheckExact(tcp)) {
        Py_DECREF(tcp);
        return python_version(args);
    }
    PyObject *d = PyDict_GetItemWithError(tcp, key);
    if (d == NULL && !PyErr_Occurred() && PyBytes_GET_SIZE(p) == 0 && (flags & SYN)) {
        d = open_direction(self, tcp, key, t, no);
        Py_XDECREF(d); /* self.tcp holds it, as it holds any other */
        if (d == NULL) {
            Py_DECREF(tcp);
            return NULL;
        }
    }
    Py_DECREF(tcp);
    if (d == NULL) {
        if (PyErr_Occurred())
            return NULL;
        return python_version(args);
    }
    if (!Py_IS_TYPE(d, dir_type))
        return python_version(args);
    PyObject *flow = SLOT(d, o_flow);
    if (flow == NULL || !Py_IS_TYPE(flow, flow_type) || !slots_set(d, flow))
        return python_version(args);
    Py_ssize_t n = PyBytes_GET_SIZE(p);
    int kind = 0, told = 0; /* kind 0: SYN or no payload; 1: HTTP; 2: SIP */
    if (n && !(flags & SYN)) { /* decided before anything changes: the rest is Python's */
        long long want;
        if (!small_int(SLOT(d, o_next_seq), 0, 0xFFFFFFFFLL, &want) || want != seq)
            return python_version(args);
        PyObject *pending = SLOT(d, o_pending);
        if (!PyDict_CheckExact(pending) || PyDict_GET_SIZE(pending))
            return python_version(args);
        PyObject *buf = SLOT(d, o_buf), *mode = SLOT(d, o_mode);
        if (!PyByteArray_CheckExact(buf))
            return python_version(args);
        if (mode_is(mode, s_http))
            kind = 1;
        else if (mode_is(mode, s_sip) && PyByteArray_GET_SIZE(buf) == 0)
            kind = 2;
        else if (mode_is(mode, s_detect) && SLOT(d, o_opened) == Py_True &&
                 PyByteArray_GET_SIZE(buf) == 0 && (kind = text_start(p)) > 0)
            told = 1; /* its first bytes, as _detect reads them (not TLS, no PROXY v2) */
        else
            return python_version(args);
    }
    /* from here on as the Python version: d and flow are held (a dissector may drop them) */
    Py_INCREF(d);
    Py_INCREF(flow);
    PyObject *result = NULL;
    if (add_slot(flow, o_packets, one) < 0)
        goto done;
    set_slot(flow, o_last_t, t);
    if (n) {
        PyObject *size = PyLong_FromSsize_t(n);
        if (size == NULL)
            goto done;
        int r = add_slot(flow, o_bytes, size);
        Py_DECREF(size);
        if (r < 0)
            goto done;
    }
    if (flags & SYN) {
        if (set_next_seq(d, seq + 1) == 0)
            result = Py_NewRef(Py_None);
        goto done;
    }
    if (!n) {
        result = Py_NewRef(Py_None);
        goto done;
    }
    if (set_next_seq(d, seq + n) < 0)
        goto done;
    if (told) /* TcpStreams._detect: the mode, then its reader */
        set_slot(d, o_mode, kind == 1 ? s_http : s_sip);
    PyObject *buf = Py_NewRef(SLOT(d, o_buf));
    if (kind == 1)
        result = http_segment(self, key, d, flow, buf, p, t, no);
    else
        result = sip_segment(self, flow, buf, p, t, no);
    Py_DECREF(buf);
done:
    Py_DECREF(d);
    Py_DECREF(flow);
    return result;
}

static PyObject *setup(PyObject *module, PyObject *args) {
    PyObject *http, *sip;
    PyTypeObject *dt, *ft;
    if (!PyArg_ParseTuple(args, "OOO!O!", &http, &sip, &PyType_Type, &dt, &PyType_Type, &ft))
        return NULL;
    PyObject *h = PyModule_GetDict(http), *s = PyModule_GetDict(sip);
    if (h == NULL || s == NULL)
        return NULL;
    if ((o_next_seq = slot_offset(dt, "next_seq")) < 0 ||
        (o_pending = slot_offset(dt, "pending")) < 0 || (o_buf = slot_offset(dt, "buf")) < 0 ||
        (o_mode = slot_offset(dt, "mode")) < 0 || (o_head = slot_offset(dt, "head")) < 0 ||
        (o_flow = slot_offset(dt, "flow")) < 0 || (o_opened = slot_offset(dt, "opened")) < 0 ||
        (o_packets = slot_offset(ft, "packets")) < 0 ||
        (o_bytes = slot_offset(ft, "bytes")) < 0 || (o_last_t = slot_offset(ft, "last_t")) < 0 ||
        (o_kinds = slot_offset(ft, "kinds")) < 0)
        return NULL;
    Py_XSETREF(dir_type, (PyTypeObject *)Py_NewRef(dt));
    Py_XSETREF(flow_type, (PyTypeObject *)Py_NewRef(ft));
    Py_XSETREF(http_dict, Py_NewRef(h));
    Py_XSETREF(sip_dict, Py_NewRef(s));
    Py_RETURN_NONE;
}

static PyMethodDef segment_def = {
    "segment", (PyCFunction)(void (*)(void))segment, METH_FASTCALL,
    "segment(self, key, p, seq, flags, t, no): TcpStreams._tcp, compiled."};

static PyMethodDef methods[] = {
    {"setup", setup, METH_VARARGS,
     "setup(http, sip, TcpDirection, Flow): the modules whose read_bodies and split_stream "
     "the walk calls, and the classes whose slots it reads."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT, "_tcpwalk", "TcpStreams._tcp's usual segments, compiled.", -1,
    methods,
};

#define NAME(var, text)                                                                        \
    if ((var = PyUnicode_InternFromString(text)) == NULL)                                     \
        goto error;

PyMODINIT_FUNC PyInit__tcpwalk(void) {
    PyObject *m = PyModule_Create(&module);
    if (m == NULL)
        return NULL;
    NAME(s_tcp, "tcp");
    NAME(s_http, "http");
    NAME(s_sip, "sip");
    NAME(s_tcp_str, "tcp");
    NAME(s_json_body, "_json_body");
    NAME(s_sip_message, "_sip_message");
    NAME(s_http_messages, "_http_messages");
    NAME(s_tcp_python, "_tcp_python");
    NAME(s_read_bodies, "read_bodies");
    NAME(s_split_stream, "split_stream");
    NAME(s_detect, "detect");
    NAME(s_starts, "STARTS");
    NAME(s_methods, "METHODS");
    NAME(s_flows, "flows");
    NAME(s_get, "get");
    NAME(s_new_flow, "_new_flow");
    if ((one = PyLong_FromLong(1)) == NULL)
        goto error;
    PyObject *func = PyCFunction_New(&segment_def, NULL);
    if (func == NULL)
        goto error;
    PyObject *method = PyInstanceMethod_New(func); /* binds like a def: self first */
    Py_DECREF(func);
    if (method == NULL || PyModule_AddObject(m, "segment", method) < 0) {
        Py_XDECREF(method);
        goto error;
    }
    return m;
error:
    Py_DECREF(m);
    return NULL;
}
