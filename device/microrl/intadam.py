"""Adam and Polyak averaging in integers, for the viper backend: no float object per element.

The viper backend's products leave gradients as floats; in pure Python every float operation of
Adam boxes a float (about 17 per parameter), and at a board's heap the collections those force
cost more than the arithmetic. Here a step reads the float bits of the arrays, computes in machine
words and writes the float bits back. The host mirror (``microrl_host.mirror.intadam``) computes
the same integers in int64.

Adam, per tensor (the moments of ``state="int16"`` Adam, in integers with power-of-two scales):
- gradient codes G = trunc(g 2**kg) with |G| < 2**15;
- first moment m = M 2**-km, M int16: M' = round(A + floor((B - A) c1 2**-s1) 2**-14), A and B
  the old M and G at the new scale times 2**14, (1 - beta1) = c1 2**-s1 (c1 <= 2**15);
- second moment v = V 2**-kv, V int32 below 2**30, kv even: V' = A + floor((B - A) c2 2**-s2),
  A the old V and B = G**2 at the new scale;
- the new scales are the largest that the bound max(|m|, |g|) (max(v, g**2)) lets fit, from the
  bits of the previous step's largest code, so one pass codes, updates and measures;
- R = ceil(sqrt(V')) exactly (a table of roots and one Newton step), the denominator
  R + E with E = max(1, round(eps / inv_sqrt_bc2 2**(kv/2))) (sqrt(v) rounds up: the step never
  exceeds float Adam's by more than the codes' rounding);
- Q = m / (sqrt(v) + eps / inv_sqrt_bc2) 2**16, from (|M'| 2**15) // (R + E), clipped to
  2**20 (the ratio is below 7.3 for any gradients with beta1 0.9, beta2 0.999);
- the parameter as a code P = trunc(p 2**kp), |P| < 2**29, P' = P -+ floor(|Q| z 2**-zs) with
  z 2**-zs = step_size / inv_sqrt_bc2 2**(kp - 16) (kp small enough that the step fits 2**29),
  written back rounded to nearest.
Polyak: both tensors as codes below 2**29 at one scale, T' = T + round((O - T) c 2**-s),
tau = c 2**-s, written back rounded to nearest.

Every intermediate stays below 2**31 in magnitude: products of a word by a constant are split
into 15-bit halves (``floor(x c / 2**s) = (xh c + (xl c >> 15)) >> (s - 15)``, exact), no
literal reaches 2**30 and right shifts never exceed 31, so a 32-bit board and the 64-bit desktop
port compute the same integers.

The float decoding and the rounded write are written out in each loop (and match
``kernels_viper._quantize`` and ``_product``'s write): viper has no inlining, and a call per
element would cost more than the arithmetic. IntAdam keeps adam.Adam's fields and checks without
importing it (adam imports the backend, which imports this module).
"""

from math import frexp, ldexp, sqrt

import micropython

from . import kernels_viper as _kv
from .kernels_py import zeros

_FIELDS = 11  # the argument words of _adam (count, storage, betas, the step's scalars)


def _roots():
    """ceil(sqrt((i + 65) 2**22)) for i < 192: the Newton start for a word in [2**28, 2**30)."""
    table = zeros("H", 192)
    for i in range(192):
        w = (i + 65) << 22
        r = int(sqrt(w))
        while r * r < w:
            r += 1
        while (r - 1) * (r - 1) >= w:
            r -= 1
        table[i] = r
    return table


def fraction(x):
    """(c, s) with c 2**-s = x rounded, c <= 2**15 and s the largest such (x in (0, 1])."""
    s = 15
    while int(ldexp(x, s + 1) + 0.5) <= 32768 and s < 40:
        s += 1
    return int(ldexp(x, s) + 0.5), s


