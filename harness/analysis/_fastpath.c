/* fastpath.find_media in one compiled pass: RTP over IPv4 or IPv6 UDP, direct and in
 * TURN ChannelData, bare TCP ACKs and non-IP frames, found and grouped per key. The IP
 * header may follow Ethernet (with up to two VLAN tags, then up to two MPLS labels or a
 * PPPoE session header), Linux cooked v1 or v2, BSD
 * loopback or nothing (raw IP): each frame is read as if its IP header were at 14, the
 * Ethernet offset, so the header window and the key columns are the same for all. numpy
 * does it column-wise in ~0.06 s for 250k frames (a fifth of a whole `harness analyze`
 * run on an RTP-heavy file, in a dozen gathers and sorts); one loop here takes a few ms.
 * fastpath.py keeps the numpy version as the fallback and as the reference the tests
 * compare this with, so every test and grouping order below mirrors it exactly,
 * including the 58-byte header window read at each frame's offset.
 *
 * scan(data, offsets, lengths, links, times)
 *   -> (not_ip, acks, plain, relayed, acks6, plain6, relayed6, rest, rest_times)
 *   offsets, lengths, links: native int64 buffers; times: float64 (absolute: each is
 *   made capture-relative here, times[i] - times[0], the subtraction numpy did);
 *   not_ip:  int64 buffer of frame indices;
 *   acks:    (frames, keys, counts, first, last);
 *   plain, relayed: (frames, keys, bounds, frame+1, time, seq, ts, pt, size, outer sums),
 *   columns as int64/float64 buffers with rows in group order; bounds[g]..bounds[g+1]
 *   are group g's rows. Groups are ordered as fastpath._keys orders them;
 *   acks6, plain6, relayed6: the same of IPv6 frames (keys of 16-byte addresses);
 *   rest, rest_times: the frames none of the above took (int64, ascending) and their
 *   relative times (float64), which the per-frame walk reads without numpy.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define ETH 14
#define UDP_PAYLOAD 42
#define HEAD (UDP_PAYLOAD + 4 + 12)
#define UDP_PAYLOAD6 (ETH + 40 + 8)
#define HEAD6 (UDP_PAYLOAD6 + 4 + 12)
#define KEY_MAX 48 /* widest key (IPv6 relayed: 42 bytes) rounded up to 8-byte words */
#define FNV 1099511628211ULL

static const int SERVICE_PORTS[] = {53, 67, 68, 123, 137, 138, 5353, 5355};

static int be16(const unsigned char *h, int at) { return h[at] << 8 | h[at + 1]; }

/* rtp.header_fits: the CSRC list and any header extension of the RTP header at p lie
 * within its n bytes. A packet that fails is left to the walk (malformed RTP there). */
static int header_fits(const unsigned char *p, int n) {
    int hl = 12 + 4 * (p[0] & 0x0F);
    if (p[0] & 0x10) {
        if (hl + 4 > n)
            return 0;
        hl += 4 + 4 * be16(p, hl + 2);
    }
    return hl <= n;
}

/* Where the IP header starts in a frame of `avail` bytes of link type `link`, as
 * net.decode finds it (fastpath._ip_offsets is the same column-wise), and `*v6` whether
 * it is IPv6; -1: no IP, or an encapsulation left to the per-frame walk (more than two
 * VLAN tags or MPLS labels). The version is the link's word (net.decode's; for MPLS the
 * IP header's own), checked later. */
