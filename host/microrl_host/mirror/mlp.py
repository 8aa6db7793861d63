"""A multilayer perceptron with ReLU hidden layers and a tanh or linear output, forward and backward.

All parameters live in ONE flat contiguous vector (and the gradients in another of the same layout):
layer by layer, `W_k` (in, out) row-major then `b_k` (1, out). The per-layer `weights[k]` and `biases[k]`
are views into it, so Adam and Polyak averaging are one vectorised operation per network. Every buffer
is allocated once for `max_batch` rows; `forward` and `backward` work on the first `n` rows in place.

W_k followed by b_k is the (in + 1, out) matrix `[W_k; b_k]` (`layers[k]`). Layer inputs are kept with a
trailing column of ones, so `[x, 1] @ [W; b] = x W + b` is one matrix product, and the gradient
`[x, 1]^T dz` is `[dW; db]` in one product too: on batches of 100 rows a separate bias add or bias sum
costs a third to a half of the product itself.

`forward` and `backward` run from plans: the views of every buffer for `n` rows, taken once per `n`
and kept, so a pass is the numpy calls themselves. Back-propagating through a layer multiplies by
W^T; numpy's BLAS does that product with W^T read in place at two thirds of the speed of the plain
one, so layers of more than `TRANSPOSE_COPY_MIN` parameters copy W^T once per pass and multiply
by the copy.

With the compiled kernels (`fused.py`, numba; the default after `make setup`) a plan also holds a
table of its views, and a pass is one call: the same BLAS products with the same arguments and the
ReLUs, masks and outer products in numpy's order, so the numbers are this numpy path's to the bit.
Objects built under `fused.numpy_path()` run the numpy calls below, the reference.
"""

import math

import numpy as np

from microrl_host.mirror import fused, intdot

OUTPUT_ACTIVATIONS = ("tanh", "linear")
PRODUCTS = ("float", "int16")  # "int16": the device's viper backend (see intdot)
TRANSPOSE_COPY_MIN = 1024  # layers with more parameters multiply by a contiguous copy of W^T


def parameter_count(sizes):
    """Length of the flat parameter vector of an MLP with these layer sizes."""
    return sum((fan_in + 1) * fan_out for fan_in, fan_out in zip(sizes[:-1], sizes[1:]))


def tensor_lengths(sizes):
    """Sizes of the tensors W_1, b_1, W_2, b_2, ... in the flat layout (the device's tensors)."""
    out = []
    for fan_in, fan_out in zip(sizes[:-1], sizes[1:]):
        out += [fan_in * fan_out, fan_out]
    return out


def forward_steps(x_aug, layers, outputs, masks, n, lead=0):
    """The forward pass over the first n rows as [(x_aug, layer, h_aug, h, relu mask or None)]:
    each layer's augmented input, stacked [W; b], augmented output (a hidden one ends in a column
    of ones), that output without the ones (what the product writes) and the ReLU mask. ``lead``:
    how many stacked axes (twins, online and target) come before the rows."""
    rows = (slice(None),) * lead + (slice(0, n),)
    steps = []
    last = len(layers) - 1
    for k, layer in enumerate(layers):
        h_aug = outputs[k][rows]
        mask = masks[k][rows] if k < last else None
        steps.append((x_aug, layer, h_aug, h_aug[..., :-1] if k < last else h_aug, mask))
        x_aug = h_aug
    return steps


def run_forward(steps, zero, output_activation, table=None):
    """Run forward_steps (their inputs already written); returns the output view. With `table`
    (fused.forward_table of the steps) the products and ReLUs are one compiled call."""
    if table is not None:
        fused.forward(table, zero)
    else:
        for x_aug, layer, h_aug, h, mask in steps:
            np.matmul(x_aug, layer, out=h)
            if mask is not None:
                # ReLU over the whole buffer: the ones column stays one.
                np.greater(h_aug, zero, out=mask)
                np.multiply(h_aug, mask, out=h_aug)
    out = steps[-1][3]
    if output_activation == "tanh":
        np.tanh(out, out=out)
    return out


