"""Twin MLPs evaluated together: TD3's two critics (and their two targets) in one pass.

Two MLPs of identical shape whose flat parameter vectors sit at a constant distance in one shared
buffer (as TD3 lays out critic 1 and critic 2) are seen as one stack: each layer's W becomes a
(2, in, out) strided view and one `np.matmul` computes both networks. The numbers are those of the
two MLPs run one after the other; only the count of numpy calls halves, which is what costs on
batches of 100 rows. Passes run from plans of views taken once per row count, and large layers
multiply by a copy of W^T, as in mlp.py. `TwinPairs` stacks the critics with their targets the same
way, (2, 2) networks on two inputs in one pass. With the compiled kernels (fused.py) each pass is
one call over a table of the per-network views, with the same numbers.
"""

import numpy as np
from numpy.lib.stride_tricks import as_strided

from microrl_host.mirror import fused
from microrl_host.mirror.mlp import TRANSPOSE_COPY_MIN, forward_steps, run_forward, times_transpose


def _address(view):
    return view.__array_interface__["data"][0]


def _stacked(first_view, second_view):
    """A (2, ...) view of two same-shaped views into one buffer (writeable, no copy)."""
    step = _address(second_view) - _address(first_view)
    return as_strided(first_view, shape=(2,) + first_view.shape,
                      strides=(step,) + first_view.strides)


class TwinMLP:
    """`TwinMLP(first, second)` over two MLPs with equal sizes, activation, dtype and max_batch,
    whose params (and grads) are views of one common buffer."""

    def __init__(self, first, second, buffers=None):
        """`buffers`: (input, outputs, masks) to work in instead of allocating them (TwinPairs
        passes views of its own, so that its forward leaves what backward needs here)."""
        same = (first.sizes == second.sizes and first.dtype == second.dtype
                and first.output_activation == second.output_activation
                and first.max_batch == second.max_batch)
        if not same:
            raise ValueError("second must have the sizes, activation, dtype and max_batch of first")
        for name in ("params", "grads"):
            a, b = getattr(first, name), getattr(second, name)
            if a.base is None or a.base is not b.base:
                raise ValueError(f"first.{name} and second.{name} must be views of one buffer")
        self.sizes = first.sizes
        self.output_activation = first.output_activation
        self.dtype = first.dtype
        self.max_batch = first.max_batch
        pairs = lambda xs, ys: [_stacked(x, y) for x, y in zip(xs, ys)]  # noqa: E731
        self.layers = pairs(first.layers, second.layers)  # (2, in + 1, out) views of [W; b]
        self.layer_grads = pairs(first.layer_grads, second.layer_grads)
        batch, dtype = self.max_batch, self.dtype
        if buffers is None:
            buffers = (np.ones((batch, self.sizes[0] + 1), dtype),
                       [np.ones((2, batch, s + 1), dtype) for s in self.sizes[1:-1]]
                       + [np.zeros((2, batch, self.sizes[-1]), dtype)],
                       [np.ones((2, batch, s + 1), dtype) for s in self.sizes[1:-1]])
        self._input, self._outputs, self._masks = buffers
        self._input_grads = [np.zeros((2, batch, s + 1), dtype) for s in self.sizes[1:-1]]
        self._tanh_grad = np.zeros((2, batch, self.sizes[-1]), dtype)
        self._transposed = [np.zeros(layer.transpose(0, 2, 1).shape, dtype)
                            if layer[0].size > TRANSPOSE_COPY_MIN and layer.shape[2] > 1 else None
                            for layer in self.layers]
        self._zero = dtype.type(0)
        self._forward_plans = {}
        self._backward_plans = {}
        self._fused = fused.active()  # compiled passes (fused.py)

    def _forward_plan(self, n):
        plan = self._forward_plans.get(n)
        if plan is None:
            steps = forward_steps(self._input[:n], self.layers, self._outputs, self._masks, n,
                                  lead=1)
            table = fused.forward_table(steps, (2,)) if self._fused else None
            plan = self._forward_plans[n] = (self._input[:n, :-1], steps, steps[-1][3], table)
        return plan

    def forward(self, x, n):
        """Both networks on the same input `x` (n, in): outputs (2, n, out), an internal view."""
        x_in, steps, _, table = self._forward_plan(n)
        np.copyto(x_in, x)
        return run_forward(steps, self._zero, self.output_activation, table)

    def _backward_plan(self, n):
        plan = self._backward_plans.get(n)
        if plan is None:
            steps = []
            for k in range(len(self.layers) - 1, -1, -1):
                if k > 0:
                    x_aug_t = self._outputs[k - 1][:, :n].transpose(0, 2, 1)
                    dx_aug = self._input_grads[k - 1][:, :n]
                    back = (self.layers[k], self._transposed[k], dx_aug, dx_aug[:, :, :-1],
                            self._masks[k - 1][:, :n])
                else:
                    x_aug_t, back = self._input[:n].T, None
                steps.append((x_aug_t, self.layer_grads[k], back))
            y, tanh_grad = self._outputs[-1][:, :n], self._tanh_grad[:, :n]
            table = None
            if self._fused:
                table = fused.backward_table(
                    [(y[j], tanh_grad[j] if self.output_activation == "tanh" else None,
                      [(x_aug_t if x_aug_t.ndim == 2 else x_aug_t[j], grad[j])
                       + ((None,) * 5 if back is None else
                          tuple(None if v is None else v[j] for v in back))
                       for x_aug_t, grad, back in steps])
                     for j in range(2)])
            plan = self._backward_plans[n] = (y, tanh_grad, steps, table)
        return plan

    def backward(self, dy, n):
        """Back-propagate dL/dy (2, n, out) and overwrite both networks' parameter gradients."""
        y, dz, steps, table = self._backward_plan(n)
        if table is not None and dy.dtype == self.dtype and dy.shape == y.shape:
            fused.backward(table, dy, self._zero, True, False)
            return
        if self.output_activation == "tanh":
            np.multiply(y, y, out=dz)
            np.subtract(1.0, dz, out=dz)
            np.multiply(dz, dy, out=dz)
        else:
            dz = dy
        for x_aug_t, grad, back in steps:
            np.matmul(x_aug_t, dz, out=grad)
            if back is not None:
                layer, transposed, dx_aug, dx, mask = back
                times_transpose(dz, layer, dx_aug, transposed)
                np.multiply(dx_aug, mask, out=dx_aug)
                dz = dx


