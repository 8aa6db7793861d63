"""The viper backend's Adam and Polyak averaging (device ``intadam``), exactly: numpy int64.

Per tensor of the flat layout, the device's integers (see device/microrl/intadam.py for the
arithmetic and its bounds): gradient codes below 2**15, int16 first-moment codes, int32
second-moment codes below 2**30 with an even scale, ceil(sqrt(V)), the clipped ratio
Q = (|M| 2**15) // (R + E) shifted to 2**16, parameter and target codes below 2**29 written
back rounded to nearest. The per-tensor scalars (step size, bias corrections, the step's
fixed-point factor) are the device's float64 expressions, so on a float64 port device and mirror
agree bit for bit. Every intermediate is checked below 2**31 (``intdot.BoundError``).
"""

import math

import numpy as np

from microrl_host.mirror import intdot

CODE_BITS = 29  # parameters and targets as codes below 2**29
SHIFT_MAX = 31
_BIG = 1 << 20
CAP = 1 << 20  # |Q|: the ratio m / (sqrt(v) + eps') at most 16


def fraction(x):
    """(c, s) with c 2**-s = x rounded, c <= 2**15, s the largest such (device ``fraction``)."""
    s = 15
    while int(math.ldexp(x, s + 1) + 0.5) <= 32768 and s < 40:
        s += 1
    return int(math.ldexp(x, s) + 0.5), s


def _shifts(d):
    return (min(d, SHIFT_MAX), 0) if d >= 0 else (0, min(-d, SHIFT_MAX))


def _scale(x, left, right):
    return (x << left) >> right


def _blend(x, c, s):
    """floor(x c 2**-s) as the device splits it (|x| < 2**30, c <= 2**15)."""
    intdot._check(x, 2**30, "a blended difference")
    return ((x >> 15) * c + (((x & 0x7FFF) * c) >> 15)) >> (s - 15)


def ceil_sqrt(v):
    """ceil(sqrt(v)) of int64 codes below 2**30, exactly."""
    r = np.floor(np.sqrt(v.astype(np.float64))).astype(np.int64)
    r -= r * r > v
    r += (r + 1) * (r + 1) <= v
    return r + (r * r < v)


def encode(codes, k, wide):
    """codes 2**-k as the device writes a parameter: rounded to nearest (half away from zero) to
    24 bits on float32 storage, exact on float64; 0 below the smallest normal."""
    codes = np.asarray(codes, np.int64)
    intdot._check(codes, 2**30, "a parameter code")
    if wide:
        value = np.ldexp(codes.astype(np.float64), -k)
        return np.where(np.abs(value) < np.finfo(np.float64).tiny, 0.0, value)
    mag = np.abs(codes)
    msb = np.zeros_like(mag)
    nz = mag > 0
    msb[nz] = np.floor(np.log2(mag[nz])).astype(np.int64)
    msb = np.where((mag >> np.minimum(msb, 62)) == 0, msb - 1, msb)  # log2 rounding up
    cut = np.maximum(msb - 23, 0)
    half = np.where(cut > 0, np.left_shift(1, np.maximum(cut - 1, 0)), 0)
    mag = (mag + half) >> cut
    value = np.ldexp(mag.astype(np.float64), cut - k) * np.sign(codes)
    return np.where(np.abs(value) < np.finfo(np.float32).tiny, 0.0, value)


