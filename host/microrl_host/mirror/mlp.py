"""A multilayer perceptron with ReLU hidden layers and a tanh or linear output, forward and backward.

All parameters live in ONE flat contiguous vector (and the gradients in another of the same layout):
layer by layer, `W_k` (in, out) row-major then `b_k` (1, out). The per-layer `weights[k]` and `biases[k]`
are views into it, so Adam and Polyak averaging are one vectorised operation per network. Every buffer
is allocated once for `max_batch` rows; `forward` and `backward` work on the first `n` rows in place.

W_k followed by b_k is the (in + 1, out) matrix `[W_k; b_k]` (`layers[k]`). Layer inputs are kept with a
trailing column of ones, so `[x, 1] @ [W; b] = x W + b` is one matrix product, and the gradient
`[x, 1]^T dz` is `[dW; db]` in one product too: on batches of 100 rows a separate bias add or bias sum
costs a third to a half of the product itself.
"""

import math

import numpy as np

OUTPUT_ACTIVATIONS = ("tanh", "linear")


def parameter_count(sizes):
    """Length of the flat parameter vector of an MLP with these layer sizes."""
    return sum((fan_in + 1) * fan_out for fan_in, fan_out in zip(sizes[:-1], sizes[1:]))


def tensor_lengths(sizes):
    """Sizes of the tensors W_1, b_1, W_2, b_2, ... in the flat layout (the device's tensors)."""
    out = []
    for fan_in, fan_out in zip(sizes[:-1], sizes[1:]):
        out += [fan_in * fan_out, fan_out]
    return out


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
        self.layers, self.weights, self.biases = self._views(self.params)
        self.layer_grads, self.weight_grads, self.bias_grads = self._views(self.grads)
        # Forward: the network input and each layer's output, each with a trailing ones column, and
        # the ReLU masks; backward: dL/d[input, 1] of each layer (the last column is unused).
        self._input = np.ones((max_batch, sizes[0] + 1), self.dtype)
        self._outputs = [np.ones((max_batch, s + 1), self.dtype) for s in sizes[1:]]
        self._masks = [np.ones((max_batch, s + 1), self.dtype) for s in sizes[1:-1]]
        self._input_grads = [np.zeros((max_batch, s + 1), self.dtype) for s in sizes[:-1]]
        self._tanh_grad = np.zeros((max_batch, sizes[-1]), self.dtype)
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
        layers, weights, biases = [], [], []
        offset = 0
        for fan_in, fan_out in zip(self.sizes[:-1], self.sizes[1:]):
            layer = flat[offset:offset + (fan_in + 1) * fan_out].reshape(fan_in + 1, fan_out)
            layers.append(layer)
            weights.append(layer[:fan_in])
            biases.append(layer[fan_in:])
            offset += (fan_in + 1) * fan_out
        return layers, weights, biases

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
        next forward overwrites."""
        x_aug = self._input[:n]
        x_aug[:, :-1] = x
        last = len(self.layers) - 1
        for k, layer in enumerate(self.layers):
            h_aug = self._outputs[k][:n]
            h = h_aug[:, :-1]
            np.matmul(x_aug, layer, out=h)
            if k < last:
                # ReLU over the whole buffer: the ones column stays one.
                mask = self._masks[k][:n]
                np.greater(h_aug, self._zero, out=mask)
                np.multiply(h_aug, mask, out=h_aug)
            elif self.output_activation == "tanh":
                np.tanh(h, out=h)
            x_aug = h_aug
        return h

    def backward(self, dy, n, param_grads=True):
        """Back-propagate dL/dy (n, out) through the last forward; return dL/dx (n, in), a view
        into an internal buffer. Overwrites the parameter gradients unless `param_grads` is False."""
        if self.output_activation == "tanh":
            y = self._outputs[-1][:n, :-1]
            dz = self._tanh_grad[:n]
            np.multiply(y, y, out=dz)
            np.subtract(1.0, dz, out=dz)
            np.multiply(dz, dy, out=dz)
        else:
            dz = dy
        for k in range(len(self.layers) - 1, -1, -1):
            x_aug = self._outputs[k - 1][:n] if k > 0 else self._input[:n]
            if param_grads:
                np.matmul(x_aug.T, dz, out=self.layer_grads[k])  # [dW; db] = [x, 1]^T dz
            dx_aug = self._input_grads[k][:n]
            times_transpose(dz, self.layers[k], dx_aug)
            if k > 0:
                np.multiply(dx_aug, self._masks[k - 1][:n], out=dx_aug)
            dz = dx_aug[:, :-1]
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


def times_transpose(dz, layer, out):
    """out = dz @ layer^T over the last two axes. With one output column that is an outer product,
    which a broadcast multiply computes exactly (one term per sum) at a third of BLAS's cost."""
    layer_t = layer.T if layer.ndim == 2 else layer.transpose(0, 2, 1)
    if dz.shape[-1] == 1:
        np.multiply(dz, layer_t, out=out)
    else:
        np.matmul(dz, layer_t, out=out)
