"""The viper backend's products (device ``kernels_viper``), exactly: int16 codes, int64 sums.

Same rules as the device: a tensor's codes are trunc(x 2**k) with k picked from its largest
exponent so that |code| < 2**bits (``budget``: bits_a + bits_b = 30 - ceil(log2 kk)); a sum of code
products, a bias as an int32 code at the sum's scale (the sum shifted right first when the bias
needs it), ReLU on the integer, then the integer times 2**-k as a float truncated toward zero to
the storage's significand (float32 or float64; 0 below the smallest normal). Every function
asserts that every intermediate stays below 2**31 in magnitude, which is what lets the device
sum in a 32-bit word.

``wide`` is True for float64 storage (the desktop interpreter), False for float32 (a board).
"""

import numpy as np

LIMIT = 2**31  # every intermediate is below this in magnitude


class BoundError(AssertionError):
    """An intermediate of an integer product reached 2**31: the bound the device relies on failed."""


def budget(kk):
    """(bits of a, bits of b) for sums of kk code products."""
    log2 = max(0, int(kk - 1).bit_length())
    bits_a = min(15, (30 - log2) // 2)
    return bits_a, min(15, 30 - log2 - bits_a)


def _exponent_bias(wide):
    return 1022 if wide else 126


def top(x, wide):
    """The largest biased exponent of the floats in x (0: all zero or subnormal)."""
    x = np.asarray(x, np.float64)
    tiny = np.finfo(np.float64 if wide else np.float32).tiny
    normal = np.abs(x) >= tiny
    if not normal.any():
        return 0
    _, exponents = np.frexp(x[normal])
    return int(exponents.max()) + _exponent_bias(wide)


def quantize(x, k, wide, limit_bits=30):
    """trunc(x 2**k) as int64 codes, subnormals 0; asserts |code| < 2**limit_bits."""
    x = np.asarray(x, np.float64)
    tiny = np.finfo(np.float64 if wide else np.float32).tiny
    codes = np.where(np.abs(x) >= tiny, np.trunc(np.ldexp(x, k)), 0.0).astype(np.int64)
    _check(codes, 2**limit_bits, "a code")
    return codes


def codes(x, bits, wide):
    """(codes, k) with the scale that fits ``bits``; k None when x is all zero."""
    t = top(x, wide)
    if t == 0:
        return np.zeros(np.shape(x), np.int64), None
    k = bits - t + _exponent_bias(wide)
    return quantize(x, k, wide, bits), k


def to_float(s, k, wide):
    """s 2**-k as the device writes it: truncated toward zero to 24 (float32) or 53 bits, 0 below
    the smallest normal, infinity above the largest."""
    s = np.asarray(s, np.int64)
    mag = np.abs(s)
    if not wide:
        msb = np.where(mag > 0, np.floor(np.log2(np.maximum(mag, 1))).astype(np.int64), 0)
        # log2 of an int64 in float64 can round up at a power of two: correct it.
        msb = np.where((mag >> np.minimum(msb, 62)) == 0, msb - 1, msb)
        cut = np.maximum(msb - 23, 0)
        mag = (mag >> cut) << cut
    value = np.ldexp(mag.astype(np.float64), -k) * np.sign(s)
    kind = np.float64 if wide else np.float32
    tiny = np.finfo(kind).tiny
    big = np.finfo(kind).max
    value = np.where(np.abs(value) < tiny, 0.0, value)
    value = np.where(np.abs(value) > big, np.copysign(np.inf, value), value)
    return value


def _check(values, limit, what):
    if values.size and int(np.abs(values).max()) >= limit:
        raise BoundError(f"{what} reached {int(np.abs(values).max())}, not below {limit}")


def _sum(a_codes, b_codes):
    """a @ b in int64, asserting every partial sum (in the device's order over t)."""
    terms = a_codes[:, :, None] * b_codes[None, :, :]  # (rows, kk, cols)
    partial = np.cumsum(terms, axis=1)
    _check(partial, LIMIT, "a partial sum")
    return partial[:, -1, :] if partial.shape[1] else np.zeros(
        (a_codes.shape[0], b_codes.shape[1]), np.int64)


def _product(a, b, wide, bias=None, relu=False):
    """to_float(codes(a) codes(b) [+ bias], k) with the device's rules; a (rows, kk), b (kk, cols)."""
    bits_a, bits_b = budget(a.shape[1])
    qa, ka = codes(a, bits_a, wide)
    qb, kb = codes(b, bits_b, wide)
    s = _sum(qa, qb)
    k = ka + kb if ka is not None and kb is not None else None
    if bias is not None:
        bias = np.asarray(bias, np.float64).reshape(-1)
        t = top(bias, wide)
        if t:
            if k is None:
                k = 30 - t + _exponent_bias(wide)
            else:
                shift = max(0, t - _exponent_bias(wide) + k - 30)
                k -= shift
                s = s >> shift
            s = s + quantize(bias, k, wide, 30)[None, :]
            _check(s, LIMIT, "a biased sum")
    if relu:
        s = np.maximum(s, 0)
    if k is None:
        return np.zeros(s.shape)
    return to_float(s, k, wide)


def dense(x, w, b, relu, wide):
    """x w + b, then ReLU when ``relu`` (device ``K.dense``)."""
    return _product(np.asarray(x), np.asarray(w), wide, b, relu)


def dot(x, w, wide):
    return _product(np.asarray(x), np.asarray(w), wide)


def dot_tn(x, d, wide):
    """x^T d over the rows (device ``K.dot_tn``)."""
    return _product(np.asarray(x).T, np.asarray(d), wide)


def dense_grads(x, d, wide):
    """(x^T d, column sums of d) as the device computes them: the sums are of d's codes."""
    d = np.asarray(d)
    gw = dot_tn(x, d, wide)
    qd, kd = codes(d, budget(d.shape[0])[1], wide)
    if kd is None:
        return gw, np.zeros((1, d.shape[1]))
    sums = np.cumsum(qd, axis=0)
    _check(sums, LIMIT, "a column sum")
    return gw, to_float(sums[-1:], kd, wide)


def dot_nt(d, w, wide):
    """d w^T (device ``K.dot_nt``)."""
    return _product(np.asarray(d), np.asarray(w).T, wide)


def dot_nt_relu(h, d, w, wide):
    """(d w^T) where h > 0, else 0 (device ``K.dot_nt_relu``)."""
    return np.where(np.asarray(h) > 0, dot_nt(d, w, wide), 0.0)
