"""A multilayer perceptron with ReLU hidden layers and a tanh or linear output, forward and backward.

All parameters live in ONE flat contiguous vector (and the gradients in another of the same layout):
layer by layer, `W_k` (in, out) row-major then `b_k` (1, out). The per-layer `weights[k]` and `biases[k]`
are views into it, so Adam and Polyak averaging are one vectorised operation per network. Every buffer
is allocated once for `max_batch` rows; `forward` and `backward` work on the first `n` rows in place.
"""

import math

import numpy as np

OUTPUT_ACTIVATIONS = ("tanh", "linear")


def parameter_count(sizes):
    """Length of the flat parameter vector of an MLP with these layer sizes."""
    return sum((fan_in + 1) * fan_out for fan_in, fan_out in zip(sizes[:-1], sizes[1:]))


class MLP:
    """`MLP(sizes, output_activation, max_batch, rng, dtype)`, sizes = (in, h1, ..., out).

    With `rng=None` the parameters start at zero (for networks that copy another one). `params` and
    `grads` may be given as flat views into a larger buffer, so several networks share one vector.
    """

    def __init__(self, sizes, output_activation, max_batch, rng=None, dtype=np.float64,
                 params=None, grads=None):
        sizes = tuple(int(s) if isinstance(s, np.integer) else s for s in sizes)
        if len(sizes) < 2 or any(not isinstance(s, (int, np.integer)) or s <= 0 for s in sizes):
            raise ValueError(f"sizes must be at least two positive ints, got {sizes!r}")
        if output_activation not in OUTPUT_ACTIVATIONS:
            raise ValueError(f"output_activation must be one of {OUTPUT_ACTIVATIONS}, "
                             f"got {output_activation!r}")
        if not isinstance(max_batch, int) or max_batch <= 0:
            raise ValueError(f"max_batch must be a positive int, got {max_batch!r}")
        self.sizes = sizes
        self.output_activation = output_activation
        self.max_batch = max_batch
        self.dtype = np.dtype(dtype)
        count = parameter_count(sizes)
        self.params = self._flat(params, count, "params")
        self.grads = self._flat(grads, count, "grads")
        self.weights, self.biases = self._views(self.params)
        self.weight_grads, self.bias_grads = self._views(self.grads)
        # Forward: layer outputs (after the activation) and the ReLU masks; backward: the
        # gradient with respect to each layer's input (index 0 is dL/dx of the network input).
        self._outputs = [np.zeros((max_batch, s), self.dtype) for s in sizes[1:]]
        self._masks = [np.zeros((max_batch, s), self.dtype) for s in sizes[1:-1]]
        self._input_grads = [np.zeros((max_batch, s), self.dtype) for s in sizes[:-1]]
        self._tanh_grad = np.zeros((max_batch, sizes[-1]), self.dtype)
        self._inputs = [None] * (len(sizes) - 1)
        self._zero = self.dtype.type(0)
        self._polyak_tmp = np.zeros(count, self.dtype)
        if rng is not None:
            self.init_params(rng)

    def _flat(self, given, count, name):
        if given is None:
            return np.zeros(count, self.dtype)
        if given.shape != (count,) or given.dtype != self.dtype or not given.flags.c_contiguous:
            raise ValueError(f"{name} must be a contiguous ({count},) {self.dtype} vector")
        return given

    def _views(self, flat):
        weights, biases = [], []
        offset = 0
        for fan_in, fan_out in zip(self.sizes[:-1], self.sizes[1:]):
            weights.append(flat[offset:offset + fan_in * fan_out].reshape(fan_in, fan_out))
            offset += fan_in * fan_out
            biases.append(flat[offset:offset + fan_out].reshape(1, fan_out))
            offset += fan_out
        return weights, biases

    def init_params(self, rng):
        """PyTorch nn.Linear default: U(-1/sqrt(fan_in), 1/sqrt(fan_in)), W_k row-major then b_k,
        layer by layer; that is the flat layout, so one block draw covers the whole network."""
        scale = np.empty(self.params.shape[0])
        offset = 0
        for fan_in, fan_out in zip(self.sizes[:-1], self.sizes[1:]):
            span = (fan_in + 1) * fan_out
            scale[offset:offset + span] = 1.0 / math.sqrt(fan_in)
            offset += span
        uniforms = rng.uniform_array(self.params.shape[0])
        self.params[:] = scale * (2.0 * uniforms - 1.0)

    def forward(self, x, n):
        """Outputs for the first `n` rows of `x` (n, in), a view into an internal buffer that the
        next forward overwrites. `x` must stay unchanged until `backward`."""
        last = len(self.weights) - 1
        for k, (w, b) in enumerate(zip(self.weights, self.biases)):
            self._inputs[k] = x
            h = self._outputs[k][:n]
            np.dot(x, w, out=h)
            np.add(h, b, out=h)
            if k < last:
                mask = self._masks[k][:n]
                np.greater(h, self._zero, out=mask)
                np.multiply(h, mask, out=h)  # ReLU, keeping the mask for backward
            elif self.output_activation == "tanh":
                np.tanh(h, out=h)
            x = h
        return x

    def backward(self, dy, n, param_grads=True):
        """Back-propagate dL/dy (n, out) through the last forward; return dL/dx (n, in), a view
        into an internal buffer. Overwrites the parameter gradients unless `param_grads` is False."""
        if self.output_activation == "tanh":
            y = self._outputs[-1][:n]
            dz = self._tanh_grad[:n]
            np.multiply(y, y, out=dz)
            np.subtract(1.0, dz, out=dz)
            np.multiply(dz, dy, out=dz)
        else:
            dz = dy
        for k in range(len(self.weights) - 1, -1, -1):
            if param_grads:
                np.dot(self._inputs[k].T, dz, out=self.weight_grads[k])
                np.add.reduce(dz, axis=0, out=self.bias_grads[k][0])
            dx = self._input_grads[k][:n]
            np.dot(dz, self.weights[k].T, out=dx)
            if k > 0:
                np.multiply(dx, self._masks[k - 1][:n], out=dx)
            dz = dx
        return dz

    def copy_from(self, other):
        """Copy all parameters of a network with the same sizes."""
        np.copyto(self.params, other.params)

    def polyak_from(self, other, tau):
        """Soft update: params = (1 - tau) * params + tau * other.params."""
        np.multiply(other.params, tau, out=self._polyak_tmp)
        self.params *= 1.0 - tau
        self.params += self._polyak_tmp

    def get_weights(self):
        """Copies of [W_0, b_0, W_1, b_1, ...] with W (in, out) and b (out,)."""
        out = []
        for w, b in zip(self.weights, self.biases):
            out += [w.copy(), b[0].copy()]
        return out

    def set_weights(self, arrays):
        """Set parameters from [W_0, b_0, W_1, b_1, ...] as returned by `get_weights`."""
        if len(arrays) != 2 * len(self.weights):
            raise ValueError(f"arrays must hold {2 * len(self.weights)} arrays, got {len(arrays)}")
        for k, (w, b) in enumerate(zip(self.weights, self.biases)):
            w[:] = np.asarray(arrays[2 * k]).reshape(w.shape)
            b[:] = np.asarray(arrays[2 * k + 1]).reshape(b.shape)
