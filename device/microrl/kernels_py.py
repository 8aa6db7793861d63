"""Matrix kernels in pure MicroPython, for firmware without ulab.

A matrix is a ``Mat``: an ``array`` of floats, row-major, with its shape. Correctness first: plain
loops with the arithmetic in the firmware's float, storage in ``array('f')`` or ``array('d')``.
Every kernel works in place on preallocated matrices and allocates nothing but float objects.
"""

from array import array
from math import sqrt as _sqrt, tanh as _tanh

_typecode = "f"
_itemsize = 4


def init(typecode):
    global _typecode, _itemsize
    _typecode = typecode
    _itemsize = 4 if typecode == "f" else 8


class Mat:
    """A rows x cols matrix stored row-major in ``data``."""

    def __init__(self, rows, cols):
        self.rows = rows
        self.cols = cols
        self.data = array(_typecode, bytearray(_itemsize * rows * cols))

    def __len__(self):
        return self.rows

    @property
    def shape(self):
        return (self.rows, self.cols)


def matrix(rows, cols):
    return Mat(rows, cols)


def shape(m):
    return (m.rows, m.cols)


def get(m, i, j):
    return m.data[i * m.cols + j]


def set(m, i, j, value):
    m.data[i * m.cols + j] = value


def scratch_like(m):
    return None


def copy(dst, src):
    d = dst.data
    s = src.data
    for i in range(len(d)):
        d[i] = s[i]


def fill(m, value, n):
    d = m.data
    for i in range(n * m.cols):
        d[i] = value


def fill_uniform(m, rng, bound):
    d = m.data
    for i in range(len(d)):
        d[i] = bound * (2.0 * rng.uniform() - 1.0)


def dot(out, x, w, n):
    """out[:n] = x[:n] w"""
    o, xd, wd = out.data, x.data, w.data
    kk, cols = x.cols, w.cols
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


def dot_tn(out, x, d, n):
    """out = x[:n]^T d[:n]"""
    o, xd, dd = out.data, x.data, d.data
    rows, cols = x.cols, d.cols
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
            o[ob + j] = s


def dot_nt(out, d, w, n):
    """out[:n] = d[:n] w^T"""
    o, dd, wd = out.data, d.data, w.data
    kk, cols = d.cols, w.rows
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
    o, bd = out.data, b.data
    cols = out.cols
    for i in range(n):
        ob = i * cols
        for j in range(cols):
            o[ob + j] += bd[j]


def sum_rows(out, d, n):
    o, dd = out.data, d.data
    cols = d.cols
    for j in range(cols):
        s = 0.0
        for i in range(j, n * cols, cols):
            s += dd[i]
        o[j] = s


def relu(y, n):
    yd = y.data
    for i in range(n * y.cols):
        if yd[i] < 0.0:
            yd[i] = 0.0


def relu_grad(d, y, n):
    dd, yd = d.data, y.data
    for i in range(n * d.cols):
        if yd[i] <= 0.0:
            dd[i] = 0.0


def tanh(y, n):
    yd = y.data
    for i in range(n * y.cols):
        yd[i] = _tanh(yd[i])


def tanh_grad(d, y, n):
    dd, yd = d.data, y.data
    for i in range(n * d.cols):
        t = yd[i]
        dd[i] *= 1.0 - t * t


def copy_cols(dst, dst_col, src, src_col, k, n):
    dd, sd = dst.data, src.data
    dc, sc = dst.cols, src.cols
    for i in range(n):
        for j in range(k):
            dd[i * dc + dst_col + j] = sd[i * sc + src_col + j]


def minimum(dst, src, n):
    dd, sd = dst.data, src.data
    for i in range(n * dst.cols):
        if sd[i] < dd[i]:
            dd[i] = sd[i]


def td_target(y, reward, done, gamma, n):
    """y[:n] = reward + gamma (1 - done) y"""
    yd, rd, dd = y.data, reward.data, done.data
    for i in range(n * y.cols):
        yd[i] = rd[i] + gamma * ((1.0 - dd[i]) * yd[i])


def mse_grad(d, q, y, n):
    """d[:n] = 2 (q - y) / n, the gradient of mean((q - y)^2)"""
    dd, qd, yd = d.data, q.data, y.data
    scale = 2.0 / n
    for i in range(n * d.cols):
        dd[i] = (qd[i] - yd[i]) * scale


def adam(p, g, m, v, tmp, step_size, beta1, beta2, eps, inv_sqrt_bc2):
    """One Adam update of p in place (tmp is unused here)."""
    pd, gd, md, vd = p.data, g.data, m.data, v.data
    c1 = 1.0 - beta1
    c2 = 1.0 - beta2
    for i in range(len(pd)):
        gi = gd[i]
        mi = beta1 * md[i] + c1 * gi
        vi = beta2 * vd[i] + c2 * (gi * gi)
        md[i] = mi
        vd[i] = vi
        pd[i] -= step_size * (mi / (_sqrt(vi) * inv_sqrt_bc2 + eps))


def polyak(target, online, tau):
    """target = (1 - tau) target + tau online"""
    td, od = target.data, online.data
    keep = 1.0 - tau
    for i in range(len(td)):
        td[i] = keep * td[i] + tau * od[i]
