"""Compiled kernels (numba) for the mirror's hot paths, with the numpy path's arithmetic to the bit.

A TD3 update on 64x64 networks and batches of 100 makes about 120 numpy calls besides its matrix
products, each about a microsecond of dispatch for a few hundred flops. Here a network's whole
forward or backward pass is one call (and an Adam step, a Polyak update, TD3's target, ...: those
are in fused_steps.py). The matrix products still go to numpy's own BLAS, called from the kernels
with exactly the arguments numpy's matmul would pass (`matmul_ptrs` follows numpy 2.4's
matmul.c.src: gemm, gemv, dot or its plain loop, by the same tests on shapes and strides), so they
compute the same numbers. Everything else is written in numpy's order of operations, each constant
in the array's dtype (numpy 2 casts a Python float to the array's dtype), compiled without fastmath
and with numpy's error model, so without reassociation, fused multiply-adds or division checks:
float32 and float64 results equal the numpy path's bit for bit. tanh is left to numpy (its SIMD
tanh is not libm's), as are numpy's log and cos in the random normals.

The BLAS symbols are registered with numba's compiler only (llvmlite's add_symbol), not loaded into
the process's global namespace: a global load let RLtools' own OpenBLAS, loaded later in
bench.peers' worker, bind its internals to numpy's copy (NaN returns).

A pass runs from a table: one int64 row per layer of each network with every view it touches as
(address, rows, columns, row stride, column stride), strides in elements, built once per row count
like the numpy path's plans (which keep the views, and so the memory, alive). A kernel call then
costs about 0.2 us; a typed list of views would cost 1 us per argument.

`active()` tells whether objects built now take this path: numba imports, numpy's CBLAS is found
in the process, and `ENABLED` is true (set it false, or use `numpy_path()`, for the reference).
"""

import contextlib
import ctypes

import numpy as np

try:
    import numba
except ModuleNotFoundError as e:  # the numpy path serves
    if e.name != "numba":
        raise
    numba = None

ENABLED = True  # False: objects built afterwards take the numpy path
_ROW, _COL_MAJOR, _NO_TRANS, _TRANS = 101, 102, 111, 112  # CBLAS enums
_SLOT = 5  # ints per view in a table: address, rows, columns, row stride, column stride


def _numpy_cblas():
    """(library handle, symbol pattern, int bits) of the CBLAS that numpy's matmul calls, or None:
    looked up through numpy's own extension module, so its dependencies, not another BLAS the
    process may have loaded."""
    from numpy._core import _multiarray_umath

    library = ctypes.CDLL(_multiarray_umath.__file__)
    for pattern, bits in (("scipy_cblas_%s64_", 64), ("scipy_cblas_%s", 32),
                          ("cblas_%s64_", 64), ("cblas_%s", 32)):
        if hasattr(library, pattern % "sgemm"):
            return library, pattern, bits
    return None


_CBLAS = _numpy_cblas() if numba is not None else None
COMPILED = _CBLAS is not None  # the kernels exist (fused_steps.py defines its own with them)


def active():
    """True when objects built now should take the compiled path."""
    return ENABLED and _CBLAS is not None


@contextlib.contextmanager
def numpy_path():
    """Objects built inside this block take the numpy path."""
    global ENABLED
    saved, ENABLED = ENABLED, False
    try:
        yield
    finally:
        ENABLED = saved


