"""A board chooses its numerics backend in its settings file (it has no environment variables):
``microrl.json``'s "backend", written by ``microrl deploy --backend``, reaches backend.py before
the kernels load, and hello reports the choice as the backend's reason."""

import argparse
import json
from pathlib import Path

import pytest

from boardkit import HEAP_BYTES, PROFILE, SMALL
from devicerun import run_device
from microrl_host.board import deploy
from microrl_host.board.vboard import VirtualBoard

CHOOSE = """
from microrl.app import choose_backend, load_settings
settings = load_settings(%r)
choose_backend(settings)
from microrl.backend import NAME, REASON
print(json.dumps({"backend": NAME, "reason": REASON}))
"""


@pytest.mark.parametrize("choice", ["python", "viper"])
def test_the_settings_backend_is_the_one_loaded(tmp_path, choice):
    path = tmp_path / "microrl.json"
    path.write_text(json.dumps({"mode": "serve", "backend": choice}))
    out = run_device(CHOOSE % str(path), backend="")  # no MICRORL_BACKEND: the file decides
    assert out == {"backend": choice, "reason": "microrl.json backend=" + choice}


def test_without_the_key_the_board_picks_and_the_environment_wins(tmp_path):
    path = tmp_path / "microrl.json"
    path.write_text(json.dumps({"mode": "serve"}))
    assert run_device(CHOOSE % str(path), backend="") == {
        "backend": "viper", "reason": "no ulab; the firmware compiles viper"}
    path.write_text(json.dumps({"backend": "viper"}))
    assert run_device(CHOOSE % str(path), backend="python") == {
        "backend": "python", "reason": "MICRORL_BACKEND=python"}


def test_a_bad_or_impossible_backend_is_a_clear_error(tmp_path):
    path = tmp_path / "microrl.json"
    path.write_text(json.dumps({"backend": "fortran"}))
    with pytest.raises(RuntimeError, match=r"microrl.json: backend must be one of ulab, numpy, "
                                           r"viper, python, got 'fortran'"):
        run_device(CHOOSE % str(path), backend="")
    path.write_text(json.dumps({"backend": "viper"}))  # CPython has no viper emitter
    with pytest.raises(RuntimeError, match="ImportError: microrl.json backend=viper: this is not "
                                           "MicroPython"):
        run_device(CHOOSE % str(path), engine="cpython")
    late = ("from microrl import backend\nfrom microrl.app import choose_backend\n"
            "choose_backend({'backend': 'python'})\n")
    with pytest.raises(RuntimeError, match="backend 'python' asked for, but the viper backend is "
                                           "loaded already"):
        run_device(late, backend="")


def test_deploy_backend_writes_the_key_and_the_board_reports_it(tmp_path):
    with VirtualBoard(HEAP_BYTES, flash_dir=tmp_path / "flash") as board:
        hello = deploy.deploy(board.port, PROFILE, config=SMALL, log=lambda line: None,
                              backend="python")
        settings = json.loads((Path(board.flash_dir) / "microrl.json").read_text())
    assert settings["backend"] == "python"
    assert (hello["backend"], hello["backend_reason"]) == ("python",
                                                           "microrl.json backend=python")


def test_deploy_rejects_an_unknown_backend(capsys):
    parser = argparse.ArgumentParser()
    deploy.add_arguments(parser)
    with pytest.raises(SystemExit) as exit_:
        parser.parse_args(["--backend", "numpyy"])
    assert exit_.value.code == 2
    assert "argument --backend: invalid choice: 'numpyy'" in capsys.readouterr().err
    with pytest.raises(deploy.DeployError, match="--backend must be one of viper, python, ulab"):
        deploy.board_settings(PROFILE, backend="numpy")


PRODUCTS = """
from microrl.app import choose_backend
choose_backend(%r)
import microrl
from microrl import kernels_asm, kernels_thumb, kernels_vfp
from microrl.backend import K, NAME, PRODUCTS
from microrl.sysinfo import describe
print(json.dumps({"backend": NAME, "products": PRODUCTS, "hello": describe()["products"],
                  "compiled": [kernels_vfp.ROUTINE is not None, kernels_thumb.ROUTINE is not None],
                  "choice": getattr(microrl, "VFP_CHOICE", None),
                  "dense": K.dense is kernels_asm.dense}))
"""


@pytest.mark.parametrize("settings,choice", [({}, None), ({"vfp": False}, False),
                                             ({"vfp": True}, True)])
@pytest.mark.parametrize("engine,backend", [("micropython", "viper"), ("cpython", "numpy")])
def test_products_are_reported_and_the_machine_code_stays_off_the_desktop(settings, choice,
                                                                          engine, backend):
    """kernels_asm needs ulab in single precision on an ARM core (tests/test_qemu_kernels.py runs
    it): on the desktop neither assembler source compiles, and the products are the backend's."""
    out = run_device(PRODUCTS % (settings,), engine=engine, backend=backend)
    assert out == {"backend": backend, "products": backend, "hello": backend,
                   "compiled": [False, False], "choice": choice, "dense": False}


FLAT = """
import sys
from microrl import kernels_pyasm
from microrl.backend import K, PRODUCTS, _ARM
from microrl.config import TD3Config
from microrl.train import Trainer
def run(tensors):
    K.tensors = tensors
    t = Trainer(TD3Config(actor_hidden=(8, 8), critic_hidden=(8, 8), batch_size=8,
                          buffer_capacity=200, replay="compressed", learning_starts=60, seed=5))
    for _ in range(90):
        t.step()
    ag = t.agent
    out = []
    for net in (ag.actor, ag.critic1, ag.critic2, ag.actor_target, ag.critic2_target):
        out.append([[p[0][i] for i in range(len(p[0]))] for p in net.params])
    return out, ag.actor.flat is not None, ag.critic_updates, ag
separate = run(K.tensors)
flat = run(kernels_pyasm.tensors_flat)
from microrl.weights import pack, unpack_into
blob = pack(flat[3].actor.params)
unpack_into(flat[3].actor_target.params, blob)  # the weights file's path into flat views
print(json.dumps({"products": PRODUCTS, "arm": _ARM, "installed": kernels_pyasm.install(K),
                  "same": separate[0] == flat[0], "flat": [separate[1], flat[1]],
                  "updates": flat[2], "first": flat[0][0][0][:3],
                  "blob": blob == pack(separate[3].actor.params),
                  "loaded": pack(flat[3].actor_target.params) == blob}))
"""


def test_flat_parameters_train_as_separate_ones_and_the_machine_code_stays_off_the_desktop():
    """kernels_pyasm lays a network's parameters out in one flat array for the routines (on a
    Cortex-M board, tests/test_qemu_kernels.py trains with them); the plain loops on that layout
    train bit for bit as on separate arrays (Adam and Polyak then take the flat array in one call).
    Off ARM nothing is installed: the products stay the loops."""
    out = run_device(FLAT, backend="python", float_bits=32)
    assert out["products"] == "python" and out["arm"] is False and out["installed"] is False
    assert out["flat"] == [False, True] and out["updates"] == 30
    assert out["same"] is True and len(out["first"]) == 3 and out["first"][0] != 0.0
    assert out["blob"] is True and out["loaded"] is True  # a weights file packs and loads the same
