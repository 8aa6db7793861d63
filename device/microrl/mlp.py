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
        # Parameters: W_k (in, out) and b_k (1, out), in the order W_1, b_1, W_2, b_2, ...; on an
        # array backend they are views of one flat 1 x N matrix (``flat``, None otherwise), and so
        # are the gradients (``flat_grads``): Adam, target updates and copies then make one
        # kernel call per network instead of one per tensor.
        shapes = [None] * (2 * n_layers)  # lists are sized once here: growth leaves holes
        for k in range(n_layers):
            shapes[2 * k] = (sizes[k], sizes[k + 1])
            shapes[2 * k + 1] = (1, sizes[k + 1])
        self.flat, self.params = K.tensors(shapes)
        if share is not None:
            self.outs = share.outs
            self.dx = share.dx
            self.scratch = share.scratch
        else:
            self.outs = [K.matrix(max_batch, sizes[k + 1]) for k in range(n_layers)]
            self.dx = K.matrix(max_batch, sizes[0])
            self.scratch = K.scratch_row(max(max(sizes), max_batch))
        self.flat_grads = None
        self.grads = None
        if trainable:
            if share is not None and share.grads is not None:
                self.flat_grads = share.flat_grads
                self.grads = share.grads
            else:
                self.flat_grads, self.grads = K.tensors(shapes)
        self._x = None
        if rng is not None:
            self.init_uniform(rng)

    def init_uniform(self, rng):
        """Weights and biases of layer k uniform in +-1/sqrt(fan_in), layer by layer, W before b.
        (Drawing makes garbage: a learner allocates all its buffers before it draws.)"""
        sizes = self.sizes
        for k in range(len(sizes) - 1):
            bound = 1.0 / sqrt(sizes[k])
            K.fill_uniform(self.params[2 * k], rng, bound)
            K.fill_uniform(self.params[2 * k + 1], rng, bound)

    def forward(self, x, n):
        """Output of the first n rows of x; the returned matrix is this network's buffer."""
        params, outs = self.params, self.outs
        last = len(outs) - 1
        h = x
        for k in range(last + 1):
            h = K.dense(outs[k], h, params[2 * k], params[2 * k + 1], n, self.scratch, k < last)
            outs[k] = h  # the kernel's result buffer (see kernels_nd)
            if k == last and self.output_activation == "tanh":
                K.tanh(h, n)
        self._x = x
        return h

    def backward(self, dy, n, param_grads=True, input_grad=True, accumulate=False):
        """Backprop dL/dy through the last forward; returns dL/dx or None.

        Consumes the forward's activations and modifies ``dy`` in place. Overwrites the parameter
        gradients when ``param_grads`` (adds to them when also ``accumulate``: a batch processed
        in parts); skips dL/dx unless ``input_grad``.
        """
        outs, params, grads, scratch = self.outs, self.params, self.grads, self.scratch
        if param_grads and grads is None:
            raise ValueError("this network is not trainable")
        d = dy
        if self.output_activation == "tanh":
            K.tanh_grad(d, outs[-1], n)
        for k in range(len(outs) - 1, -1, -1):
            x_k = outs[k - 1] if k > 0 else self._x
            if param_grads:
                K.dense_grads(grads[2 * k], grads[2 * k + 1], x_k, d, n, scratch, accumulate)
            if k > 0:
                d = K.dot_nt_relu(x_k, d, params[2 * k], n, scratch)
            elif input_grad:
                self.dx = K.dot_nt(self.dx, d, params[0], n, scratch)
                return self.dx
        return None

    def copy_from(self, other):
        if self.flat is not None:
            K.copy(self.flat, other.flat)
            return
        for p, q in zip(self.params, other.params):
            K.copy(p, q)

    def polyak_from(self, other, tau):
        """self = (1 - tau) self + tau other, in place."""
        if self.flat is not None:
            K.polyak(self.flat, other.flat, tau)
            return
        for p, q in zip(self.params, other.params):
            K.polyak(p, q, tau)
