"""The products in machine code, for the ulab backend and (kernels_pyasm) the pure-Python one: an
MLP's products, the bias, the accumulation into a gradient and the ReLU or its mask included, in
one assembler call each, into the buffers the caller owns (no array object made, no allocation).

On a board ulab's ``dot`` spends 25 to 30 instructions on a multiply-add with an FPU and about
230 in soft float (two calls through a dtype's read function per term, then the float routines),
and a dense layer is three ulab calls (``dot``, ``+=`` the bias, ``maximum``), each making an
array object. The routine that does the work here is ``kernels_vfp``'s on a Thumb-2 core with a
single-precision FPU, ``kernels_thumb``'s (integer instructions) on a Thumb core without one;
``kernels_nd.init`` picks it and passes it to ``use``.

The routine's arguments: r0 an int32 array (rows, cols, terms; byte strides of a's rows, a's
terms, b's terms and b's columns; flags; words 8-18 the routine's own loop state; 19 the byte
stride of a's columns, 0 for a product: a[i, k] of out[i, j] is at i ars + k aks + j acs), r1 out,
r2 a, r3 b (the data addresses of ulab arrays, ``array`` objects or memoryviews of them). out[i,
j] = sum_k a[i, k] b[k, j], each sum starting at zero and taking its terms in order, then by
flags: 1 the old out plus the sum, 2 the sum plus the bias (the row after b's last term row: the
layout of K.tensors), 4 ReLU (+0 unless above 0, as maximum(x, 0)), 8 times (old out > 0) (the
delta of a ReLU layer, written over its activation). Every matrix passed here is dense and float32
(ulab, or ``array('f')``, on a single-precision firmware). ``affine`` scales (and shifts) a matrix
with the same routine, a product of one term per element (a's column stride set): the values of
``x * s + o`` in the firmware's float, bit for bit.
"""

from array import array

_fdot = None  # the routine (``use``)
_g = array("i", [0] * 20)  # the routine's arguments and loop state (one call at a time)
_ONE = array("f", [1.0])  # the column sums' left operand: every a[i, k] reads this 1.0

_ACC = 1
_BIAS = 2
_RELU = 4
_MASK = 8


def _run(out, a, b, rows, cols, kk, ars, aks, bks, bcs, flags):
    g = _g
    g[0] = rows
    g[1] = cols
    g[2] = kk
    g[3] = ars
    g[4] = aks
    g[5] = bks
    g[6] = bcs
    g[7] = flags
    _fdot(g, out, a, b)
    return out


def dense(out, x, w, b, n, scratch, relu_out):
    """out[:n] = x[:n] w + b, then ReLU when ``relu_out``; ``b`` is the row after ``w`` in one
    buffer (K.tensors lays out every network's parameters so)."""
    kk = len(w)
    cols = w.size // kk
    return _run(out, x, w, n, cols, kk, kk * 4, 4, cols * 4, 4,
                _BIAS | _RELU if relu_out else _BIAS)


def dense_grads(gw, gb, x, d, n, scratch, acc=False):
    """gw = x[:n]^T d[:n] and gb = the column sums of d[:n] (both added to when ``acc``)"""
    rows = len(gw)
    cols = gw.size // rows
    flags = _ACC if acc else 0
    _run(gw, x, d, rows, cols, n, 4, rows * 4, cols * 4, 4, flags)
    _run(gb, _ONE, d, 1, cols, n, 0, 0, cols * 4, 4, flags)


def dot_nt(out, d, w, n, scratch=None):
    """out[:n] = d[:n] w^T"""
    rows = len(w)
    cols = w.size // rows
    return _run(out, d, w, n, rows, cols, cols * 4, 4, 4, cols * 4, 0)


def dot_nt_relu(h, d, w, n, scratch=None):
    """h[:n] = (d[:n] w^T) * (h[:n] > 0): the hidden layer's delta, over its activation"""
    rows = len(w)
    cols = w.size // rows
    return _run(h, d, w, n, rows, cols, cols * 4, 4, 4, cols * 4, _MASK)


# The same on the pure-Python kernels' matrices, (data, rows, cols) (kernels_pyasm puts them in;
# its tensors_flat lays out the parameters as K.tensors does). Each calls the routine itself: a
# Python call more per product costs a Cortex-M0 about 2000 instructions.

def dense_tuple(out, x, w, b, n, scratch, relu_out):
    kk, cols = w[1], w[2]
    _run(out[0], x[0], w[0], n, cols, kk, kk * 4, 4, cols * 4, 4,
         _BIAS | _RELU if relu_out else _BIAS)
    return out


def dense_grads_tuple(gw, gb, x, d, n, scratch, acc=False):
    rows, cols = gw[1], gw[2]
    flags = _ACC if acc else 0
    dd = d[0]
    _run(gw[0], x[0], dd, rows, cols, n, 4, rows * 4, cols * 4, 4, flags)
    _run(gb[0], _ONE, dd, 1, cols, n, 0, 0, cols * 4, 4, flags)


def dot_nt_tuple(out, d, w, n, scratch=None):
    rows, cols = w[1], w[2]
    _run(out[0], d[0], w[0], n, rows, cols, cols * 4, 4, 4, cols * 4, 0)
    return out


def dot_nt_relu_tuple(h, d, w, n, scratch=None):
    rows, cols = w[1], w[2]
    _run(h[0], d[0], w[0], n, rows, cols, cols * 4, 4, 4, cols * 4, _MASK)
    return h


