"""Matrix kernels in pure MicroPython, for firmware without ulab.

A matrix is a tuple ``(data, rows, cols)``: an ``array`` of floats, row-major, and its shape. Correctness first: plain
loops with the arithmetic in the firmware's float, storage in ``array('f')`` or ``array('d')``.
Every kernel works in place on preallocated matrices and allocates nothing but float objects.
"""

from array import array
from math import ceil as _ceil, sqrt as _sqrt, tanh as _tanh

_typecode = "f"
_itemsize = 4
_ITEMSIZE = {"b": 1, "h": 2, "i": 4, "f": 4, "d": 8}
# Adam's int16 sqrt(v) codes round up, but not a quotient within this of an integer: a moment that
# only decays (zero gradient) gives such quotients, and float noise must not raise its code.
ROUND_UP_SLACK = 0.001


def init(typecode):
    global _typecode, _itemsize
    _typecode = typecode
    _itemsize = 4 if typecode == "f" else 8


def zeros(typecode, count, source=None):
    """An array of count zeros; ``source``: a zeroed bytes object of exactly that size to copy.

    Passing one shared source when allocating many equal arrays keeps the heap free of the freed
    bytearray beside every array: a heap of such holes cannot serve the next, larger, request.
    """
    nbytes = _ITEMSIZE[typecode] * count
    if source is not None and len(source) == nbytes:
        return array(typecode, source)
    return array(typecode, bytearray(nbytes))


def matrix(rows, cols):
    """A matrix is the tuple (data, rows, cols): cheaper on the heap than an object with a dict."""
    return (zeros(_typecode, rows * cols), rows, cols)


def codes(rows, cols):
    """A matrix of int16 codes (the moments of Adam with int16 state)."""
    return (zeros("h", rows * cols), rows, cols)


def shape(m):
    return (m[1], m[2])


def get(m, i, j):
    return m[0][i * m[2] + j]


def set(m, i, j, value):
    m[0][i * m[2] + j] = value


def scratch_like(m):
    return None


def rows(m, start, count):
    """Rows [start, start + count) of m as a matrix that shares its storage (m itself when that
    is all of it: no allocation for a whole batch)."""
    if start == 0 and count == m[1]:
        return m
    cols = m[2]
    return (memoryview(m[0])[start * cols:(start + count) * cols], count, cols)


def copy(dst, src):
    d = dst[0]
    s = src[0]
    for i in range(len(d)):
        d[i] = s[i]


def fill(m, value, n):
    d = m[0]
    for i in range(n * m[2]):
        d[i] = value


def fill_uniform(m, rng, bound):
    d = m[0]
    for i in range(len(d)):
        d[i] = bound * (2.0 * rng.uniform() - 1.0)


def dot(out, x, w, n):
    """out[:n] = x[:n] w"""
    o, xd, wd = out[0], x[0], w[0]
    kk, cols = x[2], w[2]
    for i in range(n):
        xb = i * kk
        ob = i * cols
        for j in range(cols):
            s = 0.0
            wi = j
            for k in range(xb, xb + kk):
                s += xd[k] * wd[wi]
                wi += cols
            o[ob + j] = s


def dot_tn(out, x, d, n, acc=False):
    """out = x[:n]^T d[:n], or out += that when ``acc``"""
    o, xd, dd = out[0], x[0], d[0]
    rows, cols = x[2], d[2]
    for r in range(rows):
        ob = r * cols
        for j in range(cols):
            s = 0.0
            xi = r
            di = j
            for _ in range(n):
                s += xd[xi] * dd[di]
                xi += rows
                di += cols
            if acc:
                o[ob + j] += s
            else:
                o[ob + j] = s


def dot_nt(out, d, w, n):
    """out[:n] = d[:n] w^T"""
    o, dd, wd = out[0], d[0], w[0]
    kk, cols = d[2], w[1]
    for i in range(n):
        db = i * kk
        ob = i * cols
        for j in range(cols):
            s = 0.0
            wb = j * kk
            for k in range(kk):
                s += dd[db + k] * wd[wb + k]
            o[ob + j] = s


def add_bias(out, b, n):
    o, bd = out[0], b[0]
    cols = out[2]
    for i in range(n):
        ob = i * cols
        for j in range(cols):
            o[ob + j] += bd[j]


def sum_rows(out, d, n, acc=False):
    """out = the sum of d's first n rows, or out += that when ``acc``"""
    o, dd = out[0], d[0]
    cols = d[2]
    for j in range(cols):
        s = 0.0
        for i in range(j, n * cols, cols):
            s += dd[i]
        if acc:
            o[j] += s
        else:
            o[j] = s


def relu(y, n):
    yd = y[0]
    for i in range(n * y[2]):
        if yd[i] < 0.0:
            yd[i] = 0.0