static int ip_offset(const unsigned char *f, int64_t avail, int64_t link, int *v6) {
    int et, at;
    switch (link) {
    case 1: /* Ethernet */
        for (at = 12; at <= 20; at += 4) {
            if (avail < at + 2)
                return -1;
            et = be16(f, at);
            if (et != 0x8100 && et != 0x88A8)
                break;
        }
        if (at > 20)
            return -1;
        at += 2;
        if (et == 0x8847) { /* MPLS: one or two labels, then IP by its version */
            for (int labels = 0;; labels++) {
                if (labels == 2 || avail < at + 5)
                    return -1;
                at += 4;
                if (f[at - 2] & 1)
                    break;
            }
            et = f[at] >> 4 == 4 ? 0x0800 : f[at] >> 4 == 6 ? 0x86DD : 0;
        } else if (et == 0x8864) { /* a PPPoE session: its header, PPP's protocol */
            if (avail < at + 8)
                return -1;
            int ppp = be16(f, at + 6);
            et = ppp == 0x0021 ? 0x0800 : ppp == 0x0057 ? 0x86DD : 0, at += 8;
        }
        break;
    case 113: /* Linux cooked v1: the protocol at 14 */
        if (avail < 16)
            return -1;
        et = be16(f, 14), at = 16;
        break;
    case 276: /* Linux cooked v2: the protocol first */
        if (avail < 20)
            return -1;
        et = be16(f, 0), at = 20;
        break;
    case 101: case 12: case 14: case 228: case 229: /* raw IP: the version says which */
        if (avail < 1)
            return -1;
        et = f[0] >> 4 == 4 ? 0x0800 : 0x86DD, at = 0;
        break;
    case 0: case 108: /* BSD loopback: the address family, in either byte order */
        if (avail < 4)
            return -1;
        et = (f[0] ? f[0] : f[3]) == 2 ? 0x0800 : 0x86DD, at = 4;
        break;
    default:
        return -1;
    }
    *v6 = et == 0x86DD;
    return et == 0x0800 || et == 0x86DD ? at : -1;
}

static int service(int port) {
    for (size_t i = 0; i < sizeof SERVICE_PORTS / sizeof *SERVICE_PORTS; i++)
        if (SERVICE_PORTS[i] == port)
            return 1;
    return 0;
}

/* Frames of one kind, grouped on their key bytes (the header columns `at`) as they come:
 * a small open-addressing table of groups, so memory follows the groups, not the frames
 * (fresh memory costs more here than the loop: page faults and zeroing). */
typedef struct {
    unsigned char key[KEY_MAX]; /* zero-padded to whole 8-byte words, as numpy views it */
    uint64_t digest, rank;
    Py_ssize_t count, pos;
} Group;

/* What a row keeps of its header, read once while the header is in cache. */
typedef struct {
    int64_t frame;
    int32_t gid, size, outer;
    uint32_t ts;
    uint16_t seq;
    uint8_t pt;
} Row;

typedef struct {
    int width, words;
    const int *at;
    Py_ssize_t rows, cap;
    Row *row; /* in frame order */
    Group *groups;
    Py_ssize_t ng, gcap, tcap;
    int32_t *table; /* group number + 1; 0 is empty */
} Set;

static uint64_t digest_of(const unsigned char *k, int words) {
    uint64_t digest = 0;
    for (int w = 0; w < words; w++) {
        uint64_t word;
        memcpy(&word, k + 8 * w, 8);
        digest = w ? digest * FNV + word : word;
    }
    return digest;
}

/* Two zero-padded keys of `words` 8-byte words are equal (inline: memcmp is a call). */
static int same_key(const unsigned char *a, const unsigned char *b, int words) {
    for (int w = 0; w < words; w++) {
        uint64_t x, y;
        memcpy(&x, a + 8 * w, 8);
        memcpy(&y, b + 8 * w, 8);
        if (x != y)
            return 0;
    }
    return 1;
}

static Py_ssize_t slot_of(uint64_t digest, Py_ssize_t tcap) {
    return (Py_ssize_t)((digest * 0x9E3779B97F4A7C15ULL) >> 20) & (tcap - 1);
}

static int set_init(Set *s, int width, const int *at) {
    memset(s, 0, sizeof *s);
    s->width = width;
    s->words = (width + 7) / 8;
    s->at = at;
    s->cap = 1024;
    s->row = PyMem_Malloc(s->cap * sizeof(Row));
    s->gcap = 64;
    s->tcap = 256;
    s->groups = PyMem_Malloc(s->gcap * sizeof(Group));
    s->table = PyMem_Calloc(s->tcap, sizeof(int32_t));
    if (!s->row || !s->groups || !s->table) {
        PyErr_NoMemory();
        return -1;
    }
    return 0;
}

static void set_free(Set *s) {
    PyMem_Free(s->row);
    PyMem_Free(s->groups);
    PyMem_Free(s->table);
}