class MLP:
    """`MLP(sizes, output_activation, max_batch, rng, dtype)`, sizes = (in, h1, ..., out).

    With `rng=None` the parameters start at zero (for networks that copy another one). `params` and
    `grads` may be given as flat views into a larger buffer, so several networks share one vector.
    `products="int16"` computes every layer as the device's viper backend does (`intdot`).
    """

    def __init__(self, sizes, output_activation, max_batch, rng=None, dtype=np.float64,
                 params=None, grads=None, products="float"):
        sizes = tuple(int(s) if isinstance(s, np.integer) else s for s in sizes)
        if len(sizes) < 2 or any(not isinstance(s, (int, np.integer)) or s <= 0 for s in sizes):
            raise ValueError(f"sizes must be at least two positive ints, got {sizes!r}")
        if output_activation not in OUTPUT_ACTIVATIONS:
            raise ValueError(f"output_activation must be one of {OUTPUT_ACTIVATIONS}, "
                             f"got {output_activation!r}")
        if not isinstance(max_batch, int) or max_batch <= 0:
            raise ValueError(f"max_batch must be a positive int, got {max_batch!r}")
        if products not in PRODUCTS:
            raise ValueError(f"products must be one of {PRODUCTS}, got {products!r}")
        self.sizes = sizes
        self.output_activation = output_activation
        self.max_batch = max_batch
        self.dtype = np.dtype(dtype)
        self.products = products
        self._wide = self.dtype == np.float64  # the storage intdot rounds to
        self._int_acts = None  # int16 products: the last forward's input and layer outputs
        count = parameter_count(sizes)
        self.params = self._flat(params, count, "params")
        self.grads = self._flat(grads, count, "grads")
        self.layers, self.weights, self.biases = self._views(self.params)
        self.layer_grads, self.weight_grads, self.bias_grads = self._views(self.grads)
        # Forward: the network input and each hidden layer's output, each with a trailing ones
        # column, the network output (contiguous: the small operations on it cost less), and the
        # ReLU masks; backward: dL/d[input, 1] of each layer (the last column is unused).
        self._input = np.ones((max_batch, sizes[0] + 1), self.dtype)
        self._outputs = ([np.ones((max_batch, s + 1), self.dtype) for s in sizes[1:-1]]
                         + [np.zeros((max_batch, sizes[-1]), self.dtype)])
        self._masks = [np.ones((max_batch, s + 1), self.dtype) for s in sizes[1:-1]]
        self._input_grads = [np.zeros((max_batch, s + 1), self.dtype) for s in sizes[:-1]]
        self._tanh_grad = np.zeros((max_batch, sizes[-1]), self.dtype)
        self._transposed = [np.zeros(layer.T.shape, self.dtype)
                            if layer.size > TRANSPOSE_COPY_MIN and layer.shape[1] > 1 else None
                            for layer in self.layers]
        self._zero = self.dtype.type(0)
        self._polyak_tmp = np.zeros(count, self.dtype)
        self._forward_plans = {}
        self._backward_plans = {}
        self._fused = fused.active() and products == "float"  # compiled passes (fused.py)
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

    def _forward_plan(self, n):
        """(input view, forward_steps, output view, fused table or None) for n rows."""
        plan = self._forward_plans.get(n)
        if plan is None:
            steps = forward_steps(self._input[:n], self.layers, self._outputs, self._masks, n)
            plan = self._forward_plans[n] = (self._input[:n, :-1], steps, steps[-1][3],
                                             fused.forward_table(steps) if self._fused else None)
        return plan

    def inputs(self, n):
        """The (n, in) input view that `forward(None, n)` reads."""
        return self._forward_plan(n)[0]

    def forward(self, x, n):
        """Outputs for the first `n` rows of `x` (n, in), a view into an internal buffer that the
        next forward overwrites. `x=None`: `inputs(n)` is already written (float products)."""
        if self.products == "int16":
            return self._forward_int(x, n)
        x_in, steps, _, table = self._forward_plan(n)
        if x is not None:
            np.copyto(x_in, x)
        return run_forward(steps, self._zero, self.output_activation, table)

    def _backward_plan(self, n):
        """(output, tanh grad, [(x_aug^T, [dW; db], layer, W^T copy, dx_aug, dx, mask)]) for n
        rows, last layer first."""
        plan = self._backward_plans.get(n)
        if plan is None:
            steps = []
            for k in range(len(self.layers) - 1, -1, -1):
                x_aug = self._outputs[k - 1][:n] if k > 0 else self._input[:n]
                dx_aug = self._input_grads[k][:n]
                mask = self._masks[k - 1][:n] if k > 0 else None
                steps.append((x_aug.T, self.layer_grads[k], self.layers[k], self._transposed[k],
                              dx_aug, dx_aug[:, :-1], mask))
            y, tanh_grad = self._outputs[-1][:n], self._tanh_grad[:n]
            table = None
            if self._fused:
                table = fused.backward_table(
                    [(y, tanh_grad if self.output_activation == "tanh" else None, steps)])
            plan = self._backward_plans[n] = (y, tanh_grad, steps, table)
        return plan

    def backward(self, dy, n, param_grads=True, input_grads=True):
        """Back-propagate dL/dy (n, out) through the last forward; return dL/dx (n, in), a view
        into an internal buffer. Overwrites the parameter gradients unless `param_grads` is False;
        with `input_grads` False, stops at the first layer's gradients and returns None."""
        if self.products == "int16":
            return self._backward_int(dy, n, param_grads, input_grads)
        y, dz, steps, table = self._backward_plan(n)
        if table is not None and dy.dtype == self.dtype and dy.shape == y.shape:
            fused.backward(table, dy[None], self._zero, param_grads, input_grads)
            return steps[-1][5] if input_grads else None
        if self.output_activation == "tanh":
            np.multiply(y, y, out=dz)
            np.subtract(1.0, dz, out=dz)
            np.multiply(dz, dy, out=dz)
        else:
            dz = dy
        last = len(steps) - 1
        for k, (x_aug_t, grad, layer, transposed, dx_aug, dx, mask) in enumerate(steps):
            if param_grads:
                np.matmul(x_aug_t, dz, out=grad)  # [dW; db] = [x, 1]^T dz
            if k == last and not input_grads:
                return None
            times_transpose(dz, layer, dx_aug, transposed)
            if mask is not None:
                np.multiply(dx_aug, mask, out=dx_aug)
            dz = dx
        return dz

    def _forward_int(self, x, n):
        """forward with the device's integer products: each layer one ``intdot.dense``."""
        h = np.array(np.reshape(x, (-1, self.sizes[0]))[:n], np.float64)
        acts = [h]
        last = len(self.weights) - 1
        for k, (w, b) in enumerate(zip(self.weights, self.biases)):
            h = intdot.dense(h, w, b, k < last, self._wide)
            acts.append(h)
        if self.output_activation == "tanh":
            np.tanh(h, out=h)
        self._int_acts = acts
        return h.astype(self.dtype, copy=False)

    def _backward_int(self, dy, n, param_grads, input_grads):
        """backward with the device's integer products (``intdot.dense_grads``, ``dot_nt_relu``)."""
        acts = self._int_acts
        d = np.array(dy[:n], np.float64)
        if self.output_activation == "tanh":
            y = acts[-1]
            d *= 1.0 - y * y
        for k in range(len(self.weights) - 1, -1, -1):
            if param_grads:
                gw, gb = intdot.dense_grads(acts[k], d, self._wide)
                self.weight_grads[k][...] = gw
                self.bias_grads[k][...] = gb
            if k > 0:
                d = intdot.dot_nt_relu(acts[k], d, self.weights[k], self._wide)
            elif input_grads:
                return intdot.dot_nt(d, self.weights[0], self._wide)
        return None

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


def times_transpose(dz, layer, out, transposed=None):
    """out = dz @ layer^T over the last two axes. With one output column that is an outer product,
    which a broadcast multiply computes exactly (one term per sum) at a third of BLAS's cost; with
    a buffer `transposed` of layer^T's shape, layer^T is copied there first (see the module doc)."""
    layer_t = layer.T if layer.ndim == 2 else layer.transpose(0, 2, 1)
    if dz.shape[-1] == 1:
        np.multiply(dz, layer_t, out=out)
    elif transposed is not None:
        np.copyto(transposed, layer_t)
        np.matmul(dz, transposed, out=out)
    else:
        np.matmul(dz, layer_t, out=out)
