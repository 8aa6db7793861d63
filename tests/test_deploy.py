"""`microrl deploy` on a virtual board: the package goes to the lib folder, a boot file that is not
ours stays unless --boot, a reset or a hang mid-copy ends the copy at once, and bad requests fail
before anything is copied, with one line naming the problem."""

import argparse
import json
import re
import time
from pathlib import Path

import pytest

from boardkit import HEAP_BYTES, PROFILE, SMALL, cli, link_to
from microrl_host.board import deploy
from microrl_host.board.vboard import VirtualBoard

MODULES = sorted(p.name for p in (deploy.DEVICE_DIR / "microrl").glob("*.py"))
OUR_MAIN = (deploy.DEVICE_DIR / "main.py").read_text()
THEIR_MAIN = 'print("my own application")\n'


@pytest.fixture
def board(tmp_path):
    """A virtual board whose flash holds the user's main.py and an old deploy's package at the
    root, where a stale module would shadow the new package."""
    flash = tmp_path / "flash"
    (flash / "microrl").mkdir(parents=True)
    (flash / "main.py").write_text(THEIR_MAIN)
    (flash / "microrl" / "td3.py").write_text('raise ImportError("the stale root package")\n')
    with VirtualBoard(HEAP_BYTES, flash_dir=flash) as b:
        yield b


def run_deploy(*argv):
    """`microrl deploy ARGV` in this process; its exit status."""
    parser = argparse.ArgumentParser()
    deploy.add_arguments(parser)
    return deploy.run(parser.parse_args([str(a) for a in argv]))


def test_deploy_installs_into_lib_and_keeps_the_users_main(board):
    flash = Path(board.flash_dir)
    lines = []
    hello = deploy.deploy(board.port, PROFILE, config=SMALL, log=lines.append)
    assert hello["protocol"] == 1
    assert '__version__ = "%s"' % hello["microrl"] in (deploy.DEVICE_DIR / "microrl" /
                                                       "__init__.py").read_text()
    assert sorted(p.name for p in (flash / "lib" / "microrl").iterdir()) == MODULES
    assert not (flash / "microrl").exists()  # the old root package is gone
    assert (flash / "main.py").read_text() == THEIR_MAIN
    assert any(line.startswith("kept the board's own main.py (not microrl's)") for line in lines)
    assert "package into ./lib/microrl" in lines[0]
    settings = json.loads((flash / "microrl.json").read_text())
    assert settings["config"]["batch_size"] == SMALL["batch_size"] and settings["mode"] == "serve"

    # --boot replaces it; the board then boots into microrl from the lib folder.
    proc = cli("deploy", "--port", board.port, "--config", json.dumps(SMALL), "--boot",
               "--no-start")
    assert proc.returncode == 0, proc.stderr
    assert "replacing the board's own main.py (--boot)" in proc.stdout
    files = len(MODULES) + 2  # the package, microrl.json and main.py
    assert re.search(r"copying: 100%%\|.*\| %d/%d " % (files, files), proc.stderr), proc.stderr
    assert (flash / "main.py").read_text() == OUR_MAIN
    board.reset()
    with link_to(board) as link:
        assert link.reset()["config"]["batch_size"] == SMALL["batch_size"]  # from microrl.json

    # Ours from now on: replaced without --boot, and nothing said about it.
    lines.clear()
    deploy.deploy(board.port, PROFILE, config=SMALL, log=lines.append, start=False)
    assert not any("main.py" in line for line in lines), lines
    assert (flash / "main.py").read_text() == OUR_MAIN


