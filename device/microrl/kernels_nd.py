"""Matrix kernels on ulab.numpy, or numpy standing in for it on CPython.

Only the ulab subset is used: at most 2-D, no fancy indexing, no ``@``, ``out=`` only where ulab has it
(math ufuncs). A ``dot`` always allocates its result on ulab; everything else updates in place.
With ulab in single precision on an ARM core, ``init`` replaces the MLP's products (``dense``,
``dense_grads``, ``dot_nt``, ``dot_nt_relu``) by kernels_asm's machine code, which writes into the
buffers it is given.
"""

from .kernels_py import ROUND_UP_SLACK, zeros

_np = None
_ulab = False
_typecode = "d"


PRODUCTS = "ulab"  # who computes the products: "vfp" or "thumb" (kernels_asm), ulab, numpy
AFFINE = "ulab"  # who computes affine: array operations ("ulab", "numpy"; compressed.py asks)


def init(np, is_ulab, typecode, vfp=True, asm=True):
    """``typecode``: the ``array`` typecode of the matrices' element ("f" or "d"). With ulab in
    single precision on an ARM core, the products are kernels_asm's: with kernels_vfp's routine
    where the core has an FPU (unless ``vfp`` is False: then ulab's own), kernels_thumb's
    without (``asm`` False: ulab's own everywhere). (``affine`` stays ulab's: six array operations
    cost less than the calls.)"""
    global _np, _ulab, _typecode, PRODUCTS, AFFINE
    _np = np
    _ulab = is_ulab
    _typecode = typecode
    PRODUCTS = AFFINE = "ulab" if is_ulab else "numpy"
    if not (is_ulab and typecode == "f" and asm):
        return
    from . import kernels_asm
    module, name = kernels_asm.routine_for(vfp)
    if module is None:
        return
    global dense, dense_grads, dot_nt, dot_nt_relu, adam
    if kernels_asm.use(module):
        adam = kernels_asm.adam
    dense = kernels_asm.dense
    dense_grads = kernels_asm.dense_grads
    dot_nt = kernels_asm.dot_nt
    dot_nt_relu = kernels_asm.dot_nt_relu
    PRODUCTS = name


def matrix(rows, cols):
    return _np.zeros((rows, cols), dtype=_np.float) if _ulab else _np.zeros((rows, cols))


def codes(rows, cols):
    """A matrix of int16 codes (the moments of Adam with int16 state)."""
    return _np.zeros((rows, cols), dtype=_np.int16)


def shape(m):
    return m.shape


def get(m, i, j):
    return float(m[i, j])


def set(m, i, j, value):
    m[i, j] = value


def scratch_like(m):
    return matrix(*m.shape)


def tensors(shapes):
    """(flat, views): one 1 x N matrix holding a matrix per (rows, cols) in ``shapes``, one after
    the other, and those matrices as views of it, so that an elementwise operation over all of
    them (Adam, target updates, copies) is one call."""
    total = 0
    for r, c in shapes:
        total += r * c
    flat = matrix(1, total)
    views = [None] * len(shapes)  # sized once: no list growth on the heap
    offset = 0
    for i in range(len(shapes)):
        r, c = shapes[i]
        views[i] = flat[0, offset:offset + r * c].reshape((r, c))
        offset += r * c
    return flat, views


def staged(rows, cols):
    """A matrix and a flat array of its elements that writes through to it (row-major): rows are
    filled element by element through the array, which boxes nothing on ulab."""
    data = zeros(_typecode, rows * cols)
    m = _np.frombuffer(data, dtype=_np.float if _ulab else _np.float64).reshape((rows, cols))
    return m, data


def rows(m, start, count):
    """Rows [start, start + count) of m as a view (m itself when that is all of it)."""
    if start == 0 and count == len(m):
        return m
    return m[start:start + count]


def _head(m, n):
    """The first n rows of m: m itself when that is all of it (a view costs an object)."""
    return m if n == len(m) else m[:n]


