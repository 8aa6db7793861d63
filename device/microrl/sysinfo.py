"""What a board is: firmware, ulab, float precision, heap, and the .mpy version it loads."""

import gc
import sys

from . import __version__
from .backend import FLOAT_BITS, NAME, PRODUCTS, REASON, STORE_BITS

# sys.implementation._mpy: bits 0-7 the .mpy version, 8-9 its sub-version, 10+ the native arch.
MPY_ARCHS = (None, "x86", "x64", "armv6", "armv6m", "armv7m", "armv7em", "armv7emsp",
             "armv7emdp", "xtensa", "xtensawin", "rv32imc", "rv64imc")


def decode_mpy(value):
    """{"version", "sub", "arch"} from sys.implementation._mpy (None on CPython)."""
    if value is None:
        return None
    arch_index = value >> 10
    arch = MPY_ARCHS[arch_index] if arch_index < len(MPY_ARCHS) else "arch%d" % arch_index
    return {"raw": value, "version": value & 0xFF, "sub": (value >> 8) & 3, "arch": arch}


def heap():
    """(free_bytes, allocated_bytes) after a collection; (None, None) where gc cannot tell."""
    gc.collect()
    if hasattr(gc, "mem_free"):
        return gc.mem_free(), gc.mem_alloc()
    return None, None


def ulab_version():
    try:
        import ulab
    except ImportError:
        return None
    return getattr(ulab, "__version__", "unknown")


def describe():
    impl = sys.implementation
    version = ".".join(str(v) for v in impl.version[:3])
    if len(impl.version) > 3 and impl.version[3]:
        version += "-" + str(impl.version[3])
    mpy = getattr(impl, "_mpy", None)
    if mpy is None:
        mpy = getattr(impl, "mpy", None)  # MicroPython 1.12 to 1.19 spelled it without "_"
    free_bytes, alloc_bytes = heap()
    return {
        "implementation": impl.name,
        "version": version,
        "machine": getattr(impl, "_machine", sys.platform),
        "platform": sys.platform,
        "mpy": decode_mpy(mpy),
        "ulab": ulab_version(),
        "backend": NAME,
        "backend_reason": REASON,
        "products": PRODUCTS,
        "float_bits": FLOAT_BITS,
        "store_bits": STORE_BITS,
        "heap_free_bytes": free_bytes,
        "heap_alloc_bytes": alloc_bytes,
        "microrl": __version__,
    }