/* Add a frame: its group (found or made) and a row; the caller fills the RTP fields. */
static Row *set_add(Set *s, int64_t frame, const unsigned char *h) {
    unsigned char k[KEY_MAX] = {0};
    for (int c = 0; c < s->width; c++)
        k[c] = h[s->at[c]];
    uint64_t digest = digest_of(k, s->words);
    Py_ssize_t slot = slot_of(digest, s->tcap), g;
    for (;;) {
        g = (Py_ssize_t)s->table[slot] - 1;
        if (g < 0 || (s->groups[g].digest == digest && same_key(s->groups[g].key, k, s->words)))
            break;
        slot = (slot + 1) & (s->tcap - 1);
    }
    if (g < 0) {
        if (s->ng == s->gcap) {
            Group *more = PyMem_Realloc(s->groups, 2 * s->gcap * sizeof(Group));
            if (!more)
                return NULL;
            s->groups = more;
            s->gcap *= 2;
        }
        g = s->ng++;
        Group *grp = &s->groups[g];
        memcpy(grp->key, k, KEY_MAX);
        grp->digest = digest;
        grp->rank = 0;
        for (int c = 0; c < s->width; c++)
            grp->rank = grp->rank * FNV + k[c];
        grp->count = 0;
        s->table[slot] = (int32_t)(g + 1);
        if (2 * s->ng > s->tcap) { /* rehash into a table twice the size */
            int32_t *table = PyMem_Calloc(2 * s->tcap, sizeof(int32_t));
            if (!table)
                return NULL;
            s->tcap *= 2;
            for (Py_ssize_t i = 0; i < s->ng; i++) {
                Py_ssize_t t = slot_of(s->groups[i].digest, s->tcap);
                while (table[t])
                    t = (t + 1) & (s->tcap - 1);
                table[t] = (int32_t)(i + 1);
            }
            PyMem_Free(s->table);
            s->table = table;
        }
    }
    if (s->rows == s->cap) {
        Row *more = PyMem_Realloc(s->row, 2 * s->cap * sizeof(Row));
        if (!more)
            return NULL;
        s->row = more;
        s->cap *= 2;
    }
    s->groups[g].count++;
    Row *r = &s->row[s->rows++];
    r->frame = frame;
    r->gid = (int32_t)g;
    return r;
}

/* The rows' frame indices as an int64 buffer (ascending: rows come in frame order). */
static PyObject *frames_of(const Set *s) {
    PyObject *out = PyBytes_FromStringAndSize(NULL, s->rows * 8);
    if (out)
        for (Py_ssize_t i = 0; i < s->rows; i++)
            ((int64_t *)PyBytes_AS_STRING(out))[i] = s->row[i].frame;
    return out;
}

static int by_digest(const void *a, const void *b) {
    uint64_t x = (*(Group *const *)a)->digest, y = (*(Group *const *)b)->digest;
    return x < y ? -1 : x > y;
}

static int by_rank(const void *a, const void *b) {
    uint64_t x = (*(Group *const *)a)->rank, y = (*(Group *const *)b)->rank;
    return x < y ? -1 : x > y;
}

static int by_bytes(const void *a, const void *b) {
    return memcmp((*(Group *const *)a)->key, (*(Group *const *)b)->key, KEY_MAX);
}

/* The groups in fastpath._keys's order: by the 64-bit FNV-style rank of the key bytes,
 * or by the bytes themselves when the word digest collides or two ranks are equal
 * (the zero padding compares equal, so comparing KEY_MAX bytes is comparing the key).
 * Fills `order`: rows in group order, frame order within a group. */
