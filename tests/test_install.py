"""Installing the device package the MicroPython ways: `mpremote mip install` of the repository's
package.json (a local copy, as mpremote 1.29 reads a path ending in .json), `mip.install` on a
networked board (here over HTTP from localhost), and the micropython-lib style manifest.py."""

import functools
import http.server
import json
import os
import shutil
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from boardkit import SMALL
from microrl_host.board import mip
from microrl_host.board.vboard import VirtualBoard, default_micropython

REPO = Path(__file__).resolve().parents[1]
PACKAGE_DIR = REPO / "device" / "microrl"
MODULES = sorted(p.name for p in PACKAGE_DIR.glob("*.py"))
# Trains 300 steps from scratch and prints the episode returns: the same on the board and here.
TRAIN = ("import json\nfrom microrl.config import TD3Config\nfrom microrl.train import train\n"
         "r = train(TD3Config(total_steps=300, eval_every=0, seed=4, **%r))\n"
         "print(json.dumps([r['steps'], r['episode_returns'], r['final_eval_return']]))\n" % SMALL)


def repository_copy(dest):
    """What `mip install github:OWNER/REPO` reads: package.json and the files it names."""
    shutil.copytree(PACKAGE_DIR, dest / "device" / "microrl")
    shutil.copy(REPO / "package.json", dest / "package.json")
    return dest


def mpremote(port, *args, timeout_s=60):
    proc = subprocess.run([sys.executable, "-m", "mpremote", "connect", port, "resume"]
                          + list(args), capture_output=True, text=True, timeout=timeout_s)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return proc.stdout


@functools.lru_cache(maxsize=1)
def trained_here():
    """TRAIN under the desktop micropython, straight from device/."""
    proc = subprocess.run([default_micropython(), "-c", TRAIN], capture_output=True, text=True,
                          timeout=120, env=dict(os.environ, MICROPYPATH=str(REPO / "device")))
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout.strip().splitlines()[-1])


def check_installed(flash):
    """The flash holds the package in lib/microrl, file for file the device package, nothing else."""
    assert sorted(os.listdir(flash)) == ["lib"]
    installed = flash / "lib" / "microrl"
    assert sorted(os.listdir(installed)) == MODULES
    for name in MODULES:
        assert (installed / name).read_bytes() == (PACKAGE_DIR / name).read_bytes(), name


def check_trains(port):
    steps, returns, final = json.loads(mpremote(port, "exec", TRAIN).strip().splitlines()[-1])
    assert steps == 300 and len(returns) == 1 and returns[0] < 0 and final < 0
    assert [steps, returns, final] == trained_here()


def test_package_json_lists_every_module_of_the_device_package():
    doc = json.loads((REPO / "package.json").read_text())
    assert set(doc) == {"urls"}  # no version: device/microrl/__init__.py holds the only one
    assert doc["urls"] == [["microrl/" + m, "device/microrl/" + m] for m in MODULES], \
        "package.json does not list the modules of device/microrl: run make package-json"
    assert (REPO / "package.json").read_text() == mip.package_text()


def test_mpremote_mip_install_from_a_local_copy(tmp_path):
    copy = repository_copy(tmp_path / "repo")
    flash = tmp_path / "flash"
    with VirtualBoard(4 * 1024 * 1024, flash_dir=flash) as board:
        out = mpremote(board.port, "mip", "install", str(copy / "package.json"))
        assert "Installing: ./lib/microrl/train.py" in out and out.rstrip().endswith("Done")
        check_installed(flash)
        check_trains(board.port)


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass


def test_mip_install_on_a_networked_board(tmp_path):
    """The board's own mip fetches package.json and the files over HTTP (as from GitHub)."""
    copy = repository_copy(tmp_path / "repo")
    server = http.server.ThreadingHTTPServer(
        ("127.0.0.1", 0), functools.partial(_QuietHandler, directory=str(copy)))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    flash = tmp_path / "flash"
    try:
        with VirtualBoard(4 * 1024 * 1024, flash_dir=flash) as board:
            url = "http://127.0.0.1:%d/package.json" % server.server_address[1]
            out = mpremote(board.port, "exec", "import mip\nmip.install(%r)" % url)
            assert "Copying: ./lib/microrl/weights.py" in out and out.rstrip().endswith("Done")
            check_installed(flash)
            check_trains(board.port)
    finally:
        server.shutdown()
        server.server_close()


def run_manifest(path):
    """Execute a manifest.py as MicroPython's manifestfile.py does (in its own folder, with the
    manifest functions); returns the calls it made."""
    calls = []

    def record(name):
        return lambda *args, **kwargs: calls.append((name, args, kwargs))
    api = {name: record(name) for name in ("metadata", "package", "module", "include", "require")}
    cwd = os.getcwd()
    os.chdir(path.parent)
    try:
        exec(path.read_text(), api)
    finally:
        os.chdir(cwd)
    return calls


def test_package_manifest_has_the_version_and_the_package():
    sys.path.insert(0, str(REPO / "device"))
    try:
        import microrl
    finally:
        sys.path.pop(0)
    calls = run_manifest(REPO / "manifest.py")
    assert [c[0] for c in calls] == ["metadata", "package"]  # metadata() first, as require() needs
    assert calls[0][2]["version"] == microrl.__version__
    assert calls[1][1:] == (("microrl",), {"base_path": "device"})
    assert (REPO / calls[1][2]["base_path"] / "microrl" / "__init__.py").is_file()


def test_firmware_manifest_includes_the_package_manifest():
    calls = run_manifest(REPO / "firmware" / "manifest.py")
    assert calls == [("include", ("$(PORT_DIR)/boards/manifest.py",), {}),
                     ("include", ("../manifest.py",), {})]
    assert (REPO / "firmware" / "../manifest.py").resolve() == REPO / "manifest.py"


def test_manifest_without_a_version_names_the_file(tmp_path):
    shutil.copy(REPO / "manifest.py", tmp_path / "manifest.py")
    (tmp_path / "device" / "microrl").mkdir(parents=True)
    (tmp_path / "device" / "microrl" / "__init__.py").write_text('"""no version here"""\n')
    with pytest.raises(ValueError, match="device/microrl/__init__.py sets no __version__"):
        run_manifest(tmp_path / "manifest.py")
