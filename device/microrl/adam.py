"""Adam (Kingma and Ba) with bias correction, as torch.optim.Adam without weight decay.

``state="int16"`` keeps the moments in half the memory: per tensor, the first moment m as int16
codes round(m / s_m) and the square root of the second moment as ceil(sqrt(v) / s_v), with the scales
s_m = max|m| / 32767 and s_v = max sqrt(v) / 32767 set at every step. A step dequantizes, updates
in float and uses the float moments for the parameter update, then requantizes. Rounding sqrt(v) up
never lets the denominator fall below float Adam's (docs/ALGORITHM.md).
"""

from math import sqrt

from .backend import K


class Adam:
    """Updates ``params`` in place from ``grads`` (two lists of matrices of matching shapes).

    ``scratch``: another Adam over the same shapes whose scratch buffers this one may share.
    """

    def __init__(self, params, grads, lr, beta1=0.9, beta2=0.999, eps=1e-8, scratch=None,
                 state="float"):
        if not lr > 0.0:
            raise ValueError("lr must be > 0, got %r" % lr)
        self.params = params
        self.grads = grads
        self.lr = lr
        self.beta1 = beta1
        self.beta2 = beta2
        self.eps = eps
        self.t = 0
        self.int16 = state == "int16"
        if self.int16:
            self.m = [K.codes(*K.shape(p)) for p in params]
            self.v = [K.codes(*K.shape(p)) for p in params]
            self.scales = K.matrix(len(params), 2)  # row i: (s_m, s_v) of params[i]
            self.tmp = None
        else:
            self.m = [K.matrix(*K.shape(p)) for p in params]
            self.v = [K.matrix(*K.shape(p)) for p in params]
            self.tmp = scratch.tmp if scratch is not None else [K.scratch_like(p) for p in params]

    def step(self):
        self.t += 1
        b1 = self.beta1
        b2 = self.beta2
        step_size = self.lr / (1.0 - b1 ** self.t)
        inv_sqrt_bc2 = 1.0 / sqrt(1.0 - b2 ** self.t)
        m, v, tmp, grads = self.m, self.v, self.tmp, self.grads
        for i, p in enumerate(self.params):
            if self.int16:
                K.adam16(p, grads[i], m[i], v[i], self.scales, i, step_size, b1, b2, self.eps,
                         inv_sqrt_bc2)
            else:
                K.adam(p, grads[i], m[i], v[i], tmp[i], step_size, b1, b2, self.eps, inv_sqrt_bc2)


def adam_for(net, lr, betas, state="float", scratch=None):
    """Adam over an MLP's parameters: float moments step its flat parameter vector in one call
    where it has one (elementwise, so the same arithmetic as per tensor); int16 moments keep their
    per-tensor scales. ``scratch``: another such Adam whose scratch buffers this one may share.
    On the viper backend float moments are its integer Adam (intadam.IntAdam)."""
    int_adam = getattr(K, "IntAdam", None)
    if state == "float" and int_adam is not None:
        return int_adam(net.params, net.grads, lr, *betas)
    if state == "int16" or net.flat is None:
        return Adam(net.params, net.grads, lr, *betas, scratch=scratch, state=state)
    return Adam([net.flat], [net.flat_grads], lr, *betas, scratch=scratch, state=state)
