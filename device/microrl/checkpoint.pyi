from typing import Any, Optional

from .train import Trainer

SLOTS: tuple[str, ...]
MAGIC: bytes
FORMAT_VERSION: int

class CheckpointError(ValueError):
    """No slot holds a checkpoint this learner can load (the message says why, per slot)."""

def resume(trainer: Trainer) -> dict[str, Any]:
    """Load ``trainer``'s newest valid checkpoint (then ``train(config, trainer=trainer)`` goes
    on); what ``Checkpointer.load`` returns."""

class Checkpointer:
    trainer: Trainer
    paths: tuple[str, ...]
    replay: bool
    config_crc: int
    seq: Optional[int]
    slot: int
    payload_bytes: int

    def __init__(self, trainer: Trainer, replay: Optional[bool] = None,
                 paths: tuple[str, ...] = ...) -> None: ...
    def file_bytes(self) -> int: ...
    def save(self) -> int:
        """Write the whole state into the older slot; the bytes written."""
    def scan(self) -> Any: ...
    def load(self) -> dict[str, Any]: ...
