"""The pure-Python kernels compiled to machine code (`microrl mpy --native`, `deploy --mpy --native`):
the same arithmetic as bytecode, so a training run gives the same returns exactly."""

import json

import pytest

from devicerun import micropython_path
from microrl_host.board import deploy, mpy

RUN = """
import sys, json
sys.path.insert(0, sys.argv[1])
from microrl.config import TD3Config
from microrl.train import Trainer
t = Trainer(TD3Config(actor_hidden=(8, 8), critic_hidden=(8, 8), batch_size=8, buffer_capacity=400,
                      learning_starts=100, episode_steps=50, seed=3))
returns = []
while t.steps < 300:
    r = t.step()
    if r is not None:
        returns.append(r)
print(json.dumps(returns))
"""


def _arch_of(path):
    """The native architecture index in an .mpy header (0: bytecode only)."""
    return path.read_bytes()[2] >> 2


def _train(package_dir):
    import subprocess
    proc = subprocess.run([micropython_path(), "-c", RUN, str(package_dir)], capture_output=True,
                          text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return json.loads(proc.stdout.strip().splitlines()[-1])


def test_native_kernels_train_exactly_as_bytecode(tmp_path):
    mpy.compile_package(tmp_path / "native", "x64", native=True)
    mpy.compile_package(tmp_path / "bytecode")
    kernels = tmp_path / "native" / "microrl" / "kernels_py.mpy"
    assert _arch_of(kernels) == deploy.MPY_ARCHS.index("x64")
    assert _arch_of(tmp_path / "bytecode" / "microrl" / "kernels_py.mpy") == 0
    native, bytecode = _train(tmp_path / "native"), _train(tmp_path / "bytecode")
    assert len(native) == 6
    assert native == bytecode


def test_native_needs_an_architecture(tmp_path):
    with pytest.raises(ValueError, match="-march"):
        mpy.compile_package(tmp_path, None, native=True)


def test_deploy_native_needs_mpy():
    with pytest.raises(deploy.DeployError, match="--native needs --mpy"):
        deploy.deploy("/dev/null", None, compiled=False, native=True)
