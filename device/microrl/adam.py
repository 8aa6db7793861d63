"""Adam (Kingma and Ba) with bias correction, as torch.optim.Adam without weight decay."""

from math import sqrt

from .backend import K


class Adam:
    """Updates ``params`` in place from ``grads`` (two lists of matrices of matching shapes).

    ``scratch``: another Adam over the same shapes whose scratch buffers this one may share.
    """

    def __init__(self, params, grads, lr, beta1=0.9, beta2=0.999, eps=1e-8, scratch=None):
        if not lr > 0.0:
            raise ValueError("lr must be > 0, got %r" % lr)
        self.params = params
        self.grads = grads
        self.lr = lr
        self.beta1 = beta1
        self.beta2 = beta2
        self.eps = eps
        self.t = 0
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
            K.adam(p, grads[i], m[i], v[i], tmp[i], step_size, b1, b2, self.eps, inv_sqrt_bc2)
