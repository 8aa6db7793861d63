"""The pure-Python backend's heavy kernels in machine code, on ARM firmware without ulab.

Stock MicroPython for a Cortex-M chip (the official rp2 and stm32 builds) has the inline
assembler. There ``install`` puts kernels_asm's routines into the pure-Python kernels
(``kernels_py``) in place of their loops: the products with their bias, ReLU, mask and
accumulation; Adam; the target networks' update. Each computes the operations of the loop it
replaces, in the firmware's float:
- on a Thumb core without an FPU (the RP2040's Cortex-M0+) each one rounded as the loop's
  Python float operation rounds it, so training is the loops' own, bit for bit (subnormal
  numbers aside, which these routines count as zero, as the RP2040's ROM float routines do);
- with an FPU (Cortex-M4F, M7, M33) a product's terms are fused multiply-adds, as ulab's
  products there, a rounding fewer per term than the loop.

A multiply-add then costs about 115 instructions on a Cortex-M0+ and allocates nothing, where
the loop costs about 2000 (it boxes three floats). ``affine`` (the compressed replay's scaling)
becomes kernels_asm's too, so the replay decodes in viper (compressed_viper). A matrix stays the
pure-Python kernels' tuple (data, rows, cols); the parameters of a network lie in one flat array
(``tensors_flat``), because the product routine reads a layer's bias as the row after its
weights.
"""

from . import kernels_asm as A


def tensors_flat(shapes):
    """(flat, views): one 1 x N matrix, and a matrix per (rows, cols) in ``shapes`` whose data is
    a memoryview of its part of it, one after the other (as kernels_nd.tensors lays them out)."""
    from .kernels_py import matrix
    total = 0
    for r, c in shapes:
        total += r * c
    flat = matrix(1, total)
    data = memoryview(flat[0])
    views = [None] * len(shapes)  # sized once: no list growth on the heap
    offset = 0
    for i in range(len(shapes)):
        r, c = shapes[i]
        views[i] = (data[offset:offset + r * c], r, c)
        offset += r * c
    return flat, views


def assembles(vfp=True):
    """True where this firmware's inline assembler compiles kernels_asm's product routine for its
    core (kernels_vfp's with an FPU unless ``vfp`` is False, kernels_thumb's without one)."""
    return A.routine_for(vfp)[0] is not None


def install(K, vfp=True):
    """Puts the routines into ``K`` (kernels_py, initialised with single-precision storage) where
    this firmware's inline assembler compiles them for its core (kernels_vfp's with an FPU unless
    ``vfp`` is False, kernels_thumb's without one); sets K.PRODUCTS ("thumb" or "vfp") and
    K.AFFINE ("asm"). Returns whether it did."""
    module, name = A.routine_for(vfp)
    if module is None:
        return False
    if A.use(module):
        K.adam = A.adam_tuple
    K.dense = A.dense_tuple
    K.dense_grads = A.dense_grads_tuple
    K.dot_nt = A.dot_nt_tuple
    K.dot_nt_relu = A.dot_nt_relu_tuple
    K.polyak = A.polyak_tuple
    K.affine = A.affine_tuple
    K.row = A.row_floats
    K.tensors = tensors_flat
    K.PRODUCTS = name
    K.AFFINE = "asm"
    return True