@micropython.viper
def _adam(p, g, qm, qv, a, roots, st, j: int):
    """One tensor's step: codes, moments and parameters; the scales in st[4 j:4 j + 4]."""
    pp = ptr32(p)
    pg = ptr32(g)
    pm = ptr16(qm)
    pv = ptr32(qv)
    aa = ptr32(a)
    rt = ptr16(roots)
    ps = ptr32(st)
    sign_bit = 1
    sign_bit <<= 31
    n = aa[0]
    wide = aa[1]
    bias = aa[2]
    c1 = aa[3]
    s1 = aa[4] - 15
    c2 = aa[5]
    s2 = aa[6] - 15
    zm = aa[7]
    rate_exp = (aa[8] ^ sign_bit) - sign_bit
    e30 = aa[9]
    ee = (aa[10] ^ sign_bit) - sign_bit
    # the largest exponents of g and p
    top_g = 0
    top_p = 0
    i = 0
    while i < n:
        if wide:
            eg = (pg[2 * i + 1] >> 20) & 0x7FF
            ep = (pp[2 * i + 1] >> 20) & 0x7FF
        else:
            eg = (pg[i] >> 23) & 0xFF
            ep = (pp[i] >> 23) & 0xFF
        if eg > top_g:
            top_g = eg
        if ep > top_p:
            top_p = ep
        i += 1
    # the new scales (see the module doc) and the shifts between them
    big = 1
    big <<= 20
    kg = big
    if top_g:
        kg = 15 - top_g + bias
    km = (ps[4 * j] ^ sign_bit) - sign_bit
    hm = ps[4 * j + 1]
    kv = (ps[4 * j + 2] ^ sign_bit) - sign_bit
    hv = ps[4 * j + 3]
    nkm = big
    if hm:
        nkm = km + 15 - hm
    if kg < nkm:
        nkm = kg
    if nkm == big:
        nkm = km
    nkv = big
    if hv:
        nkv = kv + 30 - hv
    if 2 * kg < nkv:
        nkv = 2 * kg
    if nkv == big:
        nkv = kv
    nkv = (nkv >> 1) << 1
    kp = 25 - rate_exp
    if top_p and 29 - top_p + bias < kp:
        kp = 29 - top_p + bias
    zs = 31 - rate_exp - kp
    lm = 0
    rm = 0
    if hm:
        lm = nkm - km + 14
        if lm < 0:
            rm = -lm
            lm = 0
    lg = 0
    rg = 0
    rg2 = 0
    if top_g:
        lg = nkm - kg + 14
        if lg < 0:
            rg = -lg
            lg = 0
        rg2 = 2 * kg - nkv
    lv = 0
    rv = 0
    if hv:
        lv = nkv - kv
        if lv < 0:
            rv = -lv
            lv = 0
    le = (nkv >> 1) - nkm + 1
    re = 0
    if le < 0:
        re = -le
        le = 0
    if rm > 31:
        rm = 31
    if rg > 31:
        rg = 31
    if rg2 > 31:
        rg2 = 31
    if rv > 31:
        rv = 31
    if re > 31:
        re = 31
    if le > 31:
        le = 31
    # E = round(eps' 2**(kv / 2)) in [1, 2**29], eps' = e30 2**(ee - 30)
    cap29 = 1
    cap29 <<= 29
    sh = 30 - ee - (nkv >> 1)
    eq = cap29
    if sh > 31:
        eq = 0
    elif sh > 0:
        eq = (e30 + (1 << (sh - 1))) >> sh
    if eq > cap29:
        eq = cap29
    if eq < 1:
        eq = 1
    base = 157
    if wide:
        base = 1053
    gbase = 0
    if top_g:
        gbase = base - kg
    pbase = base - kp
    cap = 1
    cap <<= 20
    top_m = 0
    top_v = 0
    i = 0
    while i < n:
        # G = trunc(g 2**kg)
        if wide:
            hi = pg[2 * i + 1]
            e = (hi >> 20) & 0x7FF
            mant = (((hi & 0xFFFFF) | 0x100000) << 10) | ((pg[2 * i] >> 22) & 0x3FF)
        else:
            hi = pg[i]
            e = (hi >> 23) & 0xFF
            mant = ((hi & 0x7FFFFF) | 0x800000) << 7
        r = gbase - e
        gc = 0
        if r < 31 and e != 0:
            gc = mant >> r
        if (hi >> 31) & 1:
            gc = -gc
        # first moment
        x1 = ((pm[i] ^ 0x8000) - 0x8000) << lm
        x1 >>= rm
        x = ((gc << lg) >> rg) - x1
        x = x1 + (((x >> 15) * c1 + (((x & 0x7FFF) * c1) >> 15)) >> s1)
        neg = 0
        if x < 0:
            neg = 1
            x = -x
        mq = (x + 0x2000) >> 14
        if mq > 32767:
            mq = 32767
        top_m |= mq
        if neg:
            pm[i] = -mq
        else:
            pm[i] = mq
        # second moment
        x2 = (pv[i] << lv) >> rv
        x = ((gc * gc) >> rg2) - x2
        vn = x2 + (((x >> 15) * c2 + (((x & 0x7FFF) * c2) >> 15)) >> s2)
        pv[i] = vn
        top_v |= vn
        # R = ceil(sqrt(vn))
        rr = 0
        if vn > 0:
            w = vn
            sh = 0
            if w < 0x4000:
                w <<= 16
                sh += 8
            if w < 0x400000:
                w <<= 8
                sh += 4
            if w < 0x4000000:
                w <<= 4
                sh += 2
            if w < 0x10000000:
                w <<= 2
                sh += 1
            s0 = rt[(w >> 22) - 64]
            s = (s0 + w // s0) >> 1
            if s * s > w:
                s -= 1
            s >>= sh
            if s * s < vn:
                s += 1
            rr = s
        # Q = m / (sqrt(v) + eps') 2**16, clipped
        q = (mq << 15) // (rr + eq)
        if le:
            if q > (cap >> le):
                q = cap
            else:
                q <<= le
        else:
            q >>= re
            if q > cap:
                q = cap
        # the step in parameter codes
        qh = q >> 15
        ql = q & 0x7FFF
        if zs >= 15:
            dp = (qh * zm + ((ql * zm) >> 15)) >> (zs - 15)
        else:
            dp = ((qh * zm) << (15 - zs)) + ((ql * zm) >> zs)
        # P = trunc(p 2**kp), then P -+ dp
        if wide:
            hi = pp[2 * i + 1]
            e = (hi >> 20) & 0x7FF
            mant = (((hi & 0xFFFFF) | 0x100000) << 10) | ((pp[2 * i] >> 22) & 0x3FF)
        else:
            hi = pp[i]
            e = (hi >> 23) & 0xFF
            mant = ((hi & 0x7FFFFF) | 0x800000) << 7
        r = pbase - e
        pc = 0
        if r < 31 and e != 0:
            pc = mant >> r
        if (hi >> 31) & 1:
            pc = -pc
        if neg:
            pc += dp
        else:
            pc -= dp
        # write P' 2**-kp back, rounded to nearest
        sign = 0
        if pc < 0:
            sign = 1
            pc = -pc
        msb = 0
        v = pc
        if v >= 65536:
            v >>= 16
            msb += 16
        if v >= 256:
            v >>= 8
            msb += 8
        if v >= 16:
            v >>= 4
            msb += 4
        if v >= 4:
            v >>= 2
            msb += 2
        if v >= 2:
            msb += 1
        if wide:  # |P'| < 2**30: exact in a double
            e = msb - kp + 1023
            hi = 0
            lo = 0
            if pc != 0 and e > 0:
                if msb >= 20:
                    hi = (pc >> (msb - 20)) & 0xFFFFF
                    lo = pc << (52 - msb)
                else:
                    hi = (pc << (20 - msb)) & 0xFFFFF
                hi |= (e << 20) | (sign << 31)
            pp[2 * i] = lo
            pp[2 * i + 1] = hi
        else:
            e = msb - kp + 127
            w = 0
            if pc != 0:
                if msb > 23:
                    cut = msb - 23
                    pc = (pc + (1 << (cut - 1))) >> cut
                    if pc >> 24:
                        pc >>= 1
                        e += 1
                    w = pc & 0x7FFFFF
                else:
                    w = (pc << (23 - msb)) & 0x7FFFFF
                if e > 0:
                    w |= (e << 23) | (sign << 31)
                else:
                    w = 0
            pp[i] = w
        i += 1
    ps[4 * j] = nkm
    ps[4 * j + 2] = nkv
    b = 0
    while top_m:
        top_m >>= 1
        b += 1
    ps[4 * j + 1] = b
    b = 0
    while top_v:
        top_v >>= 1
        b += 1
    ps[4 * j + 3] = b


@micropython.viper
def _polyak(t, o, a):
    """t = (1 - tau) t + tau o in integers (a: count, wide, bias, tau as c 2**-s)."""
    pt = ptr32(t)
    po = ptr32(o)
    aa = ptr32(a)
    n = aa[0]
    wide = aa[1]
    c = aa[3]
    s = aa[4] - 15
    half = 1 << (aa[4] - 1)
    top = 0
    i = 0
    while i < n:
        if wide:
            e = (pt[2 * i + 1] >> 20) & 0x7FF
            f = (po[2 * i + 1] >> 20) & 0x7FF
        else:
            e = (pt[i] >> 23) & 0xFF
            f = (po[i] >> 23) & 0xFF
        if e > top:
            top = e
        if f > top:
            top = f
        i += 1
    if not top:
        return
    k = 29 - top + aa[2]
    base = 157 - k
    if wide:
        base = 1053 - k
    i = 0
    while i < n:
        if wide:
            hi = pt[2 * i + 1]
            e = (hi >> 20) & 0x7FF
            mant = (((hi & 0xFFFFF) | 0x100000) << 10) | ((pt[2 * i] >> 22) & 0x3FF)
            hj = po[2 * i + 1]
            f = (hj >> 20) & 0x7FF
            mo = (((hj & 0xFFFFF) | 0x100000) << 10) | ((po[2 * i] >> 22) & 0x3FF)
        else:
            hi = pt[i]
            e = (hi >> 23) & 0xFF
            mant = ((hi & 0x7FFFFF) | 0x800000) << 7
            hj = po[i]
            f = (hj >> 23) & 0xFF
            mo = ((hj & 0x7FFFFF) | 0x800000) << 7
        tc = 0
        if base - e < 31 and e != 0:
            tc = mant >> (base - e)
        if (hi >> 31) & 1:
            tc = -tc
        oc = 0
        if base - f < 31 and f != 0:
            oc = mo >> (base - f)
        if (hj >> 31) & 1:
            oc = -oc
        x = oc - tc
        pc = tc + (((x >> 15) * c + (((x & 0x7FFF) * c + half) >> 15)) >> s)
        # write T' 2**-k back, rounded to nearest
        sign = 0
        if pc < 0:
            sign = 1
            pc = -pc
        msb = 0
        v = pc
        if v >= 65536:
            v >>= 16
            msb += 16
        if v >= 256:
            v >>= 8
            msb += 8
        if v >= 16:
            v >>= 4
            msb += 4
        if v >= 4:
            v >>= 2
            msb += 2
        if v >= 2:
            msb += 1
        if wide:
            e = msb - k + 1023
            hi = 0
            lo = 0
            if pc != 0 and e > 0:
                if msb >= 20:
                    hi = (pc >> (msb - 20)) & 0xFFFFF
                    lo = pc << (52 - msb)
                else:
                    hi = (pc << (20 - msb)) & 0xFFFFF
                hi |= (e << 20) | (sign << 31)
            pt[2 * i] = lo
            pt[2 * i + 1] = hi
        else:
            e = msb - k + 127
            w = 0
            if pc != 0:
                if msb > 23:
                    cut = msb - 23
                    pc = (pc + (1 << (cut - 1))) >> cut
                    if pc >> 24:
                        pc >>= 1
                        e += 1
                    w = pc & 0x7FFFFF
                else:
                    w = (pc << (23 - msb)) & 0x7FFFFF
                if e > 0:
                    w |= (e << 23) | (sign << 31)
                else:
                    w = 0
            pt[i] = w
        i += 1


_ROOTS = None
_TAU = [None, 0, 0]  # tau and its fraction, the last Polyak's


def polyak(target, online, tau):
    """target = (1 - tau) target + tau online, in integers (see the module doc)."""
    if tau != _TAU[0]:
        _TAU[1], _TAU[2] = fraction(tau)
        _TAU[0] = tau
    a = _args()
    a[0] = len(target[0])
    a[1] = _kv._wide
    a[2] = _kv._bias
    a[3] = _TAU[1]
    a[4] = _TAU[2]
    _polyak(target[0], online[0], a)


_scratch = []


def _args():
    """The kernels' argument words, allocated once."""
    if not _scratch:
        _scratch.append(zeros("i", _FIELDS))
    return _scratch[0]


class IntAdam:
    """Adam in integers over ``params`` from ``grads`` (two lists of matrices of matching
    shapes): the same interface and bias corrections as adam.Adam (see the module doc)."""

    integer = True  # its state: int16 m and int32 v codes, int32 scales (checkpoint.py asks)

    def __init__(self, params, grads, lr, beta1=0.9, beta2=0.999, eps=1e-8):
        global _ROOTS
        if not lr > 0.0:
            raise ValueError("lr must be > 0, got %r" % lr)
        if _ROOTS is None:
            _ROOTS = _roots()
        self.params = params
        self.grads = grads
        self.lr = lr
        self.beta1 = beta1
        self.beta2 = beta2
        self.eps = eps
        self.t = 0
        self.m = [(zeros("h", len(p[0])), p[1], p[2]) for p in params]  # int16 codes of m
        self.v = [(zeros("i", len(p[0])), p[1], p[2]) for p in params]  # int32 codes of v
        # per tensor: km, bits of the largest |M|, kv, bits of the largest V
        self.scales = (zeros("i", 4 * len(params)), len(params), 4)
        self._c1, self._s1 = fraction(1.0 - beta1)
        self._c2, self._s2 = fraction(1.0 - beta2)

    def step(self):
        self.t += 1
        step_size = self.lr / (1.0 - self.beta1 ** self.t)
        inv = 1.0 / sqrt(1.0 - self.beta2 ** self.t)
        rate, rate_exp = frexp(step_size / inv)  # the step of a unit ratio Q 2**-16
        eps, eps_exp = frexp(self.eps / inv)
        a = _args()
        a[1] = _kv._wide
        a[2] = _kv._bias
        a[3] = self._c1
        a[4] = self._s1
        a[5] = self._c2
        a[6] = self._s2
        a[7] = int(ldexp(rate, 15))
        a[8] = rate_exp
        a[9] = int(ldexp(eps, 30))
        a[10] = eps_exp
        params, grads, m, v, scales = self.params, self.grads, self.m, self.v, self.scales[0]
        for i in range(len(params)):
            p = params[i][0]
            a[0] = len(p)
            _adam(p, grads[i][0], m[i][0], v[i][0], a, _ROOTS, scales, i)