def copy(dst, src):
    dst[:] = src


def fill(m, value, n):
    _head(m, n)[:] = value


def fill_uniform(m, rng, bound):
    rows, cols = m.shape
    for i in range(rows):
        for j in range(cols):
            m[i, j] = bound * (2.0 * rng.uniform() - 1.0)


# The products return the matrix that holds their result. ulab's dot has no out= and always
# allocates its result: writing that into a preallocated buffer would allocate and copy it once
# more (a slice assignment copies its right-hand side), so the result itself is returned and the
# caller keeps it in place of ``out`` (kernels_asm's write ``out`` and return it). ``scratch`` is
# for the pure-Python kernels.

def scratch_row(count):
    """The pure-Python products' scratch: none needed here."""
    return None


def dot(out, x, w, n, scratch=None):
    """x[:n] w (``out`` is not written on this backend)"""
    return _np.dot(_head(x, n), w)


def dot_tn(out, x, d, n, scratch=None, acc=False):
    """out = x[:n]^T d[:n], or out += that when ``acc``"""
    r = _np.dot(_head(x, n).T, _head(d, n))
    if acc:
        out += r
    else:
        out[:] = r


def dot_nt(out, d, w, n, scratch=None):
    """d[:n] w^T (``out`` is not written on this backend)"""
    return _np.dot(_head(d, n), w.T)


def add_bias(out, b, n):
    v = _head(out, n)
    v += b


def sum_rows(out, d, n, acc=False):
    """out = the sum of d's first n rows, or out += that when ``acc``"""
    r = _np.sum(_head(d, n), axis=0)
    if acc:
        out += r
    else:
        out[0, :] = r


def relu(y, n):
    v = _head(y, n)
    v *= v > 0.0


def dense(out, x, w, b, n, scratch, relu_out):
    """x[:n] w + b, then ReLU when ``relu_out`` (``out`` is not written on this backend): dot,
    add_bias and relu in one call, which on a board costs less than three. The ReLU is
    ``maximum``: on a Cortex-M0 half the instructions of ``r *= r > 0`` (the same values; a
    negative input gives +0, not -0)."""
    r = _np.dot(_head(x, n), w)
    r += b
    return _np.maximum(r, 0.0) if relu_out else r


def dense_grads(gw, gb, x, d, n, scratch, acc=False):
    """gw = x[:n]^T d[:n] and gb = the column sums of d[:n] (both added to when ``acc``)"""
    dn = _head(d, n)
    r = _np.dot(_head(x, n).T, dn)
    s = _np.sum(dn, axis=0)
    if acc:
        gw += r
        gb += s
    else:
        gw[:] = r
        gb[0, :] = s


def dot_nt_relu(h, d, w, n, scratch=None):
    """(d[:n] w^T) * (h[:n] > 0): the hidden layer's delta (``h`` is not written here)"""
    r = _np.dot(_head(d, n), w.T)
    r *= _head(h, n) > 0.0
    return r


def tanh(y, n):
    v = _head(y, n)
    _np.tanh(v, out=v)


def tanh_grad(d, y, n):
    t = _head(y, n) * _head(y, n)
    t *= -1.0
    t += 1.0
    v = _head(d, n)
    v *= t


def copy_cols(dst, dst_col, src, src_col, k, n):
    dst[:n, dst_col:dst_col + k] = src[:n, src_col:src_col + k]


def smooth_actions(dst, col, a, rng, std, limit, n, scratch):
    """dst[i, col + j] = clip(a[i, j] + clip(std N(0, 1), -limit, limit), -1, 1) for the first n
    rows, the normals drawn in row-major order (target policy smoothing). ``scratch``: a staged
    (matrix, flat array) pair of at least a's shape, where the noise is written."""
    noise, data = scratch
    k = a.shape[1]
    normal = rng.normal
    for i in range(n * k):
        e = std * normal()
        data[i] = -limit if e < -limit else (limit if e > limit else e)
    v = dst[:n, col:col + k]
    v[:] = _np.clip(_head(a, n) + _head(noise, n), -1.0, 1.0)


