/* dtls.scan in C: a datagram's records as the analyser and the session read them.
 * A handshake-heavy capture holds thousands of DTLS datagrams; in Python each is parsed
 * into Record and Handshake objects (bodies copied, a Client/ServerHello's extensions
 * walked) that the session then reads a few fields of. Here the records are read in one
 * pass and only those fields are built. dtls.py keeps the Python scan (parse, then
 * summarize) as the fallback and as the reference the tests compare this with, so every
 * rule below mirrors dtls.parse, _handshakes and _hello_extensions: where a record or a
 * message overruns and the reading stops, when an extension list is read, which
 * use_srtp wins, what an unknown number is called.
 *
 * setup(handshake_names, alert_names, srtp_profiles)
 *   handshake_names, alert_names: 256 names each, by number (str(n) when unknown);
 *   srtp_profiles: {number: name}.
 * scan(p) -> dtls.Scan | None, as dtls.scan_py:
 *   (only ApplicationData, a ServerHello offers use_srtp, steps, certificate fragments);
 *   a step is (content type, alert | None, ((type, frag_offset, client random | None,
 *   extended_master_secret, first SRTP profile | None), ...)).
 *   A handshake datagram (bytes not starting with ApplicationData) is read once: a flight
 *   is resent whole until it is answered, so its copies share the first one's answer
 *   (kept by the bytes, as many as SEEN_MAX; the answer is immutable, tuples of str,
 *   bytes and bools). Application data is never resent, so is read each time.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stdint.h>

static PyObject *handshake_names, *alert_names, *srtp_profiles;
static PyObject *seen; /* handshake datagram (bytes) -> its scan */
#define SEEN_MAX 4096  /* then forgotten all at once: a capture of many handshakes */
static PyObject *s_fatal, *s_warning, *encrypted_alert, *no_items, *only_data;

#define U16(b) ((unsigned)(b)[0] << 8 | (b)[1])
#define U24(b) ((unsigned long)(b)[0] << 16 | (unsigned long)(b)[1] << 8 | (b)[2])

/* A complete Client/ServerHello's use_srtp and extended_master_secret (_hello_extensions:
 * a header field past the end reads nothing; the extension list stops at its end or the
 * body's; a later use_srtp replaces an earlier one). */
static void hello(const uint8_t *b, Py_ssize_t n, int client, int *ems, long *srtp) {
    Py_ssize_t off = 2 + 32, end, lim;
    if (off >= n)
        return;
    off += 1 + b[off]; /* session id */
    if (client) {
        if (off >= n)
            return;
        off += 1 + b[off]; /* cookie */
        if (off + 1 >= n)
            return;
        off += 2 + U16(b + off); /* cipher suites */
        if (off >= n)
            return;
        off += 1 + b[off]; /* compression methods */
    } else {
        off += 2 + 1;
    }
    if (off + 1 >= n)
        return;
    end = off + 2 + U16(b + off);
    off += 2;
    lim = end < n ? end : n;
    while (off + 4 <= lim) {
        unsigned et = U16(b + off), el = U16(b + off + 2);
        Py_ssize_t vlen = n - (off + 4) < (Py_ssize_t)el ? n - (off + 4) : (Py_ssize_t)el;
        const uint8_t *v = b + off + 4;
        if (et == 23) {
            *ems = 1;
        } else if (et == 14 && vlen >= 2) {
            Py_ssize_t listed = 2 + (Py_ssize_t)U16(v);
            *srtp = (listed < vlen ? listed : vlen) >= 4 ? (long)U16(v + 2) : -1;
        }
        off += 4 + el;
    }
}

static PyObject *srtp_name(long profile) {
    PyObject *key = PyLong_FromLong(profile), *name;
    if (!key)
        return NULL;
    name = PyDict_GetItemWithError(srtp_profiles, key);
    Py_DECREF(key);
    if (name) {
        Py_INCREF(name);
        return name;
    }
    return PyErr_Occurred() ? NULL : PyUnicode_FromFormat("%ld", profile);
}

