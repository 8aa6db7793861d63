"""Matrix kernels on ulab.numpy, or numpy standing in for it on CPython.

Only the ulab subset is used: at most 2-D, no fancy indexing, no ``@``, ``out=`` only where ulab has it
(math ufuncs). A ``dot`` always allocates its result on ulab; everything else updates in place.
"""

from .kernels_py import ROUND_UP_SLACK

_np = None
_ulab = False


def init(np, is_ulab):
    global _np, _ulab
    _np = np
    _ulab = is_ulab


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


def rows(m, start, count):
    """Rows [start, start + count) of m as a view (m itself when that is all of it)."""
    if start == 0 and count == m.shape[0]:
        return m
    return m[start:start + count]


def copy(dst, src):
    dst[:] = src


def fill(m, value, n):
    m[:n] = value


def fill_uniform(m, rng, bound):
    rows, cols = m.shape
    for i in range(rows):
        for j in range(cols):
            m[i, j] = bound * (2.0 * rng.uniform() - 1.0)


def dot(out, x, w, n):
    """out[:n] = x[:n] w"""
    out[:n] = _np.dot(x[:n], w)


def dot_tn(out, x, d, n, acc=False):
    """out = x[:n]^T d[:n], or out += that when ``acc``"""
    if acc:
        out += _np.dot(x[:n].T, d[:n])
    else:
        out[:] = _np.dot(x[:n].T, d[:n])


def dot_nt(out, d, w, n):
    """out[:n] = d[:n] w^T"""
    out[:n] = _np.dot(d[:n], w.T)


def add_bias(out, b, n):
    out[:n] += b


def sum_rows(out, d, n, acc=False):
    """out = the sum of d's first n rows, or out += that when ``acc``"""
    if acc:
        out += _np.sum(d[:n], axis=0)
    else:
        out[0, :] = _np.sum(d[:n], axis=0)


def relu(y, n):
    y[:n] = _np.maximum(y[:n], 0.0)


def dot_nt_relu(h, d, w, n):
    """h[:n] = (d[:n] w^T) * (h[:n] > 0): the hidden delta written over its own activation."""
    h[:n] = _np.dot(d[:n], w.T) * (h[:n] > 0.0)


def tanh(y, n):
    y[:n] = _np.tanh(y[:n])


def tanh_grad(d, y, n):
    d[:n] *= 1.0 - y[:n] * y[:n]


def copy_cols(dst, dst_col, src, src_col, k, n):
    dst[:n, dst_col:dst_col + k] = src[:n, src_col:src_col + k]


def minimum(dst, src, n):
    dst[:n] = _np.minimum(dst[:n], src[:n])


def td_target(y, reward, done, gamma, n):
    """y[:n] = reward + gamma (1 - done) y"""
    y[:n] *= 1.0 - done[:n]
    y[:n] *= gamma
    y[:n] += reward[:n]


def scale_rows(d, s, n):
    """d[i, :] *= s[i, 0] for the first n rows"""
    d[:n] *= s[:n]


def mse_grad(d, q, y, n, batch):
    """d[:n] = 2 (q - y) / batch, the gradient of mean((q - y)^2) over a batch of ``batch`` rows"""
    d[:n] = q[:n] - y[:n]
    d[:n] *= 2.0 / batch


def adam(p, g, m, v, tmp, step_size, beta1, beta2, eps, inv_sqrt_bc2):
    """One Adam update of p in place; tmp is a scratch matrix of p's shape."""
    m *= beta1
    tmp *= 0.0
    tmp += g
    tmp *= 1.0 - beta1
    m += tmp
    v *= beta2
    tmp *= 0.0
    tmp += g
    tmp *= g
    tmp *= 1.0 - beta2
    v += tmp
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
