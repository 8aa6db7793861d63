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
    learner: dict = field(default_factory=dict)  # TD3Config fields that differ from the defaults


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
                       learner=dict(data.get("learner", {})))
    except KeyError as e:
        raise ValueError("board profile %s lacks the field %s" % (path.name, e)) from None
