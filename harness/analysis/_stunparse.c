/* stun.parse and stun.parse_classic in C: the same StunMessage, field for field.
 * A handshake-heavy capture holds tens of thousands of STUN messages (an ICE check per
 * pair every 50 ms, TURN refreshes); in Python each costs ~2.6 us (a 27-field object, a
 * filler call per attribute, FINGERPRINT's CRC-32), a sixth of the walk. Here a message
 * is checked and decoded in one pass and the object's slots are filled directly.
 * stun.py keeps the Python parsers as the fallback and as the reference the tests
 * compare these with, so every rule below mirrors them: the header test, the retry
 * without padding for [MS-TURN], what each attribute needs to be read, which occurrence
 * wins, UTF-8 decoded with "replace", addresses as Python writes them.
 *
 * setup(cls, methods, classic_methods, classes, ipv6)
 *   cls: StunMessage, a slots dataclass whose fields are FIELDS below in that order;
 *   methods, classic_methods: {number: name}; classes: the four class names;
 *   ipv6: raw 16 bytes -> text (Python's own IPv6 text; IPv6 is rare in captures).
 * parse(p), parse_classic(p) -> StunMessage | None, as stun.parse_py, stun.parse_classic_py;
 *   a value that repeats (USERNAME, PRIORITY, addresses, the attribute list, a request's
 *   transaction ID in its response) is one shared object (see memo below).
 * verify(p, off, inner, outer) -> bool | None: stun.check_integrity's HMAC comparison,
 *   hashed by the hashlib objects it is given (stun._verify_py is the same in Python);
 * check(p, key, msg, sha1_pads, sha256_pads): all of stun.check_integrity in one call when
 *   msg is a parsed StunMessage and the key's pads are made, else NotImplemented. Built
 *   with OpenSSL's headers, MESSAGE-INTEGRITY (HMAC-SHA1) is hashed here with OpenSSL's
 *   SHA-1 (its CPU's SHA instructions where it has them) for any bytes key, from states
 *   with the key absorbed, made once per key: the hashlib objects' copies and digests
 *   (four contexts allocated, copied and wiped per message) cost 1.1 us a check, tens of
 *   thousands in a handshake-heavy capture. SHA-256 keeps the hashlib path.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stdint.h>
#include <string.h>
#include <structmember.h>

#include "slots.h"
#ifdef _WIN32
#include <ws2tcpip.h>
#else
#include <arpa/inet.h>
#endif

#if defined(__has_include)
#if __has_include(<openssl/sha.h>)
/* SHA1_Init/Update/Final: deprecated in OpenSSL 3 for EVP, whose contexts are allocated;
 * a SHA_CTX is a plain struct, copied by assignment (no allocation per message). */
#define OPENSSL_SUPPRESS_DEPRECATED
#include <openssl/sha.h>
#define HAVE_SHA1 1
#endif
#endif

enum {
    F_METHOD,
    F_CLS,
    F_TXID,
    F_LENGTH,
    F_ATTRIBUTES,
    F_USERNAME,
    F_PRIORITY,
    F_USE_CANDIDATE,
    F_ICE_CONTROLLING,
    F_ICE_CONTROLLED,
    F_XOR_MAPPED,
    F_XOR_RELAYED,
    F_XOR_PEER,
    F_ERROR_CODE,
    F_ERROR_REASON,
    F_REALM,
    F_NONCE,
    F_SOFTWARE,
    F_LIFETIME,
    F_CHANNEL,
    F_REQUESTED_TRANSPORT,
    F_DATA,
    F_INTEGRITY,
    F_INTEGRITY_OFFSET,
    F_FINGERPRINT_OK,
    F_CLASSIC,
    NFIELDS
};

static const char *FIELDS[NFIELDS] = {
    "method",   "cls",       "txid",       "length",       "attributes",
    "username", "priority",  "use_candidate", "ice_controlling", "ice_controlled",
    "xor_mapped", "xor_relayed", "xor_peer", "error_code",   "error_reason",
    "realm",    "nonce",     "software",   "lifetime",     "channel",
    "requested_transport", "data", "integrity", "integrity_offset", "fingerprint_ok",
    "classic",
};

/* Attribute types (stun.py's A_* constants). */
#define A_MAPPED 0x0001
#define A_USERNAME 0x0006
#define A_INTEGRITY 0x0008
#define A_ERROR_CODE 0x0009
#define A_CHANNEL_NUMBER 0x000C
#define A_LIFETIME 0x000D
#define A_XOR_PEER 0x0012
#define A_DATA 0x0013
#define A_REALM 0x0014
#define A_NONCE 0x0015
#define A_XOR_RELAYED 0x0016
#define A_REQUESTED_TRANSPORT 0x0019
#define A_INTEGRITY_SHA256 0x001C
#define A_XOR_MAPPED 0x0020
#define A_PRIORITY 0x0024
#define A_USE_CANDIDATE 0x0025
#define A_SOFTWARE 0x8022
#define A_FINGERPRINT 0x8028
#define A_ICE_CONTROLLED 0x8029
#define A_ICE_CONTROLLING 0x802A

#define FINGERPRINT_XOR 0x5354554EU
static const unsigned char MAGIC[4] = {0x21, 0x12, 0xA4, 0x42};

static PyTypeObject *msg_type;
static Py_ssize_t offsets[NFIELDS];
static PyObject *methods, *classic_methods, *classes, *ipv6, *zero, *empty, *no_items;
/* Attribute types as ints, kept: a capture uses a few dozen types, over and over. */
#define TYPE_CACHE 128
static PyObject *type_cache[TYPE_CACHE];
static uint32_t crc_table[8][256];

static unsigned be16(const unsigned char *p) { return (unsigned)p[0] << 8 | p[1]; }

