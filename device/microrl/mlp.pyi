from typing import Any, Optional

from .rng import Rng

ACTIVATIONS: tuple[str, ...]

class MLP:
    sizes: tuple[int, ...]
    output_activation: str
    max_batch: int
    params: list[Any]  # [W1, b1, W2, b2, ...] as backend matrices, W (in, out), b (1, out)
    grads: Optional[list[Any]]

    def __init__(self, sizes: tuple[int, ...], output_activation: str, max_batch: int,
                 rng: Optional[Rng] = None, share: Optional[MLP] = None,
                 trainable: bool = True) -> None: ...
    def init_uniform(self, rng: Rng) -> None: ...
    def forward(self, x: Any, n: int) -> Any: ...
    def backward(self, dy: Any, n: int, param_grads: bool = True, input_grad: bool = True,
                 accumulate: bool = False) -> Any: ...
    def copy_from(self, other: MLP) -> None: ...
    def polyak_from(self, other: MLP, tau: float) -> None: ...
