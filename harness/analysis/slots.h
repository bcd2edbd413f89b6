/* A Python class's object slot, read and written by its offset from C: the walk's Flow
 * (_flows.c, _stunparse.c) and StunEvent (_stunparse.c) are made and changed without an
 * attribute look-up each. Include after Python.h and structmember.h. */
#ifndef HARNESS_SLOTS_H
#define HARNESS_SLOTS_H

/* The offset of the object slot `name` of `tp`'s instances (its own or a base's), or -1:
 * no such slot, or not one a plain store may write (read-only, outside the instance). */
static Py_ssize_t slot_offset(PyTypeObject *tp, const char *name) {
    PyObject *d = NULL;
    for (Py_ssize_t i = 0; !d && tp->tp_mro && i < PyTuple_GET_SIZE(tp->tp_mro); i++)
        d = PyDict_GetItemString(((PyTypeObject *)PyTuple_GET_ITEM(tp->tp_mro, i))->tp_dict,
                                 name);
    if (!d || !Py_IS_TYPE(d, &PyMemberDescr_Type))
        return -1;
    PyMemberDef *def = ((PyMemberDescrObject *)d)->d_member;
    if (def->type != T_OBJECT_EX || (def->flags & READONLY) ||
        def->offset < (Py_ssize_t)sizeof(PyObject) ||
        def->offset + (Py_ssize_t)sizeof(PyObject *) > tp->tp_basicsize)
        return -1;
    return def->offset;
}

#endif
