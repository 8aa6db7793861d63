"""Adam in Thumb-2 machine code with the single-precision FPU: ``ADAM``, the routine
``kernels_asm.adam`` calls where kernels_vfp computes the products (its arguments below).

ulab's Adam is 16 array passes, each a call into ulab over every parameter; here two calls (the
moments, then the parameters), about 15 instructions an element each, every operation rounded
as ulab's pass of it. ``ADAM`` is None where the firmware's assembler has no FPU instructions.
"""

# Adam (kernels_asm.adam): r0 an int32 array (count, the address of the constants b1, b2, 1 - b1,
# 1 - b2, 1 / sqrt(bias correction 2), eps, step size, 1.0; the pass; then the routine's own
# words), r1-r3 three arrays. Pass 0 (g, m, v): m = m b1 + g (1 - b1), v = v b2 + g g (1 - b2);
# pass 1 (p, m, v): p = p - (1 / (sqrt(v) c + eps)) m step. Each operation rounds as ulab's
# elementwise pass of it does (vsqrt and vdiv are the C library's sqrtf and 1.0f / x).
_ADAM_SRC = """
@micropython.asm_thumb
def _adam(r0, r1, r2, r3):
    ldr(r4, [r0, 4])
    vldr(s8, [r4, 0])
    vldr(s9, [r4, 4])
    vldr(s10, [r4, 8])
    vldr(s11, [r4, 12])
    vldr(s12, [r4, 16])
    vldr(s13, [r4, 20])
    vldr(s14, [r4, 24])
    vldr(s15, [r4, 28])
    ldr(r5, [r0, 0])
    ldr(r6, [r0, 8])
    cmp(r6, 0)
    bne(step)
    label(moments)
    vldr(s0, [r1, 0])
    vldr(s1, [r2, 0])
    vmul(s1, s1, s8)
    vmul(s2, s0, s10)
    vadd(s1, s1, s2)
    vstr(s1, [r2, 0])
    vldr(s3, [r3, 0])
    vmul(s3, s3, s9)
    vmul(s4, s0, s0)
    vmul(s4, s4, s11)
    vadd(s3, s3, s4)
    vstr(s3, [r3, 0])
    add(r1, 4)
    add(r2, 4)
    add(r3, 4)
    sub(r5, 1)
    bne(moments)
    b(done)
    label(step)
    vldr(s3, [r3, 0])
    vsqrt(s3, s3)
    vmul(s3, s3, s12)
    vadd(s3, s3, s13)
    vdiv(s3, s15, s3)
    vldr(s1, [r2, 0])
    vmul(s3, s3, s1)
    vmul(s3, s3, s14)
    vldr(s0, [r1, 0])
    vsub(s0, s0, s3)
    vstr(s0, [r1, 0])
    add(r1, 4)
    add(r2, 4)
    add(r3, 4)
    sub(r5, 1)
    bne(step)
    label(done)
"""


from .kernels_asm import compile_routine  # noqa: E402

ADAM = compile_routine(_ADAM_SRC, "_adam")
del _ADAM_SRC  # the source text is garbage once compiled
