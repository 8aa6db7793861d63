"""Matrix products in viper on int16 codes with int32 sums, for stock firmware without ulab.

The products and what a dense layer does around them (``dense``: x w + b, then ReLU;
``dense_grads``: x^T d and the column sums of d; ``dot``, ``dot_tn``, ``dot_nt``, ``dot_nt_relu``)
are machine code from ``@micropython.viper``; so are Adam (``IntAdam``) and the target updates
(``polyak``), in integers on the float bits (``intadam``); every other kernel is the pure-Python
one (``kernels_py``): the batch arithmetic of TD3 stays in floats.

A product quantizes each operand with a power-of-two scale of its own, picked from the largest
exponent in the operand: code = trunc(x 2**k) with |code| < 2**bits. It reads the float bits from
the ``array`` storage itself (``'f'``: the word; ``'d'``: the high word, whose 21 significant bits
hold every bit a code of at most 15 bits can have), so quantizing is exact truncation on either
storage and allocates nothing. It then sums code products in a machine word and writes each sum
times 2**-(k_a + k_b) back as a float, truncating to the storage's significand.

The bound: for a reduction over ``kk`` terms, ``_run`` gives code widths b_a + b_b =
30 - ceil(log2 kk) (neither above 15), so every partial sum is below
kk (2**b_a - 1)(2**b_b - 1) < 2**30 in magnitude. A bias joins the sum as a code at the sum's
scale, below 2**30 too: when the bias is that much larger than the product, the sum is first
shifted right (floor) by the bits it takes. So every intermediate is below 2**31 in magnitude: it
fits a 32-bit word on a board and never relies on the 64-bit word of a desktop port. The host
mirror (``microrl_host.mirror.intdot``) computes the same codes and sums in int64 and asserts
every intermediate against that bound.

Words read with ``ptr32``/``ptr16`` are unsigned on a 64-bit port and the 32-bit word on a board,
so the code masks fields, never relies on the sign of a load, and sign-extends int16 codes itself.
No literal reaches 2**30: on a 32-bit port viper would load a larger one as an object.
"""

import micropython

from . import kernels_py as _py
from .kernels_py import (  # noqa: F401  (the pure-Python kernels this backend keeps)
    adam, add_bias, affine, bad, codes, copy, copy_cols, fill, fill_uniform, get, matrix, mse_grad,
    minimum, relu, row, rows, scale_rows, set, shape, scratch_like, smooth_actions, staged,
    sum_rows, tanh, tanh_grad, td_target, tensors, zeros)

_wide = 0  # 1 when the storage is 'd'
_bias = 126  # exponent bias - 1 of the storage: |x| < 2**(top - _bias) for a top biased exponent


AFFINE = "python"  # "asm": affine is kernels_asm's machine code (compressed replay decodes then)


def init(typecode, asm=True):
    """``asm`` False: no kernels_asm routine (``affine`` stays the Python loop)."""
    global _wide, _bias, affine, row, AFFINE
    _py.init(typecode)
    _wide = 1 if typecode == "d" else 0
    _bias = 1022 if _wide else 126
    if typecode == "f" and asm:  # single-precision storage: on an ARM core kernels_asm can scale it
        from . import kernels_asm
        module, _ = kernels_asm.routine_for()
        if module is not None:
            kernels_asm.use(module, with_adam=False)  # Adam here is IntAdam
            affine = kernels_asm.affine_tuple
            row = kernels_asm.row_floats
            AFFINE = "asm"


