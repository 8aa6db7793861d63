"""Mirror of the device's int8 acting actor (`device/microrl/qactor.py`), in numpy.

Same arithmetic, operation for operation, in float64: per-layer symmetric int8 weights
`q = floor(W * (127 / max|W|) + 127.5) - 127` with scale `max|W| / 127` and float biases; integer
activations with one scale per vector, `round(x * Q / max|x|)` (half up), `Q = levels(fan_in)` so
that every dot product is an integer below 2**24; a layer is `y = (x_q W_q) * ((max|x| / Q) * s_w)
+ b`, ReLU hidden, tanh out. The integer dot products are exact in float64 whatever order BLAS sums
in, and the output tanh is `math.tanh`, the C library's, as on the device: `policy` equals the
device's `QActor.policy` under a float64 MicroPython exactly.
"""

import math

import numpy as np

ACC_BOUND = 2 ** 24 - 1
MAX_LEVEL = 32767


def levels(fan_in):
    """Largest activation level of a layer with `fan_in` inputs: fan_in * 127 * Q < 2**24."""
    return min(ACC_BOUND // (127 * fan_in), MAX_LEVEL)


def quantize_weights(w):
    """(int8 array, scale) of a float matrix: round half up at 127 / max|w|, scale max|w| / 127."""
    w = np.asarray(w, np.float64)
    m = float(np.max(np.abs(w))) if w.size else 0.0
    if not m > 0.0:
        return np.zeros(w.shape, np.int8), 0.0
    q = np.floor(w * (127.0 / m) + 127.5) - 127.0
    return q.astype(np.int8), m / 127.0


class QActor:
    """`QActor(sizes)`; `refresh(mlp)` requantizes from a float `MLP`; `actions(obs)` -> the
    `sizes[-1]` actions (a float64 array), `policy(obs)` -> the first one (a float).

    After a refresh: `weights_q[k]` (int8, (in, out)), `scales[k]`, `biases[k]` (float64, (out,))
    and `levels[k]` (the input level of layer k) describe the network completely.
    """

    def __init__(self, sizes):
        sizes = tuple(int(s) for s in sizes)
        if len(sizes) < 2 or min(sizes) <= 0:
            raise ValueError(f"sizes must be at least two positive ints, got {sizes!r}")
        self.sizes = sizes
        pairs = list(zip(sizes[:-1], sizes[1:]))
        self.weights_q = [np.zeros((i, o), np.int8) for i, o in pairs]
        self.scales = [0.0] * len(pairs)
        self.biases = [np.zeros(o) for _, o in pairs]
        self.levels = [levels(i) for i, _ in pairs]
        self._weights_f = [np.zeros((i, o)) for i, o in pairs]  # the int8 values as BLAS floats
        self._xq = np.zeros(sizes[0])
        self._y = [np.zeros(o) for _, o in pairs]
        self._out = np.zeros(sizes[-1])

    def refresh(self, mlp):
        """Requantize from `mlp` (its `weights[k]` (in, out) and `biases[k]` (1, out))."""
        if tuple(mlp.sizes) != self.sizes:
            raise ValueError(f"the network has sizes {tuple(mlp.sizes)}, this QActor {self.sizes}")
        for k, (w, b) in enumerate(zip(mlp.weights, mlp.biases)):
            self.set_layer(k, w, np.reshape(b, -1))

    def set_layer(self, k, w, b):
        """Quantize layer `k` from a float weight matrix (in, out) and bias vector (out,)."""
        q, scale = quantize_weights(w)
        self.weights_q[k][...] = q
        self._weights_f[k][...] = q
        self.scales[k] = scale
        self.biases[k][...] = b

    def policy(self, obs):
        """The first action (the action of a one-dimensional actor) for one observation."""
        return float(self.actions(obs)[0])

    def actions(self, obs):
        """The actions in [-1, 1] for one observation (an array the next call overwrites)."""
        q = self.levels[0]
        x = [float(v) for v in obs]
        a = max(abs(v) for v in x)
        xq = self._xq
        if a > 0.0:
            inv = q / a
            off = q + 0.5
            xq[:] = [math.floor(v * inv + off) - q for v in x]
            sx = a / q
        else:
            xq[:] = 0.0
            sx = 0.0
        last = len(self.scales) - 1
        for k in range(last + 1):
            c = sx * self.scales[k]
            if k == last:
                out = self._out
                acc = np.dot(xq, self._weights_f[k])
                for j in range(out.size):
                    out[j] = math.tanh(float(acc[j]) * c + float(self.biases[k][j]))
                return out
            y = self._y[k]
            np.dot(xq, self._weights_f[k], out=y)
            y *= c
            y += self.biases[k]
            a = float(y.max())
            q = self.levels[k + 1]
            if a > 0.0:
                np.maximum(y, 0.0, out=y)  # ReLU: the negatives round to level 0
                y *= q / a
                y += 0.5
                xq = np.floor(y, out=y)
                sx = a / q
            else:
                xq = y
                xq[:] = 0.0
                sx = 0.0
        raise AssertionError("unreachable")
