/* net.decode's common case for many frames in one call: an unfragmented IPv4 or IPv6
 * (no extension headers) UDP or TCP segment after any link layer net.decode reads:
 * Ethernet (with VLAN tags, MPLS labels, PPPoE), Linux cooked v1 and v2, raw IP, BSD
 * loopback.
 * On a handshake-heavy capture the per-frame walk starts each of its ~70k frames by
 * slicing the frame out of the file and decoding it in Python; here the segment comes
 * out directly. Every other frame (unknown links, fragments, extension headers, tunnels,
 * UDP of a tunnel's port (VXLAN, Geneve, GRE, MPLS, GTP-U), damaged or truncated headers) gets None and goes through net.decode as before, so this file
 * only has to be exact for the frames it answers, which the tests check against
 * net.decode on damaged real captures.
 *
 * segments(data, offsets, lengths, links, todo) -> list
 *   offsets, lengths, links: the frame index's int64 columns (pcapio.FrameIndex);
 *   todo: int64 frame numbers (0-based) to decode;
 *   each item: (proto, key, payload, tcp seq, tcp flags), net.decode's Segment; its
 *   "other-transport" for an IP packet of a protocol it reads no further (ICMP, IGMP,
 *   ESP...: a capture's background noise, thousands of frames in a long one); or None.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stdint.h>
#include <string.h>

#define UDP 17
#define TCP 6

static PyObject *other_transport; /* net.decode's reason for an IP packet of no transport */

/* An IP protocol net.decode reads further: a tunnel's (IP in IP, IPv6 in IP, GRE), and in
 * IPv6 an extension header (hop-by-hop, routing, destination options, AH) or a fragment. */
static int read_further(int proto, int ipv6) {
    if (proto == 4 || proto == 41 || proto == 47)
        return 1;
    return ipv6 && (proto == 0 || proto == 43 || proto == 60 || proto == 51 || proto == 44);
}

static PyObject *segment(const unsigned char *f, Py_ssize_t len, int64_t link) {
    unsigned et;
    Py_ssize_t o;
    switch (link) {
    case 1: /* Ethernet, with any VLAN tags */
        if (len < 14)
            return NULL;
        et = f[12] << 8 | f[13];
        o = 14;
        while (et == 0x8100 || et == 0x88A8) {
            if (o + 4 > len)
                return NULL;
            et = f[o + 2] << 8 | f[o + 3];
            o += 4;
        }
        break;
    case 113: /* Linux cooked v1: the protocol at 14 */
        if (len < 16)
            return NULL;
        et = f[14] << 8 | f[15];
        o = 16;
        break;
    case 276: /* Linux cooked v2: the protocol first */
        if (len < 20)
            return NULL;
        et = f[0] << 8 | f[1];
        o = 20;
        break;
    case 101: case 12: case 14: case 228: case 229: /* raw IP: the version says which */
        if (len < 1)
            return NULL;
        et = f[0] >> 4 == 4 ? 0x0800 : 0x86DD;
        o = 0;
        break;
    case 0: case 108: /* BSD loopback: the address family, in either byte order */
        if (len < 4)
            return NULL;
        et = (f[0] ? f[0] : f[3]) == 2 ? 0x0800 : 0x86DD;
        o = 4;
        break;
    default:
        return NULL;
    }
    if (et == 0x8864) { /* a PPPoE session: its 6-byte header, PPP's protocol (IPv4, IPv6) */
        if (o + 8 > len)
            return NULL;
        unsigned ppp = f[o + 6] << 8 | f[o + 7];
        et = ppp == 0x0021 ? 0x0800 : ppp == 0x0057 ? 0x86DD : 0;
        o += 8;
    }
    if (et == 0x8847 || et == 0x8848) { /* MPLS: labels to the bottom of the stack, then IP */
        do {
            if (o + 4 > len)
                return NULL;
            o += 4;
        } while (!(f[o - 2] & 1));
        if (o >= len)
            return NULL;
        et = f[o] >> 4 == 4 ? 0x0800 : f[o] >> 4 == 6 ? 0x86DD : 0;
    }
    unsigned char key[36];
    Py_ssize_t alen, l4, end;
    int proto;
    if (et == 0x0800) {
        if (o + 20 > len || f[o] >> 4 != 4)
            return NULL;
        Py_ssize_t ihl = (f[o] & 15) * 4, size = f[o + 2] << 8 | f[o + 3];
        end = size ? o + size : len; /* 0: a segmentation offload's (BIG TCP) */
        l4 = o + ihl;
        if (ihl < 20 || end > len || l4 > end || ((f[o + 6] << 8 | f[o + 7]) & 0x3FFF))
            return NULL;
        proto = f[o + 9];
        alen = 8;
        memcpy(key, f + o + 12, 8);
    } else if (et == 0x86DD) {
        if (o + 40 > len)
            return NULL;
        Py_ssize_t size = f[o + 4] << 8 | f[o + 5];
        end = size ? o + 40 + size : len; /* 0: a jumbogram's, BIG TCP's */
        l4 = o + 40;
        if (end > len)
            return NULL;
        proto = f[o + 6];
        alen = 32;
        memcpy(key, f + o + 8, 32);
    } else {
        return NULL;
    }
    if (proto == UDP) {
        /* UDP to 4789 may be VXLAN, to 6081 Geneve, to 4754 GRE, to 6635 MPLS, from or to
         * 2152 GTP-U: tunnels, whose packets net.decode unwraps */
        if (l4 + 8 > end)
            return NULL;
        unsigned sport = f[l4] << 8 | f[l4 + 1], dport = f[l4 + 2] << 8 | f[l4 + 3];
        if (dport == 4789 || dport == 6081 || dport == 4754 || dport == 6635 || dport == 2152 ||
            sport == 2152)
            return NULL;
        memcpy(key + alen, f + l4, 4);
        return Py_BuildValue("(iy#y#ii)", UDP, key, alen + 4, f + l4 + 8, end - l4 - 8, 0, 0);
    }
    if (proto == TCP) {
        if (l4 + 14 > len)
            return NULL;
        Py_ssize_t off = (f[l4 + 12] >> 4) * 4;
        if (off < 20 || l4 + off > end)
            return NULL;
        memcpy(key + alen, f + l4, 4);
        unsigned long seq = (unsigned long)f[l4 + 4] << 24 | f[l4 + 5] << 16 | f[l4 + 6] << 8 |
                            f[l4 + 7];
        return Py_BuildValue("(iy#y#ki)", TCP, key, alen + 4, f + l4 + off, end - l4 - off, seq,
                             (int)f[l4 + 13]);
    }
    return read_further(proto, et == 0x86DD) ? NULL : Py_NewRef(other_transport);
}