# On a Thumb core (every Cortex-M) the sums of the products come from inline assembler: 12
# instructions per multiply-add where viper on a Cortex-M0 spends about 65. The same integers;
# ports without the Thumb assembler (the desktop, Xtensa, RISC-V) sum in viper. Compiled from this
# string when the module loads: the decorator is a SyntaxError where the assembler is missing.
# Arguments: an int32 array (out, a, b addresses; rows, cols, kk; the strides of a's rows, a's
# terms, b's terms and b's columns in bytes; four words of loop state; the caller's r8, which the
# loops use and AAPCS says a function keeps).
_SUMS_THUMB = """
@micropython.asm_thumb
def _sums(r0):
    mov(r1, r8)
    str(r1, [r0, 56])
    mov(r8, r0)
    ldr(r1, [r0, 4])
    str(r1, [r0, 48])
    ldr(r1, [r0, 12])
    str(r1, [r0, 40])
    label(row)
    mov(r0, r8)
    ldr(r2, [r0, 8])
    str(r2, [r0, 52])
    ldr(r1, [r0, 16])
    str(r1, [r0, 44])
    label(col)
    mov(r0, r8)
    ldr(r1, [r0, 48])
    ldr(r2, [r0, 52])
    ldr(r6, [r0, 20])
    ldr(r7, [r0, 32])
    ldr(r0, [r0, 28])
    mov(r3, 0)
    label(term)
    ldrh(r4, [r1, 0])
    lsl(r4, r4, 16)
    asr(r4, r4, 16)
    ldrh(r5, [r2, 0])
    lsl(r5, r5, 16)
    asr(r5, r5, 16)
    mul(r4, r5)
    add(r3, r3, r4)
    add(r1, r1, r0)
    add(r2, r2, r7)
    sub(r6, r6, 1)
    bne(term)
    mov(r0, r8)
    ldr(r4, [r0, 0])
    str(r3, [r4, 0])
    add(r4, r4, 4)
    str(r4, [r0, 0])
    ldr(r4, [r0, 52])
    ldr(r5, [r0, 36])
    add(r4, r4, r5)
    str(r4, [r0, 52])
    ldr(r4, [r0, 44])
    sub(r4, r4, 1)
    str(r4, [r0, 44])
    bne(col)
    ldr(r4, [r0, 48])
    ldr(r5, [r0, 24])
    add(r4, r4, r5)
    str(r4, [r0, 48])
    ldr(r4, [r0, 40])
    sub(r4, r4, 1)
    str(r4, [r0, 40])
    bne(row)
    ldr(r1, [r0, 56])
    mov(r8, r1)
"""
_thumb = {"micropython": micropython}
try:
    exec(_SUMS_THUMB, _thumb)
except SyntaxError:  # no Thumb inline assembler on this port
    _thumb = None
_sums = _thumb["_sums"] if _thumb else None
THUMB = _sums is not None  # the sums come from the assembler
del _SUMS_THUMB, _thumb  # the source text is garbage once compiled: 1.2 KB of heap


@micropython.viper
def _addresses(args, out, a, b):
    """args[0:3] = the addresses of out, a and b (no int object: addresses can pass 2**30)."""
    p = ptr32(args)
    p[0] = int(ptr8(out))
    p[1] = int(ptr8(a))
    p[2] = int(ptr8(b))


def _log2(kk):
    """ceil(log2 kk): the code widths for a sum of kk products are a = min(15, (30 - L) // 2) and
    b = min(15, 30 - L - a) (see the module doc for the bound)."""
    log2 = 0
    while (1 << log2) < kk:
        log2 += 1
    return log2


@micropython.viper
def _top(src, count: int, wide: int) -> int:
    """The largest biased exponent among src[:count] (0: all zero or subnormal)."""
    p = ptr32(src)
    top = 0
    i = 0
    if wide:
        while i < count:
            e = (p[2 * i + 1] >> 20) & 0x7FF
            if e > top:
                top = e
            i += 1
    else:
        while i < count:
            e = (p[i] >> 23) & 0xFF
            if e > top:
                top = e
            i += 1
    return top


@micropython.viper
def _quantize(src, count: int, dst, k: int, wide: int, word: int):
    """dst[:count] = trunc(src[:count] 2**k), subnormals as 0; int16 codes, or int32 when
    ``word``. The caller picks k so that every code fits (below 2**30 in magnitude)."""
    p = ptr32(src)
    q16 = ptr16(dst)
    q32 = ptr32(dst)
    # Each float as m 2**-r with m of 31 bits, then m >> r truncates exactly.
    base = (1053 if wide else 157) - k
    i = 0
    while i < count:
        if wide:
            hi = p[2 * i + 1]
            e = (hi >> 20) & 0x7FF
            m = (((hi & 0xFFFFF) | 0x100000) << 10) | ((p[2 * i] >> 22) & 0x3FF)
        else:
            hi = p[i]
            e = (hi >> 23) & 0xFF
            m = ((hi & 0x7FFFFF) | 0x800000) << 7
        r = base - e
        c = 0
        if r < 31 and e != 0:
            c = m >> r
        if (hi >> 31) & 1:
            c = -c
        if word:
            q32[i] = c
        else:
            q16[i] = c
        i += 1


# The geometry of a product, in an int32 array ``g``: out[i, j] (row stride cols) =
# sum over t < kk of A[i ars + t aks] B[t bks + j bcs], then (>> shift) + bias[j] when biased,
# 0 if negative when relu, times 2**-k; with masked, an element of out that is not positive stays
# zero (ReLU's derivative). Field 12 says the storage is 'd', 13 that ``sums`` holds the sums.
_FIELDS = 14


