"""package.json at the repository's root: what mip reads to install the device package.

``mpremote mip install github:OWNER/REPO`` (or a path to the file) and ``mip.install`` on a board
fetch each file it lists, relative to the file, into the board's lib folder. It lists every module
of device/microrl and nothing else; the version lives in device/microrl/__init__.py alone (a tag
or branch is installed with ``@TAG``). After adding or removing a module: ``make package-json``.
"""

import json
from pathlib import Path

REPO_DIR = Path(__file__).resolve().parents[3]
PACKAGE_JSON = REPO_DIR / "package.json"


def package_document():
    """The package.json object for the device package as it is now."""
    names = sorted(p.name for p in (REPO_DIR / "device" / "microrl").glob("*.py"))
    return {"urls": [["microrl/" + name, "device/microrl/" + name] for name in names]}


def package_text():
    return json.dumps(package_document(), indent=1) + "\n"


if __name__ == "__main__":
    PACKAGE_JSON.write_text(package_text())
    print("wrote %s (%d files)" % (PACKAGE_JSON.name, len(package_document()["urls"])))