def affine_columns(data, cols, scale, offset, n):
    """The first n rows of the rows x cols float matrix in ``data`` (a buffer) times scale[j] plus
    offset[j] in column j (``scale``, ``offset``: buffers of cols floats; ``offset`` None: none),
    in place: out[i, j] = data[i, j] scale[j] (a product of one term, a stepping along the row
    with the columns), then the old value plus 1.0 offset[j]."""
    g = _g
    g[19] = 4
    _run(data, data, scale, n, cols, 1, 0, 0, 0, 4, 0)
    g[19] = 0
    if offset is not None:
        _run(data, _ONE, offset, n, cols, 1, 0, 0, 0, 4, _ACC)


_SCALAR = array("f", [0.0])  # polyak's factor, read as a column of b that does not step


def polyak_tuple(target, online, tau):
    """target = (1 - tau) target + tau online (pure-Python kernels' matrices), as kernels_py.polyak
    rounds it: t (1 - tau), then plus o tau (each a product of one term, a stepping along the row
    with the columns)."""
    t, o = target[0], online[0]
    count = target[1] * target[2]
    s = _SCALAR
    g = _g
    g[19] = 4
    s[0] = 1.0 - tau
    _run(t, t, s, 1, count, 1, 0, 0, 0, 0, 0)
    s[0] = tau
    _run(t, o, s, 1, count, 1, 0, 0, 0, 0, _ACC)
    g[19] = 0


def affine_tuple(m, scale, offset, n):
    """affine on a pure-Python kernels' matrix ((data, rows, cols); the viper backend's)"""
    affine_columns(m[0], m[2], scale, offset, n)


def row_floats(values):
    """K.row for affine_tuple: the values as single-precision floats"""
    return array("f", values)


# sys.implementation._mpy >> 10 of the ARM architectures: armv6m, armv7m and armv7em have no FPU;
# armv7emsp and armv7emdp have one.
_THUMB_ARCHS = (4, 5, 6)
_FPU_ARCHS = (7, 8)


def routine_for(vfp=True):
    """(module, "vfp" or "thumb") for this firmware's core, or (None, None): kernels_vfp on an
    ARMv7E-M core with an FPU (unless ``vfp`` is False), kernels_thumb on an ARM core without
    one, where its inline assembler compiles their routines."""
    import sys
    arch = getattr(sys.implementation, "_mpy", 0) >> 10
    if arch in _FPU_ARCHS and vfp:
        from . import kernels_vfp as module
        name = "vfp"
    elif arch in _THUMB_ARCHS:
        from . import kernels_thumb as module
        name = "thumb"
    else:
        return None, None
    return (module, name) if module.ROUTINE is not None else (None, None)


_adam = None  # the Adam routine (``use``)
_ga = array("i", [0] * 12)  # its arguments: count, the constants' address, the pass, its state
_ADAM_CONSTANTS = array("f", [0.0] * 8)  # b1, b2, 1 - b1, 1 - b2, 1/sqrt(bc2), eps, step, 1.0

# Stores the constants' address into the Adam arguments (word 1) once: arrays do not move.
_PUT_SRC = """
@micropython.asm_thumb
def _put(r0, r1):
    str(r1, [r0, 4])
"""


def adam(p, g, m, v, tmp, step_size, beta1, beta2, eps, inv_sqrt_bc2):
    """kernels_nd.adam in two machine-code passes (m and v, then p): each element's operations
    in ulab's order, each rounded as ulab's pass of it (``g`` and ``tmp`` are not written)."""
    _adam_run(p, g, m, v, p.size, step_size, beta1, beta2, eps, inv_sqrt_bc2)


def adam_tuple(p, g, m, v, tmp, step_size, beta1, beta2, eps, inv_sqrt_bc2):
    """adam on pure-Python kernels' matrices: kernels_py.adam's operations (its loop takes them in
    ulab's order), rounded as it rounds them on a core without an FPU."""
    _adam_run(p[0], g[0], m[0], v[0], p[1] * p[2], step_size, beta1, beta2, eps, inv_sqrt_bc2)


def _adam_run(p, g, m, v, count, step_size, beta1, beta2, eps, inv_sqrt_bc2):
    c = _ADAM_CONSTANTS
    c[0] = beta1
    c[1] = beta2
    c[2] = 1.0 - beta1
    c[3] = 1.0 - beta2
    c[4] = inv_sqrt_bc2
    c[5] = eps
    c[6] = step_size
    a = _ga
    a[0] = count
    a[2] = 0
    _adam(a, g, m, v)
    a[2] = 1
    _adam(a, p, m, v)


def use(module, with_adam=True):
    """Compute with ``module``'s ``ROUTINE`` (the products, arguments above) and, when
    ``with_adam``, with the Adam routine for the same core (adam_vfp with kernels_vfp, adam_thumb
    with kernels_thumb); returns whether ``adam`` can run."""
    global _fdot, _adam
    _fdot = module.ROUTINE
    _adam = None
    if with_adam:
        if module.__name__.endswith("vfp"):
            from .adam_vfp import ADAM
        else:
            from .adam_thumb import ADAM
        _adam = ADAM
    if _adam is None:
        return False
    put = compile_routine(_PUT_SRC, "_put")
    if put is None:
        _adam = None
        return False
    _ADAM_CONSTANTS[7] = 1.0
    put(_ga, _ADAM_CONSTANTS)
    return True


def compile_routine(source, name):
    """The assembler function ``name`` that ``source`` defines, or None where this firmware's
    inline assembler cannot compile it (SyntaxError) or there is none (CPython)."""
    try:
        import micropython
    except ImportError:  # CPython: no assembler
        return None
    scope = {"micropython": micropython}
    try:
        exec(source, scope)
    except SyntaxError:  # no Thumb assembler, or not these instructions, on this firmware
        return None
    except NameError:  # a port built without exec: no compiler for the source either
        return None
    return scope[name]
