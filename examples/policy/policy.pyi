# Type stub of the policy.py that `microrl export` writes, for editors (the board never reads it).
from typing import Sequence

SIZES: tuple[int, ...]  # layer sizes of the actor: obs_dim inputs, the hidden widths, act_dim outputs

def actions(obs: Sequence[float]) -> Sequence[float]:
    """The act_dim normalised actions in [-1, 1] (the first SIZES[-1] entries of an array the next
    call overwrites) for an observation of SIZES[0] floats."""

def policy(obs: Sequence[float]) -> float:
    """The first normalised action in [-1, 1]; for the pendulum obs = [cos th, sin th, thdot]."""

def act(cos: float, sin: float, thdot: float) -> float:
    """Pendulum actors only: the normalised action in [-1, 1] at angle th (given as cos th,
    sin th) and velocity thdot."""