class IntAdam:
    """`IntAdam(params_flat, grads_flat, lengths, lr, beta1, beta2, eps)`: the device's integer
    Adam over the tensors of ``lengths`` in the flat layout; `step()` updates `params_flat`."""

    def __init__(self, params_flat, grads_flat, lengths, lr, beta1=0.9, beta2=0.999, eps=1e-8):
        if sum(lengths) != params_flat.shape[0]:
            raise ValueError("lengths must sum to the size of params_flat")
        self.params = params_flat
        self.grads = grads_flat
        self.lr, self.beta1, self.beta2, self.eps = lr, beta1, beta2, eps
        self.t = 0
        self.wide = params_flat.dtype == np.float64
        ends = np.cumsum(lengths)
        self.spans = list(zip(ends - np.asarray(lengths), ends))
        self.m = np.zeros(params_flat.shape, np.int64)  # int16 codes of m
        self.v = np.zeros(params_flat.shape, np.int64)  # int32 codes of v
        self.scales = np.zeros((len(lengths), 4), np.int64)  # km, bits of max |M|, kv, of max V
        self.c1, self.s1 = fraction(1.0 - beta1)
        self.c2, self.s2 = fraction(1.0 - beta2)

    def step(self):
        self.t += 1
        step_size = self.lr / (1.0 - self.beta1 ** self.t)
        inv = 1.0 / math.sqrt(1.0 - self.beta2 ** self.t)
        rate, rate_exp = math.frexp(step_size / inv)
        eps, eps_exp = math.frexp(self.eps / inv)
        zm = int(math.ldexp(rate, 15))
        e30 = int(math.ldexp(eps, 30))
        bias = 1022 if self.wide else 126
        for i, (a, b) in enumerate(self.spans):
            self._tensor(i, slice(a, b), zm, rate_exp, e30, eps_exp, bias)

    def _tensor(self, i, span, zm, rate_exp, e30, eps_exp, bias):
        wide = self.wide
        p, g = self.params[span], self.grads[span]
        km, hm, kv, hv = (int(x) for x in self.scales[i])
        top_g = intdot.top(g, wide)
        kg = 15 - top_g + bias if top_g else _BIG
        new_km = min(km + 15 - hm if hm else _BIG, kg)
        new_km = km if new_km == _BIG else new_km
        new_kv = min(kv + 30 - hv if hv else _BIG, 2 * kg)
        new_kv = (kv if new_kv == _BIG else new_kv) & ~1
        top_p = intdot.top(p, wide)
        kp = min(CODE_BITS - top_p + bias if top_p else _BIG, 25 - rate_exp)
        zs = 31 - rate_exp - kp
        sh = 30 - eps_exp - new_kv // 2  # E = round(eps' 2**(kv / 2)), eps' = e30 2**(ee - 30)
        eq = 0 if sh > 31 else ((e30 + (1 << (sh - 1))) >> sh if sh > 0 else 1 << 29)
        eq = min(max(1, eq), 1 << 29)
        gc = intdot.quantize(g, kg, wide, 15) if top_g else np.zeros(g.shape, np.int64)
        # first moment
        x1 = _scale(self.m[span], *(_shifts(new_km - km + 14) if hm else (0, 0)))
        b1 = _scale(gc, *(_shifts(new_km - kg + 14) if top_g else (0, 0)))
        res = x1 + _blend(b1 - x1, self.c1, self.s1)
        neg = res < 0
        mq = np.minimum((np.abs(res) + 0x2000) >> 14, 32767)
        self.m[span] = np.where(neg, -mq, mq)
        # second moment
        x2 = _scale(self.v[span], *(_shifts(new_kv - kv) if hv else (0, 0)))
        b2 = (gc * gc) >> (min(2 * kg - new_kv, SHIFT_MAX) if top_g else 0)
        vn = x2 + _blend(b2 - x2, self.c2, self.s2)
        intdot._check(vn, 2**30, "a second-moment code")
        self.v[span] = vn
        # the step
        q = (mq << 15) // (ceil_sqrt(vn) + eq)
        left, right = _shifts(new_kv // 2 - new_km + 1)
        if left:
            q = np.where(q > (CAP >> left), CAP, q << left)
        else:
            q = np.minimum(q >> right, CAP)
        qh, ql = q >> 15, q & 0x7FFF
        if zs >= 15:
            dp = (qh * zm + ((ql * zm) >> 15)) >> (zs - 15)
        else:
            dp = ((qh * zm) << (15 - zs)) + ((ql * zm) >> zs)
        codes = intdot.quantize(p, kp, wide, CODE_BITS)
        p[:] = encode(np.where(neg, codes + dp, codes - dp), kp, wide)
        self.scales[i] = (new_km, int(mq.max(initial=0)).bit_length(), new_kv,
                          int(vn.max(initial=0)).bit_length())


def polyak(target, online, lengths, tau):
    """target = (1 - tau) target + tau online per tensor of ``lengths``, in the device's
    integers (device ``intadam.polyak``), in place."""
    wide = target.dtype == np.float64
    bias = 1022 if wide else 126
    c, s = fraction(tau)
    start = 0
    for n in lengths:
        t, o = target[start:start + n], online[start:start + n]
        start += n
        top = max(intdot.top(t, wide), intdot.top(o, wide))
        if not top:
            continue
        k = CODE_BITS - top + bias
        tc = intdot.quantize(t, k, wide, CODE_BITS)
        x = intdot.quantize(o, k, wide, CODE_BITS) - tc
        intdot._check(x, 2**30, "a target difference")
        d = ((x >> 15) * c + (((x & 0x7FFF) * c + (1 << (s - 1))) >> 15)) >> (s - 15)
        t[:] = encode(tc + d, k, wide)
