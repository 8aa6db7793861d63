"""Matrix kernels in pure MicroPython, for firmware without ulab.

A matrix is a tuple ``(data, rows, cols)``: an ``array`` of floats, row-major, and its shape. Correctness first: plain
loops with the arithmetic in the firmware's float, storage in ``array('f')`` or ``array('d')``.
Every kernel works in place on preallocated matrices and allocates nothing but float objects.
"""

from array import array
from math import sqrt as _sqrt, tanh as _tanh

_typecode = "f"
_itemsize = 4
_ITEMSIZE = {"b": 1, "h": 2, "H": 2, "i": 4, "f": 4, "d": 8}
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
    Without one, the array is built from a range (an initializer with a length: MicroPython
    allocates exactly the array, no temporary) and then cleared.
    """
    nbytes = _ITEMSIZE[typecode] * count
    if source is not None and len(source) == nbytes:
        return array(typecode, source)
    a = array(typecode, range(count))
    for i in range(count):
        a[i] = 0
    return a


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


def tensors(shapes):
    """(None, one matrix per (rows, cols) in ``shapes``): loops here are per element whatever the
    storage, and separate arrays fit a fragmented heap better than one large block."""
    out = [None] * len(shapes)
    for i in range(len(shapes)):
        out[i] = matrix(*shapes[i])
    return None, out


def staged(rows, cols):
    """A matrix and a flat array of its elements that writes through to it (row-major)."""
    m = matrix(rows, cols)
    return m, m[0]


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


# The products gather the nonzero entries of one operand's row (or column) into ``scratch``, a
# pair of lists (values, offsets) at least as long as any row or column, allocated once by the
# network, and reuse them for every output element. Loading from an array boxes a new float, so
# this saves one allocation of the four per multiply-add (load, load, multiply, add); and ReLU
# activations and masked deltas are about half zeros, whose terms are skipped. The sums keep
# their order; a skipped term adds an exact zero (only the sign of a zero sum can differ).

def scratch_row(count):
    """The products' scratch: ``count`` floats (distinct objects from the start, so that the heap
    they take in training is taken here: a board that boxes floats holds one per entry) and
    ``count`` offsets."""
    values = [0.0] * count
    for k in range(count):
        values[k] = k * 1.0
    return values, [0] * count


def _nonzero(scratch, src, start, count, stride, scale):
    """Gathers the nonzero src[start + k stride], k < count, into scratch's values and k * scale
    into its offsets; returns how many there are."""
    values, offsets = scratch
    m = 0
    for k in range(count):
        v = src[start]
        if v != 0.0:
            values[m] = v
            offsets[m] = k * scale
            m += 1
        start += stride
    return m


def dot(out, x, w, n, scratch):
    """out[:n] = x[:n] w; returns out (the matrix that holds the result, as on every backend)"""
    return dense(out, x, w, None, n, scratch, False)


def dense(out, x, w, b, n, scratch, relu_out):
    """out[:n] = x[:n] w + b (no bias when b is None), then ReLU when ``relu_out``; returns out.
    One pass: each output is summed, biased and clipped before it is stored, so it is loaded
    from the array (a boxed float) once instead of three times."""
    o, xd, wd = out[0], x[0], w[0]
    bd = b[0] if b is not None else None
    kk, cols = x[2], w[2]
    xv, xo = scratch
    for i in range(n):
        m = _nonzero(scratch, xd, i * kk, kk, 1, cols)
        ob = i * cols
        for j in range(cols):
            s = 0.0
            for t in range(m):
                s += xv[t] * wd[xo[t] + j]
            if bd is not None:
                s += bd[j]
            if relu_out and s < 0.0:
                s = 0.0
            o[ob + j] = s
    return out


def dot_tn(out, x, d, n, scratch, acc=False):
    """out = x[:n]^T d[:n], or out += that when ``acc``"""
    o, xd, dd = out[0], x[0], d[0]
    rows, cols = x[2], d[2]
    xv, xo = scratch
    for r in range(rows):
        m = _nonzero(scratch, xd, r, n, rows, cols)
        ob = r * cols
        for j in range(cols):
            s = 0.0
            for t in range(m):
                s += xv[t] * dd[xo[t] + j]
            if acc:
                o[ob + j] += s
            else:
                o[ob + j] = s


def dot_nt(out, d, w, n, scratch):
    """out[:n] = d[:n] w^T; returns out"""
    o, dd, wd = out[0], d[0], w[0]
    kk, cols = d[2], w[1]
    dv, do = scratch
    for i in range(n):
        m = _nonzero(scratch, dd, i * kk, kk, 1, 1)
        ob = i * cols
        for j in range(cols):
            s = 0.0
            wb = j * kk
            for t in range(m):
                s += dv[t] * wd[wb + do[t]]
            o[ob + j] = s
    return out


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


def dense_grads(gw, gb, x, d, n, scratch, acc=False):
    """gw = x[:n]^T d[:n] and gb = the column sums of d[:n] (both added to when ``acc``)"""
    dot_tn(gw, x, d, n, scratch, acc)
    sum_rows(gb, d, n, acc)


def dot_nt_relu(h, d, w, n, scratch):
    """h[:n] = (d[:n] w^T) * (h[:n] > 0): the hidden delta written over its own activation;
    returns h"""
    hd, dd, wd = h[0], d[0], w[0]
    kk, cols = d[2], w[1]
    dv, do = scratch
    for i in range(n):
        m = _nonzero(scratch, dd, i * kk, kk, 1, 1)
        hb = i * cols
        for j in range(cols):
            if hd[hb + j] > 0.0:
                s = 0.0
                wb = j * kk
                for t in range(m):
                    s += dv[t] * wd[wb + do[t]]
                hd[hb + j] = s
            else:
                hd[hb + j] = 0.0
    return h


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


def _clip(x, lo, hi):
    return lo if x < lo else (hi if x > hi else x)


def smooth_actions(dst, col, a, rng, std, limit, n, scratch):
    """dst[i, col + j] = clip(a[i, j] + clip(std N(0, 1), -limit, limit), -1, 1) for the first n
    rows, the normals drawn in row-major order (target policy smoothing; scratch unused here)."""
    dd, ad = dst[0], a[0]
    dc, k = dst[2], a[2]
    normal = rng.normal
    for i in range(n):
        for j in range(k):
            eps = _clip(std * normal(), -limit, limit)
            dd[i * dc + col + j] = _clip(ad[i * k + j] + eps, -1.0, 1.0)


def row(values):
    """``values`` as the row ``affine`` broadcasts: here the floats themselves, so that the
    arithmetic is the firmware's float whatever the storage."""
    return tuple(values)


