# The interpreter's own module of a name that a shim here shadows: imported with sys.path empty.
import sys


def builtin(name):
    saved = sys.path[:]
    shim = sys.modules.pop(name, None)
    sys.path.clear()
    try:
        module = __import__(name)
    finally:
        sys.path.extend(saved)
        if shim is not None:
            sys.modules[name] = shim
        else:
            sys.modules.pop(name, None)
    return module
