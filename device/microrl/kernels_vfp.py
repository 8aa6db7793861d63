"""The products of the ulab backend in Thumb-2 machine code with the single-precision FPU
(``kernels_asm`` calls ``ROUTINE``; its arguments are described there).

On a Cortex-M4F, M7 or M33 whose firmware stores floats in single precision, the inner loop is
vldr, vldr, vfma, two pointer steps, the count and the branch: 7 instructions a multiply-add. The
sums are ulab's own, bit for bit: each term is added with a fused multiply-add (``vfma``), which
is what the compiler makes of ulab's ``dot += a * b`` on these cores; then the bias is added, or
the product is added to the gradient (``gw + x^T d``, as ``gw += dot(...)``). The column sums of
a delta (the bias gradient) are sums in row order, as numpy takes them (ulab gives a float sum as
its running mean times the count).

``ROUTINE`` is None where the firmware's assembler has no FPU instructions (Cortex-M0 and M3,
other architectures, CircuitPython, CPython): the source then raises SyntaxError.
"""

# Words 9-14 of the argument array are the loop state, word 15 the caller's r8 (AAPCS says a
# function keeps it). data(2, 0xEEA0, 0x0A81) is vfma.f32 s0, s1, s2, which the assembler lacks.
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
    ldr(r4, [r0, 36])
    ldr(r5, [r0, 76])
    add(r4, r4, r5)
    str(r4, [r0, 36])
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


from .kernels_asm import compile_routine  # noqa: E402

ROUTINE = compile_routine(_SRC, "_fdot")
del _SRC  # the source text is garbage once compiled