static uint32_t be32(const unsigned char *p) {
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

/* zlib's CRC-32 (reflected 0xEDB88320), eight bytes a step. */
static void crc_init(void) {
    for (uint32_t i = 0; i < 256; i++) {
        uint32_t c = i;
        for (int k = 0; k < 8; k++)
            c = c & 1 ? 0xEDB88320U ^ (c >> 1) : c >> 1;
        crc_table[0][i] = c;
    }
    for (int t = 1; t < 8; t++)
        for (int i = 0; i < 256; i++)
            crc_table[t][i] = crc_table[t - 1][i] >> 8 ^ crc_table[0][crc_table[t - 1][i] & 0xFF];
}

static uint32_t crc32(const unsigned char *p, Py_ssize_t n) {
    uint32_t c = 0xFFFFFFFFU;
    for (; n >= 8; p += 8, n -= 8) {
        uint32_t lo = c ^ ((uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 |
                           (uint32_t)p[3] << 24);
        uint32_t hi = (uint32_t)p[4] | (uint32_t)p[5] << 8 | (uint32_t)p[6] << 16 |
                      (uint32_t)p[7] << 24;
        c = crc_table[7][lo & 0xFF] ^ crc_table[6][lo >> 8 & 0xFF] ^
            crc_table[5][lo >> 16 & 0xFF] ^ crc_table[4][lo >> 24] ^ crc_table[3][hi & 0xFF] ^
            crc_table[2][hi >> 8 & 0xFF] ^ crc_table[1][hi >> 16 & 0xFF] ^ crc_table[0][hi >> 24];
    }
    for (; n > 0; p++, n--)
        c = crc_table[0][(c ^ *p) & 0xFF] ^ c >> 8;
    return c ^ 0xFFFFFFFFU;
}

/* Store `v` (a new reference, not NULL) in field f of o, dropping what was there. */
static void put(PyObject *o, int f, PyObject *v) {
    PyObject **slot = (PyObject **)((char *)o + offsets[f]);
    PyObject *old = *slot;
    *slot = v;
    Py_XDECREF(old);
}

static PyObject *get(PyObject *o, int f) { return *(PyObject **)((char *)o + offsets[f]); }

static PyObject *type_int(unsigned atype) {
    PyObject **cache = &type_cache[(atype ^ atype >> 8 ^ atype >> 12) % TYPE_CACHE];
    if (*cache && PyLong_AsLong(*cache) == (long)atype)
        return Py_NewRef(*cache);
    PyObject *v = PyLong_FromLong((long)atype);
    if (v)
        Py_XSETREF(*cache, Py_NewRef(v));
    return v;
}

static PyObject *hex(const unsigned char *p, Py_ssize_t n) {
    static const char digits[] = "0123456789abcdef";
    PyObject *s = PyUnicode_New(2 * n, 127);
    if (!s)
        return NULL;
    Py_UCS1 *out = PyUnicode_1BYTE_DATA(s);
    for (Py_ssize_t i = 0; i < n; i++) {
        out[2 * i] = (Py_UCS1)digits[p[i] >> 4];
        out[2 * i + 1] = (Py_UCS1)digits[p[i] & 15];
    }
    return s;
}

static PyObject *ascii(const char *text, Py_ssize_t n) {
    PyObject *s = PyUnicode_New(n, 127);
    if (s)
        memcpy(PyUnicode_1BYTE_DATA(s), text, (size_t)n);
    return s;
}

/* Values that repeat, decoded once. An ICE agent sends the same USERNAME, PRIORITY,
 * tie-breaker and attribute list in every check of a pair, a TURN server the same REALM,
 * NONCE and SOFTWARE, a response echoes its request's transaction ID: objects built per
 * message and kept with it (every StunEvent keeps its message) cost their allocation,
 * their memory and their release. They are immutable (str, int, tuples of them), so a
 * message shares the one decoded last time the same bytes came with the same kind.
 * A direct-mapped table: a miss replaces the slot, nothing grows. */
#define MEMO_SLOTS 512
#define MEMO_MAX 128 /* longer values are decoded every time */
enum { K_ATTRIBUTES = 0x10000, K_V4, K_XOR_V4, K_TXID, K_ERROR_NUMBER };

typedef struct {
    unsigned kind;
    Py_ssize_t n;
    unsigned char v[MEMO_MAX];
    PyObject *obj;
} memo_slot;

static memo_slot memo[MEMO_SLOTS];

/* The slot for (kind, v), and whether it holds that value already (*hit). */
static memo_slot *memo_find(unsigned kind, const unsigned char *v, Py_ssize_t n, int *hit) {
    uint32_t h = 2166136261U ^ kind;
    for (Py_ssize_t i = 0; i < n; i++)
        h = (h ^ v[i]) * 16777619U;
    memo_slot *s = &memo[(h ^ h >> 16) % MEMO_SLOTS];
    *hit = s->obj && s->kind == kind && s->n == n && memcmp(s->v, v, (size_t)n) == 0;
    return s;
}

/* Keep `obj` (a new reference, or NULL: an error passed through) in slot s for (kind, v). */
static PyObject *memo_keep(memo_slot *s, unsigned kind, const unsigned char *v, Py_ssize_t n,
                           PyObject *obj) {
    if (obj) {
        s->kind = kind;
        s->n = n;
        memcpy(s->v, v, (size_t)n);
        Py_XSETREF(s->obj, Py_NewRef(obj));
    }
    return obj;
}

/* x = the value of `v` (n bytes) as `kind`: the one kept, or `expr` (then kept). */
#define MEMO(kind, expr)                                                                    \
    do {                                                                                    \
        int hit_ = 0;                                                                       \
        memo_slot *s_ = n <= MEMO_MAX ? memo_find((kind), v, n, &hit_) : NULL;              \
        x = hit_ ? Py_NewRef(s_->obj) : (expr);                                             \
        if (s_ && !hit_)                                                                    \
            memo_keep(s_, (kind), v, n, x);                                                 \
    } while (0)

/* A message with every field at its dataclass default (method, cls, txid borrowed). */
static PyObject *new_msg(PyObject *method, PyObject *cls, PyObject *txid, unsigned length,
                         PyObject *attributes) {
    PyObject *o = msg_type->tp_alloc(msg_type, 0), *v;
    if (!o) {
        Py_DECREF(attributes);
        return NULL;
    }
    for (int f = 0; f < NFIELDS; f++) {
        switch (f) {
        case F_METHOD:
            v = method;
            break;
        case F_CLS:
            v = cls;
            break;
        case F_TXID:
            v = txid;
            break;
        case F_LENGTH:
            v = PyLong_FromLong((long)length);
            if (!v)
                goto fail;
            put(o, f, v);
            continue;
        case F_ATTRIBUTES:
            put(o, f, attributes);
            attributes = NULL;
            continue;
        case F_XOR_RELAYED:
        case F_XOR_PEER:
            v = no_items;
            break;
        case F_USE_CANDIDATE:
        case F_INTEGRITY:
        case F_CLASSIC:
            v = Py_False;
            break;
        case F_ERROR_REASON:
            v = empty;
            break;
        case F_INTEGRITY_OFFSET:
            v = zero;
            break;
        default:
            v = Py_None;
        }
        Py_INCREF(v);
        put(o, f, v);
    }
    return o;
fail:
    Py_XDECREF(attributes);
    Py_DECREF(o);
    return NULL;
}

/* stun.decode_address: an (ip, port) tuple, or None (a new reference) when malformed. */
static PyObject *address(const unsigned char *v, Py_ssize_t n, const unsigned char *txid) {
    Py_ssize_t size = n >= 8 && v[1] == 1 ? 4 : n >= 8 && v[1] == 2 ? 16 : 0;
    if (!size || n != 4 + size)
        Py_RETURN_NONE;
    unsigned char raw[16], key[16];
    unsigned port = be16(v + 2);
    memcpy(raw, v + 4, (size_t)size);
    if (txid) { /* XOR-*-ADDRESS: the magic cookie, then the transaction ID */
        port ^= 0x2112;
        memcpy(key, MAGIC, 4);
        memcpy(key + 4, txid, 12);
        for (Py_ssize_t i = 0; i < size; i++)
            raw[i] ^= key[i];
    }
    PyObject *text;
    if (size == 4) {
        char buf[16];
        int len = snprintf(buf, sizeof buf, "%u.%u.%u.%u", raw[0], raw[1], raw[2], raw[3]);
        text = ascii(buf, len);
    } else {
        PyObject *b = PyBytes_FromStringAndSize((const char *)raw, 16);
        text = b ? PyObject_CallOneArg(ipv6, b) : NULL;
        Py_XDECREF(b);
    }
    PyObject *p = text ? PyLong_FromLong((long)port) : NULL;
    PyObject *t = p ? PyTuple_New(2) : NULL;
    if (!t) {
        Py_XDECREF(text);
        Py_XDECREF(p);
        return NULL;
    }
    PyTuple_SET_ITEM(t, 0, text);
    PyTuple_SET_ITEM(t, 1, p);
    return t;
}

static PyObject *text(const unsigned char *v, Py_ssize_t n) {
    return PyUnicode_DecodeUTF8((const char *)v, n, "replace");
}

/* SOFTWARE: the decoded text .rstrip("\x00"). */
static PyObject *software(const unsigned char *v, Py_ssize_t n) {
    PyObject *s = text(v, n);
    if (!s)
        return NULL;
    Py_ssize_t k = PyUnicode_GET_LENGTH(s);
    while (k > 0 && PyUnicode_READ_CHAR(s, k - 1) == 0)
        k--;
    if (k == PyUnicode_GET_LENGTH(s))
        return s;
    PyObject *x = PyUnicode_Substring(s, 0, k);
    Py_DECREF(s);
    return x;
}

/* An IPv4 address's (ip, port) depends on its value only (XORed with the magic cookie),
 * so it is kept; IPv6 XORs the transaction ID in, and is rare. */
static int v4(const unsigned char *v, Py_ssize_t n) { return n == 8 && v[1] == 1; }

/* `m.xor_peer += (a,)`: a new tuple (one or two a message); `a` is a new reference. */
static int append(PyObject *o, int f, PyObject *a) {
    if (!a)
        return -1;
    if (a == Py_None) {
        Py_DECREF(a);
        return 0;
    }
    PyObject *old = get(o, f), *t = PyTuple_New(PyTuple_GET_SIZE(old) + 1);
    if (!t) {
        Py_DECREF(a);
        return -1;
    }
    for (Py_ssize_t i = 0; i < PyTuple_GET_SIZE(old); i++)
        PyTuple_SET_ITEM(t, i, Py_NewRef(PyTuple_GET_ITEM(old, i)));
    PyTuple_SET_ITEM(t, PyTuple_GET_SIZE(old), a);
    put(o, f, t);
    return 0;
}

/* The fillers of stun.py: one attribute's value `v` (n bytes) at offset `off` of `p`.
 * txid is NULL for a classic message, which reads only MAPPED, USERNAME, ERROR-CODE. */
static int fill(PyObject *o, unsigned atype, const unsigned char *v, Py_ssize_t n,
                const unsigned char *txid, const unsigned char *p, Py_ssize_t off) {
    PyObject *x = NULL;
    int f;
    switch (atype) {
    case A_USERNAME:
        f = F_USERNAME;
        MEMO(A_USERNAME, text(v, n));
        break;
    case A_ERROR_CODE:
        if (n < 4)
            return 0;
        MEMO(A_ERROR_CODE, PyUnicode_DecodeUTF8((const char *)v + 4, n - 4, "replace"));
        if (!x)
            return -1;
        put(o, F_ERROR_REASON, x);
        f = F_ERROR_CODE;
        MEMO(K_ERROR_NUMBER, PyLong_FromLong((v[2] & 7) * 100 + v[3]));
        break;
    case A_MAPPED:
        if (txid && get(o, F_XOR_MAPPED) != Py_None)
            return 0;
        f = F_XOR_MAPPED;
        if (v4(v, n))
            MEMO(K_V4, address(v, n, NULL));
        else
            x = address(v, n, NULL);
        break;
    default:
        if (!txid)
            return 0;
        switch (atype) {
        case A_PRIORITY:
        case A_LIFETIME:
            if (n != 4)
                return 0;
            f = atype == A_PRIORITY ? F_PRIORITY : F_LIFETIME;
            MEMO(atype, PyLong_FromUnsignedLong(be32(v)));
            break;
        case A_USE_CANDIDATE:
            f = F_USE_CANDIDATE;
            x = Py_NewRef(Py_True);
            break;
        case A_ICE_CONTROLLING:
        case A_ICE_CONTROLLED:
            if (n != 8)
                return 0;
            f = atype == A_ICE_CONTROLLING ? F_ICE_CONTROLLING : F_ICE_CONTROLLED;
            MEMO(atype, PyLong_FromUnsignedLongLong((unsigned long long)be32(v) << 32 | be32(v + 4)));
            break;
        case A_XOR_MAPPED:
        case A_XOR_RELAYED:
        case A_XOR_PEER:
            if (v4(v, n))
                MEMO(K_XOR_V4, address(v, n, txid));
            else
                x = address(v, n, txid);
            if (atype != A_XOR_MAPPED)
                return append(o, atype == A_XOR_PEER ? F_XOR_PEER : F_XOR_RELAYED, x);
            f = F_XOR_MAPPED;
            break;
        case A_REALM:
            f = F_REALM;
            MEMO(A_REALM, text(v, n));
            break;
        case A_NONCE:
            f = F_NONCE;
            MEMO(A_NONCE, text(v, n));
            break;
        case A_SOFTWARE:
            f = F_SOFTWARE;
            MEMO(A_SOFTWARE, software(v, n));
            break;
        case A_CHANNEL_NUMBER:
        case A_REQUESTED_TRANSPORT:
            if (n != 4)
                return 0;
            f = atype == A_CHANNEL_NUMBER ? F_CHANNEL : F_REQUESTED_TRANSPORT;
            x = PyLong_FromLong(atype == A_CHANNEL_NUMBER ? (long)be16(v) : (long)v[0]);
            break;
        case A_DATA:
            f = F_DATA;
            x = PyBytes_FromStringAndSize((const char *)v, n);
            break;
        case A_INTEGRITY:
        case A_INTEGRITY_SHA256:
            if (!(x = PyLong_FromSsize_t(off)))
                return -1;
            put(o, F_INTEGRITY_OFFSET, x);
            f = F_INTEGRITY;
            x = Py_NewRef(Py_True);
            break;
        case A_FINGERPRINT:
            if (n != 4)
                return 0;
            f = F_FINGERPRINT_OK;
            x = Py_NewRef((crc32(p, off) ^ FINGERPRINT_XOR) == be32(v) ? Py_True : Py_False);
            break;
        default: /* attributes nobody reads are only listed */
            return 0;
        }
    }
    if (!x)
        return -1;
    put(o, f, x);
    return 0;
}

/* The attribute walk of stun.parse with one padding rule: the number of attributes, or
 * -1 when they do not end at (or, padded, past) the message's end. The first MEMO_MAX / 2
 * types are copied to `types`, as on the wire. */
static Py_ssize_t walk(const unsigned char *p, Py_ssize_t end, unsigned pad,
                       unsigned char *types) {
    Py_ssize_t off = 20, count = 0;
    while (off + 4 <= end) {
        Py_ssize_t alen = be16(p + off + 2);
        if (off + 4 + alen > end)
            break;
        if (count < MEMO_MAX / 2)
            memcpy(types + 2 * count, p + off, 2);
        count++;
        off += 4 + (Py_ssize_t)((alen + pad) & ~pad);
    }
    return off >= end ? count : -1;
}

static PyObject *name_of(PyObject *names, unsigned method, int fallback) {
    PyObject *k = PyLong_FromLong((long)method);
    if (!k)
        return NULL;
    PyObject *name = PyDict_GetItemWithError(names, k);
    Py_DECREF(k);
    if (name)
        return Py_NewRef(name);
    if (PyErr_Occurred() || !fallback)
        return NULL;
    char buf[16];
    int len = snprintf(buf, sizeof buf, "0x%03x", method);
    return ascii(buf, len);
}

/* The RFC 8489 method's name (METHODS, else "0x..."), kept per method number. */
static PyObject *method_names[0x1000];

static PyObject *method_name(unsigned method) {
    PyObject **kept = &method_names[method & 0xFFF];
    if (!*kept && !(*kept = name_of(methods, method, 1)))
        return NULL;
    return Py_NewRef(*kept);
}

/* The transaction ID in hex: a response shares its request's string. */
static PyObject *transaction(const unsigned char *v, Py_ssize_t n) {
    PyObject *x;
    MEMO(K_TXID, hex(v, n));
    return x;
}

static unsigned method_of(const unsigned char *p) {
    unsigned t = be16(p);
    return (t & 0x000F) | (t & 0x00E0) >> 1 | (t & 0x3E00) >> 2;
}

static unsigned class_of(const unsigned char *p) {
    unsigned t = be16(p);
    return (t >> 4 & 1) | (t >> 7 & 2);
}

/* The attribute types as a tuple of ints: the one kept for this list (an agent sends the
 * same few lists over and over), or a new one; with more types than `types` holds, a
 * tuple for build() to fill (*fresh set). */
static PyObject *attribute_tuple(const unsigned char *types, Py_ssize_t count, int *fresh) {
    *fresh = count > MEMO_MAX / 2;
    if (*fresh)
        return PyTuple_New(count);
    PyObject *x;
    const unsigned char *v = types;
    Py_ssize_t n = 2 * count;
    int hit = 0;
    memo_slot *s = memo_find(K_ATTRIBUTES, v, n, &hit);
    if (hit)
        return Py_NewRef(s->obj);
    if (!(x = PyTuple_New(count)))
        return NULL;
    for (Py_ssize_t i = 0; i < count; i++) {
        PyObject *t = type_int(be16(types + 2 * i));
        if (!t) {
            Py_DECREF(x);
            return NULL;
        }
        PyTuple_SET_ITEM(x, i, t);
    }
    return memo_keep(s, K_ATTRIBUTES, v, n, x);
}

/* Fill the message from its `count` attributes (their walk already checked with `pad`);
 * `fresh`: the attribute tuple is still to be filled. */
static PyObject *build(PyObject *o, const unsigned char *p, Py_ssize_t end, unsigned pad,
                       const unsigned char *txid, Py_ssize_t count, int fresh) {
    PyObject *types = get(o, F_ATTRIBUTES);
    Py_ssize_t off = 20, i = 0;
    while (off + 4 <= end && i < count) {
        unsigned atype = be16(p + off);
        Py_ssize_t alen = be16(p + off + 2);
        if (off + 4 + alen > end)
            break;
        if (fresh) {
            PyObject *t = type_int(atype);
            if (!t)
                goto fail;
            PyTuple_SET_ITEM(types, i, t);
        }
        i++;
        if (fill(o, atype, p + off + 4, alen, txid, p, off) < 0)
            goto fail;
        off += 4 + (Py_ssize_t)((alen + pad) & ~pad);
    }
    if (i == count)
        return o;
    PyErr_SetString(PyExc_SystemError, "_stunparse: the attribute walk disagrees with itself");
fail:
    Py_DECREF(o);
    return NULL;
}

static PyObject *decode(const unsigned char *p, Py_ssize_t n) {
    if (n < 20 || p[0] >= 4 || memcmp(p + 4, MAGIC, 4) != 0)
        Py_RETURN_NONE;
    unsigned length = be16(p + 2), pad = 3; /* RFC 8489 pads to 4 bytes; [MS-TURN] does not */
    Py_ssize_t end = 20 + (Py_ssize_t)length, count = 0;
    if (end > n)
        Py_RETURN_NONE;
    unsigned char types[MEMO_MAX];
    if ((count = walk(p, end, 3, types)) < 0 && (count = walk(p, end, pad = 0, types)) < 0)
        Py_RETURN_NONE;
    int fresh;
    PyObject *method = method_name(method_of(p));
    PyObject *txid = method ? transaction(p + 8, 12) : NULL;
    PyObject *cls = PyTuple_GET_ITEM(classes, class_of(p));
    PyObject *attributes = txid ? attribute_tuple(types, count, &fresh) : NULL;
    PyObject *o = attributes ? new_msg(method, cls, txid, length, attributes) : NULL;
    Py_XDECREF(method);
    Py_XDECREF(txid);
    return o ? build(o, p, end, pad, p + 8, count, fresh) : NULL;
}

static PyObject *decode_classic(const unsigned char *p, Py_ssize_t n) {
    if (n < 20 || p[0] >= 4 || memcmp(p + 4, MAGIC, 4) == 0 || n != 20 + (Py_ssize_t)be16(p + 2))
        Py_RETURN_NONE;
    Py_ssize_t off = 20, count = 0;
    unsigned char types[MEMO_MAX];
    while (off + 4 <= n) {
        Py_ssize_t alen = be16(p + off + 2);
        if (off + 4 + alen > n)
            Py_RETURN_NONE;
        if (count < MEMO_MAX / 2)
            memcpy(types + 2 * count, p + off, 2);
        count++;
        off += 4 + ((alen + 3) & ~3);
    }
    if (off != n)
        Py_RETURN_NONE;
    PyObject *method = name_of(classic_methods, method_of(p), 0), *txid = NULL, *o = NULL;
    if (!method) {
        if (PyErr_Occurred())
            return NULL;
        Py_RETURN_NONE;
    }
    PyObject *cls = PyTuple_GET_ITEM(classes, class_of(p)), *attributes = NULL;
    int fresh;
    if ((txid = transaction(p + 4, 16)) && (attributes = attribute_tuple(types, count, &fresh)))
        o = new_msg(method, cls, txid, be16(p + 2), attributes);
    Py_DECREF(method);
    Py_XDECREF(txid);
    if (!o)
        return NULL;
    put(o, F_CLASSIC, Py_NewRef(Py_True));
    return build(o, p, n, 3, NULL, count, fresh);
}

static PyObject *run(PyObject *arg, PyObject *(*dec)(const unsigned char *, Py_ssize_t)) {
    if (!msg_type) {
        PyErr_SetString(PyExc_RuntimeError, "_stunparse.setup() was not called");
        return NULL;
    }
    if (PyBytes_CheckExact(arg))
        return dec((const unsigned char *)PyBytes_AS_STRING(arg), PyBytes_GET_SIZE(arg));
    Py_buffer b;
    if (PyObject_GetBuffer(arg, &b, PyBUF_SIMPLE) < 0)
        return NULL;
    PyObject *r = dec(b.buf, b.len);
    PyBuffer_Release(&b);
    return r;
}

static PyObject *parse(PyObject *self, PyObject *arg) { return run(arg, decode); }

static PyObject *parse_classic(PyObject *self, PyObject *arg) { return run(arg, decode_classic); }

/* stun.check_integrity's HMAC, with the hash objects of stun._hmac_pads (the key already
 * absorbed: hashlib does the hashing, nothing here is crypto): the message up to
 * MESSAGE-INTEGRITY with its length field covering that attribute, hashed into a copy of
 * `inner`; the digest into a copy of `outer`; its first `alen` bytes against the value.
 * verify(p, off, inner, outer) -> bool, or None when the attribute at `off` does not fit
 * in `p` (the caller's Python path then decides). */
static PyObject *s_copy, *s_update, *s_digest;

static PyObject *hashed(PyObject *base, PyObject *data) {
    PyObject *h = PyObject_CallMethodNoArgs(base, s_copy), *r;
    if (!h)
        return NULL;
    if (!(r = PyObject_CallMethodOneArg(h, s_update, data))) {
        Py_DECREF(h);
        return NULL;
    }
    Py_DECREF(r);
    r = PyObject_CallMethodNoArgs(h, s_digest);
    Py_DECREF(h);
    if (r && !PyBytes_Check(r)) {
        PyErr_SetString(PyExc_TypeError, "_stunparse.verify: digest() is not bytes");
        Py_CLEAR(r);
    }
    return r;
}

/* The verdict for MESSAGE-INTEGRITY at `off` of p (n bytes): 1 or 0, 2 when the attribute
 * does not fit in p, -1 on an error. */
static int hmac_compare(const unsigned char *p, Py_ssize_t n, Py_ssize_t off, PyObject *inner,
                        PyObject *outer) {
    if (off < 20 || off + 4 > n)
        return 2;
    Py_ssize_t alen = be16(p + off + 2);
    if (off + 4 + alen > n)
        return 2;
    PyObject *data = PyBytes_FromStringAndSize(NULL, off);
    if (!data)
        return -1;
    unsigned char *d = (unsigned char *)PyBytes_AS_STRING(data);
    memcpy(d, p, (size_t)off);
    Py_ssize_t covered = off + alen - 16; /* the length field covers MESSAGE-INTEGRITY */
    d[2] = (unsigned char)(covered >> 8 & 0xFF);
    d[3] = (unsigned char)(covered & 0xFF);
    PyObject *mid = hashed(inner, data);
    Py_DECREF(data);
    PyObject *mac = mid ? hashed(outer, mid) : NULL;
    Py_XDECREF(mid);
    if (!mac)
        return -1;
    int ok = alen <= PyBytes_GET_SIZE(mac) &&
             memcmp(PyBytes_AS_STRING(mac), p + off + 4, (size_t)alen) == 0;
    Py_DECREF(mac);
    return ok;
}

static PyObject *verify(PyObject *self, PyObject *const *args, Py_ssize_t nargs) {
    if (nargs != 4 || !PyBytes_Check(args[0])) {
        PyErr_SetString(PyExc_TypeError, "verify(p: bytes, off: int, inner, outer)");
        return NULL;
    }
    Py_ssize_t off = PyLong_AsSsize_t(args[1]);
    if (off == -1 && PyErr_Occurred())
        return NULL;
    int r = hmac_compare((const unsigned char *)PyBytes_AS_STRING(args[0]),
                         PyBytes_GET_SIZE(args[0]), off, args[2], args[3]);
    if (r < 0)
        return NULL;
    if (r == 2)
        Py_RETURN_NONE;
    return PyBool_FromLong(r);
}

#ifdef HAVE_SHA1
/* HMAC-SHA1 (RFC 2104) with the key absorbed: the states after the key's ipad and opad
 * blocks, by key (bounded as stun._SHA1_PADS is). */
typedef struct {
    SHA_CTX inner, outer;
} Sha1Pads;
static PyObject *sha1_pads_by_key; /* bytes key -> bytes holding a Sha1Pads */

/* The pads of `key` (bytes) into *out: 0, or -1 with an exception. */
static int sha1_pads(PyObject *key, Sha1Pads *out) {
    PyObject *got = PyDict_GetItemWithError(sha1_pads_by_key, key);
    if (got) {
        memcpy(out, PyBytes_AS_STRING(got), sizeof *out);
        return 0;
    }
    if (PyErr_Occurred())
        return -1;
    unsigned char k[SHA_CBLOCK] = {0}, block[SHA_CBLOCK];
    const unsigned char *kp = (const unsigned char *)PyBytes_AS_STRING(key);
    Py_ssize_t kn = PyBytes_GET_SIZE(key);
    if (kn > SHA_CBLOCK) /* a key longer than a block is hashed first */
        SHA1(kp, (size_t)kn, k);
    else
        memcpy(k, kp, (size_t)kn);
    for (int i = 0; i < SHA_CBLOCK; i++)
        block[i] = k[i] ^ 0x36;
    SHA1_Init(&out->inner);
    SHA1_Update(&out->inner, block, SHA_CBLOCK);
    for (int i = 0; i < SHA_CBLOCK; i++)
        block[i] = k[i] ^ 0x5C;
    SHA1_Init(&out->outer);
    SHA1_Update(&out->outer, block, SHA_CBLOCK);
    if (PyDict_GET_SIZE(sha1_pads_by_key) >= 256) /* a capture with many credentials */
        PyDict_Clear(sha1_pads_by_key);
    PyObject *b = PyBytes_FromStringAndSize((const char *)out, sizeof *out);
    int r = b ? PyDict_SetItem(sha1_pads_by_key, key, b) : -1;
    Py_XDECREF(b);
    return r;
}

/* hmac_compare's verdict, hashed here: 1 or 0, 2 when the attribute does not fit in p */
static int sha1_compare(const unsigned char *p, Py_ssize_t n, Py_ssize_t off,
                        const Sha1Pads *pads) {
    if (off < 20 || off + 4 > n)
        return 2;
    Py_ssize_t alen = be16(p + off + 2);
    if (off + 4 + alen > n)
        return 2;
    Py_ssize_t covered = off + alen - 16; /* the length field covers MESSAGE-INTEGRITY */
    unsigned char head[4] = {p[0], p[1], (unsigned char)(covered >> 8 & 0xFF),
                             (unsigned char)(covered & 0xFF)};
    unsigned char mid[SHA_DIGEST_LENGTH], mac[SHA_DIGEST_LENGTH];
    SHA_CTX c = pads->inner;
    SHA1_Update(&c, head, 4);
    SHA1_Update(&c, p + 4, (size_t)(off - 4));
    SHA1_Final(mid, &c);
    c = pads->outer;
    SHA1_Update(&c, mid, SHA_DIGEST_LENGTH);
    SHA1_Final(mac, &c);
    return alen <= SHA_DIGEST_LENGTH && memcmp(mac, p + off + 4, (size_t)alen) == 0;
}
#endif

/* check(p, key, msg, sha1_pads, sha256_pads): stun.check_integrity for a message this
 * module parsed and a key whose pads are made (the pads maps: key -> (inner, outer));
 * NotImplemented for anything else (the Python path decides, and makes the pads). */
static PyObject *check(PyObject *self, PyObject *const *args, Py_ssize_t nargs) {
    if (nargs != 5 || !PyDict_CheckExact(args[3]) || !PyDict_CheckExact(args[4])) {
        PyErr_SetString(PyExc_TypeError, "check(p, key, msg, sha1_pads: dict, sha256_pads: dict)");
        return NULL;
    }
    PyObject *msg = args[2], *integrity, *at;
    if (!msg_type || !PyBytes_CheckExact(args[0]) || !Py_IS_TYPE(msg, msg_type))
        Py_RETURN_NOTIMPLEMENTED;
    if ((integrity = get(msg, F_INTEGRITY)) == Py_False)
        Py_RETURN_NONE;
    if (integrity != Py_True || !(at = get(msg, F_INTEGRITY_OFFSET)) || !PyLong_CheckExact(at))
        Py_RETURN_NOTIMPLEMENTED;
    const unsigned char *p = (const unsigned char *)PyBytes_AS_STRING(args[0]);
    Py_ssize_t n = PyBytes_GET_SIZE(args[0]), off = PyLong_AsSsize_t(at);
    if (off == -1 && PyErr_Occurred())
        return NULL;
    if (off < 20 || off + 4 > n)
        Py_RETURN_NOTIMPLEMENTED;
#ifdef HAVE_SHA1
    if (be16(p + off) == A_INTEGRITY && PyBytes_CheckExact(args[1])) {
        Sha1Pads own;
        if (sha1_pads(args[1], &own) < 0)
            return NULL;
        int r = sha1_compare(p, n, off, &own);
        if (r == 2)
            Py_RETURN_NOTIMPLEMENTED;
        return PyBool_FromLong(r);
    }
#endif
    PyObject *pads = PyDict_GetItemWithError(be16(p + off) == A_INTEGRITY ? args[3] : args[4],
                                             args[1]);
    if (!pads) {
        if (PyErr_Occurred())
            return NULL;
        Py_RETURN_NOTIMPLEMENTED;
    }
    if (!PyTuple_CheckExact(pads) || PyTuple_GET_SIZE(pads) != 2)
        Py_RETURN_NOTIMPLEMENTED;
    Py_INCREF(pads); /* the hashing runs Python-visible code: keep the pads alive */
    int r = hmac_compare(p, n, off, PyTuple_GET_ITEM(pads, 0), PyTuple_GET_ITEM(pads, 1));
    Py_DECREF(pads);
    if (r < 0)
        return NULL;
    if (r == 2)
        Py_RETURN_NOTIMPLEMENTED;
    return PyBool_FromLong(r);
}

/* stun.check_integrity(p, key, msg=None) in one C call: check() with the pads maps given
 * to setup_integrity, and what it does not take (NotImplemented, no message) handed to the
 * Python version given there, the reference. The session checks one message in two this
 * way: a Python frame per check was a twentieth of its ICE pass. */
static PyObject *integrity_py, *integrity_sha1, *integrity_sha256;

static PyObject *check_integrity(PyObject *self, PyObject *const *args, Py_ssize_t nargs) {
    if (nargs < 2 || nargs > 3) {
        PyErr_SetString(PyExc_TypeError, "check_integrity(p, key, msg=None)");
        return NULL;
    }
    if (!integrity_py) {
        PyErr_SetString(PyExc_RuntimeError, "_stunparse.setup_integrity was not called");
        return NULL;
    }
    if (nargs == 3 && args[2] != Py_None) {
        PyObject *all[5] = {args[0], args[1], args[2], integrity_sha1, integrity_sha256};
        PyObject *r = check(self, all, 5);
        if (r != Py_NotImplemented)
            return r;
        Py_DECREF(r);
    }
    return PyObject_Vectorcall(integrity_py, args, (size_t)nargs, NULL);
}

static PyObject *setup_integrity(PyObject *self, PyObject *args) {
    PyObject *py, *sha1, *sha256;
    if (!PyArg_ParseTuple(args, "OO!O!", &py, &PyDict_Type, &sha1, &PyDict_Type, &sha256))
        return NULL;
    Py_INCREF(py);
    Py_INCREF(sha1);
    Py_INCREF(sha256);
    Py_XSETREF(integrity_py, py);
    Py_XSETREF(integrity_sha1, sha1);
    Py_XSETREF(integrity_sha256, sha256);
    Py_RETURN_NONE;
}

/* The walk's side of a STUN datagram (turnrelay.TurnRelay._stun, analyzer._udp's counting)
 * in one call: a handshake capture's UDP is mostly STUN, and in Python each datagram cost
 * the flow's counters, a Counter update, a 8-field dataclass __init__ and the list append
 * on top of the parse. record() does all of it from the Flow's and StunEvent's slots.
 *
 * setup_walk(flow_cls, event_cls, sip_starts, relayed): Flow (a __slots__ class), StunEvent
 *   (a dataclass), sip.STARTS and turnrelay.RELAYED (what ends a relayed flow's key).
 * record(flow, p, t, no, events, count) for a datagram whose first byte is below 4:
 *   count: add it to flow.packets, flow.bytes, flow.last_t first (as _udp does);
 *   then as TurnRelay._stun with an RFC 8489 message: flow.kinds["stun"] += 1 and
 *   events.append(StunEvent(no, t, flow.src, flow.dst, flow.label, bool(flow.via), msg,
 *   raw)). Returns True when nothing more is to be done (relayed, or a method that
 *   TurnRelay._turn ignores), the message when TURN may need it (_turn), None when it is no RFC 8489 message
 *   (counted, nothing else done: the Python path tries RFC 3489), and NotImplemented
 *   when it did nothing at all (not bytes, empty, first byte 4 or more, not a Flow). */
enum { W_PACKETS, W_BYTES, W_LAST_T, W_KINDS, W_VIA, W_SRC, W_DST, W_LABEL, W_TURN_CLIENT, NWALK };
static const char *WALK_FIELDS[NWALK] = {"packets", "bytes", "last_t", "kinds",      "via",
                                         "src",     "dst",   "_label", "turn_client"};
static Py_ssize_t walk_offsets[NWALK];
static PyTypeObject *flow_type, *event_type;
static PyObject *one, *s_stun, *s_label, *s_turn_channel, *s_channel_flows, *s_turn_state;
static PyObject *s_relayed_flows, *s_relayed_addr, *s_flows, *s_channels, *s_key, *s_udp;
static PyObject *relayed_mark; /* turnrelay.RELAYED: the end of a relayed flow's key */
static PyObject *sip_starts; /* sip.STARTS: datagrams that are SIP, whatever follows */
/* StunEvent's fields, in its __init__'s order */
#define NEVENT 8
static const char *EVENT_FIELDS[NEVENT] = {"frame", "time", "src", "dst",
                                           "flow",  "relayed", "msg", "raw"};
static Py_ssize_t event_offsets[NEVENT]; /* StunEvent's slots (its own and Event's) */

static PyObject **flow_slot(PyObject *flow, int f) {
    return (PyObject **)((char *)flow + walk_offsets[f]);
}

/* *slot += v (v borrowed), as Python's `flow.x += v`. */
static int add_to(PyObject **slot, PyObject *v) {
    PyObject *x = PyNumber_InPlaceAdd(*slot, v);
    if (!x)
        return -1;
    Py_SETREF(*slot, x);
    return 0;
}

/* A Flow whose slots record() reads are all set (else Python raises AttributeError). */
static int flow_ok(PyObject *flow) {
    if (!Py_IS_TYPE(flow, flow_type))
        return 0;
    for (int f = 0; f < NWALK; f++)
        if (!*flow_slot(flow, f))
            return 0;
    return PyDict_Check(*flow_slot(flow, W_KINDS));
}

/* _udp's counting: flow.packets += 1; flow.bytes += n; flow.last_t = t. */
static int count_on(PyObject *flow, Py_ssize_t n, PyObject *t) {
    PyObject *size = PyLong_FromSsize_t(n);
    if (!size)
        return -1;
    int bad = add_to(flow_slot(flow, W_PACKETS), one) < 0 ||
              add_to(flow_slot(flow, W_BYTES), size) < 0;
    Py_DECREF(size);
    if (bad)
        return -1;
    Py_SETREF(*flow_slot(flow, W_LAST_T), Py_NewRef(t));
    return 0;
}

/* flow.kinds[kind] += 1 (a Counter: a missing kind counts 0). */
static int count_kind(PyObject *flow, PyObject *kind) {
    PyObject *kinds = *flow_slot(flow, W_KINDS), *was, *now;
    Py_INCREF(kinds);
    int r = -1;
    if (!(was = PyDict_GetItemWithError(kinds, kind)) && PyErr_Occurred())
        goto done;
    now = was ? PyNumber_InPlaceAdd(was, one) : Py_NewRef(one);
    if (now) {
        r = PyDict_SetItem(kinds, kind, now);
        Py_DECREF(now);
    }
done:
    Py_DECREF(kinds);
    return r;
}

/* A message TurnRelay._turn may act on: an Allocate request or success, a ChannelBind
 * request, a Send or Data indication (Binding, Refresh, errors... change nothing). */
static int turn_method(PyObject *msg) {
    static const char *acted[][2] = {{"Allocate", "request"},  {"Allocate", "success"},
                                     {"ChannelBind", "request"}, {"Send", "indication"},
                                     {"Data", "indication"}};
    PyObject *method = get(msg, F_METHOD), *cls = get(msg, F_CLS);
    if (!PyUnicode_Check(method) || !PyUnicode_Check(cls))
        return 1;
    for (int i = 0; i < 5; i++)
        if (PyUnicode_CompareWithASCIIString(method, acted[i][0]) == 0 &&
            PyUnicode_CompareWithASCIIString(cls, acted[i][1]) == 0)
            return 1;
    return 0;
}

/* The rest of _stun_py for msg (a new reference, an RFC 8489 message parsed from p, n
 * bytes of the bytes object pb): kinds, the event, and True or the message for _turn. */
static PyObject *stun_event(PyObject *flow, PyObject *pb, const unsigned char *p, Py_ssize_t n,
                            PyObject *t, PyObject *no, PyObject *events, PyObject *msg) {
    if (count_kind(flow, s_stun) < 0)
        goto fail;
    /* the event, its fields set as its __init__ sets them */
    PyObject *values[NEVENT] = {NULL};
    PyObject *via = *flow_slot(flow, W_VIA), *ev = NULL;
    int relayed = PyObject_IsTrue(via);
    if (relayed < 0)
        goto fail;
    PyObject *label = *flow_slot(flow, W_LABEL);
    values[4] = PyUnicode_CheckExact(label) && PyUnicode_GET_LENGTH(label)
                    ? Py_NewRef(label)
                    : PyObject_GetAttr(flow, s_label); /* made once, by the property */
    if (!values[4])
        goto fail;
    values[0] = Py_NewRef(no);
    values[1] = Py_NewRef(t);
    values[2] = Py_NewRef(*flow_slot(flow, W_SRC));
    values[3] = Py_NewRef(*flow_slot(flow, W_DST));
    values[5] = Py_NewRef(relayed ? Py_True : Py_False);
    values[6] = Py_NewRef(msg);
    Py_ssize_t whole = 20 + (Py_ssize_t)be16(p + 2);
    if (get(msg, F_INTEGRITY) != Py_True) /* raw: p[: 20 + length] if msg.integrity else b"" */
        values[7] = PyBytes_FromStringAndSize(NULL, 0);
    else if (whole >= n)
        values[7] = Py_NewRef(pb);
    else
        values[7] = PyBytes_FromStringAndSize((const char *)p, whole);
    if (!values[7])
        goto fail_values;
    ev = event_type->tp_new(event_type, no_items, NULL); /* object.__new__, no __init__ */
    if (!ev)
        goto fail_values;
    for (int i = 0; i < NEVENT; i++) /* the slots take the references, as __init__ would */
        *(PyObject **)((char *)ev + event_offsets[i]) = values[i];
    int bad = PyList_Append(events, ev);
    Py_DECREF(ev);
    if (bad < 0)
        goto fail;
    if (relayed || !turn_method(msg)) {
        Py_DECREF(msg);
        Py_RETURN_TRUE; /* ICE checks, most messages, change nothing of TURN */
    }
    return msg;
fail_values:
    Py_XDECREF(ev);
    for (int i = 0; i < NEVENT; i++)
        Py_XDECREF(values[i]);
fail:
    Py_DECREF(msg);
    return NULL;
}

static PyObject *record(PyObject *self, PyObject *const *args, Py_ssize_t nargs) {
    if (nargs != 6) {
        PyErr_SetString(PyExc_TypeError, "record(flow, p, t, no, events, count)");
        return NULL;
    }
    PyObject *flow = args[0], *pb = args[1], *t = args[2], *no = args[3], *events = args[4];
    if (!flow_type || !msg_type || !flow_ok(flow) || !PyBytes_CheckExact(pb) ||
        !PyList_CheckExact(events))
        Py_RETURN_NOTIMPLEMENTED;
    const unsigned char *p = (const unsigned char *)PyBytes_AS_STRING(pb);
    Py_ssize_t n = PyBytes_GET_SIZE(pb);
    if (n < 1 || p[0] >= 4)
        Py_RETURN_NOTIMPLEMENTED;
    int count = PyObject_IsTrue(args[5]);
    if (count < 0 || (count && count_on(flow, n, t) < 0))
        return NULL;
    PyObject *msg = decode(p, n);
    if (!msg || msg == Py_None)
        return msg;
    return stun_event(flow, pb, p, n, t, no, events, msg);
}

/* net.reverse(key) (a new reference), or NULL without an error for a key whose halves
 * are not the same length (the Python path takes it then). */
static PyObject *reversed_key(PyObject *key) {
    Py_ssize_t len = PyBytes_GET_SIZE(key), half = (len - 4) / 2;
    if (len < 4 || 2 * half + 4 != len)
        return NULL;
    PyObject *r = PyBytes_FromStringAndSize(NULL, len);
    if (!r)
        return NULL;
    const char *a = PyBytes_AS_STRING(key);
    char *b = PyBytes_AS_STRING(r);
    memcpy(b, a + half, (size_t)half);
    memcpy(b + half, a, (size_t)half);
    memcpy(b + 2 * half, a + len - 2, 2);
    memcpy(b + 2 * half + 2, a + len - 4, 2);
    return r;
}

/* The 4 address bytes and the port of an Address (ip, port) whose ip is a dotted quad,
 * as net.make_key's inet_pton reads it: 1, or 0 (no error) for anything else. */
static int ipv4_end(PyObject *addr, unsigned char ip[4], unsigned *port) {
    if (!PyTuple_CheckExact(addr) || PyTuple_GET_SIZE(addr) != 2)
        return 0;
    PyObject *text = PyTuple_GET_ITEM(addr, 0), *num = PyTuple_GET_ITEM(addr, 1);
    if (!PyUnicode_CheckExact(text) || !PyLong_CheckExact(num))
        return 0;
    Py_ssize_t n;
    const char *s = PyUnicode_AsUTF8AndSize(text, &n); /* what socket.inet_pton reads */
    if (!s) {
        PyErr_Clear(); /* not encodable: make_key raises, in Python */
        return 0;
    }
    if ((Py_ssize_t)strlen(s) != n || memchr(s, ':', (size_t)n) || inet_pton(AF_INET, s, ip) != 1)
        return 0;
    int overflow;
    long v = PyLong_AsLongAndOverflow(num, &overflow);
    if (overflow || v < 0 || v > 0xFFFF)
        return 0; /* struct.error in Python (or -1 with an error: none for an exact int) */
    *port = (unsigned)v;
    return 1;
}

/* net.make_key(src..., dst...) + RELAYED for two IPv4 ends (the usual case): a new
 * reference, or NULL without an error for any other (make_key's other paths, in Python). */
static PyObject *relayed_key(PyObject *src, PyObject *dst) {
    unsigned char b[12];
    unsigned sport, dport;
    if (!relayed_mark || !ipv4_end(src, b, &sport) || !ipv4_end(dst, b + 4, &dport))
        return NULL;
    b[8] = (unsigned char)(sport >> 8), b[9] = (unsigned char)sport;
    b[10] = (unsigned char)(dport >> 8), b[11] = (unsigned char)dport;
    Py_ssize_t m = PyBytes_GET_SIZE(relayed_mark);
    PyObject *key = PyBytes_FromStringAndSize(NULL, 12 + m);
    if (key) {
        memcpy(PyBytes_AS_STRING(key), b, 12);
        memcpy(PyBytes_AS_STRING(key) + 12, PyBytes_AS_STRING(relayed_mark), (size_t)m);
    }
    return key;
}

/* walker.turn_state += 1 */
static int next_state(PyObject *walker) {
    PyObject *state = PyObject_GetAttr(walker, s_turn_state), *now;
    if (!state)
        return -1;
    now = PyNumber_Add(state, one);
    Py_DECREF(state);
    if (!now)
        return -1;
    int r = PyObject_SetAttr(walker, s_turn_state, now);
    Py_DECREF(now);
    return r;
}

/* The flow of the (stamp, flow) pair `map` keeps at k (relayed_flows: the relayed address
 * it was found for; channel_flows: the turn_state) when its stamp == now: 1 (*flow, a new
 * reference); 0 when nothing or another stamp is kept there; -1 with an error; 2 for what
 * is no such pair (the Python path reads it). */
static int kept_for(PyObject *map, PyObject *k, PyObject *now, PyObject **flow) {
    PyObject *kept = PyDict_GetItemWithError(map, k);
    if (!kept)
        return PyErr_Occurred() ? -1 : 0;
    if (!PyTuple_CheckExact(kept) || PyTuple_GET_SIZE(kept) != 2)
        return 2;
    Py_INCREF(kept);
    int same = PyObject_RichCompareBool(PyTuple_GET_ITEM(kept, 0), now, Py_EQ);
    if (same > 0)
        *flow = Py_NewRef(PyTuple_GET_ITEM(kept, 1));
    Py_DECREF(kept);
    return same;
}

/* TurnRelay._relayed_flow in C (client_key: the client->server key; outer a flow_ok Flow):
 * the relayed flow kept in walker.relayed_flows for the relayed address walker.relayed_addr
 * has now, else, for IPv4 ends and a flow walker.flows has already, that flow, kept as
 * _relayed_flow keeps it (turn_state moved on). NULL otherwise (an error only if one is
 * set), nothing changed: the Python path makes the flow, or counts a bad address. */
static PyObject *relayed_flow(PyObject *walker, PyObject *outer, PyObject *key,
                              PyObject *client_key, PyObject *peer, int to_server) {
    PyObject *kept = NULL, *addrs = NULL, *flows = NULL, *k = NULL, *now = NULL;
    PyObject *ikey = NULL, *entry = NULL, *inner = NULL;
    if (!(kept = PyObject_GetAttr(walker, s_relayed_flows)) ||
        !(addrs = PyObject_GetAttr(walker, s_relayed_addr)) ||
        !(flows = PyObject_GetAttr(walker, s_flows)))
        goto done;
    if (!PyDict_CheckExact(kept) || !PyDict_CheckExact(addrs) || !PyDict_CheckExact(flows))
        goto done;
    if (!(k = PyTuple_Pack(2, key, peer)))
        goto done;
    now = PyDict_GetItemWithError(addrs, client_key); /* relayed_addr.get(client_key) */
    if (!now && PyErr_Occurred())
        goto done;
    now = Py_NewRef(now ? now : Py_None);
    if (kept_for(kept, k, now, &inner) != 0)
        goto done; /* kept, an error, or not read here */
    PyObject *client = *flow_slot(outer, to_server ? W_SRC : W_DST);
    PyObject *relayed = now != Py_None ? now : client; /* relayed_addr.get(client_key, client) */
    if (!(ikey = to_server ? relayed_key(relayed, peer) : relayed_key(peer, relayed)))
        goto done;
    PyObject *found = PyDict_GetItemWithError(flows, ikey);
    if (!found) /* a new flow (or an error): _new_flow's, in Python */
        goto done;
    Py_INCREF(found);
    if (!(entry = PyTuple_Pack(2, now, found)) || PyDict_SetItem(kept, k, entry) < 0 ||
        next_state(walker) < 0)
        Py_DECREF(found);
    else
        inner = found;
done:
    Py_XDECREF(entry);
    Py_XDECREF(ikey);
    Py_XDECREF(now);
    Py_XDECREF(k);
    Py_XDECREF(flows);
    Py_XDECREF(addrs);
    Py_XDECREF(kept);
    return inner;
}

/* TurnRelay._deliver of a datagram record() does not take (empty, first byte 4 or more)
 * to the relayed flow `inner`: walker._udp(inner, inner.key, data, t, no); True, or NULL
 * with an error (raised by _udp, as in Python). */
static PyObject *relayed_udp(PyObject *walker, PyObject *inner, PyObject *data, PyObject *t,
                             PyObject *no) {
    PyObject *key = PyObject_GetAttr(inner, s_key), *r;
    if (!key)
        return NULL;
    PyObject *args[6] = {walker, inner, key, data, t, no};
    r = PyObject_VectorcallMethod(s_udp, args, 6 | PY_VECTORCALL_ARGUMENTS_OFFSET, NULL);
    Py_DECREF(key);
    if (!r)
        return NULL;
    Py_DECREF(r);
    Py_RETURN_TRUE;
}

/* After record() of a wire datagram on `flow` gave `msg` (a new reference) for _turn: a
 * Send or Data indication whose relayed flow relayed_flow() finds (TurnRelay._inner) has
 * an RFC 8489 message in its DATA recorded on the relayed flow, other DATA given to _udp
 * (relayed_udp): True; anything else is handed back (msg). */
static PyObject *relayed_stun(PyObject *walker, PyObject *flow, PyObject *key, PyObject *msg,
                              PyObject *t, PyObject *no, PyObject *events) {
    PyObject *cls = get(msg, F_CLS), *data = get(msg, F_DATA), *peers = get(msg, F_XOR_PEER);
    PyObject *inner = NULL, *m = NULL, *client = NULL;
    int send = PyUnicode_CompareWithASCIIString(get(msg, F_METHOD), "Send") == 0;
    if (!send && PyUnicode_CompareWithASCIIString(get(msg, F_METHOD), "Data") != 0)
        return msg;
    if (PyUnicode_CompareWithASCIIString(cls, "indication") != 0 || !PyBytes_CheckExact(data) ||
        !PyBytes_CheckExact(key) || !PyTuple_CheckExact(peers) || PyTuple_GET_SIZE(peers) < 1)
        return msg;
    Py_INCREF(data);
    Py_INCREF(peers);
    client = send ? Py_NewRef(key) : reversed_key(key); /* _inner's client_key */
    if (client)
        inner = relayed_flow(walker, flow, key, client, PyTuple_GET_ITEM(peers, 0), send);
    Py_XDECREF(client);
    Py_DECREF(peers);
    if (!inner) {
        Py_DECREF(data);
        if (PyErr_Occurred()) {
            Py_DECREF(msg);
            return NULL;
        }
        return msg;
    }
    const unsigned char *d = (const unsigned char *)PyBytes_AS_STRING(data);
    Py_ssize_t dn = PyBytes_GET_SIZE(data);
    PyObject *r = msg; /* handed back unless the relayed flow takes it all */
    int via = 0;
    if (dn < 1 || d[0] >= 4) /* no STUN: record() leaves it, _deliver gives it to _udp */
        r = relayed_udp(walker, inner, data, t, no);
    else if ((via = flow_ok(inner) ? PyObject_IsTrue(*flow_slot(inner, W_VIA)) : 0) < 0)
        r = NULL;
    else if (via && (m = decode(d, dn)) && m != Py_None) {
        if (count_on(inner, dn, t) < 0)
            r = NULL;
        else {
            r = stun_event(inner, data, d, dn, t, no, events, m);
            m = NULL;
        }
    } else if (!m && via)
        r = NULL;
    Py_XDECREF(m);
    Py_DECREF(inner);
    Py_DECREF(data);
    if (r != msg)
        Py_DECREF(msg);
    return r;
}

/* The relayed flow of ChannelData on `flow` (key) for channel p[0..1] (TurnRelay._channel_data):
 * the one kept in walker.channel_flows (kept_map) at ck for walker.turn_state, else, for a
 * bound channel, _channel_flow's when relayed_flow() finds it, then kept at ck for the
 * turn_state it leaves. NULL otherwise (an error only if one is set): _channel_data's,
 * in Python (an unbound channel is counted there). */
static PyObject *channel_flow(PyObject *walker, PyObject *flow, PyObject *key,
                              const unsigned char *p, PyObject *kept_map, PyObject *ck) {
    PyObject *state = NULL, *channels = NULL, *ch = NULL, *here = NULL, *client = NULL;
    PyObject *bound = NULL, *peer = NULL, *inner = NULL, *entry = NULL;
    if (!(state = PyObject_GetAttr(walker, s_turn_state)))
        return NULL;
    if (kept_for(kept_map, ck, state, &inner) != 0)
        goto done; /* kept, an error, or not read here */
    /* _channel_flow: to_server = (key, ch) in channels; peer = channels.get((client_key, ch)) */
    if (!(channels = PyObject_GetAttr(walker, s_channels)) || !PyDict_CheckExact(channels))
        goto done;
    if (!(ch = PyLong_FromLong((long)be16(p))) || !(here = PyTuple_Pack(2, key, ch)))
        goto done;
    int to_server = PyDict_Contains(channels, here);
    if (to_server < 0)
        goto done;
    client = to_server ? Py_NewRef(key) : reversed_key(key);
    if (!client || !(bound = to_server ? Py_NewRef(here) : PyTuple_Pack(2, client, ch)))
        goto done;
    if (!(peer = PyDict_GetItemWithError(channels, bound))) /* unbound: Python counts it */
        goto done;
    Py_INCREF(peer);
    if (!(inner = relayed_flow(walker, flow, key, client, peer, to_server)))
        goto done;
    /* bound, so kept: channel_flows[ck] = (turn_state, inner), the state relayed_flow left */
    Py_SETREF(state, PyObject_GetAttr(walker, s_turn_state));
    if (!state || !(entry = PyTuple_Pack(2, state, inner)) ||
        PyDict_SetItem(kept_map, ck, entry) < 0)
        Py_CLEAR(inner);
done:
    Py_XDECREF(entry);
    Py_XDECREF(peer);
    Py_XDECREF(bound);
    Py_XDECREF(client);
    Py_XDECREF(here);
    Py_XDECREF(ch);
    Py_XDECREF(channels);
    Py_XDECREF(state);
    return inner;
}

static int is(PyObject *name, const char *text) {
    return PyUnicode_Check(name) && PyUnicode_CompareWithASCIIString(name, text) == 0;
}

/* What TurnRelay._turn changes for `msg` (a new reference) on the wire flow `flow` (key):
 * an Allocate request, flow.turn_client; an Allocate success with a relayed address,
 * relayed_addr[reverse(key)]; a ChannelBind request with a channel and a peer,
 * channels[(key, channel)]; turn_state moved on for the last two. True, NULL with an
 * error, or msg handed back (anything else: _turn's, in Python). */
static PyObject *turn_change(PyObject *walker, PyObject *flow, PyObject *key, PyObject *msg) {
    PyObject *method = get(msg, F_METHOD), *cls = get(msg, F_CLS), *k = NULL, *v = NULL;
    PyObject *map = NULL, *r = msg;
    if (is(method, "Allocate") && is(cls, "request")) {
        Py_SETREF(*flow_slot(flow, W_TURN_CLIENT), Py_NewRef(Py_True));
        r = Py_True;
    } else if (is(method, "Allocate") && is(cls, "success")) {
        PyObject *relayed = get(msg, F_XOR_RELAYED);
        if (!PyTuple_CheckExact(relayed) || PyTuple_GET_SIZE(relayed) < 1 ||
            !PyBytes_CheckExact(key) || !(k = reversed_key(key)))
            goto done;
        v = Py_NewRef(PyTuple_GET_ITEM(relayed, 0));
        map = PyObject_GetAttr(walker, s_relayed_addr);
    } else if (is(method, "ChannelBind") && is(cls, "request")) {
        PyObject *channel = get(msg, F_CHANNEL), *peers = get(msg, F_XOR_PEER);
        int bound = PyObject_IsTrue(channel);
        if (bound < 0)
            r = NULL;
        if (bound <= 0 || !PyTuple_CheckExact(peers) || PyTuple_GET_SIZE(peers) < 1 ||
            !(k = PyTuple_Pack(2, key, channel)))
            goto done;
        v = Py_NewRef(PyTuple_GET_ITEM(peers, 0));
        map = PyObject_GetAttr(walker, s_channels);
    }
    if (map && PyDict_CheckExact(map)) /* else (an error, or no dict) left to Python */
        r = PyDict_SetItem(map, k, v) < 0 || next_state(walker) < 0 ? NULL : Py_True;
done:
    if (!r || (r == msg && PyErr_Occurred()))
        r = NULL;
    Py_XDECREF(map);
    Py_XDECREF(v);
    Py_XDECREF(k);
    if (r != msg) {
        Py_DECREF(msg);
        Py_XINCREF(r);
    }
    return r;
}

/* datagram(walker, flow, key, p, t, no, events): record(flow, p, t, no, events, True), and
 * for ChannelData (first byte 0x40-0x4F, not SIP's start, RFC 8656 12.4 framing) the outer
 * flow's counting and kinds["turn-channel"] (as _udp), then, when the channel's relayed
 * flow is kept in walker.channel_flows for walker.turn_state or found (channel_flow), the
 * data's record when it is an RFC 8489 message on that (relayed) flow, _udp's when it is
 * no STUN (relayed_udp): True. None for ChannelData: the outer flow counted, the rest is
 * _channel_data's.
 * A Send or Data indication likewise (relayed_stun), and what _turn changes for an Allocate
 * or a ChannelBind (turn_change): True, or the message for _turn. */
static PyObject *datagram(PyObject *self, PyObject *const *args, Py_ssize_t nargs) {
    if (nargs != 7) {
        PyErr_SetString(PyExc_TypeError, "datagram(walker, flow, key, p, t, no, events)");
        return NULL;
    }
    PyObject *walker = args[0], *flow = args[1], *key = args[2], *pb = args[3], *t = args[4],
             *no = args[5], *events = args[6];
    if (!flow_type || !msg_type || !sip_starts || !flow_ok(flow) || !PyBytes_CheckExact(pb) ||
        !PyBytes_CheckExact(key) || !PyList_CheckExact(events))
        Py_RETURN_NOTIMPLEMENTED;
    const unsigned char *p = (const unsigned char *)PyBytes_AS_STRING(pb);
    Py_ssize_t n = PyBytes_GET_SIZE(pb);
    if (n >= 1 && p[0] < 4) {
        if (count_on(flow, n, t) < 0)
            return NULL;
        PyObject *msg = decode(p, n);
        if (!msg || msg == Py_None)
            return msg;
        PyObject *r = stun_event(flow, pb, p, n, t, no, events, msg);
        if (!r || r == Py_True)
            return r;
        if (!(r = relayed_stun(walker, flow, key, r, t, no, events)) || r == Py_True)
            return r;
        return turn_change(walker, flow, key, r);
    }
    if (n < 4 || p[0] < 0x40 || p[0] > 0x4F || 4 + (Py_ssize_t)be16(p + 2) > n)
        Py_RETURN_NOTIMPLEMENTED;
    for (Py_ssize_t i = 0; i < PyTuple_GET_SIZE(sip_starts); i++) { /* sip.looks_like_sip */
        PyObject *start = PyTuple_GET_ITEM(sip_starts, i);
        Py_ssize_t k = PyBytes_GET_SIZE(start);
        if (k <= n && memcmp(PyBytes_AS_STRING(start), p, (size_t)k) == 0)
            Py_RETURN_NOTIMPLEMENTED;
    }
    if (count_on(flow, n, t) < 0 || count_kind(flow, s_turn_channel) < 0)
        return NULL;
    /* the relayed flow: walker.channel_flows.get(key + p[:2]) kept for turn_state, or found */
    PyObject *kept_map = PyObject_GetAttr(walker, s_channel_flows), *ck = NULL;
    PyObject *inner = NULL, *data = NULL, *msg = NULL, *r = NULL;
    if (!kept_map)
        return NULL;
    if (!PyDict_CheckExact(kept_map))
        goto python;
    ck = PyBytes_FromStringAndSize(NULL, PyBytes_GET_SIZE(key) + 2);
    if (!ck)
        goto done;
    memcpy(PyBytes_AS_STRING(ck), PyBytes_AS_STRING(key), (size_t)PyBytes_GET_SIZE(key));
    memcpy(PyBytes_AS_STRING(ck) + PyBytes_GET_SIZE(key), p, 2);
    if (!(inner = channel_flow(walker, flow, key, p, kept_map, ck))) {
        if (PyErr_Occurred())
            goto done;
        goto python;
    }
    Py_ssize_t len = be16(p + 2);
    if (!(data = PyBytes_FromStringAndSize((const char *)p + 4, len)))
        goto done;
    if (len < 1 || p[4] >= 4) { /* no STUN: _deliver's _udp */
        r = relayed_udp(walker, inner, data, t, no);
        goto done;
    }
    if (!flow_ok(inner))
        goto python;
    int via = PyObject_IsTrue(*flow_slot(inner, W_VIA));
    if (via < 0)
        goto done;
    /* only an RFC 8489 message on a relayed flow is taken (record() would give True) */
    if (!via)
        goto python;
    if (!(msg = decode(p + 4, len)))
        goto done;
    if (msg == Py_None)
        goto python;
    if (count_on(inner, len, t) < 0)
        goto done;
    r = stun_event(inner, data, (const unsigned char *)PyBytes_AS_STRING(data), len, t, no,
                   events, msg);
    msg = NULL; /* stun_event took it */
    goto done;
python:
    r = Py_NewRef(Py_None);
done:
    Py_XDECREF(msg);
    Py_XDECREF(data);
    Py_XDECREF(inner);
    Py_XDECREF(ck);
    Py_DECREF(kept_map);
    return r;
}

static PyObject *setup_walk(PyObject *self, PyObject *args) {
    PyObject *fcls, *ecls, *starts, *mark;
    if (!PyArg_ParseTuple(args, "O!O!O!O!", &PyType_Type, &fcls, &PyType_Type, &ecls,
                          &PyTuple_Type, &starts, &PyBytes_Type, &mark))
        return NULL;
    for (Py_ssize_t i = 0; i < PyTuple_GET_SIZE(starts); i++)
        if (!PyBytes_CheckExact(PyTuple_GET_ITEM(starts, i))) {
            PyErr_SetString(PyExc_TypeError, "_stunparse.setup_walk: SIP starts are bytes");
            return NULL;
        }
    PyTypeObject *ft = (PyTypeObject *)fcls, *et = (PyTypeObject *)ecls;
    Py_ssize_t walk[NWALK]; /* Flow's slots, kept (as StunEvent's) once all are found */
    for (int f = 0; f < NWALK; f++)
        if ((walk[f] = slot_offset(ft, WALK_FIELDS[f])) < 0) {
            PyErr_Format(PyExc_TypeError, "_stunparse.setup_walk: Flow has no slot %s",
                         WALK_FIELDS[f]);
            return NULL;
        }
    PyObject *fields = PyObject_GetAttrString(ecls, "__dataclass_fields__");
    if (!fields)
        return NULL;
    int ok = PyDict_Check(fields) && PyDict_GET_SIZE(fields) == NEVENT &&
             et->tp_new != NULL;
    Py_ssize_t pos = 0, i = 0;
    PyObject *k, *v;
    while (ok && PyDict_Next(fields, &pos, &k, &v))
        ok = PyUnicode_Check(k) && PyUnicode_CompareWithASCIIString(k, EVENT_FIELDS[i++]) == 0;
    Py_DECREF(fields);
    Py_ssize_t offsets[NEVENT];
    for (i = 0; ok && i < NEVENT; i++)
        ok = (offsets[i] = slot_offset(et, EVENT_FIELDS[i])) >= 0;
    if (!ok) {
        PyErr_SetString(PyExc_TypeError,
                        "_stunparse.setup_walk: StunEvent's fields are not the slots record() "
                        "sets (update EVENT_FIELDS)");
        return NULL;
    }
    Py_INCREF(fcls);
    Py_XSETREF(flow_type, ft);
    Py_INCREF(ecls);
    Py_XSETREF(event_type, et);
    memcpy(walk_offsets, walk, sizeof walk);
    memcpy(event_offsets, offsets, sizeof offsets);
    Py_XSETREF(sip_starts, Py_NewRef(starts));
    Py_XSETREF(relayed_mark, Py_NewRef(mark));
    Py_RETURN_NONE;
}

/* Bind StunMessage: its slots must be FIELDS, in order, each a writable object slot. */
static PyObject *setup(PyObject *self, PyObject *args) {
    PyObject *cls, *m, *cm, *cl, *v6;
    if (!PyArg_ParseTuple(args, "O!O!O!O!O", &PyType_Type, &cls, &PyDict_Type, &m, &PyDict_Type,
                          &cm, &PyTuple_Type, &cl, &v6))
        return NULL;
    PyTypeObject *tp = (PyTypeObject *)cls;
    PyObject *slots = PyObject_GetAttrString(cls, "__slots__");
    if (!slots)
        return NULL;
    int ok = PyTuple_Check(slots) && PyTuple_GET_SIZE(slots) == NFIELDS &&
             PyTuple_GET_SIZE(cl) == 4 && PyCallable_Check(v6) && tp->tp_itemsize == 0;
    for (int f = 0; ok && f < NFIELDS; f++) {
        PyObject *name = PyTuple_GET_ITEM(slots, f);
        PyObject *d = PyUnicode_Check(name) ? PyDict_GetItemWithError(tp->tp_dict, name) : NULL;
        ok = d && PyUnicode_CompareWithASCIIString(name, FIELDS[f]) == 0 &&
             Py_IS_TYPE(d, &PyMemberDescr_Type);
        if (ok) {
            PyMemberDef *def = ((PyMemberDescrObject *)d)->d_member;
            ok = def->type == T_OBJECT_EX && !(def->flags & READONLY) &&
                 def->offset >= (Py_ssize_t)sizeof(PyObject) &&
                 def->offset + (Py_ssize_t)sizeof(PyObject *) <= tp->tp_basicsize;
            offsets[f] = def->offset;
        }
    }
    Py_DECREF(slots);
    if (!ok) {
        if (!PyErr_Occurred())
            PyErr_SetString(PyExc_TypeError,
                            "_stunparse.c: StunMessage is not the slots dataclass it fills "
                            "(its fields changed? update FIELDS and fill() there)");
        return NULL;
    }
    Py_INCREF(cls);
    Py_XSETREF(msg_type, tp);
    Py_XSETREF(methods, Py_NewRef(m));
    for (int i = 0; i < 0x1000; i++) /* names and values kept from an earlier setup */
        Py_CLEAR(method_names[i]);
    for (int i = 0; i < MEMO_SLOTS; i++)
        Py_CLEAR(memo[i].obj);
    Py_XSETREF(classic_methods, Py_NewRef(cm));
    Py_XSETREF(classes, Py_NewRef(cl));
    Py_XSETREF(ipv6, Py_NewRef(v6));
    Py_RETURN_NONE;
}

static PyMethodDef module_methods[] = {
    {"setup", setup, METH_VARARGS, "Bind the StunMessage class, method and class names."},
    {"parse", parse, METH_O, "stun.parse: an RFC 8489 message, or None."},
    {"parse_classic", parse_classic, METH_O, "stun.parse_classic: an RFC 3489 message, or None."},
    {"verify", (PyCFunction)(void (*)(void))verify, METH_FASTCALL,
     "stun.check_integrity's HMAC comparison with the key's pads: bool, or None."},
    {"check", (PyCFunction)(void (*)(void))check, METH_FASTCALL,
     "stun.check_integrity for a parsed message and a key with pads, else NotImplemented."},
    {"check_integrity", (PyCFunction)(void (*)(void))check_integrity, METH_FASTCALL,
     "stun.check_integrity: check(), else the Python version given to setup_integrity."},
    {"setup_integrity", setup_integrity, METH_VARARGS,
     "Bind check_integrity's Python version and the pads maps check() reads."},
    {"setup_walk", setup_walk, METH_VARARGS, "Bind the Flow and StunEvent classes for record()."},
    {"record", (PyCFunction)(void (*)(void))record, METH_FASTCALL,
     "A STUN datagram of the walk: counted, parsed, its StunEvent recorded."},
    {"datagram", (PyCFunction)(void (*)(void))datagram, METH_FASTCALL,
     "record() for a wire datagram, and the ChannelData it can take."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {PyModuleDef_HEAD_INIT, "_stunparse", NULL, -1, module_methods};

PyMODINIT_FUNC PyInit__stunparse(void) {
    crc_init();
    if (!zero && !(zero = PyLong_FromLong(0)))
        return NULL;
    if (!empty && !(empty = PyUnicode_New(0, 0)))
        return NULL;
    if (!no_items && !(no_items = PyTuple_New(0)))
        return NULL;
    if (!s_copy && !(s_copy = PyUnicode_InternFromString("copy")))
        return NULL;
    if (!s_update && !(s_update = PyUnicode_InternFromString("update")))
        return NULL;
    if (!s_digest && !(s_digest = PyUnicode_InternFromString("digest")))
        return NULL;
    if (!one && !(one = PyLong_FromLong(1)))
        return NULL;
#ifdef HAVE_SHA1
    if (!sha1_pads_by_key && !(sha1_pads_by_key = PyDict_New()))
        return NULL;
#endif
    if (!s_stun && !(s_stun = PyUnicode_InternFromString("stun")))
        return NULL;
    if (!s_label && !(s_label = PyUnicode_InternFromString("label")))
        return NULL;
    if (!s_turn_channel && !(s_turn_channel = PyUnicode_InternFromString("turn-channel")))
        return NULL;
    if (!s_channel_flows && !(s_channel_flows = PyUnicode_InternFromString("channel_flows")))
        return NULL;
    if (!s_turn_state && !(s_turn_state = PyUnicode_InternFromString("turn_state")))
        return NULL;
    if (!s_relayed_flows && !(s_relayed_flows = PyUnicode_InternFromString("relayed_flows")))
        return NULL;
    if (!s_relayed_addr && !(s_relayed_addr = PyUnicode_InternFromString("relayed_addr")))
        return NULL;
    if (!s_flows && !(s_flows = PyUnicode_InternFromString("flows")))
        return NULL;
    if (!s_channels && !(s_channels = PyUnicode_InternFromString("channels")))
        return NULL;
    if (!s_key && !(s_key = PyUnicode_InternFromString("key")))
        return NULL;
    if (!s_udp && !(s_udp = PyUnicode_InternFromString("_udp")))
        return NULL;
    PyObject *m = PyModule_Create(&module);
#ifdef HAVE_SHA1
    int own_sha1 = 1;
#else
    int own_sha1 = 0;
#endif
    /* whether check() hashes HMAC-SHA1 itself (for any key) or asks for hashlib's pads */
    if (m && PyModule_AddIntConstant(m, "OWN_SHA1", own_sha1) < 0)
        Py_CLEAR(m);
    return m;
}
