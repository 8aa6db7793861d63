"""An int8 copy of the actor for acting: quantized actors collect experience while the learner
stays in full precision (ActorQ, Lam et al. 2021; AcceRL).

Arithmetic, the same on every backend, in the host mirror and in the policy ``microrl export``
writes:
- Weights: per layer, symmetric int8 ``q = floor(W * (127 / max|W|) + 127.5) - 127`` (round half
  up) with the scale ``s_w = max|W| / 127``; biases stay float.
- Activations: integers with one scale per vector, recomputed every call. The input is rounded to
  ``round(x * Q / max|x|)``; a hidden layer's ReLU output to ``round(h * Q / max h)``. ``Q``, the
  largest level (``levels``), is chosen from the fan-in so that every dot product, and every partial
  sum of one, is an integer below 2**24: exact in small ints on every port (no long ints, no float
  boxes in the inner loop) and exact when ulab's dot sums it in float32.
- A layer: ``acc = x_q W_q`` (integers), ``y = acc * ((max|x| / Q) * s_w) + b``, ReLU on hidden
  layers, tanh on the output. The float work is a few operations per unit; the multiply-adds are
  all integer.

The block between the ``forward`` markers uses nothing but its arguments, ``array`` and
``math.tanh``: ``microrl export`` copies it verbatim into the standalone ``policy.py``, so the
exported policy computes what this module computes, bit for bit.
"""

from .backend import K, NAME, _np

# --- forward: begin (copied verbatim into the exported policy.py) ---
from array import array
from math import tanh

FLOAT_TYPECODE = "d" if 1.0 + 2.0 ** -40 != 1.0 else "f"  # the firmware's own float: lossless
_ACC_BOUND = 16777215  # 2**24 - 1: the largest integer a dot product may reach
_MAX_LEVEL = 32767


def levels(fan_in):
    """Largest activation level Q of a layer with ``fan_in`` inputs: fan_in * 127 * Q < 2**24."""
    q = _ACC_BOUND // (127 * fan_in)
    return q if q < _MAX_LEVEL else _MAX_LEVEL


def quantize_input(x, n, q, xq):
    """xq[:n] = round(x * q / max|x|) (half up); returns the scale max|x| / q (0.0 when x is 0)."""
    a = 0.0
    for k in range(n):
        v = x[k]
        if v < 0.0:
            v = -v
        if v > a:
            a = v
    if not a > 0.0:
        for k in range(n):
            xq[k] = 0
        return 0.0
    inv = q / a
    off = q + 0.5  # shifts x * inv to >= 0.5, where int() truncation is floor
    for k in range(n):
        xq[k] = int(x[k] * inv + off) - q
    return a / q


def forward_py(layers, x, xq, acc, h):
    """The network's output for input ``x`` in h[:n_out], in pure Python.

    ``layers``: per layer ``[w, s_w, b, n_in, n_out, q]``, w the int8 weights (n_in, n_out)
    row-major in an ``array('b')``, b the float biases, q the input level of the layer. ``xq`` and
    ``acc``: lists of ints, ``h``: a float array, each at least as long as the widest layer.
    Allocates nothing but float boxes.
    """
    last = len(layers) - 1
    sx = quantize_input(x, layers[0][3], layers[0][5], xq)
    for layer in range(last + 1):
        w, s_w, b, n_in, n_out, _ = layers[layer]
        for j in range(n_out):
            acc[j] = 0
        i = 0
        for k in range(n_in):
            v = xq[k]
            if v:  # ReLU zeros cost nothing: input-major order skips them
                for j in range(n_out):
                    acc[j] += v * w[i + j]
            i += n_out
        c = sx * s_w
        if layer == last:
            for j in range(n_out):
                h[j] = tanh(acc[j] * c + b[j])
            return h
        a = 0.0
        for j in range(n_out):
            y = acc[j] * c + b[j]
            h[j] = y
            if y > a:
                a = y
        q = layers[layer + 1][5]
        if a > 0.0:
            inv = q / a
            for j in range(n_out):
                y = h[j]
                xq[j] = int(y * inv + 0.5) if y > 0.0 else 0
            sx = a / q
        else:
            for j in range(n_out):
                xq[j] = 0
            sx = 0.0
    return h


def forward_nd(np, layers, x, xq, xq_row, h):
    """forward_py with ulab's (or numpy's) dot: the same result, bit for bit.

    Here w is an ndarray (n_in, n_out) of the integer weights and b an ndarray (1, n_out); the dot
    products are integers below 2**24, which a float32 or float64 sum holds exactly, and every other
    operation is forward_py's, element by element. ``xq_row``: a (1, n_in) float ndarray.
    """
    last = len(layers) - 1
    n_in = layers[0][3]
    sx = quantize_input(x, n_in, layers[0][5], xq)
    for k in range(n_in):
        xq_row[0, k] = xq[k]
    v = xq_row
    for layer in range(last + 1):
        w, s_w, b, n_in, n_out, _ = layers[layer]
        y = np.dot(v, w)
        c = sx * s_w
        if layer == last:
            for j in range(n_out):
                h[j] = tanh(float(y[0, j]) * c + float(b[0, j]))
            return h
        y *= c
        y += b
        y = np.maximum(y, 0.0)
        a = float(np.max(y))
        q = layers[layer + 1][5]
        if a > 0.0:
            y *= q / a
            y += 0.5
            v = np.floor(y)
            sx = a / q
        else:
            v = y * 0.0
            sx = 0.0
    return h