static Group **set_order(Set *s, int64_t *order) {
    Py_ssize_t ng = s->ng;
    Group **sorted = PyMem_Malloc((ng ? ng : 1) * sizeof(Group *));
    Py_ssize_t *cursor = PyMem_Malloc((ng ? ng : 1) * sizeof(Py_ssize_t));
    if (!sorted || !cursor) {
        PyMem_Free(sorted);
        PyMem_Free(cursor);
        PyErr_NoMemory();
        return NULL;
    }
    for (Py_ssize_t g = 0; g < ng; g++)
        sorted[g] = &s->groups[g];
    int bytewise = 0;
    qsort(sorted, ng, sizeof *sorted, by_digest);
    for (Py_ssize_t g = 1; g < ng && !bytewise; g++)
        bytewise = sorted[g]->digest == sorted[g - 1]->digest;
    if (!bytewise) {
        qsort(sorted, ng, sizeof *sorted, by_rank);
        for (Py_ssize_t g = 1; g < ng && !bytewise; g++)
            bytewise = sorted[g]->rank == sorted[g - 1]->rank;
    }
    if (bytewise)
        qsort(sorted, ng, sizeof *sorted, by_bytes);
    Py_ssize_t at = 0;
    for (Py_ssize_t g = 0; g < ng; g++) {
        sorted[g]->pos = g;
        cursor[g] = at;
        at += sorted[g]->count;
    }
    for (Py_ssize_t i = 0; i < s->rows; i++)
        order[cursor[s->groups[s->row[i].gid].pos]++] = i;
    PyMem_Free(cursor);
    return sorted;
}

/* A list of n Python ints, the g-th being `expr`. */
#define INT_LIST(list, n, expr)                                   \
    do {                                                          \
        list = PyList_New(n);                                     \
        for (Py_ssize_t g = 0; list && g < (n); g++) {            \
            PyObject *v = PyLong_FromLongLong((long long)(expr)); \
            if (!v) {                                             \
                Py_CLEAR(list);                                   \
                break;                                            \
            }                                                     \
            PyList_SET_ITEM(list, g, v);                          \
        }                                                         \
    } while (0)

static PyObject *key_list(Group **sorted, Py_ssize_t ng, int width) {
    PyObject *keys = PyList_New(ng);
    for (Py_ssize_t g = 0; keys && g < ng; g++) {
        PyObject *k = PyBytes_FromStringAndSize((const char *)sorted[g]->key, width);
        if (!k) {
            Py_CLEAR(keys);
            break;
        }
        PyList_SET_ITEM(keys, g, k);
    }
    return keys;
}

/* Group starts in `order` (a running sum of the sorted counts), ng + 1 of them. */
static Py_ssize_t *starts_of(Group **sorted, Py_ssize_t ng) {
    Py_ssize_t *start = PyMem_Malloc((ng + 1) * sizeof(Py_ssize_t));
    if (!start) {
        PyErr_NoMemory();
        return NULL;
    }
    start[0] = 0;
    for (Py_ssize_t g = 0; g < ng; g++)
        start[g + 1] = start[g] + sorted[g]->count;
    return start;
}

static PyObject *acks_result(Set *s) {
    Py_ssize_t ng = s->ng;
    const Row *row = s->row;
    int64_t *order = PyMem_Malloc((s->rows ? s->rows : 1) * sizeof(int64_t));
    if (!order)
        return PyErr_NoMemory();
    Group **sorted = set_order(s, order);
    Py_ssize_t *start = sorted ? starts_of(sorted, ng) : NULL;
    PyObject *out = NULL, *frames = NULL, *keys = NULL, *counts = NULL, *first = NULL,
             *last = NULL;
    if (start) {
        frames = frames_of(s);
        keys = key_list(sorted, ng, s->width);
        INT_LIST(counts, ng, sorted[g]->count);
        INT_LIST(first, ng, row[order[start[g]]].frame);
        INT_LIST(last, ng, row[order[start[g + 1] - 1]].frame);
        if (frames && keys && counts && first && last)
            out = PyTuple_Pack(5, frames, keys, counts, first, last);
    }
    Py_XDECREF(frames);
    Py_XDECREF(keys);
    Py_XDECREF(counts);
    Py_XDECREF(first);
    Py_XDECREF(last);
    PyMem_Free(start);
    PyMem_Free(order);
    PyMem_Free(sorted);
    return out;
}

