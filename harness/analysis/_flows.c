/* A walk's Flow made in C: `Analyzer._new_flow_py` (analyzer.py), its reference and the
 * fallback, without its Python frames. A handshake-heavy capture makes thousands of flows
 * (case (c) of benchmarks/bench_analyze.py: 6,560), each ~11k instructions in Python and
 * its label (made for every flow: every event and the summary name it) ~6k more.
 *
 * The flow's sixteen slots are filled by their offsets, found once by setup(), which
 * refuses a Flow whose slots are not the ones named here. The label and the printed ends
 * are made with the flow, as Flow.label would make them when first read. */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stdio.h>
#include <structmember.h>

#include "slots.h"

enum {
    F_PROTO, F_SRC, F_DST, F_VIA, F_PACKETS, F_BYTES, F_FIRST_T, F_LAST_T,
    F_FIRST_FRAME, F_KINDS, F_STREAMS, F_TURN_CLIENT, F_SRTP, F_KEY, F_LABEL, F_ENDS, NF
};
static const char *FIELDS[NF] = {
    "proto",  "src",   "dst",      "via",         "packets", "bytes", "first_t", "last_t",
    "first_frame", "kinds", "streams", "turn_client", "srtp", "key", "_label", "_ends"};
static Py_ssize_t offsets[NF];
static PyTypeObject *flow_type, *counter_type;
static PyObject *endpoints_py; /* net.endpoints: keys that are not IPv4 */
static PyObject *no_args, *zero_float;

/* IPv4 address -> its dotted text: a capture's flows share a few hosts (net._ipv4_names) */
#define NAMES 512
static struct {
    uint32_t addr;
    PyObject *text;
} names[NAMES];

static PyObject *ipv4_text(const unsigned char *a) {
    uint32_t addr = (uint32_t)a[0] << 24 | (uint32_t)a[1] << 16 | (uint32_t)a[2] << 8 | a[3];
    unsigned h = (addr * 2654435761u) >> 23; /* 9 bits: NAMES places */
    if (names[h].text && names[h].addr == addr)
        return Py_NewRef(names[h].text);
    char buf[16];
    int n = snprintf(buf, sizeof buf, "%u.%u.%u.%u", a[0], a[1], a[2], a[3]);
    PyObject *text = PyUnicode_FromStringAndSize(buf, n);
    if (!text)
        return NULL;
    Py_XSETREF(names[h].text, Py_NewRef(text));
    names[h].addr = addr;
    return text;
}

/* Text of a str into b (at most cap bytes): its length, or -1 (not a str, too long) */
static Py_ssize_t put(char *b, Py_ssize_t cap, PyObject *o) {
    Py_ssize_t n;
    const char *u = PyUnicode_Check(o) ? PyUnicode_AsUTF8AndSize(o, &n) : NULL;
    if (!u) {
        PyErr_Clear();
        return -1;
    }
    if (n > cap)
        return -1;
    memcpy(b, u, n);
    return n;
}

/* fmt_addr into b: "a:p", "[a]:p" for an address with colons (IPv6); -1: not done here */
static Py_ssize_t put_end(char *b, Py_ssize_t cap, PyObject *addr, PyObject *port) {
    if (!PyUnicode_Check(addr) || !PyLong_CheckExact(port))
        return -1;
    long pn = PyLong_AsLong(port);
    if (pn < 0 || pn > 65535 || cap < 64) {
        PyErr_Clear();
        return -1;
    }
    int v6 = PyUnicode_FindChar(addr, ':', 0, PyUnicode_GET_LENGTH(addr), 1) >= 0;
    Py_ssize_t n = 0, a;
    if (v6)
        b[n++] = '[';
    if ((a = put(b + n, cap - 8 - n, addr)) < 0)
        return -1;
    n += a;
    if (v6)
        b[n++] = ']';
    char digits[5];
    int nd = 0;
    do
        digits[nd++] = (char)('0' + pn % 10);
    while ((pn /= 10) > 0);
    b[n++] = ':';
    while (nd > 0)
        b[n++] = digits[--nd];
    return n;
}

