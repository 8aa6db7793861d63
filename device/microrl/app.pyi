from typing import Any

SETTINGS_FILE: str
MODES: tuple[str, ...]
BACKENDS: tuple[str, ...]

def load_settings(path: str = ...) -> dict[str, Any]: ...
def choose_backend(settings: dict[str, Any]) -> None:
    """Pass the settings' "backend" on to microrl.backend before it loads."""
def train_mode(settings: dict[str, Any]) -> dict[str, Any]: ...
def start(settings: dict[str, Any]) -> None:
    """Train or serve as the settings dict says."""
def main(path: str = ...) -> None:
    """What main.py runs: train or serve, as microrl.json says."""
