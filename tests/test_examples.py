"""The examples run under the desktop micropython and print what the mirror computes; the policy
example also runs on a virtual board with the commands its README gives."""

import json
import math
import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from microrl_host.board.boards import load_profile
from microrl_host.board.vboard import VirtualBoard, default_micropython
from microrl_host.mirror.config import TD3Config
from microrl_host.mirror.pendulum import MAX_TORQUE_NM, Pendulum, angle_normalize
from microrl_host.mirror.train import train
from microrl_host.sim import export

REPO = Path(__file__).resolve().parents[1]
EXAMPLES = REPO / "examples"
LINE = re.compile(r"^t (\d+\.\d) s: angle (-?\d+\.\d) deg, torque (-?\d+\.\d\d) N m, "
                  r"return (-?\d+\.\d\d)$")


def run_example(name, cwd, *path, heap="2M"):
    """examples/NAME/main.py under the desktop micropython with device/ (and ``path``) to import."""
    env = dict(os.environ, MICROPYPATH=":".join([str(REPO / "device")] + [str(p) for p in path]))
    proc = subprocess.run([default_micropython(), "-X", "heapsize=" + heap,
                           str(EXAMPLES / name / "main.py")], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return proc.stdout.splitlines()


def test_train_example_prints_its_readme_and_the_mirrors_numbers(tmp_path):
    source = (EXAMPLES / "train" / "main.py").read_text()
    assert len(source.splitlines()) == 10
    lines = run_example("train", tmp_path, heap="192K")  # a Pico's heap, as its README says
    # Under the board's own backend (viper here: no ulab) it prints what the README shows.
    readme = (EXAMPLES / "train" / "README.md").read_text()
    assert "\n".join("    " + line for line in lines) in readme
    evals = [line.split() for line in lines[:-1]]
    assert [(w[0], w[2], w[3]) for w in evals] == [("step", "evaluation", "return")] * 3
    # The config the example sets, trained by the float64 mirror on the viper backend's integer
    # path (products, Adam, target updates): the same returns within 1e-3 (measured 1e-4 at most:
    # the default config's run is not bit for bit the mirror's, as the tested ones in
    # test_viper_kernels are; the float mirror differs by 2 %).
    config = re.search(r"TD3Config\((.*?)\)\n", source, re.S).group(1)
    expected = train(eval("TD3Config(%s)" % config), products="int16")["eval_returns"]
    assert [int(w[1]) for w in evals] == [step for step, _ in expected] == [500, 1000, 1500]
    for words, (_, value) in zip(evals, expected):
        assert float(words[4]) == pytest.approx(value, rel=1e-3)
    blob = (tmp_path / "actor.bin").read_bytes()
    assert blob[:4] == b"MRLW" and blob[4] == 1  # weights.py's magic and format version
    assert lines[-1] == "saved the trained actor to actor.bin: %d bytes" % len(blob)
    assert len(blob) == 8 + 2 * 4 + 8 * (3 * 12 + 12 + 12 * 12 + 12 + 12 + 1)  # 3-12-12-1, float64


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    """A policy.py exported from an rp2-pico sized actor the mirror trained: (dir, sizes, params)."""
    out = tmp_path_factory.mktemp("policy")
    profile = load_profile("rp2-pico")
    config = TD3Config.from_dict(dict(profile.learner, total_steps=4000, eval_every=0,
                                      eval_episodes=1))
    agent = train(config, np.float32)["agent"]
    sizes = (3,) + config.actor_hidden + (1,)
    export.save_actor(out / "actor.json", sizes, agent.actor.get_weights())
    export.export(out / "actor.json", out)
    return out, *export.load_actor(out / "actor.json")


def expected_swing(sizes, params):
    """What the policy example prints, computed by the mirror's int8 actor and pendulum."""
    qa = export.quantize(sizes, params)
    env = Pendulum()
    env.th, env.thdot = math.pi, 0.0
    obs = env.observation()
    total, rows = 0.0, []
    for step in range(1, 201):
        torque_nm = MAX_TORQUE_NM * qa.policy(obs)
        reward = env.advance(torque_nm)
        obs = env.observation()
        total += reward
        if step % 20 == 0:
            rows.append((step * 0.05, math.degrees(angle_normalize(env.th)), torque_nm, total))
    return rows, total


def check_swing(lines, sizes, params):
    rows, total = expected_swing(sizes, params)
    printed = [LINE.match(line) for line in lines[:-1]]
    assert all(printed) and len(printed) == len(rows) == 10, lines
    for match, row in zip(printed, rows):
        # One unit in the last printed digit: MicroPython's %f may round the other way.
        for text, value, unit in zip(match.groups(), row, (0.1, 0.1, 0.01, 0.01)):
            assert float(text) == pytest.approx(value, abs=1.01 * unit), (text, row)
    assert lines[-1].startswith("episode return ")
    assert float(lines[-1].split()[-1]) == pytest.approx(total, abs=1e-9) and total < 0


def test_policy_example_matches_the_mirror(exported, tmp_path):
    export_dir, sizes, params = exported
    check_swing(run_example("policy", tmp_path, export_dir), sizes, params)


def test_policy_example_on_a_virtual_board_as_its_readme_says(exported, tmp_path):
    export_dir, sizes, params = exported
    readme = (EXAMPLES / "policy" / "README.md").read_text()
    commands = [line.split() for line in readme.splitlines()
                if line.strip().startswith("mpremote connect PORT resume")]
    assert [c[4] for c in commands] == ["mip", "cp", "run"], commands
    with VirtualBoard(4 * 1024 * 1024, flash_dir=tmp_path / "flash") as board:
        for words in commands:
            args = [board.port if w == "PORT" else w for w in words[1:]]
            if words[4] == "cp":  # the README's policy.py is that of its own run
                args[4] = str(export_dir / "policy.py")
            proc = subprocess.run([sys.executable, "-m", "mpremote"] + args, cwd=REPO,
                                  capture_output=True, text=True, timeout=60)
            assert proc.returncode == 0, proc.stdout + proc.stderr
        assert sorted(os.listdir(tmp_path / "flash")) == ["lib", "policy.py"]
        check_swing(proc.stdout.splitlines(), sizes, params)


def test_examples_readmes_name_their_commands():
    for name in ("train", "policy"):
        readme = (EXAMPLES / name / "README.md").read_text()
        assert "mpremote connect PORT resume run examples/%s/main.py" % name in readme
        assert "microrl vboard" in readme
    assert json.loads((REPO / "package.json").read_text())["urls"]  # what `mip install` reads
