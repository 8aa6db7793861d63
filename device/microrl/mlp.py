"""A minimal multilayer perceptron: dense layers, ReLU hidden, tanh or linear output, backprop.

Every buffer is allocated at construction for ``max_batch`` rows; ``forward`` and ``backward`` work on
the first ``n`` rows. Networks of the same shape that are never in use at the same time (a network and
its target, the twin critics) share activation buffers and, when trained one after the other,
gradient buffers: pass the other network as ``share``. Backprop writes each hidden layer's delta over
that layer's activation, so it needs no buffers of its own and a forward serves one backward.
"""

from math import sqrt

from .backend import K

ACTIVATIONS = ("tanh", "linear")


class MLP:
    def __init__(self, sizes, output_activation, max_batch, rng=None, share=None, trainable=True):
        if output_activation not in ACTIVATIONS:
            raise ValueError("output_activation must be one of %s, got %r"
                             % (", ".join(ACTIVATIONS), output_activation))
        if len(sizes) < 2:
            raise ValueError("sizes needs an input and an output size, got %r" % (sizes,))
        for s in sizes:
            if not isinstance(s, int) or s <= 0:
                raise ValueError("sizes must be positive integers, got %r" % (sizes,))
        if not isinstance(max_batch, int) or max_batch <= 0:
            raise ValueError("max_batch must be a positive integer, got %r" % (max_batch,))
        if share is not None and (tuple(share.sizes) != tuple(sizes) or share.max_batch != max_batch):
            raise ValueError("share must have the same sizes and max_batch")
        self.sizes = tuple(sizes)
        self.output_activation = output_activation
        self.max_batch = max_batch
        n_layers = len(sizes) - 1
        # Parameters: W_k (in, out) and b_k (1, out), in the order W_1, b_1, W_2, b_2, ...
        self.params = []
        for k in range(n_layers):
            w = K.matrix(sizes[k], sizes[k + 1])
            b = K.matrix(1, sizes[k + 1])
            if rng is not None:
                bound = 1.0 / sqrt(sizes[k])
                K.fill_uniform(w, rng, bound)
                K.fill_uniform(b, rng, bound)
            self.params.append(w)
            self.params.append(b)
        if share is not None:
            self.outs = share.outs
            self.dx = share.dx
        else:
            self.outs = [K.matrix(max_batch, sizes[k + 1]) for k in range(n_layers)]
            self.dx = K.matrix(max_batch, sizes[0])
        self.grads = None
        if trainable:
            if share is not None and share.grads is not None:
                self.grads = share.grads
            else:
                self.grads = [K.matrix(*K.shape(p)) for p in self.params]
        self._x = None

    def forward(self, x, n):
        """Output of the first n rows of x; the returned matrix is this network's buffer."""
        params = self.params
        last = len(self.outs) - 1
        h = x
        for k, out in enumerate(self.outs):
            K.dot(out, h, params[2 * k], n)
            K.add_bias(out, params[2 * k + 1], n)
            if k < last:
                K.relu(out, n)
            elif self.output_activation == "tanh":
                K.tanh(out, n)
            h = out
        self._x = x
        return h

    def backward(self, dy, n, param_grads=True, input_grad=True, accumulate=False):
        """Backprop dL/dy through the last forward; returns dL/dx or None.

        Consumes the forward's activations and modifies ``dy`` in place. Overwrites the parameter
        gradients when ``param_grads`` (adds to them when also ``accumulate``: a batch processed
        in parts); skips dL/dx unless ``input_grad``.
        """
        outs, params, grads = self.outs, self.params, self.grads
        if param_grads and grads is None:
            raise ValueError("this network is not trainable")
        d = dy
        if self.output_activation == "tanh":
            K.tanh_grad(d, outs[-1], n)
        for k in range(len(outs) - 1, -1, -1):
            x_k = outs[k - 1] if k > 0 else self._x
            if param_grads:
                K.dot_tn(grads[2 * k], x_k, d, n, accumulate)
                K.sum_rows(grads[2 * k + 1], d, n, accumulate)
            if k > 0:
                d_next = outs[k - 1]
                K.dot_nt_relu(d_next, d, params[2 * k], n)
                d = d_next
            elif input_grad:
                K.dot_nt(self.dx, d, params[0], n)
                return self.dx
        return None

    def copy_from(self, other):
        for p, q in zip(self.params, other.params):
            K.copy(p, q)

    def polyak_from(self, other, tau):
        """self = (1 - tau) self + tau other, parameter by parameter in place."""
        for p, q in zip(self.params, other.params):
            K.polyak(p, q, tau)
