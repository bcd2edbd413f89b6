/* float.__repr__ of a finite double without David Gay's dtoa: Ryu's shortest digits
 * (vendor/ryu: Ulf Adams's reference implementation, Boost licence) laid out as Python
 * lays them out.
 *
 * repr(x) is the shortest decimal that reads back as x, and of those the nearest to x;
 * Ryu computes exactly that (its paper proves it; the tests compare the two on millions
 * of doubles). Python's dtoa gets there with big-number arithmetic: a third of the time
 * `--json` takes on a handshake-heavy capture, whose 22k times have 16-17 digits each.
 *
 * float_repr(d, out): writes repr(d) of a finite d to out (32 bytes are enough) and
 * returns its length. The layout is PyOS_double_to_string(d, 'r', 0, Py_DTSF_ADD_DOT_0)'s:
 * with the digits and the decimal point's place `decpt` (0.DIGITS x 10^decpt), fixed
 * notation when -4 < decpt <= 16 (".0" after an integer), else D.DDDe+XX (an exponent of
 * at least two digits); "-" before a negative, -0.0 included. */
#ifndef HARNESS_FLOATREPR_H
#define HARNESS_FLOATREPR_H

#include "ryu/d2s.c"

static int float_repr(double d, char *out) {
    uint64_t bits;
    memcpy(&bits, &d, sizeof bits);
    int n = 0;
    if (bits >> 63)
        out[n++] = '-';
    const uint64_t mantissa = bits & ((1ull << DOUBLE_MANTISSA_BITS) - 1);
    const uint32_t exponent = (uint32_t)((bits >> DOUBLE_MANTISSA_BITS) & 0x7FF);
    if (exponent == 0 && mantissa == 0) {
        memcpy(out + n, "0.0", 3);
        return n + 3;
    }
    floating_decimal_64 v;
    if (!d2d_small_int(mantissa, exponent, &v))
        v = d2d(mantissa, exponent);
    while (v.mantissa % 10 == 0) { /* an integer's trailing zeros: repr's digits have none */
        v.mantissa /= 10;
        v.exponent++;
    }
    char digits[24];
    int len = 0;
    uint64_t x = v.mantissa; /* not 0 */
    do
        digits[len++] = (char)('0' + x % 10);
    while (x /= 10);
    for (int i = 0; i < len / 2; i++) {
        char c = digits[i];
        digits[i] = digits[len - 1 - i];
        digits[len - 1 - i] = c;
    }
    const int decpt = v.exponent + len;
    if (decpt > -4 && decpt <= 16) {
        if (decpt <= 0) { /* 0.000DIGITS */
            memcpy(out + n, "0.", 2);
            n += 2;
            memset(out + n, '0', (size_t)-decpt);
            n += -decpt;
            memcpy(out + n, digits, (size_t)len);
            return n + len;
        }
        if (decpt >= len) { /* DIGITS000.0 */
            memcpy(out + n, digits, (size_t)len);
            n += len;
            memset(out + n, '0', (size_t)(decpt - len));
            n += decpt - len;
            memcpy(out + n, ".0", 2);
            return n + 2;
        }
        memcpy(out + n, digits, (size_t)decpt); /* DIG.ITS */
        n += decpt;
        out[n++] = '.';
        memcpy(out + n, digits + decpt, (size_t)(len - decpt));
        return n + len - decpt;
    }
    out[n++] = digits[0];
    if (len > 1) {
        out[n++] = '.';
        memcpy(out + n, digits + 1, (size_t)(len - 1));
        n += len - 1;
    }
    int e = decpt - 1;
    out[n++] = 'e';
    out[n++] = e < 0 ? '-' : '+';
    if (e < 0)
        e = -e;
    if (e >= 100)
        out[n++] = (char)('0' + e / 100);
    out[n++] = (char)('0' + e / 10 % 10);
    out[n++] = (char)('0' + e % 10);
    return n;
}

#endif