def affine(m, scale, offset, n):
    """m[:n] = m[:n] scale + offset, column j by scale[j] and offset[j] (rows of ``row``;
    ``offset`` None: none)"""
    md, sd, od = m[0], scale, offset
    cols = m[2]
    for i in range(n):
        r = i * cols
        for j in range(cols):
            v = md[r + j] * sd[j]
            if od is not None:
                v += od[j]
            md[r + j] = v


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


def bad(m, n):
    """True when the first n rows of m hold a value that is not finite (their sum is not)."""
    md = m[0]
    s = 0.0
    for i in range(n * m[2]):
        s += md[i]
    return s - s != 0.0


def mse_grad(d, q, y, n, batch):
    """d[:n] = 2 (q - y) / batch, the gradient of mean((q - y)^2) over a batch of ``batch`` rows"""
    dd, qd, yd = d[0], q[0], y[0]
    scale = 2.0 / batch
    for i in range(n * d[2]):
        dd[i] = (qd[i] - yd[i]) * scale


def adam(p, g, m, v, tmp, step_size, beta1, beta2, eps, inv_sqrt_bc2):
    """One Adam update of p in place (tmp is unused here), each element's operations in the order
    of kernels_nd.adam's passes (the step as reciprocal, times m, times the step size), so that
    kernels_asm.adam_tuple rounds as this loop does."""
    pd, gd, md, vd = p[0], g[0], m[0], v[0]
    c1 = 1.0 - beta1
    c2 = 1.0 - beta2
    for i in range(len(pd)):
        gi = gd[i]
        mi = beta1 * md[i] + c1 * gi
        vi = beta2 * vd[i] + c2 * (gi * gi)
        md[i] = mi
        vd[i] = vi
        pd[i] -= 1.0 / (_sqrt(vi) * inv_sqrt_bc2 + eps) * mi * step_size


def polyak(target, online, tau):
    """target = (1 - tau) target + tau online"""
    td, od = target[0], online[0]
    keep = 1.0 - tau
    for i in range(len(td)):
        td[i] = keep * td[i] + tau * od[i]
