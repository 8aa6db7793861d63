"""Adam on one flat parameter vector, the update of torch.optim.Adam (no weight decay, no amsgrad)."""

import math

import numpy as np


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
        self.m = np.zeros_like(params_flat)  # first moment (exp_avg)
        self.v = np.zeros_like(params_flat)  # second moment (exp_avg_sq)
        self._tmp = np.zeros_like(params_flat)

    def step(self):
        """t += 1; m, v moving averages; p -= lr / (1 - b1^t) * m / (sqrt(v) / sqrt(1 - b2^t) + eps)."""
        self.t += 1
        b1, b2 = self.beta1, self.beta2
        m, v, g, tmp = self.m, self.v, self.grads, self._tmp
        m *= b1
        np.multiply(g, 1.0 - b1, out=tmp)
        m += tmp
        v *= b2
        np.multiply(g, g, out=tmp)
        tmp *= 1.0 - b2
        v += tmp
        step_size = self.lr / (1.0 - b1**self.t)
        bias_correction2_sqrt = math.sqrt(1.0 - b2**self.t)
        np.sqrt(v, out=tmp)
        tmp /= bias_correction2_sqrt
        tmp += self.eps
        np.divide(m, tmp, out=tmp)
        tmp *= step_size
        self.params -= tmp