/* Flow.label's texts: (src, dst) and the label, as the property makes them */
static int texts(PyObject *proto, PyObject *via, int in, PyObject *s, PyObject *sp, PyObject *d,
                 PyObject *dp, PyObject **ends, PyObject **label) {
    char b[512];
    Py_ssize_t n = 0, k, src_at, src_n, dst_at, dst_n;
    PyObject *src, *dst;
    if ((k = put(b, 64, proto)) < 0)
        goto slow;
    n += k;
    b[n++] = ' ';
    src_at = n;
    if ((src_n = put_end(b + n, 200, s, sp)) < 0)
        goto slow;
    n += src_n;
    memcpy(b + n, " > ", 3);
    n += 3;
    dst_at = n;
    if ((dst_n = put_end(b + n, 200, d, dp)) < 0)
        goto slow;
    n += dst_n;
    if (in) {
        memcpy(b + n, " (in ", 5);
        n += 5;
        if ((k = put(b + n, (Py_ssize_t)sizeof b - n - 1, via)) < 0)
            goto slow;
        n += k;
        b[n++] = ')';
    }
    src = PyUnicode_DecodeUTF8(b + src_at, src_n, NULL);
    dst = src ? PyUnicode_DecodeUTF8(b + dst_at, dst_n, NULL) : NULL;
    *label = dst ? PyUnicode_DecodeUTF8(b, n, NULL) : NULL;
    *ends = *label ? PyTuple_Pack(2, src, dst) : NULL;
    Py_XDECREF(src);
    Py_XDECREF(dst);
    return *ends ? 0 : -1;
slow: /* what the property's f-strings make of anything else */
    src = PyUnicode_FromFormat(
        PyUnicode_Check(s) && PyUnicode_FindChar(s, ':', 0, PyUnicode_GET_LENGTH(s), 1) >= 0
            ? "[%S]:%S" : "%S:%S", s, sp);
    dst = src ? PyUnicode_FromFormat(
                    PyUnicode_Check(d) &&
                            PyUnicode_FindChar(d, ':', 0, PyUnicode_GET_LENGTH(d), 1) >= 0
                        ? "[%S]:%S" : "%S:%S", d, dp)
              : NULL;
    if (dst)
        *label = in ? PyUnicode_FromFormat("%S %S > %S (in %S)", proto, src, dst, via)
                    : PyUnicode_FromFormat("%S %S > %S", proto, src, dst);
    *ends = *label ? PyTuple_Pack(2, src, dst) : NULL;
    Py_XDECREF(src);
    Py_XDECREF(dst);
    return *ends ? 0 : -1;
}

static PyObject *setup(PyObject *self, PyObject *args) {
    PyObject *fcls, *ccls, *ends;
    if (!PyArg_ParseTuple(args, "O!O!O:setup", &PyType_Type, &fcls, &PyType_Type, &ccls, &ends))
        return NULL;
    PyTypeObject *ft = (PyTypeObject *)fcls;
    PyObject *slots = PyDict_GetItemString(ft->tp_dict, "__slots__");
    Py_ssize_t found[NF];
    int ok = slots && PyTuple_Check(slots) && PyTuple_GET_SIZE(slots) == NF;
    for (int f = 0; ok && f < NF; f++)
        ok = (found[f] = slot_offset(ft, FIELDS[f])) >= 0;
    if (!ok || !PyType_IsSubtype((PyTypeObject *)ccls, &PyDict_Type)) {
        PyErr_SetString(PyExc_TypeError,
                        "_flows.setup: Flow's slots are not the ones new_flow fills (update "
                        "FIELDS), or kinds is no dict");
        return NULL;
    }
    memcpy(offsets, found, sizeof found);
    Py_XSETREF(flow_type, (PyTypeObject *)Py_NewRef(fcls));
    Py_XSETREF(counter_type, (PyTypeObject *)Py_NewRef(ccls));
    Py_XSETREF(endpoints_py, Py_NewRef(ends));
    Py_RETURN_NONE;
}

