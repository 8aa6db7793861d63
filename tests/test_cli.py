"""The `microrl` command itself: --version, and help that imports no heavy module."""

import json
import subprocess
import sys

from microrl_host import cli

HEAVY = ("matplotlib", "numpy", "torch", "tqdm", "serial", "mpremote")

# Each command's --help in one interpreter, then the heavy top-level modules it imported.
_HELP_ALL = """
import json, sys
from microrl_host import cli
imported = {}
for argv in [["--help"]] + [[name, "--help"] for name in cli.COMMANDS]:
    try:
        cli.main(argv)
    except SystemExit:
        pass
    imported[" ".join(argv)] = sorted({m.split(".")[0] for m in sys.modules} & set(%r))
print(json.dumps(imported))
""" % (HEAVY,)


def test_help_imports_no_heavy_module():
    proc = subprocess.run([sys.executable, "-c", _HELP_ALL], capture_output=True, text=True,
                          timeout=120)
    assert proc.returncode == 0, proc.stderr
    imported = json.loads(proc.stdout.splitlines()[-1])
    assert imported.pop("--help") == []  # the command table alone: nothing heavy at all
    assert len(imported) == len(cli.COMMANDS)
    with_matplotlib = [argv for argv, names in imported.items() if "matplotlib" in names]
    assert with_matplotlib == []  # pictures import it when they are drawn


def test_help_in_a_fresh_interpreter_does_not_import_matplotlib():
    proc = subprocess.run([sys.executable, "-X", "importtime", "-m", "microrl_host.cli", "--help"],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0 and "sim" in proc.stdout and "bench-mcu" in proc.stdout
    modules = [line.rsplit("|", 1)[-1].strip() for line in proc.stderr.splitlines()
               if line.startswith("import time:")]
    assert "microrl_host" in modules
    assert [m for m in modules if m.split(".")[0] in HEAVY] == []


def test_version(capsys):
    try:
        cli.main(["--version"])
    except SystemExit as e:
        assert e.code == 0
    from importlib.metadata import version
    assert capsys.readouterr().out == "microrl %s\n" % version("microrl-host")
    assert version("microrl-host") == "0.1.0"


def test_package_metadata_says_what_the_code_needs():
    import tomllib
    from importlib.metadata import metadata
    from pathlib import Path

    root = Path(__file__).resolve().parents[1]
    project = tomllib.loads((root / "host" / "pyproject.toml").read_text())["project"]
    assert project["requires-python"] == ">=3.11"  # tomllib is new in 3.11
    assert project["license"] == "MIT"
    assert (root / "LICENSE").read_text().startswith("MIT License\n")
    pins = dict(line.split("==") for line in (root / "requirements.txt").read_text().splitlines()
                if "==" in line)
    assert "tqdm" in pins and set(project["dependencies"]) <= set(pins)
    installed = metadata("microrl-host")
    assert (installed["Requires-Python"], installed["License-Expression"]) == (">=3.11", "MIT")