class TwinPairs:
    """`TwinPairs(first, second, batch)`: two pairs of twins, TD3's critics (`online`) and their
    targets (`target`), each a TwinMLP built here over its two MLPs, whose forward passes on two
    different inputs run as one (2, 2) stack: one `np.matmul` per layer for all four networks.

    The online MLPs' parameters must lie in one buffer at the same distance from the targets' as
    in TD3's single buffer of online and target parameters. Each gemm is the one TwinMLP makes
    (same shapes, same strides), so the numbers are those of the two twins run one after the other;
    the twins work in views of this stack's buffers, so `online.backward` follows `forward`."""

    def __init__(self, online_pair, target_pair):
        first, second = online_pair
        sizes, dtype, batch = first.sizes, first.dtype, first.max_batch
        self._input = np.ones((2, batch, sizes[0] + 1), dtype)  # [online input, target input]
        self._outputs = ([np.ones((2, 2, batch, s + 1), dtype) for s in sizes[1:-1]]
                         + [np.zeros((2, 2, batch, sizes[-1]), dtype)])  # as in TwinMLP
        self._masks = [np.ones((2, 2, batch, s + 1), dtype) for s in sizes[1:-1]]
        self.online, self.target = (
            TwinMLP(a, b, (self._input[i], [o[i] for o in self._outputs],
                           [m[i] for m in self._masks]))
            for i, (a, b) in enumerate((online_pair, target_pair)))
        distances = [_address(t.params) - _address(o.params)
                     for o, t in zip(online_pair, target_pair)]
        if first.params.base is not target_pair[0].params.base or distances[0] != distances[1]:
            raise ValueError("the online and target twins must be views of one buffer, each "
                             "target at the same distance from its online network")
        self.layers = [_stacked(a, b) for a, b in zip(self.online.layers, self.target.layers)]
        self.output_activation = first.output_activation
        self._zero = dtype.type(0)
        self._plans = {}
        self._fused = fused.active()  # compiled passes (fused.py)

    def inputs(self, n):
        """The (2, n, in) input of the next `forward`: [0] the online twins', [1] the targets'."""
        return self._input[:, :n, :-1]

    def forward(self, n):
        """All four networks on `inputs(n)`: outputs (2, 2, n, out), [0] the online twins', [1]
        the targets', an internal view."""
        plan = self._plans.get(n)
        if plan is None:  # (2, 1, n, in + 1) input: each input to both twins
            steps = forward_steps(self._input[:, None, :n], self.layers, self._outputs,
                                  self._masks, n, lead=2)
            plan = self._plans[n] = (steps, fused.forward_table(steps, (2, 2))
                                     if self._fused else None)
        return run_forward(plan[0], self._zero, self.output_activation, plan[1])


class TwinSequential:
    """Two MLPs run one after the other behind TwinMLP's interface: for the int16 products, whose
    scales are per network, so the two cannot share one product."""

    def __init__(self, first, second):
        self.networks = (first, second)

    def forward(self, x, n):
        return np.stack([net.forward(x, n) for net in self.networks])

    def backward(self, dy, n):
        for net, d in zip(self.networks, dy):
            net.backward(d, n, input_grads=False)