/* The handshake messages of a plaintext handshake record (_handshakes). */
static PyObject *handshakes(const uint8_t *f, Py_ssize_t n, int *srtp_offered, PyObject *certs) {
    Py_ssize_t off, count = 0, i = 0;
    PyObject *out;
    for (off = 0; off + 12 <= n; off += 12 + (Py_ssize_t)U24(f + off + 9)) {
        if (off + 12 + (Py_ssize_t)U24(f + off + 9) > n)
            break;
        count++;
    }
    if (!count) {
        Py_INCREF(no_items);
        return no_items;
    }
    if (!(out = PyTuple_New(count)))
        return NULL;
    for (off = 0; i < count; i++) {
        const uint8_t *h = f + off, *body = h + 12;
        unsigned ht = h[0];
        unsigned long length = U24(h + 1), fo = U24(h + 6), fl = U24(h + 9);
        int ems = 0;
        long srtp = -1;
        PyObject *name = PyTuple_GET_ITEM(handshake_names, ht), *random, *profile, *item;
        if ((ht == 1 || ht == 2) && fo == 0 && fl == length)
            hello(body, (Py_ssize_t)fl, ht == 1, &ems, &srtp);
        if (srtp >= 0) {
            profile = srtp_name(srtp);
            *srtp_offered |= ht == 2;
        } else {
            profile = Py_None;
            Py_INCREF(profile);
        }
        if (!profile) {
            Py_DECREF(out);
            return NULL;
        }
        if (ht == 1 && fo == 0 && fl >= 34) {
            random = PyBytes_FromStringAndSize((const char *)body + 2, 32);
        } else {
            random = Py_None;
            Py_INCREF(random);
        }
        item = random ? Py_BuildValue("(OkOOO)", name, fo, random, ems ? Py_True : Py_False, profile)
                   : NULL;
        Py_XDECREF(random);
        Py_XDECREF(profile);
        if (!item) {
            Py_DECREF(out);
            return NULL;
        }
        PyTuple_SET_ITEM(out, i, item);
        if (ht == 11) {
            PyObject *cert = Py_BuildValue("(kky#)", (unsigned long)U16(h + 4), fo,
                                           (const char *)body, (Py_ssize_t)fl);
            if (!cert || PyList_Append(certs, cert) < 0) {
                Py_XDECREF(cert);
                Py_DECREF(out);
                return NULL;
            }
            Py_DECREF(cert);
        }
        off += 12 + (Py_ssize_t)fl;
    }
    return out;
}

static PyObject *alert(const uint8_t *frag, Py_ssize_t ln, unsigned epoch) {
    if (epoch == 0 && ln >= 2)
        return PyTuple_Pack(2, frag[0] == 2 ? s_fatal : s_warning,
                            PyTuple_GET_ITEM(alert_names, frag[1]));
    Py_INCREF(encrypted_alert);
    return encrypted_alert;
}

static PyObject *scan_records(const uint8_t *p, Py_ssize_t n) {
    Py_ssize_t off, count = 0, i = 0;
    int data_only = 1, srtp_offered = 0;
    PyObject *steps = NULL, *certs = NULL, *out = NULL;
    for (off = 0; off + 13 <= n; off += 13 + U16(p + off + 11)) {
        if (p[off] < 20 || p[off] > 25 || off + 13 + U16(p + off + 11) > n)
            break;
        data_only &= p[off] == 23;
        count++;
    }
    if (!count)
        Py_RETURN_NONE;
    if (data_only) {
        Py_INCREF(only_data);
        return only_data;
    }
    if (!(steps = PyTuple_New(count)) || !(certs = PyList_New(0)))
        goto done;
    for (off = 0; i < count; i++) {
        const uint8_t *r = p + off, *frag = r + 13;
        unsigned ct = r[0], epoch = U16(r + 3);
        Py_ssize_t ln = U16(r + 11);
        PyObject *al = Py_None, *hss = no_items, *step;
        if (ct == 22 && epoch == 0) {
            hss = handshakes(frag, ln, &srtp_offered, certs);
        } else if (ct == 22) { /* encrypted: reported as a Finished */
            hss = Py_BuildValue("((OiOOO))", PyTuple_GET_ITEM(handshake_names, 20), 0, Py_None,
                                Py_False, Py_None);
        } else {
            Py_INCREF(hss);
        }
        if (ct == 21) {
            al = alert(frag, ln, epoch);
        } else {
            Py_INCREF(al);
        }
        step = hss && al ? Py_BuildValue("(IOO)", ct, al, hss) : NULL;
        Py_XDECREF(hss);
        Py_XDECREF(al);
        if (!step)
            goto done;
        PyTuple_SET_ITEM(steps, i, step);
        off += 13 + ln;
    }
    out = Py_BuildValue("(OONN)", Py_False, srtp_offered ? Py_True : Py_False, steps,
                        PyList_AsTuple(certs));
    steps = NULL;
done:
    Py_XDECREF(steps);
    Py_XDECREF(certs);
    return out;
}

