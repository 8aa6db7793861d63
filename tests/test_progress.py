"""Progress of the long commands: a tqdm bar on stderr with rate and time left, stdout untouched;
the MicroPython engine reports steps between episodes."""

import re
from pathlib import Path

from microrl_host.board.boards import resolve_board
from microrl_host.board.vboard import default_micropython
from microrl_host.progress import Progress
from microrl_host.sim import sim


def test_bar_on_stderr_with_rate_time_left_and_returns(capsys):
    with Progress(400, "sim test") as bar:
        bar.update(200, episode_return=-1234.5)
        bar.write("a line above the bar")
        bar.update(400, eval_return=-321.0)
    out, err = capsys.readouterr()
    assert out == ""
    final = err.replace("\r", "\n").strip().splitlines()[-1]
    assert re.fullmatch(r"sim test: 100%\|#+\| 400/400 \[\d\d:\d\d<\d\d:\d\d, +[\d.]+step/s, "
                        r"episode -1234\.5, eval -321\.0\]", final), final
    assert "a line above the bar\n" in err


def test_bar_with_the_boards_own_rate_and_time_left(capsys):
    """`microrl train`'s bar: the rate and ETA the board's own clock gives, not tqdm's."""
    with Progress(1000, "train test", own_eta=True) as bar:
        bar.update(400, episode_return=-987.5, rate=250.4, eta_s=(1000 - 400) / 250.4)
    final = capsys.readouterr().err.replace("\r", "\n").strip().splitlines()[-1]
    assert re.fullmatch(r"train test:  40%\|#+ +\| 400/1000 \[\d\d:\d\d, board 250 steps/s, "
                        r"ETA 00:02, episode -987\.5\]", final), final


class Recorder:
    def __init__(self):
        self.calls = []

    def update(self, step, episode_return=None, eval_return=None):
        self.calls.append((step, episode_return, eval_return))

    def write(self, text):
        pass


def test_micropython_engine_reports_steps_between_episodes(tmp_path):
    """An episode is 200 steps, which on a small board's learner under the pure-Python fallback
    can take a minute: the bar moves every PROGRESS_EVERY_STEPS steps."""
    profile = resolve_board("rp2-pico")
    config = sim.build_config(profile, steps=60, overrides=["eval_every=0", "eval_episodes=1",
                                                            "learning_starts=40"])
    recorder = Recorder()
    res = sim.run_micropython(config, profile, recorder, default_micropython(), 60, Path(tmp_path))
    assert sim.PROGRESS_EVERY_STEPS == 10
    steps = [s for s, episode, evaluation in recorder.calls
             if episode is None and evaluation is None]
    assert steps == [10, 20, 30, 40, 50, 60]
    assert recorder.calls[-1][0] == 60 and recorder.calls[-1][2] == res["eval_returns"][-1][1]
