"""The one import point for numerics on the device.

Picks, once, the kernels every other module computes with:
- ``ulab``: ``ulab.numpy`` on MicroPython or CircuitPython firmware that has it;
- ``numpy``: numpy on CPython (the device code run on a desktop);
- ``python``: pure MicroPython on ``array`` storage. On a Cortex-M core whose firmware has the
  inline assembler (stock MicroPython for rp2 and stm32) the products, Adam and the target updates
  are machine code that computes the loops' own float operations (``kernels_pyasm``): picked
  there first when there is no ulab; elsewhere the loops, for firmware without ulab or viper
  (CircuitPython). The settings' ``"asm": false`` keeps the loops;
- ``viper``: other firmware without ulab whose native emitter compiles viper (an ESP32's): the
  matrix products as machine code on int16 codes (``kernels_viper``), the rest as ``python``.

A matrix is 2-D and row-major; kernels work on its first ``n`` rows so that buffers are allocated
once for the largest batch. Set the environment variable ``MICRORL_BACKEND`` (``ulab``, ``numpy``,
``viper``, ``python``) to force a choice, or on a board (no environment variables) the key
``"backend"`` of its settings file ``microrl.json``, which ``app`` passes on as the package's
``BACKEND_CHOICE`` before this module loads; ``MICRORL_FLOAT_BITS=32`` to store the pure-Python
backend's arrays in single precision on a double-precision port (what a float32 board holds).
Other modules compute through ``K``, the chosen kernel module; both kernel modules have the same
functions with the same meaning.
"""

try:
    from micropython import const
except ImportError:  # CPython
    def const(value):
        return value

try:
    from os import getenv as _getenv
except ImportError:  # a port whose os module has no getenv
    _getenv = None


def _setting(name):
    return _getenv(name) if _getenv is not None else None


def _choice():
    """(the forced backend or None, where it was forced): MICRORL_BACKEND, else the board
    settings' "backend" that app.py passed on."""
    choice = _setting("MICRORL_BACKEND")
    if choice:
        return choice, "MICRORL_BACKEND"
    import microrl
    choice = getattr(microrl, "BACKEND_CHOICE", None)
    return (choice, "microrl.json backend") if choice else (None, None)


def _load(choice, source="MICRORL_BACKEND"):
    """(name, ulab.numpy or numpy or None, why this backend)"""
    if choice is not None:
        why = source + "=" + choice
    if choice in (None, "ulab"):
        try:
            from ulab import numpy as np
        except ImportError:
            if choice == "ulab":
                raise
        else:
            if hasattr(np, "frombuffer"):
                return "ulab", np, why if choice else "the firmware has ulab"
            if choice == "ulab":
                raise ImportError("this ulab has no frombuffer, which microrl needs")
    if choice in (None, "numpy"):
        try:
            import numpy as np
            return "numpy", np, why if choice else "CPython with numpy"
        except ImportError:
            if choice == "numpy":
                raise
    if choice is None and _ARM and ASM:
        from .kernels_pyasm import assembles
        if assembles(_wanted("VFP_CHOICE")):
            return "python", None, "no ulab; the firmware assembles the float kernels (kernels_pyasm)"
    reason = None
    if choice in (None, "viper"):
        reason = _viper_missing()
        if reason is None:
            return "viper", None, why if choice else "no ulab; the firmware compiles viper"
        if choice == "viper":
            raise ImportError(why + ": " + reason)
    if choice not in (None, "python"):
        raise ValueError("%s must be ulab, numpy, viper or python, not %r" % (source, choice))
    return "python", None, why if choice else "no ulab, and " + reason


def _wanted(name):
    """False when the board settings' "vfp" or "asm" say so (app.py passes them on as the
    package's ``name``: ``VFP_CHOICE``, ``ASM_CHOICE``)."""
    import microrl
    return getattr(microrl, name, True) is not False


_PROBE = "@micropython.viper\ndef _f(x: int) -> int:\n    return x + 1\n"


def _viper_missing():
    """None when this firmware compiles viper functions and has kernels_viper, else why not
    (compiling one tells)."""
    try:
        import micropython
    except ImportError:
        return "this is not MicroPython (no micropython module), so there is no viper emitter"
    scope = {"micropython": micropython}
    try:
        exec(_PROBE, scope)
    except SyntaxError as e:  # MicroPython: "invalid micropython decorator" without the emitter
        return "this firmware has no native emitter, so it cannot compile viper (%s)" % (e,)
    except ValueError as e:  # an emitter for another architecture
        return "this firmware cannot compile viper (%s)" % (e,)
    if scope["_f"](1) != 2:
        return "this firmware's viper emitter gives wrong results"
    try:
        from . import kernels_viper  # noqa: F401
    except ImportError as e:
        if "kernels_viper" not in str(e):
            raise
        return "microrl.kernels_viper is not installed"
    except ValueError as e:  # an .mpy compiled for another architecture
        return "microrl.kernels_viper cannot load here (%s)" % (e,)
    return None


ASM = _wanted("ASM_CHOICE")  # kernels_asm's machine code where the core and storage allow it
import sys  # noqa: E402
# A Cortex-M core (the .mpy architecture armv6m to armv7emdp) with single-precision floats: where
# the pure-Python backend may compute in machine code (kernels_pyasm; there it is faster than
# viper: 5.7 M instructions per update on a Cortex-M0, viper 6.4 M, with the loops' arithmetic).
_ARM = 4 <= getattr(sys.implementation, "_mpy", 0) >> 10 <= 8 and 1.0 + 2.0 ** -40 == 1.0
NAME, _np, REASON = _load(*_choice())

# Bits of the firmware's float: 1 + 2**-40 is 1.0 in single precision.
FLOAT_BITS = 64 if 1.0 + 2.0 ** -40 != 1.0 else 32
_store_bits = _setting("MICRORL_FLOAT_BITS")
STORE_BITS = int(_store_bits) if _store_bits else FLOAT_BITS
if STORE_BITS not in (32, 64) or STORE_BITS > FLOAT_BITS:
    raise ValueError("MICRORL_FLOAT_BITS must be 32 or %d, not %r" % (FLOAT_BITS, _store_bits))

from .kernels_py import zeros  # noqa: E402  (array storage, used on every backend)

if NAME == "python":
    from . import kernels_py as K
    K.init("d" if STORE_BITS == 64 else "f")
    if STORE_BITS == 32 and _ARM and ASM:
        from .kernels_pyasm import install
        install(K, _wanted("VFP_CHOICE"))
elif NAME == "viper":
    from . import kernels_viper as K
    K.init("d" if STORE_BITS == 64 else "f", ASM)
else:
    from . import kernels_nd as K
    STORE_BITS = FLOAT_BITS if NAME == "ulab" else 64
    K.init(_np, NAME == "ulab", "d" if STORE_BITS == 64 else "f", _wanted("VFP_CHOICE"), ASM)
PRODUCTS = getattr(K, "PRODUCTS", NAME)  # "vfp" when kernels_vfp computes the products