/* new_flow(flows, key, raw, proto, via, t, no): flows[key] = the new flow, returned */
static PyObject *new_flow(PyObject *self, PyObject *const *args, Py_ssize_t nargs) {
    if (nargs != 7) {
        PyErr_SetString(PyExc_TypeError, "new_flow(flows, key, raw, proto, via, t, no)");
        return NULL;
    }
    if (!flow_type) {
        PyErr_SetString(PyExc_RuntimeError, "_flows.setup was not called");
        return NULL;
    }
    PyObject *flows = args[0], *key = args[1], *raw = args[2], *proto = args[3], *via = args[4];
    if (!PyDict_Check(flows)) {
        PyErr_SetString(PyExc_TypeError, "new_flow: flows is a dict");
        return NULL;
    }
    PyObject *v[NF] = {NULL}, *s = NULL, *sp = NULL, *d = NULL, *dp = NULL, *flow = NULL;
    if (PyBytes_CheckExact(raw) && PyBytes_GET_SIZE(raw) == 12) { /* IPv4: endpoints' own */
        const unsigned char *k = (const unsigned char *)PyBytes_AS_STRING(raw);
        s = ipv4_text(k);
        d = s ? ipv4_text(k + 4) : NULL;
        sp = d ? PyLong_FromLong(k[8] << 8 | k[9]) : NULL;
        dp = sp ? PyLong_FromLong(k[10] << 8 | k[11]) : NULL;
        if (!dp)
            goto done;
    } else {
        PyObject *e = PyObject_CallOneArg(endpoints_py, raw);
        if (!e)
            goto done;
        if (!PyTuple_Check(e) || PyTuple_GET_SIZE(e) != 4) {
            Py_DECREF(e);
            PyErr_SetString(PyExc_TypeError, "new_flow: endpoints() gave no 4-tuple");
            goto done;
        }
        s = Py_NewRef(PyTuple_GET_ITEM(e, 0));
        sp = Py_NewRef(PyTuple_GET_ITEM(e, 1));
        d = Py_NewRef(PyTuple_GET_ITEM(e, 2));
        dp = Py_NewRef(PyTuple_GET_ITEM(e, 3));
        Py_DECREF(e);
    }
    int in = PyObject_IsTrue(via);
    if (in < 0 || texts(proto, via, in, s, sp, d, dp, &v[F_ENDS], &v[F_LABEL]) < 0)
        goto done;
    if (!v[F_LABEL] || !v[F_ENDS] || !(v[F_SRC] = PyTuple_Pack(2, s, sp)) ||
        !(v[F_DST] = PyTuple_Pack(2, d, dp)) ||
        !(v[F_KINDS] = counter_type->tp_new(counter_type, no_args, NULL)) ||
        !(v[F_STREAMS] = PyDict_New()))
        goto done;
    v[F_PROTO] = Py_NewRef(proto);
    v[F_VIA] = Py_NewRef(via);
    v[F_PACKETS] = PyLong_FromLong(0);
    v[F_BYTES] = PyLong_FromLong(0);
    v[F_FIRST_T] = Py_NewRef(args[5]);
    v[F_LAST_T] = Py_NewRef(zero_float);
    v[F_FIRST_FRAME] = Py_NewRef(args[6]);
    v[F_TURN_CLIENT] = Py_NewRef(Py_False);
    v[F_SRTP] = Py_NewRef(Py_False);
    v[F_KEY] = Py_NewRef(key);
    if (!(flow = flow_type->tp_new(flow_type, no_args, NULL)))
        goto done;
    for (int f = 0; f < NF; f++) { /* the slots take the references */
        *(PyObject **)((char *)flow + offsets[f]) = v[f];
        v[f] = NULL;
    }
    if (PyDict_SetItem(flows, key, flow) < 0)
        Py_CLEAR(flow);
done:
    for (int f = 0; f < NF; f++)
        Py_XDECREF(v[f]);
    Py_XDECREF(s);
    Py_XDECREF(sp);
    Py_XDECREF(d);
    Py_XDECREF(dp);
    return flow;
}

static PyMethodDef methods[] = {
    {"setup", setup, METH_VARARGS, "setup(Flow, Counter, endpoints): the classes new_flow makes."},
    {"new_flow", (PyCFunction)(void (*)(void))new_flow, METH_FASTCALL,
     "new_flow(flows, key, raw, proto, via, t, no): Analyzer._new_flow_py's flow, in flows."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {PyModuleDef_HEAD_INIT, "_flows", NULL, -1, methods};

PyMODINIT_FUNC PyInit__flows(void) {
    if (!no_args && !(no_args = PyTuple_New(0)))
        return NULL;
    if (!zero_float && !(zero_float = PyFloat_FromDouble(0.0)))
        return NULL;
    return PyModule_Create(&module);
}