static int column(PyObject *obj, Py_buffer *view, Py_ssize_t *n) {
    if (PyObject_GetBuffer(obj, view, PyBUF_C_CONTIGUOUS | PyBUF_FORMAT) < 0)
        return -1;
    if (view->itemsize != 8 || !view->format ||
        (strcmp(view->format, "l") && strcmp(view->format, "q") && strcmp(view->format, "<q") &&
         strcmp(view->format, "=q"))) {
        PyBuffer_Release(view);
        PyErr_SetString(PyExc_ValueError, "columns must be int64");
        return -1;
    }
    *n = view->len / 8;
    return 0;
}

static PyObject *segments(PyObject *self, PyObject *args) {
    PyObject *objs[5];
    if (!PyArg_ParseTuple(args, "OOOOO", &objs[0], &objs[1], &objs[2], &objs[3], &objs[4]))
        return NULL;
    Py_buffer data, cols[4];
    Py_ssize_t ns[4];
    if (PyObject_GetBuffer(objs[0], &data, PyBUF_SIMPLE) < 0)
        return NULL;
    int got = 0;
    for (; got < 4; got++)
        if (column(objs[got + 1], &cols[got], &ns[got]) < 0)
            break;
    PyObject *out = NULL;
    if (got < 4)
        goto done;
    if (ns[0] != ns[1] || ns[0] != ns[2]) {
        PyErr_SetString(PyExc_ValueError, "offsets, lengths and links differ in length");
        goto done;
    }
    const int64_t *offs = cols[0].buf, *lens = cols[1].buf, *links = cols[2].buf,
                  *todo = cols[3].buf;
    const unsigned char *d = data.buf;
    out = PyList_New(ns[3]);
    if (!out)
        goto done;
    for (Py_ssize_t j = 0; j < ns[3]; j++) {
        int64_t i = todo[j];
        PyObject *item = NULL;
        if (i < 0 || i >= ns[0]) {
            PyErr_SetString(PyExc_IndexError, "frame number out of range");
            Py_CLEAR(out);
            goto done;
        }
        int64_t o = offs[i], n = lens[i];
        if (o < 0 || n < 0 || o > data.len || n > data.len - o) {
            PyErr_SetString(PyExc_ValueError, "frame outside the data");
            Py_CLEAR(out);
            goto done;
        }
        item = segment(d + o, (Py_ssize_t)n, links[i]);
        if (!item && PyErr_Occurred()) {
            Py_CLEAR(out);
            goto done;
        }
        if (!item)
            item = Py_NewRef(Py_None);
        PyList_SET_ITEM(out, j, item);
    }
done:
    for (int k = 0; k < got; k++)
        PyBuffer_Release(&cols[k]);
    PyBuffer_Release(&data);
    return out;
}

static PyMethodDef methods[] = {
    {"segments", segments, METH_VARARGS,
     "segments(data, offsets, lengths, links, todo) -> [Segment or None]"},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {PyModuleDef_HEAD_INIT, "_netdecode", NULL, -1, methods};

PyMODINIT_FUNC PyInit__netdecode(void) {
    if (!other_transport && !(other_transport = PyUnicode_InternFromString("other-transport")))
        return NULL;
    return PyModule_Create(&module);
}