def dot_nt_relu(h, d, w, n):
    """h[:n] = (d[:n] w^T) * (h[:n] > 0): the hidden delta written over its own activation."""
    hd, dd, wd = h[0], d[0], w[0]
    kk, cols = d[2], w[1]
    for i in range(n):
        db = i * kk
        hb = i * cols
        for j in range(cols):
            if hd[hb + j] > 0.0:
                s = 0.0
                wb = j * kk
                for k in range(kk):
                    s += dd[db + k] * wd[wb + k]
                hd[hb + j] = s
            else:
                hd[hb + j] = 0.0


def tanh(y, n):
    yd = y[0]
    for i in range(n * y[2]):
        yd[i] = _tanh(yd[i])


def tanh_grad(d, y, n):
    dd, yd = d[0], y[0]
    for i in range(n * d[2]):
        t = yd[i]
        dd[i] *= 1.0 - t * t


def copy_cols(dst, dst_col, src, src_col, k, n):
    dd, sd = dst[0], src[0]
    dc, sc = dst[2], src[2]
    for i in range(n):
        for j in range(k):
            dd[i * dc + dst_col + j] = sd[i * sc + src_col + j]


def minimum(dst, src, n):
    dd, sd = dst[0], src[0]
    for i in range(n * dst[2]):
        if sd[i] < dd[i]:
            dd[i] = sd[i]


def td_target(y, reward, done, gamma, n):
    """y[:n] = reward + gamma (1 - done) y"""
    yd, rd, dd = y[0], reward[0], done[0]
    for i in range(n * y[2]):
        yd[i] = rd[i] + gamma * ((1.0 - dd[i]) * yd[i])


def scale_rows(d, s, n):
    """d[i, :] *= s[i, 0] for the first n rows"""
    dd, sd = d[0], s[0]
    cols = d[2]
    for i in range(n):
        f = sd[i]
        for j in range(i * cols, i * cols + cols):
            dd[j] *= f


def mse_grad(d, q, y, n, batch):
    """d[:n] = 2 (q - y) / batch, the gradient of mean((q - y)^2) over a batch of ``batch`` rows"""
    dd, qd, yd = d[0], q[0], y[0]
    scale = 2.0 / batch
    for i in range(n * d[2]):
        dd[i] = (qd[i] - yd[i]) * scale


def adam(p, g, m, v, tmp, step_size, beta1, beta2, eps, inv_sqrt_bc2):
    """One Adam update of p in place (tmp is unused here)."""
    pd, gd, md, vd = p[0], g[0], m[0], v[0]
    c1 = 1.0 - beta1
    c2 = 1.0 - beta2
    for i in range(len(pd)):
        gi = gd[i]
        mi = beta1 * md[i] + c1 * gi
        vi = beta2 * vd[i] + c2 * (gi * gi)
        md[i] = mi
        vd[i] = vi
        pd[i] -= step_size * (mi / (_sqrt(vi) * inv_sqrt_bc2 + eps))


def adam16(p, g, qm, qv, scales, k, step_size, beta1, beta2, eps, inv_sqrt_bc2):
    """Adam on int16 moments: qm codes m / s_m, qv codes sqrt(v) / s_v, (s_m, s_v) is row k of
    ``scales``. Dequantize, update, step p, then requantize with the new largest values."""
    pd, gd, md, vd, sd = p[0], g[0], qm[0], qv[0], scales[0]
    c1 = 1.0 - beta1
    c2 = 1.0 - beta2
    sm = sd[2 * k]
    sv = sd[2 * k + 1]
    top_m = 0.0
    top_v = 0.0
    for i in range(len(pd)):
        gi = gd[i]
        mi = beta1 * (md[i] * sm) + c1 * gi
        ri = vd[i] * sv
        ri = _sqrt(beta2 * (ri * ri) + c2 * (gi * gi))
        pd[i] -= step_size * (mi / (ri * inv_sqrt_bc2 + eps))
        a = abs(mi)
        if a > top_m:
            top_m = a
        if ri > top_v:
            top_v = ri
    new_sm = top_m / 32767.0
    new_sv = top_v / 32767.0
    for i in range(len(pd)):  # the same arithmetic again, now coding with the new scales
        gi = gd[i]
        mi = beta1 * (md[i] * sm) + c1 * gi
        ri = vd[i] * sv
        ri = _sqrt(beta2 * (ri * ri) + c2 * (gi * gi))
        md[i] = round(mi / new_sm) if new_sm > 0.0 else 0
        vd[i] = min(_ceil(ri / new_sv - ROUND_UP_SLACK), 32767) if new_sv > 0.0 else 0
    sd[2 * k] = new_sm
    sd[2 * k + 1] = new_sv


def polyak(target, online, tau):
    """target = (1 - tau) target + tau online"""
    td, od = target[0], online[0]
    keep = 1.0 - tau
    for i in range(len(td)):
        td[i] = keep * td[i] + tau * od[i]