# --- forward: end ---


def _int_list(n):
    return [0] * n  # small ints live in the list's slots: reading, writing them allocates nothing


def _floats(n):
    return array(FLOAT_TYPECODE, bytes((8 if FLOAT_TYPECODE == "d" else 4) * n))


class QActor:
    """``QActor(sizes)``: int8 weights for an actor of these layer sizes; ``refresh(mlp)`` fills
    them from a float MLP, ``policy(obs)`` is the action in [-1, 1].

    Storage: ``array('b')`` weights on the pure-Python backend, an int8 ndarray on ulab (its dot is
    as fast on int8 as on float, at a quarter of float32's bytes), a float64 ndarray of the
    integers on numpy (BLAS wants floats); float biases in the backend's float.
    """

    def __init__(self, sizes):
        sizes = tuple(sizes)
        if len(sizes) < 2 or any(not isinstance(s, int) or s <= 0 for s in sizes):
            raise ValueError("sizes must be at least two positive integers, got %r" % (sizes,))
        self.sizes = sizes
        width = max(sizes)
        self._xq = _int_list(width)
        self._acc = _int_list(width)
        self._h = _floats(width)
        self._nd = _np is not None  # array backends; python and viper store arrays
        self._xq_row = _np.zeros((1, sizes[0])) if self._nd else None
        self.layers = []
        for k in range(len(sizes) - 1):
            n_in, n_out = sizes[k], sizes[k + 1]
            if not self._nd:
                w = array("b", bytes(n_in * n_out))
                b = _floats(n_out)
            elif NAME == "ulab":
                w = _np.zeros((n_in, n_out), dtype=_np.int8)
                b = _np.zeros((1, n_out))
            else:
                w = _np.zeros((n_in, n_out))
                b = _np.zeros((1, n_out))
            self.layers.append([w, 0.0, b, n_in, n_out, levels(n_in)])

    def refresh(self, mlp):
        """Requantize in place from the float network ``mlp`` (its params [W1, b1, W2, b2, ...])."""
        params = mlp.params
        if len(params) != 2 * len(self.layers):
            raise ValueError("the network has %d layers, this QActor %d"
                             % (len(params) // 2, len(self.layers)))
        for k, layer in enumerate(self.layers):
            wf, bf = params[2 * k], params[2 * k + 1]
            n_in, n_out = layer[3], layer[4]
            if tuple(K.shape(wf)) != (n_in, n_out) or tuple(K.shape(bf)) != (1, n_out):
                raise ValueError("layer %d of the network is %r, this QActor's is %r"
                                 % (k, tuple(K.shape(wf)), (n_in, n_out)))
            if self._nd:
                layer[1] = _quantize_nd(wf, layer[0])
                layer[2][:] = bf
            else:
                layer[1] = _quantize_py(wf, n_in, n_out, layer[0])
                b = layer[2]
                for j in range(n_out):
                    b[j] = K.get(bf, 0, j)

    def actions(self, obs):
        """The actions for one observation (any indexable of floats): the first ``sizes[-1]``
        entries of an array the next call overwrites, each in [-1, 1]."""
        if self._nd:
            return forward_nd(_np, self.layers, obs, self._xq, self._xq_row, self._h)
        return forward_py(self.layers, obs, self._xq, self._acc, self._h)

    def policy(self, obs):
        """The first action (the action of a one-dimensional actor) for one observation."""
        return self.actions(obs)[0]


def _quantize_py(wf, n_in, n_out, w):
    """w = int8 of wf (round half up at 127 / max|wf|); returns the scale max|wf| / 127."""
    m = 0.0
    for i in range(n_in):
        for j in range(n_out):
            v = K.get(wf, i, j)
            if v < 0.0:
                v = -v
            if v > m:
                m = v
    if not m > 0.0:
        for i in range(n_in * n_out):
            w[i] = 0
        return 0.0
    inv = 127.0 / m
    for i in range(n_in):
        base = i * n_out
        for j in range(n_out):
            w[base + j] = int(K.get(wf, i, j) * inv + 127.5) - 127
    return m / 127.0


def _quantize_nd(wf, w):
    """_quantize_py on ndarrays, element for element the same operations."""
    m = float(_np.max(abs(wf)))
    if not m > 0.0:
        w[:] = 0.0
        return 0.0
    q = wf * (127.0 / m)
    q += 127.5
    q = _np.floor(q)
    q -= 127.0
    w[:] = q  # exact integers: ulab's rounding float-to-int conversion changes nothing
    return m / 127.0