/* scan_records of a handshake datagram, the answer kept for its copies (see scan). */
static PyObject *scan_once(PyObject *p) {
    PyObject *out = PyDict_GetItemWithError(seen, p);
    if (out) {
        Py_INCREF(out);
        return out;
    }
    if (PyErr_Occurred())
        return NULL;
    out = scan_records((const uint8_t *)PyBytes_AS_STRING(p), PyBytes_GET_SIZE(p));
    if (out && PyDict_GET_SIZE(seen) >= SEEN_MAX)
        PyDict_Clear(seen);
    if (out && PyDict_SetItem(seen, p, out) < 0)
        Py_CLEAR(out);
    return out;
}

static PyObject *scan(PyObject *self, PyObject *arg) {
    Py_buffer view;
    PyObject *out;
    if (!handshake_names) {
        PyErr_SetString(PyExc_RuntimeError, "_dtlsscan.setup() was not called");
        return NULL;
    }
    if (PyBytes_CheckExact(arg) && PyBytes_GET_SIZE(arg) && PyBytes_AS_STRING(arg)[0] != 23)
        return scan_once(arg);
    if (PyBytes_Check(arg))
        return scan_records((const uint8_t *)PyBytes_AS_STRING(arg), PyBytes_GET_SIZE(arg));
    if (PyObject_GetBuffer(arg, &view, PyBUF_SIMPLE) < 0)
        return NULL;
    out = scan_records((const uint8_t *)view.buf, view.len);
    PyBuffer_Release(&view);
    return out;
}

static PyObject *setup(PyObject *self, PyObject *args) {
    PyObject *hs, *al, *srtp;
    if (!PyArg_ParseTuple(args, "O!O!O!", &PyTuple_Type, &hs, &PyTuple_Type, &al, &PyDict_Type,
                          &srtp))
        return NULL;
    if (PyTuple_GET_SIZE(hs) != 256 || PyTuple_GET_SIZE(al) != 256) {
        PyErr_SetString(PyExc_ValueError, "a name for each of the 256 numbers");
        return NULL;
    }
    Py_INCREF(hs);
    Py_INCREF(al);
    Py_INCREF(srtp);
    Py_XSETREF(handshake_names, hs);
    Py_XSETREF(alert_names, al);
    Py_XSETREF(srtp_profiles, srtp);
    if (seen)
        PyDict_Clear(seen); /* read with the names before */
    Py_RETURN_NONE;
}

static PyMethodDef module_methods[] = {
    {"setup", setup, METH_VARARGS, "Bind the handshake, alert and SRTP profile names."},
    {"scan", scan, METH_O, "dtls.scan: what the analyser reads of a datagram, or None."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {PyModuleDef_HEAD_INIT, "_dtlsscan", NULL, -1, module_methods};

PyMODINIT_FUNC PyInit__dtlsscan(void) {
    if (!s_fatal && !(s_fatal = PyUnicode_InternFromString("fatal")))
        return NULL;
    if (!s_warning && !(s_warning = PyUnicode_InternFromString("warning")))
        return NULL;
    if (!encrypted_alert && !(encrypted_alert = Py_BuildValue("(ss)", "encrypted", "encrypted")))
        return NULL;
    if (!no_items && !(no_items = PyTuple_New(0)))
        return NULL;
    if (!only_data && !(only_data = Py_BuildValue("(OO()())", Py_True, Py_False)))
        return NULL;
    if (!seen && !(seen = PyDict_New()))
        return NULL;
    return PyModule_Create(&module);
}