@micropython.viper
def _product(out, a, b, g, bias, sums):
    o = ptr32(out)
    qs = ptr32(sums)
    qa = ptr16(a)
    qb = ptr16(b)
    qc = ptr32(bias)
    gg = ptr32(g)
    n_rows = gg[0]
    cols = gg[1]
    kk = gg[2]
    ars = gg[3]
    aks = gg[4]
    bks = gg[5]
    bcs = gg[6]
    sign_bit = 1  # 2**31: sign-extends an int32 loaded on a 64-bit port, a no-op on 32
    sign_bit <<= 31
    k = (gg[7] ^ sign_bit) - sign_bit  # the only field that can be negative
    masked = gg[8]
    biased = gg[9]
    shift = gg[10]
    relu = gg[11]
    wide = gg[12]
    summed = gg[13]  # the sums are in ``sums`` already (the Thumb assembler, a 32-bit port)
    idx = 0
    i = 0
    while i < n_rows:
        j = 0
        while j < cols:
            s = 0
            live = 1
            if masked:
                if wide:
                    hi = o[2 * idx + 1]
                    if (hi >> 31) & 1 or (hi | o[2 * idx]) == 0:
                        live = 0
                else:
                    w = o[idx]
                    if (w >> 31) & 1 or w == 0:
                        live = 0
            if live:
                if summed:
                    s = qs[idx]
                else:
                    ia = i * ars
                    ib = j * bcs
                    t = 0
                    while t < kk:
                        s += ((qa[ia] ^ 0x8000) - 0x8000) * ((qb[ib] ^ 0x8000) - 0x8000)
                        ia += aks
                        ib += bks
                        t += 1
                if biased:
                    s = (s >> shift) + ((qc[j] ^ sign_bit) - sign_bit)
                if relu and s < 0:
                    s = 0
            # s 2**-k as a float, truncated toward zero; 0 when it is below the smallest normal.
            sign = 0
            if s < 0:
                sign = 1
                s = -s
            msb = 0
            v = s
            if v >= 65536:
                v >>= 16
                msb += 16
            if v >= 256:
                v >>= 8
                msb += 8
            if v >= 16:
                v >>= 4
                msb += 4
            if v >= 4:
                v >>= 2
                msb += 2
            if v >= 2:
                msb += 1
            if wide:
                e = msb - k + 1023
                hi = 0
                lo = 0
                if s == 0:
                    pass
                elif e > 2046:  # beyond the largest double: infinity
                    hi = 2047
                    hi = (hi << 20) | (sign << 31)
                elif e > 0:
                    if msb >= 20:
                        hi = (s >> (msb - 20)) & 0xFFFFF
                        lo = s << (52 - msb)
                    else:
                        hi = (s << (20 - msb)) & 0xFFFFF
                    hi |= (e << 20) | (sign << 31)
                o[2 * idx] = lo
                o[2 * idx + 1] = hi
            else:
                e = msb - k + 127
                w = 0
                if s == 0:
                    pass
                elif e > 254:  # beyond the largest float: infinity
                    w = 255
                    w = (w << 23) | (sign << 31)
                elif e > 0:
                    if msb >= 23:
                        w = (s >> (msb - 23)) & 0x7FFFFF
                    else:
                        w = (s << (23 - msb)) & 0x7FFFFF
                    w |= (e << 23) | (sign << 31)
                o[idx] = w
            idx += 1
            j += 1
        i += 1


_shared = None  # (count, scratch): the scratch every network uses


def scratch_row(count):
    """The products' scratch: int16 codes of each operand (``count`` squared each), int32 codes of
    a bias (``count``), the geometry, the code 1 (a column sum is a product with ones), a float
    matrix for a sum that is added to a gradient (``acc``) and, with the Thumb assembler, its
    arguments and the int32 sums (``count`` squared). A kernel uses it only within its call, so
    every network shares one as large as the largest asks (2-3 KB each at 16 rows)."""
    global _shared
    if _shared is not None and _shared[0] >= count:
        return _shared[1]
    square = count * count
    one = zeros("h", 1)
    one[0] = 1
    sums = zeros("i", square if THUMB else 1)
    scratch = (zeros("h", square), zeros("h", square), zeros("i", count), zeros("i", _FIELDS),
               one, matrix(count, count), zeros("i", 15), sums)
    _shared = (count, scratch)
    return scratch


def _codes(src, count, dst, bits):
    """Quantizes src[:count] into dst with the scale that fits ``bits``; returns the scale k, or
    None when every element is zero."""
    top = _top(src, count, _wide)
    k = bits - top + _bias if top else 0
    _quantize(src, count, dst, k, _wide, 0)
    return k if top else None


def _geometry(g, rows, cols, kk, ars, aks, bks, bcs):
    """The product's shape and strides into the preallocated geometry ``g`` (see ``_product``)."""
    g[0] = rows
    g[1] = cols
    g[2] = kk
    g[3] = ars
    g[4] = aks
    g[5] = bks
    g[6] = bcs
    g[12] = _wide