def row(values):
    """``values`` as the 1 x len(values) matrix ``affine`` broadcasts"""
    m = matrix(1, len(values))
    for j in range(len(values)):
        m[0, j] = values[j]
    return m


def affine(m, scale, offset, n):
    """m[:n] = m[:n] scale + offset, column j by scale[j] and offset[j] (rows of ``row``;
    ``offset`` None: none)"""
    v = _head(m, n)
    v *= scale
    if offset is not None:
        v += offset


def minimum(dst, src, n):
    v = _head(dst, n)
    v[:] = _np.minimum(v, _head(src, n))


def td_target(y, reward, done, gamma, n):
    """y[:n] = reward + gamma (1 - done) y"""
    v = _head(y, n)
    v *= 1.0 - _head(done, n)
    v *= gamma
    v += _head(reward, n)


def scale_rows(d, s, n):
    """d[i, :] *= s[i, 0] for the first n rows"""
    v = _head(d, n)
    v *= _head(s, n)


def bad(m, n):
    """True when the first n rows of m hold a value that is not finite (their sum is not)."""
    s = float(_np.sum(_head(m, n)))
    return s - s != 0.0


def mse_grad(d, q, y, n, batch):
    """d[:n] = 2 (q - y) / batch, the gradient of mean((q - y)^2) over a batch of ``batch`` rows"""
    v = _head(d, n)
    v[:] = _head(q, n) - _head(y, n)
    v *= 2.0 / batch


def adam(p, g, m, v, tmp, step_size, beta1, beta2, eps, inv_sqrt_bc2):
    """One Adam update of p in place; tmp is a scratch matrix of p's shape, and g, spent, is
    overwritten (with (1 - beta1) g). 16 passes, the cheapest of them where an element's
    arithmetic allows (a Cortex-M0 multiplies in about 150 instructions, adds in 85)."""
    m *= beta1
    v *= beta2
    tmp -= tmp  # zero (tmp holds the last step: finite, or NaN in both ways of clearing it)
    tmp += g
    tmp *= g
    tmp *= 1.0 - beta2
    v += tmp
    g *= 1.0 - beta1
    m += g
    _np.sqrt(v, out=tmp)
    tmp *= inv_sqrt_bc2
    tmp += eps
    tmp **= -1.0
    tmp *= m
    tmp *= step_size
    p -= tmp


def adam16(p, g, qm, qv, scales, k, step_size, beta1, beta2, eps, inv_sqrt_bc2):
    """Adam on int16 moments: qm codes m / s_m, qv codes sqrt(v) / s_v, (s_m, s_v) is row k of
    ``scales``. Dequantize, update, requantize with the new largest values, then step p with the
    float moments (two arrays of p's size per call; the rest is in place)."""
    m = qm * float(scales[k, 0])
    m *= beta1
    m += g * (1.0 - beta1)
    r = qv * float(scales[k, 1])
    r *= r
    r *= beta2
    r += (g * g) * (1.0 - beta2)
    _np.sqrt(r, out=r)
    new_sm = float(_np.max(abs(m))) / 32767.0
    new_sv = float(_np.max(r)) / 32767.0
    qm[:] = _np.around(m / new_sm) if new_sm > 0.0 else 0.0 * m
    qv[:] = (_np.minimum(_np.ceil(r / new_sv - ROUND_UP_SLACK), 32767.0) if new_sv > 0.0
             else 0.0 * r)
    scales[k, 0] = new_sm
    scales[k, 1] = new_sv
    r *= inv_sqrt_bc2
    r += eps
    m /= r
    m *= step_size
    p -= m


def polyak(target, online, tau):
    """target = (1 - tau) target + tau online, in place without a temporary"""
    target -= online
    target *= 1.0 - tau
    target += online