def test_a_reset_mid_copy_ends_the_deploy_at_once(board):
    def reset_after_the_fourth(count, total, path):
        assert total == len(MODULES) + 1  # the package and microrl.json; their main.py stays
        if count == 4:
            board.reset()
    started = time.monotonic()
    with pytest.raises(deploy.DeployError) as raised:
        deploy.deploy(board.port, PROFILE, config=SMALL, log=lambda text: None,
                      on_copied=reset_after_the_fourth)
    took_s = time.monotonic() - started
    assert str(raised.value).startswith("the board restarted while copying ./lib/microrl/%s "
                                        "(file 5 of %d); it printed: MicroPython "
                                        % (MODULES[4], len(MODULES) + 1)), raised.value
    assert took_s < 10, took_s  # about 0.5 s; mpremote's own copy waited 120 s
    # The board is up again and a new deploy completes.
    assert deploy.deploy(board.port, PROFILE, config=SMALL, log=lambda text: None)["ok"]


def test_a_board_that_hangs_mid_copy_fails_within_the_stall_time(board):
    files = [(deploy.DEVICE_DIR / "microrl" / name, "./lib/microrl/" + name)
             for name in MODULES[:3]]

    def hang_after_the_first(count, total, path):
        if count == 1:
            board.pause()
    started = time.monotonic()
    try:
        with pytest.raises(deploy.DeployError,
                           match=r"^copying \./lib/microrl/%s \(file 2 of 3\) on .* failed: "
                                 r"the board sent nothing for 1 s$" % MODULES[1]):
            deploy.copy_files(board.port, "./lib", files, stall_s=1.0,
                              on_copied=hang_after_the_first)
    finally:
        board.resume()
    assert time.monotonic() - started < 10


@pytest.mark.parametrize("config, message", [
    ('{"batchsize": 8}', "bad config for board profile default: unknown TD3Config field "
                         "'batchsize'"),
    ('{"gamma": 2}', "bad config for board profile default: gamma must be in [0, 1], got 2"),
    ('[8]', "--config must be a JSON object of TD3Config fields, got [8]"),
    ('{batch_size: 8}', "--config is not JSON (Expecting property name enclosed in double "
                        "quotes: line 1 column 2 (char 1)): '{batch_size: 8}'"),
])
def test_a_bad_config_fails_before_the_board_is_touched(capsys, config, message):
    # The port does not exist: an error about the config means nothing was sent.
    assert run_deploy("--port", "/dev/nonexistent", "--config", config) == 1
    assert capsys.readouterr().err == "deploy failed: %s\n" % message


def test_a_failing_step_is_one_line_naming_it(capsys):
    assert run_deploy("--port", "/dev/nonexistent") == 1
    err = capsys.readouterr().err
    assert err == ("deploy failed: reading the board's firmware on /dev/nonexistent failed "
                   "(mpremote exit 1): mpremote: failed to access /dev/nonexistent (it may be in "
                   "use by another program)\n")


def test_a_mistyped_board_is_rejected(capsys):
    assert run_deploy("--port", "/dev/nonexistent", "--board", "rp2-pcio") == 1
    assert capsys.readouterr().err.startswith(
        "deploy failed: unknown board 'rp2-pcio'; known boards: esp32, esp32s3-psram, ")


def test_a_profile_file_given_by_path(board, tmp_path, capsys):
    text = (deploy.DEVICE_DIR.parent / "boards" / "rp2-pico.toml").read_text()
    assert 'name = "rp2-pico"' in text
    mine = tmp_path / "my-pico.toml"
    mine.write_text(text.replace('name = "rp2-pico"', 'name = "my-pico"')
                    .replace("batch_size = 16", "batch_size = 12"))
    assert run_deploy("--port", board.port, "--board", mine, "--no-start") == 0
    settings = json.loads((Path(board.flash_dir) / "microrl.json").read_text())
    assert settings["board"] == "my-pico" and settings["config"]["batch_size"] == 12
    assert "for board profile my-pico" in capsys.readouterr().out
    (tmp_path / "broken.toml").write_text("heap_bytes = = 1\n")
    for path, message in ((tmp_path / "none.toml", "board profile file %s not found"),
                          (tmp_path / "broken.toml", "board profile %s: not valid TOML: ")):
        assert run_deploy("--port", board.port, "--board", path) == 1
        assert capsys.readouterr().err.startswith("deploy failed: " + message % path)