/* RTP columns in group order, from the rows. */
static PyObject *rtp_result(Set *s, const double *times, double t0, int relayed) {
    Py_ssize_t ng = s->ng, n = s->rows;
    int64_t *order = PyMem_Malloc((n ? n : 1) * sizeof(int64_t));
    if (!order)
        return PyErr_NoMemory();
    Group **sorted = set_order(s, order);
    Py_ssize_t *start = sorted ? starts_of(sorted, ng) : NULL;
    PyObject *out = NULL, *frames = NULL, *keys = NULL, *bounds = NULL, *outer = NULL;
    PyObject *col[6] = {NULL};
    if (!start || !(frames = frames_of(s)))
        goto done;
    for (int c = 0; c < 6; c++)
        if (!(col[c] = PyBytes_FromStringAndSize(NULL, n * 8)))
            goto done;
    int64_t *no = (int64_t *)PyBytes_AS_STRING(col[0]), *seq = (int64_t *)PyBytes_AS_STRING(col[2]);
    int64_t *ts = (int64_t *)PyBytes_AS_STRING(col[3]), *pt = (int64_t *)PyBytes_AS_STRING(col[4]);
    int64_t *size = (int64_t *)PyBytes_AS_STRING(col[5]);
    double *t = (double *)PyBytes_AS_STRING(col[1]);
    long long *sums = PyMem_Calloc(ng ? ng : 1, sizeof(long long));
    if (!sums) {
        PyErr_NoMemory();
        goto done;
    }
    for (Py_ssize_t g = 0; g < ng; g++) {
        for (Py_ssize_t k = start[g]; k < start[g + 1]; k++) {
            const Row *r = &s->row[order[k]];
            no[k] = r->frame + 1;
            t[k] = times[r->frame] - t0;
            seq[k] = r->seq;
            ts[k] = r->ts;
            pt[k] = r->pt;
            size[k] = r->size;
            sums[g] += r->outer;
        }
    }
    keys = key_list(sorted, ng, s->width);
    INT_LIST(bounds, ng + 1, start[g]);
    if (relayed)
        INT_LIST(outer, ng, sums[g]);
    PyMem_Free(sums);
    if (keys && bounds && (outer || !relayed))
        out = Py_BuildValue("(OOOOOOOOOO)", frames, keys, bounds, col[0], col[1], col[2],
                            col[3], col[4], col[5], outer ? outer : Py_None);
done:
    Py_XDECREF(frames);
    Py_XDECREF(keys);
    Py_XDECREF(bounds);
    Py_XDECREF(outer);
    for (int c = 0; c < 6; c++)
        Py_XDECREF(col[c]);
    PyMem_Free(start);
    PyMem_Free(order);
    PyMem_Free(sorted);
    return out;
}

enum { NOT_IP, ACK, PLAIN, RELAYED, ACK6, PLAIN6, RELAYED6, SETS };

