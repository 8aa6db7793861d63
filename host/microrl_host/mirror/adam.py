"""Adam on one flat parameter vector, the update of torch.optim.Adam (no weight decay, no amsgrad).

m and v sit in one (2, n) array, so their decays and the sums with their gradient terms are one
operation each over both (the same products and sums, in the same order, as torch's two updates).

The first moment of a parameter whose gradient stays zero (a dead ReLU unit) decays by beta1 per step
into the subnormal range and sticks there (round to nearest keeps 4 * 2**-149 times 0.9 at 4 *
2**-149). Arithmetic on subnormals is many times slower on x86, and a quarter of the critics' moments
end there after a few hundred steps: every `FLUSH_EVERY` steps, `step` sets m below the dtype's
smallest normal to zero. The update such an m makes is below lr / (1 - beta1) * tiny / eps (1e-32 in
float32 at lr 1e-3), under half an ulp of any parameter above 1e-25, so the parameters are those of
the update without the flush.

With the compiled kernels (fused_steps.py) `step` is one pass over the vector, the same
operations in the same order with every constant in the dtype, so the same numbers.

`Int16Adam` is the device's `state="int16"` Adam: per tensor, int16 codes of m and of sqrt(v) with
scales max|m| / 32767 and max sqrt(v) / 32767, in the device's order of operations.
"""

import math

import numpy as np

from microrl_host.mirror import fused, fused_steps

ROUND_UP_SLACK = 0.001  # sqrt(v) codes round up, except quotients within this of an integer
FLUSH_EVERY = 8  # steps between flushes of subnormal first moments to zero


class Adam:
    """`Adam(params_flat, grads_flat, lr, beta1, beta2, eps)`; `step()` updates `params_flat` in place
    from the current `grads_flat`. All buffers are allocated once."""

    def __init__(self, params_flat, grads_flat, lr, beta1=0.9, beta2=0.999, eps=1e-8):
        if params_flat.shape != grads_flat.shape or params_flat.dtype != grads_flat.dtype:
            raise ValueError("grads_flat must match params_flat in shape and dtype")
        if not lr >= 0.0:
            raise ValueError(f"lr must be >= 0, got {lr!r}")
        self.params = params_flat
        self.grads = grads_flat
        self.lr = lr
        self.beta1 = beta1
        self.beta2 = beta2
        self.eps = eps
        self.t = 0
        self._allocate_state()

    def _allocate_state(self):
        dtype = self.params.dtype
        self._moments = np.zeros((2,) + self.params.shape, dtype)
        self.m = self._moments[0]  # first moment (exp_avg)
        self.v = self._moments[1]  # second moment (exp_avg_sq)
        self._terms = np.zeros_like(self._moments)  # (1 - b1) g and (1 - b2) g^2
        self._decays = np.array([[self.beta1], [self.beta2]], dtype)
        self._gain_m, self._gain_v = np.array([[1.0 - self.beta1], [1.0 - self.beta2]], dtype)
        self._tmp = np.zeros_like(self.params)
        self._subnormal = np.zeros(self.params.shape, bool)
        self._tiny = np.finfo(dtype).tiny  # smallest normal number
        # the compiled step (fused_steps.adam_step): its scalars in the dtype
        self._fused = fused.active()
        self._scalars = tuple(dtype.type(x) for x in (self.beta1, self.beta2, 1.0 - self.beta1,
                                                      1.0 - self.beta2))

    def step(self):
        """t += 1; m, v moving averages; p -= lr / (1 - b1^t) * m / (sqrt(v) / sqrt(1 - b2^t) + eps)."""
        self.t += 1
        b1, b2 = self.beta1, self.beta2
        m, v, g, tmp, terms = self.m, self.v, self.grads, self._tmp, self._terms
        step_size = self.lr / (1.0 - b1**self.t)
        bias_correction2_sqrt = math.sqrt(1.0 - b2**self.t)
        if self._fused:  # the same arithmetic, one pass
            cast = self.params.dtype.type
            fused_steps.adam_step(self.params, g, m, v, *self._scalars,
                                  self.t % FLUSH_EVERY == 0, self._tiny,
                                  cast(bias_correction2_sqrt), cast(self.eps), cast(step_size))
            return
        self._moments *= self._decays  # m *= b1, v *= b2
        np.multiply(g, self._gain_m, out=terms[0])
        np.multiply(g, g, out=terms[1])
        terms[1] *= self._gain_v
        self._moments += terms  # m += (1 - b1) g, v += (1 - b2) g^2
        if self.t % FLUSH_EVERY == 0:  # subnormal m to zero (see the module doc)
            np.absolute(m, out=tmp)
            np.less(tmp, self._tiny, out=self._subnormal)
            np.copyto(m, 0.0, where=self._subnormal)
        np.sqrt(v, out=tmp)
        tmp /= bias_correction2_sqrt
        tmp += self.eps
        np.divide(m, tmp, out=tmp)
        tmp *= step_size
        self.params -= tmp


class Int16Adam(Adam):
    """`Int16Adam(params_flat, grads_flat, lengths, lr, beta1, beta2, eps)`: Adam whose moments are
    int16 codes with one pair of scales per tensor; `lengths` are the tensors' sizes in the flat
    layout (the device's W_1, b_1, W_2, ... of each network in turn)."""

    def __init__(self, params_flat, grads_flat, lengths, lr, beta1=0.9, beta2=0.999, eps=1e-8):
        if sum(lengths) != params_flat.shape[0]:
            raise ValueError("lengths must sum to the size of params_flat")
        self.lengths = np.asarray(lengths)
        self.starts = np.concatenate(([0], np.cumsum(self.lengths)[:-1]))
        super().__init__(params_flat, grads_flat, lr, beta1, beta2, eps)

    def _allocate_state(self):
        self.m = np.zeros(self.params.shape, np.int16)  # codes of m
        self.v = np.zeros(self.params.shape, np.int16)  # codes of sqrt(v)
        self.scales = np.zeros((len(self.lengths), 2), self.params.dtype)  # (s_m, s_v) per tensor

    def step(self):
        self.t += 1
        b1, b2 = self.beta1, self.beta2
        dtype = self.params.dtype
        step_size = self.lr / (1.0 - b1**self.t)
        inv_sqrt_bc2 = 1.0 / math.sqrt(1.0 - b2**self.t)
        g = self.grads
        per_elem = np.repeat(self.scales, self.lengths, axis=0)
        m = self.m * per_elem[:, 0]
        m *= b1
        m += g * dtype.type(1.0 - b1)
        r = self.v * per_elem[:, 1]
        r *= r
        r *= b2
        r += (g * g) * dtype.type(1.0 - b2)
        np.sqrt(r, out=r)
        d = r * inv_sqrt_bc2
        d += self.eps
        self.params -= step_size * (m / d)
        self.scales[:, 0] = np.maximum.reduceat(np.abs(m), self.starts) / 32767.0
        self.scales[:, 1] = np.maximum.reduceat(r, self.starts) / 32767.0
        per_elem = np.repeat(self.scales, self.lengths, axis=0)
        safe = np.where(per_elem > 0.0, per_elem, 1.0)
        self.m[:] = np.rint(m / safe[:, 0])
        self.v[:] = np.minimum(np.ceil(r / safe[:, 1] - ROUND_UP_SLACK), 32767.0)
