from typing import Any, Sequence

from .mlp import MLP

FLOAT_TYPECODE: str

def levels(fan_in: int) -> int: ...
def quantize_input(x: Sequence[float], n: int, q: int, xq: list[int]) -> float: ...
def forward_py(layers: list[list[Any]], x: Sequence[float], xq: list[int], acc: list[int],
               h: Any) -> Any: ...
def forward_nd(np: Any, layers: list[list[Any]], x: Sequence[float], xq: list[int], xq_row: Any,
               h: Any) -> Any: ...

class QActor:
    """Int8 weights for an actor of these layer sizes; ``policy(obs)`` is the action in [-1, 1]."""

    sizes: tuple[int, ...]
    layers: list[list[Any]]

    def __init__(self, sizes: Sequence[int]) -> None: ...
    def refresh(self, mlp: MLP) -> None: ...
    def actions(self, obs: Sequence[float]) -> Sequence[float]:
        """All actions (the first sizes[-1] entries of an array the next call overwrites)."""
    def policy(self, obs: Sequence[float]) -> float:
        """The first action (the action of a one-dimensional actor)."""
