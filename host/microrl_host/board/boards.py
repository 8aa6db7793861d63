"""Board profiles (boards/*.toml): heap, float precision, ulab, clock and the learner that fits."""

import tomllib
from dataclasses import dataclass, field
from pathlib import Path

BOARDS_DIR = Path(__file__).resolve().parents[3] / "boards"


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
    learner: dict = field(default_factory=dict)  # TD3Config fields that differ from the defaults

    def __post_init__(self):
        """Checks the timing fields (ValueError naming the profile and the field); cpi becomes a
        (low, high) tuple of floats."""
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


def load_profile(name):
    """The profile named ``name``; ValueError listing the known boards when there is none."""
    path = BOARDS_DIR / (name + ".toml")
    if not path.exists():
        raise ValueError("unknown board %r; known boards: %s" % (name, ", ".join(profile_names())))
    with open(path, "rb") as f:
        data = tomllib.load(f)
    try:
        return Profile(name=data["name"], description=data["description"],
                       heap_bytes=int(data["heap_bytes"]), float_bits=int(data["float_bits"]),
                       ulab=bool(data["ulab"]), clock_hz=int(data["clock_hz"]),
                       frozen=bool(data.get("frozen", False)),
                       core=data.get("core", ""), qemu_core=data.get("qemu_core", ""),
                       cpi=data.get("cpi"), cpi_source=data.get("cpi_source", ""),
                       learner=dict(data.get("learner", {})))
    except KeyError as e:
        raise ValueError("board profile %s lacks the field %s" % (path.name, e)) from None
