/* session._Checks.walk in C: the session model's pass over a capture's STUN events, each
 * counted by kind, each ICE check and its answer filed under their candidate pair and
 * verified. A handshake-heavy capture holds ~29k STUN events (case (c) of
 * benchmarks/bench_analyze.py); in Python each cost ~3.5k instructions of attribute reads,
 * dict look-ups and counts, here the event's, message's and pair's slots are read and
 * written by their offsets (found once by setup(), which refuses classes whose slots are
 * not the ones named here).
 *
 * run(events, checks) -> int
 *   does for events[0], events[1], ... what checks.walk does, and stops at the first event
 *   that is not a StunEvent with a StunMessage (or a pair not a CandidatePair): its index
 *   (len(events) when all are done), from which checks.walk goes on. The first message of
 *   a USERNAME, of a USERNAME on a flow and of a kind are checks.user, .pair and .kind, as
 *   in walk; MESSAGE-INTEGRITY is checks.check (stun.check_integrity). */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <structmember.h>

#include "slots.h"

enum { E_FRAME, E_TIME, E_SRC, E_DST, E_FLOW, E_MSG, E_RAW, NE };
static const char *EVENT_FIELDS[NE] = {"frame", "time", "src", "dst", "flow", "msg", "raw"};
enum { M_METHOD, M_CLS, M_TXID, M_USERNAME, M_USE, M_ERROR, M_FINGERPRINT, M_CLASSIC, NM };
static const char *MSG_FIELDS[NM] = {"method",        "cls",           "txid",
                                     "username",      "use_candidate", "error_code",
                                     "fingerprint_ok", "classic"};
enum { P_REQUESTS, P_SUCCESSES, P_ERRORS, P_NOMINATED, P_FIRST_SUCCESS, P_CHECKED, P_FAILURES, NP };
static const char *PAIR_FIELDS[NP] = {"requests",      "successes",         "errors",
                                      "nominated",     "first_success",     "integrity_checked",
                                      "integrity_failures"};
static Py_ssize_t eoff[NE], moff[NM], poff[NP];
static PyTypeObject *event_type, *msg_type, *pair_type;
static PyObject *s_binding, *s_request, *s_success, *s_error, *s_empty, *one, *zero;

#define SLOT(o, off) (*(PyObject **)((char *)(o) + (off)))

/* A slot's value (borrowed); NULL with AttributeError when unset, as Python reads it. */
static PyObject *get(PyObject *o, Py_ssize_t off, const char *name) {
    PyObject *v = SLOT(o, off);
    if (!v)
        PyErr_Format(PyExc_AttributeError, "'%s' object has no attribute '%s'",
                     Py_TYPE(o)->tp_name, name);
    return v;
}

static void set(PyObject *o, Py_ssize_t off, PyObject *v) { /* steals v */
    Py_XSETREF(SLOT(o, off), v);
}

/* Is s the str `name` (an interned constant)? 1, 0, or -1 with an error. */
static int is(PyObject *s, PyObject *name) {
    if (s == name)
        return 1;
    if (!PyUnicode_Check(s))
        return PyObject_RichCompareBool(s, name, Py_EQ);
    return PyUnicode_Compare(s, name) == 0 ? 1 : (PyErr_Occurred() ? -1 : 0);
}

/* pair.<slot> += 1 */
static int add_one(PyObject *pair, int k) {
    PyObject *was = get(pair, poff[k], PAIR_FIELDS[k]);
    PyObject *now = was ? PyNumber_Add(was, one) : NULL;
    if (!now)
        return -1;
    set(pair, poff[k], now);
    return 0;
}

/* pair.<list slot>.append(item) (item stolen; NULL: an error is set) */
static int append_to(PyObject *pair, int k, PyObject *item) {
    PyObject *list = item ? get(pair, poff[k], PAIR_FIELDS[k]) : NULL;
    int rc = -1;
    if (list && PyList_CheckExact(list))
        rc = PyList_Append(list, item);
    else if (list)
        PyErr_Format(PyExc_TypeError, "CandidatePair.%s is no list", PAIR_FIELDS[k]);
    Py_XDECREF(item);
    return rc;
}

typedef struct {
    PyObject *users, *pending, *kinds, *classic, *failures, *check, *user, *pair, *kind;
} checks_t;

