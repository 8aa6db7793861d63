"""The products of the ulab backend in Thumb-2 machine code with the single-precision FPU.

On a Cortex-M4F, M7 or M33 whose firmware stores floats in single precision, ulab's ``dot``
spends 25 to 30 instructions on a multiply-add (two calls through a dtype's read function per
term), and a dense layer is three ulab calls (``dot``, ``+=`` the bias, ``maximum``), each making
an array object. Here one inline-assembler routine (``_fdot``) computes every product a network
needs, the bias, the accumulation into a gradient and the ReLU or its mask included, into the
buffers the caller owns: about 10 instructions per multiply-add and no allocation.

The sums are ulab's: each starts at zero and takes its terms in order with a fused multiply-add
(``vfma``), which is what the compiler makes of ulab's ``dot += a * b`` on these cores; then the
bias is added, or the product is added to the gradient (``gw + x^T d``, as ``gw += dot(...)``).
The column sums of a delta (the bias gradient) are sums in row order, as numpy takes them (ulab
gives a float sum as its running mean times the count).

``COMPILED`` is False where the firmware's assembler has no FPU instructions (Cortex-M0 and M3,
other architectures, CircuitPython, CPython): the source then raises SyntaxError and ulab
computes the products. Every matrix passed here is dense and float32 (the ulab backend on a
single-precision firmware: ``kernels_nd`` uses this module only there).
"""

from array import array

# Arguments: r0 an int32 array (rows, cols, terms; byte strides of a's rows, a's terms, b's terms,
# b's columns; flags; five words of loop state; the caller's r8, which AAPCS says a function
# keeps), r1 out, r2 a, r3 b (the data addresses of ulab arrays). out[i, j] = sum_k a[i, k]
# b[k, j], then by flags: 1 the old out plus the sum, 2 the sum plus the bias (the row after b's
# last term row: the layout of K.tensors), 4 ReLU (+0 unless above 0, as maximum(x, 0)), 8 times
# (old out > 0) (the delta of a ReLU layer, written over its activation). The inner loop is
# vldr, vldr, vfma, two pointer steps and the count: 6 instructions a multiply-add.
_SRC = """
@micropython.asm_thumb
def _fdot(r0, r1, r2, r3):
    mov(r4, r8)
    str(r4, [r0, 60])
    mov(r8, r0)
    str(r1, [r0, 52])
    str(r2, [r0, 36])
    str(r3, [r0, 56])
    ldr(r4, [r0, 0])
    str(r4, [r0, 44])
    label(row)
    mov(r0, r8)
    ldr(r4, [r0, 56])
    str(r4, [r0, 40])
    ldr(r4, [r0, 4])
    str(r4, [r0, 48])
    label(col)
    mov(r0, r8)
    ldr(r1, [r0, 36])
    ldr(r2, [r0, 40])
    ldr(r3, [r0, 16])
    ldr(r4, [r0, 20])
    ldr(r5, [r0, 8])
    mov(r6, 0)
    vmov(s0, r6)
    vmov(s3, r6)
    label(term)
    vldr(s1, [r1, 0])
    vldr(s2, [r2, 0])
    data(2, 0xEEA0, 0x0A81)
    add(r1, r1, r3)
    add(r2, r2, r4)
    sub(r5, r5, 1)
    bne(term)
    ldr(r6, [r0, 28])
    ldr(r7, [r0, 52])
    mov(r5, 2)
    tst(r6, r5)
    beq(nobias)
    vldr(s1, [r2, 0])
    vadd(s0, s0, s1)
    label(nobias)
    mov(r5, 1)
    tst(r6, r5)
    beq(noacc)
    vldr(s1, [r7, 0])
    vadd(s0, s1, s0)
    label(noacc)
    mov(r5, 4)
    tst(r6, r5)
    beq(norelu)
    vcmp(s0, s3)
    vmrs(APSR_nzcv, FPSCR)
    bgt(norelu)
    mov(r5, 0)
    vmov(s0, r5)
    label(norelu)
    mov(r5, 8)
    tst(r6, r5)
    beq(nomask)
    vldr(s1, [r7, 0])
    vcmp(s1, s3)
    vmrs(APSR_nzcv, FPSCR)
    bgt(nomask)
    vmul(s0, s0, s3)
    label(nomask)
    vstr(s0, [r7, 0])
    add(r7, 4)
    str(r7, [r0, 52])
    ldr(r4, [r0, 40])
    ldr(r5, [r0, 24])
    add(r4, r4, r5)
    str(r4, [r0, 40])
    ldr(r4, [r0, 48])
    sub(r4, r4, 1)
    str(r4, [r0, 48])
    bne(col)
    ldr(r4, [r0, 36])
    ldr(r5, [r0, 12])
    add(r4, r4, r5)
    str(r4, [r0, 36])
    ldr(r4, [r0, 44])
    sub(r4, r4, 1)
    str(r4, [r0, 44])
    bne(row)
    ldr(r1, [r0, 60])
    mov(r8, r1)
"""


def _compile():
    try:
        import micropython
    except ImportError:  # CPython: no assembler
        return None
    scope = {"micropython": micropython}
    try:
        exec(_SRC, scope)
    except SyntaxError:  # no Thumb-2 assembler with FPU instructions on this firmware
        return None
    return scope["_fdot"]


_fdot = _compile()
COMPILED = _fdot is not None
del _SRC  # the source text is garbage once compiled

_g = array("i", [0] * 16)  # the routine's arguments and loop state (one call at a time)
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