def _run(out, a, a_count, b, b_count, scratch, masked=0, bias=None, relu_out=0):
    """out = the product of a and b that the geometry in scratch[3] gives, plus ``bias`` (a float
    row) and ReLU when asked (see ``_product``); returns b's scale (None: b is all zero)."""
    qa, qb, qc, g = scratch[0], scratch[1], scratch[2], scratch[3]
    log2 = _log2(g[2])
    bits_a = min(15, (30 - log2) // 2)
    ka = _codes(a, a_count, qa, bits_a)
    kb = _codes(b, b_count, qb, min(15, 30 - log2 - bits_a))
    k = ka + kb if ka is not None and kb is not None else None
    shift = 0
    biased = 0
    if bias is not None:
        cols = g[1]
        top = _top(bias, cols, _wide)
        if top:
            biased = 1
            if k is None:  # a zero product: the bias alone, at the scale that fits it
                k = 30 - top + _bias
            else:
                shift = max(0, top - _bias + k - 30)
                k -= shift
            _quantize(bias, cols, qc, k, _wide, 1)
    g[7] = 0 if k is None else k  # no scale: every sum is zero
    g[8] = masked
    g[9] = biased
    g[10] = shift
    g[11] = relu_out
    g[13] = _thumb_sums(scratch, qa, qb)
    _product(out, qa, qb, g, qc, scratch[7])
    return kb


def _thumb_sums(scratch, qa, qb):
    """Sums the products of the geometry in scratch[3] into scratch[7] with the assembler;
    1 when it did."""
    g = scratch[3]
    if not THUMB or g[2] == 0:  # (no terms: the viper loop sums nothing)
        return 0
    args = scratch[6]
    _addresses(args, scratch[7], qa, qb)
    args[3] = g[0]
    args[4] = g[1]
    args[5] = g[2]
    args[6] = 2 * g[3]  # strides in bytes
    args[7] = 2 * g[4]
    args[8] = 2 * g[5]
    args[9] = 2 * g[6]
    _sums(args)
    return 1


def dense(out, x, w, b, n, scratch, relu_out):
    """out[:n] = x[:n] w + b, then ReLU when ``relu_out``; returns out"""
    kk, cols = x[2], w[2]
    _geometry(scratch[3], n, cols, kk, kk, 1, cols, 1)
    _run(out[0], x[0], n * kk, w[0], kk * cols, scratch, 0, b[0], 1 if relu_out else 0)
    return out


def dot(out, x, w, n, scratch):
    """out[:n] = x[:n] w; returns out"""
    kk, cols = x[2], w[2]
    _geometry(scratch[3], n, cols, kk, kk, 1, cols, 1)
    _run(out[0], x[0], n * kk, w[0], kk * cols, scratch)
    return out


def dot_tn(out, x, d, n, scratch, acc=False):
    """out = x[:n]^T d[:n], or out += that when ``acc``; returns d's scale (None: d is zero)"""
    x_cols, cols = x[2], d[2]
    dst = scratch[5] if acc else out
    _geometry(scratch[3], x_cols, cols, n, 1, x_cols, cols, 1)
    kd = _run(dst[0], x[0], n * x_cols, d[0], n * cols, scratch)
    if acc:
        _add(out[0], dst[0], x_cols * cols)
    return kd


def _add(o, s, count):
    for i in range(count):
        o[i] += s[i]


def dense_grads(gw, gb, x, d, n, scratch, acc=False):
    """gw = x[:n]^T d[:n] and gb = the column sums of d[:n] (or both added when ``acc``): the
    sums are a product of d's codes, quantized once, with a row of ones."""
    kd = dot_tn(gw, x, d, n, scratch, acc)  # leaves d's codes in the scratch
    g = scratch[3]
    cols = d[2]
    dst = scratch[5] if acc else gb
    _geometry(g, 1, cols, n, 0, 0, cols, 1)
    g[7] = 0 if kd is None else kd
    g[8] = g[9] = g[10] = g[11] = 0
    g[13] = _thumb_sums(scratch, scratch[4], scratch[1])
    _product(dst[0], scratch[4], scratch[1], g, scratch[2], scratch[7])
    if acc:
        _add(gb[0], dst[0], cols)


def dot_nt(out, d, w, n, scratch):
    """out[:n] = d[:n] w^T; returns out"""
    kk, cols = d[2], w[1]
    _geometry(scratch[3], n, cols, kk, kk, 1, 1, kk)
    _run(out[0], d[0], n * kk, w[0], cols * kk, scratch)
    return out


def dot_nt_relu(h, d, w, n, scratch):
    """h[:n] = (d[:n] w^T) * (h[:n] > 0): the hidden delta written over its own activation;
    returns h"""
    kk, cols = d[2], w[1]
    _geometry(scratch[3], n, cols, kk, kk, 1, 1, kk)
    _run(h[0], d[0], n * kk, w[0], cols * kk, scratch, 1)
    return h


from .intadam import IntAdam, polyak  # noqa: E402,F401  (intadam reads this module's helpers)
