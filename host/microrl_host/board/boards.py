"""Board profiles (boards/*.toml): heap, float precision, ulab, clock and the learner that fits."""

import difflib
import os
import tomllib
from dataclasses import dataclass, field
from pathlib import Path

BOARDS_DIR = Path(__file__).resolve().parents[3] / "boards"
_KIND_WORDS = {str: "a string", int: "an integer", bool: "true or false", list: "a list",
               dict: "a table"}


@dataclass
class Profile:
    name: str  # file stem, e.g. "rp2-pico"
    description: str  # one line for humans
    heap_bytes: int  # MicroPython heap available to the learner
    float_bits: int  # 32 on single-precision firmware, 64 on double
    ulab: bool  # whether the board's firmware is expected to have ulab
    clock_hz: int  # CPU clock, 0 when not a microcontroller
    frozen: bool = False  # microrl frozen into the firmware: its code is in flash, not the heap
    core: str = ""  # the chip's CPU core, e.g. "Cortex-M0+" (empty: not a microcontroller)
    qemu_core: str = ""  # bench-mcu's QEMU stand-in for it: m0, m3 or m7 (build_qemu.sh)
    cpi: tuple = None  # (low, high) cycles per instruction on the real chip, or None
    cpi_source: str = ""  # where the cpi range comes from, one line
    thumb_fpu: bool = False  # Thumb-2 with single-precision FPU: ulab products by kernels_vfp
    learner: dict = field(default_factory=dict)  # TD3Config fields that differ from the defaults

    @property
    def cortex_m(self):
        """The chip is an ARM Cortex-M: stock MicroPython's inline assembler runs kernels_asm's
        routines there (the pure-Python backend's products in machine code, kernels_pyasm)."""
        return self.core.startswith("Cortex-M")

    def __post_init__(self):
        """Checks the timing fields and thumb_fpu (ValueError naming the profile and the field);
        cpi becomes a (low, high) tuple of floats."""
        from microrl_host.board.qemu import CORES  # here: qemu imports this module's importers

        def bad(text):
            return ValueError("board profile %s: %s" % (self.name, text))
        for name in ("core", "qemu_core", "cpi_source"):
            if not isinstance(getattr(self, name), str):
                raise bad("%s must be a string, got %r" % (name, getattr(self, name)))
        if self.qemu_core and self.qemu_core not in CORES:
            raise bad("qemu_core must be one of %s, got %r" % (", ".join(CORES), self.qemu_core))
        if self.qemu_core and not self.core:
            raise bad("qemu_core needs core, the chip's own core that it stands for")
        if not isinstance(self.thumb_fpu, bool):
            raise bad("thumb_fpu must be true or false, got %r" % (self.thumb_fpu,))
        if self.thumb_fpu and self.qemu_core and self.qemu_core != "m7":
            raise bad("thumb_fpu needs qemu_core m7, the one QEMU core with an FPU, got %r"
                      % self.qemu_core)
        cpi = self.cpi
        if cpi is None:
            if self.cpi_source:
                raise bad("cpi_source without cpi")
            return
        if (not isinstance(cpi, (list, tuple)) or len(cpi) != 2
                or not all(isinstance(c, (int, float)) and not isinstance(c, bool) for c in cpi)):
            raise bad("cpi must be [low, high], two numbers, got %r" % (cpi,))
        if not 0 < cpi[0] <= cpi[1]:
            raise bad("cpi must be [low, high] with 0 < low <= high, got %r" % (list(cpi),))
        if not self.cpi_source.strip():
            raise bad("cpi needs cpi_source, a short citation of where the range comes from")
        if self.clock_hz <= 0:
            raise bad("cpi needs clock_hz > 0 to turn instructions into time")
        self.cpi = (float(cpi[0]), float(cpi[1]))


def profile_names():
    return sorted(p.stem for p in BOARDS_DIR.glob("*.toml"))


# Fields of a profile file: (type, required). learner is checked by TD3Config.
_FIELDS = {"name": (str, False), "description": (str, True), "heap_bytes": (int, True),
           "float_bits": (int, True), "ulab": (bool, True), "clock_hz": (int, True),
           "frozen": (bool, False), "core": (str, False), "qemu_core": (str, False),
           "cpi": (list, False), "cpi_source": (str, False), "thumb_fpu": (bool, False),
           "learner": (dict, False)}


def resolve_board(name_or_path):
    """The profile of ``--board X``: a name in boards/ (``rp2-pico``) or the path of a profile
    file (``my-board.toml``, ``./boards/esp32.toml``). ValueError naming what is wrong: the unknown
    board, or the file and the field at fault."""
    text = str(name_or_path)
    if os.sep in text or "/" in text or text.endswith(".toml"):
        path = Path(text).expanduser()
        if not path.is_file():
            hint = ""
            if path.suffix == ".toml" and (BOARDS_DIR / path.name).is_file():
                hint = " (boards/ has one: --board %s)" % path.stem
            raise ValueError("board profile file %s not found%s" % (text, hint))
        return load_profile_file(path)
    return load_profile(text)


def load_profile(name):
    """The profile named ``name`` in boards/; ValueError listing the known boards when there is
    none."""
    path = BOARDS_DIR / (name + ".toml")
    if not path.exists():
        raise ValueError("unknown board %r; known boards: %s (or give the path of a .toml profile "
                         "file)" % (name, ", ".join(profile_names())))
    return load_profile_file(path)


def load_profile_file(path):
    """The profile in the TOML file ``path``; ValueError naming the file and the field at fault."""
    from microrl_host.mirror.config import TD3Config

    path = Path(path)

    def bad(text):
        return ValueError("board profile %s: %s" % (path, text))
    try:
        with open(path, "rb") as f:
            data = tomllib.load(f)
    except tomllib.TOMLDecodeError as e:
        raise bad("not valid TOML: %s" % e) from None
    except OSError as e:
        raise bad("cannot read it: %s" % e.strerror) from None
    for key, value in data.items():
        if key not in _FIELDS:
            close = difflib.get_close_matches(key, _FIELDS, n=1)
            raise bad("unknown field %r %s" % (key, "(did you mean %r?)" % close[0] if close
                                               else "(fields: %s)" % ", ".join(_FIELDS)))
        kind = _FIELDS[key][0]
        if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
            raise bad("%s must be %s, got %r" % (key, _KIND_WORDS[kind], value))
    missing = [key for key, (_, required) in _FIELDS.items() if required and key not in data]
    if missing:
        raise bad("lacks the field%s %s" % ("s" if len(missing) > 1 else "", ", ".join(missing)))
    if data["heap_bytes"] <= 0:
        raise bad("heap_bytes must be > 0, got %r" % data["heap_bytes"])
    if data["float_bits"] not in (32, 64):
        raise bad("float_bits must be 32 or 64, got %r" % data["float_bits"])
    if data["clock_hz"] < 0:
        raise bad("clock_hz must be >= 0, got %r" % data["clock_hz"])
    learner = dict(data.get("learner", {}))
    try:
        TD3Config.from_dict(learner)
    except ValueError as e:
        raise bad("[learner]: %s" % e) from None
    fields = {key: value for key, value in data.items() if key != "learner"}
    fields.setdefault("name", path.stem)
    try:
        return Profile(learner=learner, **fields)
    except ValueError as e:  # a timing field: the message names the profile and the field
        raise ValueError("%s (in %s)" % (e, path)) from None