/* The message's kind's list (borrowed from the maps, or made by checks.kind: new). */
static PyObject *kind_list(checks_t *c, PyObject *m, int classic, int *owned) {
    PyObject *by_cls = PyDict_GetItemWithError(classic ? c->classic : c->kinds,
                                               SLOT(m, moff[M_METHOD]));
    PyObject *list = by_cls && PyDict_CheckExact(by_cls)
                         ? PyDict_GetItemWithError(by_cls, SLOT(m, moff[M_CLS]))
                         : NULL;
    *owned = 0;
    if (list || PyErr_Occurred())
        return list;
    *owned = 1;
    return PyObject_CallOneArg(c->kind, m);
}

/* One event: 0 done, 1 not taken (the Python pass goes on from it), -1 an error. */
static int one_event(checks_t *c, PyObject *ev) {
    if (Py_TYPE(ev) != event_type)
        return 1;
    PyObject *m = SLOT(ev, eoff[E_MSG]);
    if (!m || Py_TYPE(m) != msg_type)
        return 1;
    for (int k = 0; k < NM; k++)
        if (!get(m, moff[k], MSG_FIELDS[k]))
            return -1;
    for (int k = 0; k < NE; k++)
        if (!get(ev, eoff[k], EVENT_FIELDS[k]))
            return -1;
    PyObject *method = SLOT(m, moff[M_METHOD]), *cls = SLOT(m, moff[M_CLS]);
    int classic = PyObject_IsTrue(SLOT(m, moff[M_CLASSIC])), owned;
    if (classic < 0)
        return -1;
    PyObject *list = kind_list(c, m, classic, &owned);
    if (!list)
        return -1;
    int rc = PyList_CheckExact(list) ? PyList_Append(list, m) : -1;
    if (rc < 0 && !PyErr_Occurred())
        PyErr_SetString(PyExc_TypeError, "a STUN kind's messages are no list");
    if (owned)
        Py_DECREF(list);
    if (rc < 0)
        return -1;
    PyObject *frame = SLOT(ev, eoff[E_FRAME]);
    if (SLOT(m, moff[M_FINGERPRINT]) == Py_False && PyList_Append(c->failures, frame) < 0)
        return -1;
    int binding = is(method, s_binding);
    if (binding <= 0)
        return binding;
    PyObject *pair, *use, *key, *p_owned = NULL;
    int request = is(cls, s_request), success = 0, error = 0;
    if (request < 0)
        return -1;
    if (request) {
        PyObject *username = SLOT(m, moff[M_USERNAME]);
        int truth = PyObject_IsTrue(username);
        if (truth < 0)
            return -1;
        if (!truth)
            username = s_empty;
        PyObject *user = PyDict_GetItemWithError(c->users, username), *made = NULL;
        if (!user) {
            if (PyErr_Occurred())
                return -1;
            PyObject *args[3] = {NULL, ev, username};
            made = PyObject_Vectorcall(c->user, args + 1, 2 | PY_VECTORCALL_ARGUMENTS_OFFSET,
                                       NULL);
            if (!made)
                return -1;
            if (made == Py_None) {
                Py_DECREF(made);
                return 0;
            }
            user = made;
        }
        if (!PyTuple_CheckExact(user) || PyTuple_GET_SIZE(user) != 3) {
            Py_XDECREF(made);
            PyErr_SetString(PyExc_TypeError, "a USERNAME's entry is no 3-tuple");
            return -1;
        }
        PyObject *gen = PyTuple_GET_ITEM(user, 0), *flows = PyTuple_GET_ITEM(user, 2);
        key = PyTuple_GET_ITEM(user, 1);
        PyObject *seen = PyDict_CheckExact(flows)
                             ? PyDict_GetItemWithError(flows, SLOT(ev, eoff[E_FLOW]))
                             : NULL;
        if (!seen && PyErr_Occurred()) {
            Py_XDECREF(made);
            return -1;
        }
        Py_INCREF(key); /* (held: checks.pair may drop the USERNAME's entry) */
        if (seen && PyTuple_CheckExact(seen) && PyTuple_GET_SIZE(seen) == 3 &&
            PyTuple_GET_ITEM(seen, 0) == SLOT(ev, eoff[E_SRC]) &&
            PyTuple_GET_ITEM(seen, 1) == SLOT(ev, eoff[E_DST])) {
            pair = p_owned = Py_NewRef(PyTuple_GET_ITEM(seen, 2));
        } else {
            PyObject *args[4] = {NULL, ev, gen, flows};
            pair = p_owned = PyObject_Vectorcall(c->pair, args + 1,
                                                 3 | PY_VECTORCALL_ARGUMENTS_OFFSET, NULL);
        }
        Py_XDECREF(made);
        if (!pair) {
            Py_DECREF(key);
            return -1;
        }
        if (Py_TYPE(pair) != pair_type) {
            PyErr_SetString(PyExc_TypeError, "checks.pair made no CandidatePair");
            goto fail;
        }
        if (add_one(pair, P_REQUESTS) < 0)
            goto fail;
        use = SLOT(m, moff[M_USE]);
        PyObject *entry = PyTuple_Pack(3, pair, use, key);
        if (!entry || PyDict_SetItem(c->pending, SLOT(m, moff[M_TXID]), entry) < 0) {
            Py_XDECREF(entry);
            goto fail;
        }
        Py_DECREF(entry);
    } else {
        if ((success = is(cls, s_success)) < 0 || (!success && (error = is(cls, s_error)) < 0))
            return -1;
        if (!success && !error)
            return 0;
        PyObject *p = PyDict_GetItemWithError(c->pending, SLOT(m, moff[M_TXID]));
        if (!p)
            return PyErr_Occurred() ? -1 : 0;
        if (!PyTuple_CheckExact(p) || PyTuple_GET_SIZE(p) != 3 ||
            Py_TYPE(PyTuple_GET_ITEM(p, 0)) != pair_type) {
            PyErr_SetString(PyExc_TypeError, "a pending check is no (pair, use, key)");
            return -1;
        }
        pair = p_owned = Py_NewRef(PyTuple_GET_ITEM(p, 0));
        use = PyTuple_GET_ITEM(p, 1);
        key = Py_NewRef(PyTuple_GET_ITEM(p, 2));
    }
    Py_INCREF(use);
    /* MESSAGE-INTEGRITY of a check or its answer, keyed by the receiver's ice-pwd */
    PyObject *raw = SLOT(ev, eoff[E_RAW]);
    int has_raw = key != Py_None ? PyObject_IsTrue(raw) : 0;
    if (has_raw < 0)
        goto fail_use;
    if (has_raw) {
        if (!PyTuple_CheckExact(key) || PyTuple_GET_SIZE(key) != 2 ||
            !PyDict_CheckExact(PyTuple_GET_ITEM(key, 1))) {
            PyErr_SetString(PyExc_TypeError, "a receiver's key is no (pwd, verdicts)");
            goto fail_use;
        }
        PyObject *verdicts = PyTuple_GET_ITEM(key, 1);
        PyObject *ok = PyDict_GetItemWithError(verdicts, raw);
        if (ok)
            Py_INCREF(ok);
        else if (PyErr_Occurred())
            goto fail_use;
        else {
            PyObject *args[4] = {NULL, raw, PyTuple_GET_ITEM(key, 0), m};
            ok = PyObject_Vectorcall(c->check, args + 1, 3 | PY_VECTORCALL_ARGUMENTS_OFFSET,
                                     NULL);
            if (!ok || PyDict_SetItem(verdicts, raw, ok) < 0) {
                Py_XDECREF(ok);
                goto fail_use;
            }
        }
        if (ok != Py_None) {
            int good = PyObject_IsTrue(ok);
            if (good < 0 || add_one(pair, P_CHECKED) < 0 ||
                (!good && append_to(pair, P_FAILURES, Py_NewRef(frame)) < 0)) {
                Py_DECREF(ok);
                goto fail_use;
            }
        }
        Py_DECREF(ok);
    }
    if (success) {
        if (add_one(pair, P_SUCCESSES) < 0 || !get(pair, poff[P_FIRST_SUCCESS], "first_success"))
            goto fail_use;
        if (SLOT(pair, poff[P_FIRST_SUCCESS]) == Py_None) {
            PyObject *at = PyTuple_Pack(2, frame, SLOT(ev, eoff[E_TIME]));
            if (!at)
                goto fail_use;
            set(pair, poff[P_FIRST_SUCCESS], at);
        }
        PyObject *nominated = get(pair, poff[P_NOMINATED], "nominated");
        int truth = nominated ? PyObject_IsTrue(nominated) : -1;
        if (truth < 0)
            goto fail_use;
        if (!truth)
            set(pair, poff[P_NOMINATED], Py_NewRef(use));
    } else if (error) {
        PyObject *code = SLOT(m, moff[M_ERROR]);
        int truth = PyObject_IsTrue(code);
        if (truth < 0 || append_to(pair, P_ERRORS, PyTuple_Pack(2, frame, truth ? code : zero)) < 0)
            goto fail_use;
    }
    Py_DECREF(use);
    Py_DECREF(key);
    Py_DECREF(p_owned);
    return 0;
fail_use:
    Py_DECREF(use);
fail:
    Py_DECREF(key);
    Py_XDECREF(p_owned);
    return -1;
}