static PyObject *scan(PyObject *self, PyObject *args) {
    Py_buffer data, offs, lens, links, tbuf;
    (void)self;
    if (!PyArg_ParseTuple(args, "y*y*y*y*y*", &data, &offs, &lens, &links, &tbuf))
        return NULL;
    PyObject *out = NULL, *not_ip = NULL, *acks = NULL, *plain = NULL, *relayed = NULL;
    PyObject *acks6 = NULL, *plain6 = NULL, *relayed6 = NULL, *rest = NULL, *rest_times = NULL;
    unsigned char *taken = NULL;
    Set sets[SETS];
    memset(sets, 0, sizeof sets);
    Py_ssize_t n = offs.len / 8;
    static const int flow[12] = {26, 27, 28, 29, 30, 31, 32, 33, 34, 35, 36, 37};
    static const int plain_at[16] = {26, 27, 28, 29, 30, 31, 32, 33,
                                     34, 35, 36, 37, 50, 51, 52, 53};
    static const int relayed_at[18] = {26, 27, 28, 29, 30, 31, 32, 33, 34,
                                       35, 36, 37, 42, 43, 54, 55, 56, 57};
    /* IPv6: addresses 22-53, ports 54-57; SSRC at 70 (direct) or 74 (in ChannelData,
     * its channel number at 62) */
    int flow6[36], plain6_at[40], relayed6_at[42];
    for (int c = 0; c < 36; c++)
        flow6[c] = plain6_at[c] = relayed6_at[c] = 22 + c;
    for (int c = 0; c < 4; c++)
        plain6_at[36 + c] = 70 + c, relayed6_at[38 + c] = 74 + c;
    relayed6_at[36] = 62, relayed6_at[37] = 63;
    const unsigned char *raw = data.buf;
    const int64_t *off = offs.buf, *len = lens.buf, *link = links.buf;
    const double *times = tbuf.buf;
    Py_ssize_t size = data.len;
    if (offs.len % 8 || lens.len != offs.len || links.len != offs.len || tbuf.len != offs.len) {
        PyErr_SetString(PyExc_ValueError, "offsets, lengths, links, times: n int64/float64s");
        goto done;
    }
    double t0 = n ? times[0] : 0.0;
    if (!(taken = PyMem_Calloc(n ? n : 1, 1)))
        goto nomem;
    if (set_init(&sets[NOT_IP], 0, flow) || set_init(&sets[ACK], 12, flow) ||
        set_init(&sets[PLAIN], 16, plain_at) || set_init(&sets[RELAYED], 18, relayed_at) ||
        set_init(&sets[ACK6], 36, flow6) || set_init(&sets[PLAIN6], 40, plain6_at) ||
        set_init(&sets[RELAYED6], 42, relayed6_at))
        goto done;
    for (Py_ssize_t i = 0; i < n; i++) {
        if (i + 8 < n && off[i + 8] >= 0 && off[i + 8] < size) /* headers ahead, to cache */
            __builtin_prefetch(raw + off[i + 8]);
        int64_t o = off[i], l = len[i];
        if (o < 0 || l < 0 || o > size)
            continue;
        if (link[i] == 1) {
            if (l < ETH || o > size - ETH)
                continue;
            int et = be16(raw + o, 12);
            if (et != 0x0800 && et != 0x86DD && et != 0x8100 && et != 0x88A8 && et != 0x8847 &&
                et != 0x8848 && et != 0x8864) { /* MPLS, PPPoE carry IP */
                if (!set_add(&sets[NOT_IP], i, raw + o))
                    goto nomem;
                taken[i] = 1;
                continue;
            }
        }
        int v6 = 0, ip = ip_offset(raw + o, l < size - o ? l : size - o, link[i], &v6);
        /* the frame shifted so that its IP header is where Ethernet's would be */
        int64_t base = o + ip - ETH, lb = l - (ip - ETH);
        if (ip < 0 || base < 0)
            continue;
        const unsigned char *h = raw + base;
        int l4, pay, proto; /* where TCP/UDP starts in h, the IP payload's length */
        if (!v6) {
            if (size < HEAD || lb < UDP_PAYLOAD + 12 || base > size - HEAD)
                continue;
            if (h[14] != 0x45 || ((h[20] & 0x3F) | h[21]) != 0)
                continue;
            int total = be16(h, 16);
            if (total > lb - ETH || total < 40)
                continue;
            l4 = ETH + 20, pay = total - 20, proto = h[23];
        } else { /* no extension header: the next header is the transport */
            if (size < HEAD6 || lb < UDP_PAYLOAD6 + 12 || base > size - HEAD6)
                continue;
            int plen = be16(h, 18);
            if (h[14] >> 4 != 6 || plen > lb - ETH - 40 || plen < 20)
                continue;
            l4 = ETH + 40, pay = plen, proto = h[20];
        }
        if (proto == 6) {
            int doff = (h[l4 + 12] >> 4) * 4;
            if ((h[l4 + 13] & 0x07) == 0 && doff >= 20 && pay == doff) {
                if (!set_add(&sets[v6 ? ACK6 : ACK], i, h))
                    goto nomem;
                taken[i] = 1;
            }
            continue;
        }
        if (proto != 17 || service(be16(h, l4)) || service(be16(h, l4 + 2)))
            continue;
        int up = l4 + 8, b0 = h[up], b1 = h[up + 1], at, k;
        int chsize = be16(h, up + 2), i0 = h[up + 4], i1 = h[up + 5];
        if (b0 >= 128 && b0 <= 191 && !(b1 >= 192 && b1 <= 223)) {
            if (!header_fits(h + up, pay - 8))
                continue;
            k = v6 ? PLAIN6 : PLAIN, at = up;
        } else if (b0 >= 0x40 && b0 <= 0x4F && chsize >= 12 && chsize + 4 <= pay - 8 &&
                   i0 >= 128 && i0 <= 191 && !(i1 >= 192 && i1 <= 223) &&
                   header_fits(h + up + 4, chsize)) {
            k = v6 ? RELAYED6 : RELAYED, at = up + 4;
        } else {
            continue;
        }
        Row *r = set_add(&sets[k], i, h);
        if (!r)
            goto nomem;
        taken[i] = 1;
        r->seq = (uint16_t)be16(h, at + 2);
        r->ts = (uint32_t)be16(h, at + 4) << 16 | (uint32_t)be16(h, at + 6);
        r->pt = h[at + 1] & 0x7F;
        r->size = k == PLAIN || k == PLAIN6 ? pay - 8 : chsize;
        r->outer = pay - 8;
    }
    acks = acks_result(&sets[ACK]);
    plain = acks ? rtp_result(&sets[PLAIN], times, t0, 0) : NULL;
    relayed = plain ? rtp_result(&sets[RELAYED], times, t0, 1) : NULL;
    acks6 = relayed ? acks_result(&sets[ACK6]) : NULL;
    plain6 = acks6 ? rtp_result(&sets[PLAIN6], times, t0, 0) : NULL;
    relayed6 = plain6 ? rtp_result(&sets[RELAYED6], times, t0, 1) : NULL;
    not_ip = relayed6 ? frames_of(&sets[NOT_IP]) : NULL;
    if (not_ip) {
        Py_ssize_t left = n;
        for (int k = 0; k < SETS; k++)
            left -= sets[k].rows;
        rest = PyBytes_FromStringAndSize(NULL, left * 8);
        rest_times = rest ? PyBytes_FromStringAndSize(NULL, left * 8) : NULL;
    }
    if (rest_times) {
        int64_t *ri = (int64_t *)PyBytes_AS_STRING(rest);
        double *rt = (double *)PyBytes_AS_STRING(rest_times);
        for (Py_ssize_t i = 0, j = 0; i < n; i++)
            if (!taken[i]) {
                ri[j] = i;
                rt[j++] = times[i] - t0;
            }
        out = PyTuple_Pack(9, not_ip, acks, plain, relayed, acks6, plain6, relayed6, rest,
                           rest_times);
    }
    goto done;
nomem:
    PyErr_NoMemory();
done:
    Py_XDECREF(not_ip);
    Py_XDECREF(acks);
    Py_XDECREF(plain);
    Py_XDECREF(relayed);
    Py_XDECREF(acks6);
    Py_XDECREF(plain6);
    Py_XDECREF(relayed6);
    Py_XDECREF(rest);
    Py_XDECREF(rest_times);
    PyMem_Free(taken);
    for (int k = 0; k < SETS; k++)
        set_free(&sets[k]);
    PyBuffer_Release(&data);
    PyBuffer_Release(&offs);
    PyBuffer_Release(&lens);
    PyBuffer_Release(&links);
    PyBuffer_Release(&tbuf);
    return out;
}

static PyMethodDef methods[] = {
    {"scan", scan, METH_VARARGS, "fastpath.find_media's classification and grouping."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {PyModuleDef_HEAD_INIT, "_fastpath", NULL, -1, methods};

/* The module names its port list, so a test can hold it equal to fastpath.SERVICE_PORTS. */
PyMODINIT_FUNC PyInit__fastpath(void) {
    PyObject *m = PyModule_Create(&module), *ports;
    if (!m)
        return NULL;
    size_t count = sizeof SERVICE_PORTS / sizeof *SERVICE_PORTS;
    ports = PyTuple_New((Py_ssize_t)count);
    for (size_t i = 0; ports && i < count; i++) {
        PyObject *v = PyLong_FromLong(SERVICE_PORTS[i]);
        if (!v) {
            Py_CLEAR(ports);
            break;
        }
        PyTuple_SET_ITEM(ports, (Py_ssize_t)i, v);
    }
    if (!ports || PyModule_AddObject(m, "SERVICE_PORTS", ports) < 0) {
        Py_XDECREF(ports);
        Py_DECREF(m);
        return NULL;
    }
    return m;
}
