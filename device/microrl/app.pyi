from typing import Any

SETTINGS_FILE: str
MODES: tuple[str, ...]

def load_settings(path: str = ...) -> dict[str, Any]: ...
def train_mode(settings: dict[str, Any]) -> dict[str, Any]: ...
def main(path: str = ...) -> None:
    """What main.py runs: train or serve, as microrl.json says."""