static const char *CHECKS[] = {"users", "pending", "kinds", "classic", "failures",
                               "check", "user",    "pair",  "kind"};

static PyObject *run(PyObject *self, PyObject *const *args, Py_ssize_t nargs) {
    if (nargs != 2) {
        PyErr_SetString(PyExc_TypeError, "run(events, checks)");
        return NULL;
    }
    PyObject *events = args[0], *fields[9] = {NULL};
    Py_ssize_t i = 0;
    int rc = 0;
    if (!event_type || !PyList_CheckExact(events))
        return PyLong_FromLong(0); /* not set up, or not a list: walk does it all */
    for (int k = 0; k < 9 && rc == 0; k++)
        if (!(fields[k] = PyObject_GetAttrString(args[1], CHECKS[k])))
            rc = -1;
    checks_t c = {fields[0], fields[1], fields[2], fields[3], fields[4],
                  fields[5], fields[6], fields[7], fields[8]};
    if (rc == 0 && PyDict_CheckExact(c.users) && PyDict_CheckExact(c.pending) &&
        PyDict_CheckExact(c.kinds) && PyDict_CheckExact(c.classic) &&
        PyList_CheckExact(c.failures)) /* else walk does it all */
        for (; i < PyList_GET_SIZE(events); i++) {
            PyObject *ev = Py_NewRef(PyList_GET_ITEM(events, i));
            rc = one_event(&c, ev);
            Py_DECREF(ev);
            if (rc != 0)
                break;
        }
    for (int k = 0; k < 9; k++)
        Py_XDECREF(fields[k]);
    return rc < 0 ? NULL : PyLong_FromSsize_t(i);
}

