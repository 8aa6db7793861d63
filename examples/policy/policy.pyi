# Type stub of the policy.py that `microrl export` writes, for editors (the board never reads it).
from typing import Sequence

SIZES: tuple[int, ...]  # layer sizes of the actor: 3 inputs, the hidden widths, 1 output

def policy(obs: Sequence[float]) -> float:
    """The normalised action in [-1, 1] for obs = [cos th, sin th, thdot]."""

def act(cos: float, sin: float, thdot: float) -> float:
    """The normalised action in [-1, 1] at angle th (given as cos th, sin th) and velocity thdot."""
