"""Board profiles on a virtual board with the profile's heap: deploy the learner as .mpy with
mpremote, then train 100 steps (the last 10 with TD3 updates) over the serial protocol.

The serve stack (protocol, line input, weights, benchmarks, command loop) adds about 27 KB of code
on the 64-bit unix port. That fits beside the learner on the three larger profiles. The rp2-pico,
esp32 and pyboard-v11 learners fill their heaps without it; tests/test_sim.py runs each of them,
100 steps, in the same interpreter and heap, on the learner's own code.
"""

import pytest

from boardkit import link_to
from microrl_host.board import deploy
from microrl_host.board.boards import load_profile
from microrl_host.board.vboard import VirtualBoard


SERVE_STACK_FITS = ("unix", "esp32s3-psram", "rp2-pico2")


@pytest.mark.parametrize("board", SERVE_STACK_FITS)
def test_profile_trains_100_steps_on_a_virtual_board_with_its_heap(board, tmp_path):
    profile = load_profile(board)
    vboard = VirtualBoard(profile.heap_bytes, flash_dir=tmp_path / "flash",
                          float_bits=profile.float_bits, name=board).start()
    try:
        deploy.deploy(vboard.port, profile, compiled=True,
                      config={"learning_starts": 90, "eval_episodes": 1}, log=lambda text: None)
        with link_to(vboard, timeout_s=120.0) as link:
            reply = link.train(100, seed=1)
            assert reply["steps"] == 100 and not reply["stopped"]
            after = link.hello()
            config = after["learner"]["config"]
            for key, value in profile.learner.items():
                if key != "total_steps":
                    assert config[key] == value, key
            print("%s: heap %d, free after 100 steps %d" % (board, profile.heap_bytes,
                                                           after["heap_free_bytes"]))
            assert 0 < after["heap_free_bytes"] < profile.heap_bytes
    finally:
        vboard.stop()