/* setup(StunEvent, StunMessage, CandidatePair): the slots' offsets; False (and run does
 * nothing) for classes whose slots are not the ones named here. */
static PyObject *setup(PyObject *self, PyObject *const *args, Py_ssize_t nargs) {
    if (nargs != 3 || !PyType_Check(args[0]) || !PyType_Check(args[1]) || !PyType_Check(args[2])) {
        PyErr_SetString(PyExc_TypeError, "setup(StunEvent, StunMessage, CandidatePair)");
        return NULL;
    }
    Py_ssize_t e[NE], m[NM], p[NP];
    int ok = 1;
    for (int k = 0; k < NE; k++)
        ok &= (e[k] = slot_offset((PyTypeObject *)args[0], EVENT_FIELDS[k])) >= 0;
    for (int k = 0; k < NM; k++)
        ok &= (m[k] = slot_offset((PyTypeObject *)args[1], MSG_FIELDS[k])) >= 0;
    for (int k = 0; k < NP; k++)
        ok &= (p[k] = slot_offset((PyTypeObject *)args[2], PAIR_FIELDS[k])) >= 0;
    if (!ok)
        Py_RETURN_FALSE;
    memcpy(eoff, e, sizeof e);
    memcpy(moff, m, sizeof m);
    memcpy(poff, p, sizeof p);
    Py_XSETREF(event_type, (PyTypeObject *)Py_NewRef(args[0]));
    Py_XSETREF(msg_type, (PyTypeObject *)Py_NewRef(args[1]));
    Py_XSETREF(pair_type, (PyTypeObject *)Py_NewRef(args[2]));
    Py_RETURN_TRUE;
}

static PyMethodDef methods[] = {
    {"run", (PyCFunction)(void (*)(void))run, METH_FASTCALL,
     "run(events, checks): session._Checks.walk over events; the index it stopped at"},
    {"setup", (PyCFunction)(void (*)(void))setup, METH_FASTCALL,
     "setup(StunEvent, StunMessage, CandidatePair): their slots' offsets; False if refused"},
    {NULL, NULL, 0, NULL}};

static struct PyModuleDef module = {PyModuleDef_HEAD_INIT, "_iceloop", NULL, -1, methods};

PyMODINIT_FUNC PyInit__iceloop(void) {
    if (!(s_binding = PyUnicode_InternFromString("Binding")) ||
        !(s_request = PyUnicode_InternFromString("request")) ||
        !(s_success = PyUnicode_InternFromString("success")) ||
        !(s_error = PyUnicode_InternFromString("error")) ||
        !(s_empty = PyUnicode_InternFromString("")) || !(one = PyLong_FromLong(1)) ||
        !(zero = PyLong_FromLong(0)))
        return NULL;
    return PyModule_Create(&module);
}