def slots(*views):
    """The table entries of 2D views: (address, rows, columns, row stride, column stride) each."""
    out = []
    for view in views:
        size = view.itemsize
        rs, cs = view.strides
        if view.ndim != 2 or rs % size or cs % size:
            raise ValueError("a table view must be 2D with strides in whole elements")
        out += [view.__array_interface__["data"][0], view.shape[0], view.shape[1],
                rs // size, cs // size]
    return out


def table(rows):
    """An int64 table from rows of ints."""
    return np.array(rows, np.int64).reshape(len(rows), -1)


if _CBLAS is not None:
    import llvmlite.binding as llvm
    from numba import njit, types
    from numba.extending import intrinsic, overload

    # Only these symbols, in the compiler's own table: loading the library globally would let a
    # second BLAS loaded later (RLtools' in bench.peers) bind its internals to numpy's.
    for _name in ("sgemm", "dgemm", "sgemv", "dgemv", "sdot", "ddot"):
        llvm.add_symbol(_CBLAS[1] % _name, ctypes.cast(getattr(_CBLAS[0], _CBLAS[1] % _name),
                                                       ctypes.c_void_p).value)
    _I = types.int64 if _CBLAS[2] == 64 else types.int32
    _E, _P = types.int32, types.intp  # enums; pointers (passed as addresses)
    _MAXSIZE = 2**63 - 2 if _CBLAS[2] == 64 else 2**31 - 2  # numpy's BLAS_MAXSIZE

    def _blas(name, result, *args):
        return types.ExternalFunction(_CBLAS[1] % name, result(*args))

    _gemm_args = (_E, _E, _E, _I, _I, _I, None, _P, _I, _P, _I, None, _P, _I)
    _gemv_args = (_E, _E, _I, _I, None, _P, _I, _P, _I, None, _P, _I)
    _with = lambda args, t: tuple(t if a is None else a for a in args)  # noqa: E731
    _sgemm = _blas("sgemm", types.void, *_with(_gemm_args, types.float32))
    _dgemm = _blas("dgemm", types.void, *_with(_gemm_args, types.float64))
    _sgemv = _blas("sgemv", types.void, *_with(_gemv_args, types.float32))
    _dgemv = _blas("dgemv", types.void, *_with(_gemv_args, types.float64))
    _sdot = _blas("sdot", types.float32, _I, _P, _I, _P, _I)
    _ddot = _blas("ddot", types.float64, _I, _P, _I, _P, _I)

    @intrinsic
    def _pointer(typingctx, address, like):
        """A typed pointer to `like`'s type at an integer address."""
        sig = types.CPointer(like)(address, like)

        def codegen(context, builder, signature, args):
            return builder.inttoptr(args[0], context.get_value_type(signature.return_type))

        return sig, codegen

    def _single(x):
        pass

    @overload(_single)
    def _single_overload(x):
        single = x.bitwidth == 32  # a compile-time constant: the other branch is not kept
        return lambda x: single

    def cast_like(value, like):
        """`value` in the float type of `like` (inside compiled code)."""

    @overload(cast_like)
    def _cast_like_overload(value, like):
        kind = np.float32 if like.bitwidth == 32 else np.float64
        return lambda value, like: kind(value)

    @njit(cache=True, error_model="numpy")
    def _blasable(s1, s2, d1, d2):
        """numpy's is_blasable2d in element strides."""
        return s2 == 1 and s1 >= d2 and s1 <= _MAXSIZE

    @njit(cache=True, error_model="numpy")
    def _gemm(trans1, trans2, m, p, n, a, lda, b, ldb, c, ldc, zero):
        if _single(zero):
            _sgemm(_ROW, trans1, trans2, m, p, n, np.float32(1.0), a, lda, b, ldb,
                   np.float32(0.0), c, ldc)
        else:
            _dgemm(_ROW, trans1, trans2, m, p, n, 1.0, a, lda, b, ldb, 0.0, c, ldc)

    @njit(cache=True, error_model="numpy")
    def _gemv(ip1, is1_m, is1_n, ip2, is2_n, op, op_m, m, n, zero):
        """numpy's @TYPE@_gemv."""
        if _blasable(is1_m, is1_n, m, n):
            order, lda = _COL_MAJOR, is1_m
        else:
            order, lda = _ROW, is1_n
        if _single(zero):
            _sgemv(order, _TRANS, n, m, np.float32(1.0), ip1, lda, ip2, is2_n, np.float32(0.0),
                   op, op_m)
        else:
            _dgemv(order, _TRANS, n, m, 1.0, ip1, lda, ip2, is2_n, 0.0, op, op_m)

    @njit(cache=True, error_model="numpy")
    def _dot(ip1, is1, ip2, is2, op, n, zero):
        """numpy's @name@_dot: BLAS dot summed into a double, or a plain loop."""
        out = _pointer(op, zero)
        if is1 > 0 and is2 > 0:
            total = 0.0
            if _single(zero):
                total += _sdot(n, ip1, is1, ip2, is2)
            else:
                total += _ddot(n, ip1, is1, ip2, is2)
            out[0] = cast_like(total, zero)
        else:
            a, b = _pointer(ip1, zero), _pointer(ip2, zero)
            total = zero
            for i in range(n):
                total += a[i * is1] * b[i * is2]
            out[0] = total

    @njit(cache=True, error_model="numpy")
    def _noblas(ip1, is1_m, is1_n, ip2, is2_n, is2_p, op, os_m, os_p, dm, dn, dp, zero):
        """numpy's matmul_inner_noblas: each output a sum from zero in the dtype."""
        a, b, c = _pointer(ip1, zero), _pointer(ip2, zero), _pointer(op, zero)
        for m in range(dm):
            for p in range(dp):
                total = zero
                for n in range(dn):
                    total += a[m * is1_m + n * is1_n] * b[n * is2_n + p * is2_p]
                c[m * os_m + p * os_p] = total

    @njit(cache=True, error_model="numpy")
    def _matrix_matrix(ip1, is1_m, is1_n, ip2, is2_n, is2_p, op, os_m, os_p, m, n, p, zero):
        """numpy's @name@_matmul_matrixmatrix (its syrk case never arises in these passes)."""
        if _blasable(is1_m, is1_n, m, n):
            trans1, lda = _NO_TRANS, is1_m
        else:
            trans1, lda = _TRANS, is1_n
        if _blasable(is2_n, is2_p, n, p):
            trans2, ldb = _NO_TRANS, is2_n
        else:
            trans2, ldb = _TRANS, is2_p
        if ip1 == ip2 and m == p and is1_m == is2_p and is1_n == is2_n and trans1 != trans2:
            raise ValueError("fused matmul: a matrix times its own transpose (numpy's syrk)")
        _gemm(trans1, trans2, m, p, n, ip1, lda, ip2, ldb, op, os_m, zero)

    @njit(cache=True, error_model="numpy")
    def _matmul(t, i, a, b, c, zero):
        """out = A @ B for the views at columns a, b, c of table row i, as numpy's matmul."""
        ip1, dm, dn, is1_m, is1_n = t[i, a], t[i, a + 1], t[i, a + 2], t[i, a + 3], t[i, a + 4]
        ip2, is2_n, is2_p = t[i, b], t[i, b + 3], t[i, b + 4]
        dp = t[i, b + 2]
        op, os_m, os_p = t[i, c], t[i, c + 3], t[i, c + 4]
        matmul_ptrs(ip1, dm, dn, is1_m, is1_n, ip2, dp, is2_n, is2_p, op, os_m, os_p, zero)

    @njit(cache=True, error_model="numpy")
    def matmul_ptrs(ip1, dm, dn, is1_m, is1_n, ip2, dp, is2_n, is2_p, op, os_m, os_p, zero):
        """numpy 2.4's FLOAT/DOUBLE_matmul for one (dm, dn) @ (dn, dp) core."""
        if dm == 0 or dn == 0 or dp == 0:
            _noblas(ip1, is1_m, is1_n, ip2, is2_n, is2_p, op, os_m, os_p, dm, dn, dp, zero)
            return
        i1blasable = _blasable(is1_m, is1_n, dm, dn) or _blasable(is1_n, is1_m, dn, dm)
        i2blasable = _blasable(is2_n, is2_p, dn, dp) or _blasable(is2_p, is2_n, dp, dn)
        if dm == 1 or dn == 1 or dp == 1:
            if dm == 1 and dp == 1:
                _dot(ip1, is1_n, ip2, is2_n, op, dn, zero)
            elif dn == 1:
                _noblas(ip1, is1_m, is1_n, ip2, is2_n, is2_p, op, os_m, os_p, dm, dn, dp, zero)
            elif dm == 1 and i2blasable and _blasable(is1_n, 1, dn, 1):
                _gemv(ip2, is2_p, is2_n, ip1, is1_n, op, os_p, dp, dn, zero)
            elif dp == 1 and i1blasable and _blasable(is2_n, 1, dn, 1):
                _gemv(ip1, is1_m, is1_n, ip2, is2_n, op, os_m, dm, dn, zero)
            else:
                _noblas(ip1, is1_m, is1_n, ip2, is2_n, is2_p, op, os_m, os_p, dm, dn, dp, zero)
            return
        oblasable = _blasable(os_m, os_p, dm, dp) or _blasable(os_p, os_m, dp, dm)
        if not (i1blasable and i2blasable and oblasable):
            raise ValueError("fused matmul: a view numpy would copy before its BLAS call")
        if abs(os_m) < abs(os_p):
            _matrix_matrix(ip2, is2_p, is2_n, ip1, is1_n, is1_m, op, os_p, os_m,
                           dp, dn, dm, zero)
        else:
            _matrix_matrix(ip1, is1_m, is1_n, ip2, is2_n, is2_p, op, os_m, os_p, dm, dn, dp,
                           zero)

    # ---- network passes ---------------------------------------------------------------------

    @njit(cache=True, error_model="numpy")
    def _relu(t, i, c_h, c_m, zero):
        """mask = h > 0 (1 or 0 in the dtype), h = h * mask, over the whole augmented output."""
        h, mask = _pointer(t[i, c_h], zero), _pointer(t[i, c_m], zero)
        one = cast_like(1.0, zero)
        hr, hc, mr, mc = t[i, c_h + 3], t[i, c_h + 4], t[i, c_m + 3], t[i, c_m + 4]
        cols = t[i, c_h + 2]
        for r in range(t[i, c_h + 1]):
            hb, mb = r * hr, r * mr
            if hc == 1 and mc == 1:  # contiguous rows: a loop the compiler vectorises
                for c in range(cols):
                    x = h[hb + c]
                    m = one if x > zero else zero
                    mask[mb + c] = m
                    h[hb + c] = x * m
            else:
                for c in range(cols):
                    x = h[hb + c * hc]
                    m = one if x > zero else zero
                    mask[mb + c * mc] = m
                    h[hb + c * hc] = x * m

    @njit(cache=True, error_model="numpy")
    def forward(t, zero):
        """Run a forward table (`forward_table`): per row the product, then ReLU if flagged."""
        for i in range(t.shape[0]):
            _matmul(t, i, _F_X, _F_W, _F_H, zero)
            if t[i, 0]:
                _relu(t, i, _F_A, _F_M, zero)

    @njit(cache=True, error_model="numpy")
    def backward(t, dy, zero, param_grads, input_grads):
        """Run a backward table (`backward_table`) from dL/dy `dy` (networks, n, out)."""
        size = dy.itemsize
        dy0, dy1, dy2 = dy.strides[0] // size, dy.strides[1] // size, dy.strides[2] // size
        one = cast_like(1.0, zero)
        last = t.shape[0] - 1
        zp = zr = zc = zrs = zcs = 0  # the current dL/dz view
        for i in range(t.shape[0]):
            if t[i, 1]:  # a network's last layer: dz from dy (through tanh when flagged)
                zp = np.intp(dy.ctypes.data) + t[i, 0] * dy0 * size
                zr, zc, zrs, zcs = dy.shape[1], dy.shape[2], dy1, dy2
                if t[i, 5]:
                    y, g, d = _pointer(t[i, _B_Y], zero), _pointer(t[i, _B_TG], zero), \
                        _pointer(zp, zero)
                    yr, yc, gr, gc = t[i, _B_Y + 3], t[i, _B_Y + 4], t[i, _B_TG + 3], \
                        t[i, _B_TG + 4]
                    for r in range(zr):
                        for c in range(zc):
                            v = y[r * yr + c * yc]
                            g[r * gr + c * gc] = (one - v * v) * d[r * zrs + c * zcs]
                    zp, zrs, zcs = t[i, _B_TG], gr, gc
            x = _B_XT
            if param_grads:  # [dW; db] = [x, 1]^T dz
                matmul_ptrs(t[i, x], t[i, x + 1], t[i, x + 2], t[i, x + 3], t[i, x + 4],
                            zp, zc, zrs, zcs, t[i, _B_G], t[i, _B_G + 3], t[i, _B_G + 4], zero)
            if not t[i, 2] or (not input_grads and (i == last or t[i + 1, 1])):
                continue
            if zc == 1 and t[i, 4]:  # outer product and mask in one pass, the same products
                _outer_masked(t, i, zp, zr, zrs, zero)
            else:
                _times_transpose(t, i, zp, zr, zc, zrs, zcs, zero)
            if t[i, 4] and zc != 1:  # ReLU mask of the layer below
                d, m = _pointer(t[i, _B_DXA], zero), _pointer(t[i, _B_M], zero)
                dr, dc, mr, mc = t[i, _B_DXA + 3], t[i, _B_DXA + 4], t[i, _B_M + 3], \
                    t[i, _B_M + 4]
                cols = t[i, _B_DXA + 2]
                for r in range(t[i, _B_DXA + 1]):
                    db, mb = r * dr, r * mr
                    if dc == 1 and mc == 1:
                        for c in range(cols):
                            d[db + c] = d[db + c] * m[mb + c]
                    else:
                        for c in range(cols):
                            d[db + c * dc] = d[db + c * dc] * m[mb + c * mc]
            zp, zr, zc, zrs, zcs = (t[i, _B_DX], t[i, _B_DX + 1], t[i, _B_DX + 2],
                                    t[i, _B_DX + 3], t[i, _B_DX + 4])

    @njit(cache=True, error_model="numpy")
    def _outer_masked(t, i, zp, zr, zrs, zero):
        """dx_aug = (dz w^T) * mask for a one-output layer: each element (dz_r w_c) m_rc."""
        w, wr = t[i, _B_W], t[i, _B_W + 3]
        o, orr, oc = t[i, _B_DXA], t[i, _B_DXA + 3], t[i, _B_DXA + 4]
        mp, mr, mc = t[i, _B_M], t[i, _B_M + 3], t[i, _B_M + 4]
        dz, wt, out, m = _pointer(zp, zero), _pointer(w, zero), _pointer(o, zero), \
            _pointer(mp, zero)
        win = t[i, _B_W + 1]
        for r in range(zr):
            g, ob, mb = dz[r * zrs], r * orr, r * mr
            if oc == 1 and wr == 1 and mc == 1:
                for c in range(win):
                    out[ob + c] = (g * wt[c]) * m[mb + c]
            else:
                for c in range(win):
                    out[ob + c * oc] = (g * wt[c * wr]) * m[mb + c * mc]

    @njit(cache=True, error_model="numpy")
    def _times_transpose(t, i, zp, zr, zc, zrs, zcs, zero):
        """mlp.times_transpose: dx_aug = dz @ W^T (an outer product for one column; through the
        W^T copy when the row has one)."""
        w, wr, wc = t[i, _B_W], t[i, _B_W + 3], t[i, _B_W + 4]
        win, wout = t[i, _B_W + 1], t[i, _B_W + 2]
        o, orr, oc = t[i, _B_DXA], t[i, _B_DXA + 3], t[i, _B_DXA + 4]
        if zc == 1:
            dz, wt, out = _pointer(zp, zero), _pointer(w, zero), _pointer(o, zero)
            for r in range(zr):
                g, ob = dz[r * zrs], r * orr
                if oc == 1 and wr == 1:
                    for c in range(win):
                        out[ob + c] = g * wt[c]
                else:
                    for c in range(win):
                        out[ob + c * oc] = g * wt[c * wr]
        elif t[i, 3]:
            tp, tr, tc = t[i, _B_T], t[i, _B_T + 3], t[i, _B_T + 4]
            src, dst = _pointer(w, zero), _pointer(tp, zero)
            for r in range(wout):
                for c in range(win):
                    dst[r * tr + c * tc] = src[c * wr + r * wc]
            matmul_ptrs(zp, zr, zc, zrs, zcs, tp, win, tr, tc, o, orr, oc, zero)
        else:
            matmul_ptrs(zp, zr, zc, zrs, zcs, w, win, wc, wr, o, orr, oc, zero)

# Table columns. Forward: relu flag, then the views x_aug, [W; b], h (the product's output),
# h_aug (h with the ones column), ReLU mask.
_F_X, _F_W, _F_H, _F_A, _F_M = 1, 6, 11, 16, 21
# Backward: network index, first step of its network, has the step below, has a W^T copy, has a
# mask, tanh output; then the views y, tanh grad, x_aug^T, [dW; db], [W; b], W^T copy, dx_aug, dx,
# mask.
_B_Y, _B_TG, _B_XT, _B_G, _B_W, _B_T, _B_DXA, _B_DX, _B_M = range(6, 51, _SLOT)
_NONE = [0] * _SLOT


def _pick(view, index):
    """The 2D network view of a stacked view at `index` (an axis of size one broadcasts)."""
    lead = view.ndim - 2
    if lead == 0:
        return view
    sub = index[len(index) - lead:]
    return view[tuple(i if s > 1 else 0 for i, s in zip(sub, view.shape[:lead]))]


def forward_table(steps, lead_shape=()):
    """The table of mlp.forward_steps over stacked networks (`lead_shape`, () for one)."""
    rows = []
    for x_aug, layer, h_aug, h, mask in steps:
        for index in np.ndindex(*lead_shape):
            views = [_pick(v, index) for v in (x_aug, layer, h, h_aug)]
            rows.append([mask is not None] + slots(*views)
                        + (slots(_pick(mask, index)) if mask is not None else _NONE))
    return table(rows)


def backward_table(networks):
    """The table of backward passes, one network after the other: `networks` holds per network
    (y, tanh grad or None, [(x_aug^T, [dW; db], [W; b] or None, W^T copy, dx_aug, dx, mask)]
    from the last layer down), each view 2D, None where absent."""
    rows = []
    for j, (y, tanh_grad, steps) in enumerate(networks):
        for k, (x_aug_t, grad, layer, transposed, dx_aug, dx, mask) in enumerate(steps):
            first = k == 0
            tanh = first and tanh_grad is not None
            row = [j, first, layer is not None, transposed is not None, mask is not None, tanh]
            for view in (y if tanh else None, tanh_grad if tanh else None, x_aug_t, grad, layer,
                         transposed, dx_aug, dx, mask):
                row += _NONE if view is None else slots(view)
            rows.append(row)
    return table(rows)
