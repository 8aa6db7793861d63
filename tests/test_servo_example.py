"""examples/servo/main.py, the servo task on hardware, trained for a few episodes under the desktop
micropython on a fake board: tests/fakeboard's machine and time drive the simulated servo in
virtual time (encoder edges call the pin interrupts). Checked: the stall stop, the episode time
limit, the duty limit, the held control period, and the motor off after an exception."""

import json
import os
import re
import subprocess
from pathlib import Path

import pytest

from microrl_host.board.vboard import default_micropython

REPO = Path(__file__).resolve().parents[1]
EXAMPLE = REPO / "examples" / "servo"
FAKE_BOARD = REPO / "tests" / "fakeboard"
# A quick learner: training between episodes (episode_updates) as the template does.
CONFIG = dict(actor_hidden=[8, 8], critic_hidden=[8, 8], batch_size=8, buffer_capacity=1000,
              learning_starts=150, episode_updates=3, total_steps=500, eval_episodes=1)
JAM_US = (1000000, 1600000)  # the shaft is blocked from 1.0 s to 1.6 s (the first episode)
PAUSE_US = (3000000, 1200000)  # at 3 s one clock reading comes 1.2 s late (a long GC pause)
STALL_US = 200000  # the template's STALL_MS
LINE = re.compile(r"^episode (\d+): (\d+) steps, return (-?\d+\.\d\d), overruns (\d+) "
                  r"\(latest (\d+) us late\)(?:, stopped: (stall|time limit))?$")

RUNNER = """
import sys
sys.path[:0] = %(path)r
import json
import machine
plant = machine.plant
t0 = plant.now_us
spec = json.loads(%(spec)r)
if spec["jam"]:
    plant.jam_us = (t0 + spec["jam"][0], t0 + spec["jam"][1])
if spec["pause"]:
    plant.pause = (t0 + spec["pause"][0], spec["pause"][1])
if spec["fault"]:
    plant.fault = (t0 + spec["fault"][0], {"KeyboardInterrupt": KeyboardInterrupt,
                                           "OSError": OSError}[spec["fault"][1]])
import main as template
template.CONFIG.update(spec["config"])
template.ACTOR_FILE = spec["actor_file"]
for name, value in spec["set"].items():
    setattr(template, name, value)
raised = None
try:
    template.main()
except (KeyboardInterrupt, OSError) as e:
    raised = type(e).__name__
print(json.dumps({"raised": raised, "max_code": plant.max_code, "both_on": plant.both_on,
                  "jam_driven_max_us": plant.jam_driven_max_us,
                  "codes": [plant.pwms[p].code for p in plant.motor_pins],
                  "gaps": [[k, v] for k, v in plant.gaps.items()],
                  "last_drive_us": plant.last_drive_us - t0,
                  "last_write_us": plant.last_write_us - t0, "counts": plant.count,
                  "max_duty": template.MAX_DUTY, "period_us": template.PERIOD_US,
                  "stall_ms": template.STALL_MS, "limit_ms": template.EPISODE_LIMIT_MS}))
"""


def run_template(tmp_path, jam=None, pause=None, fault=None, **settings):
    spec = {"config": CONFIG, "actor_file": str(tmp_path / "actor.bin"), "jam": jam,
            "pause": pause, "fault": fault, "set": settings}
    script = RUNNER % {"path": [str(FAKE_BOARD), str(EXAMPLE), str(REPO / "device")],
                       "spec": json.dumps(spec)}
    env = dict(os.environ, MICRORL_BACKEND="python")
    proc = subprocess.run([default_micropython(), "-X", "heapsize=4M", "-c", script],
                          cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    lines = proc.stdout.splitlines()
    return lines[:-1], json.loads(lines[-1])


def episodes(lines):
    """[(steps, return, overruns, late_us, stopped)] of the template's episode lines, in order."""
    out = []
    for line in lines:
        m = LINE.match(line)
        if m:
            assert int(m.group(1)) == len(out) + 1
            out.append((int(m.group(2)), float(m.group(3)), int(m.group(4)), int(m.group(5)),
                        m.group(6)))
    return out


def test_trains_and_stops_on_stall_and_time_limit_within_its_limits(tmp_path):
    lines, out = run_template(tmp_path, jam=JAM_US, pause=PAUSE_US)
    eps = episodes(lines)
    assert len(eps) >= 4 and out["raised"] is None
    assert lines[-2].startswith("evaluation return ")
    assert lines[-1] == "saved the actor to %s: %d bytes" % (
        tmp_path / "actor.bin", (tmp_path / "actor.bin").stat().st_size)
    # The blocked shaft: the first episode stops early on the stall, and the motor was driven
    # above the stall duty without a count for no longer than STALL_MS.
    assert eps[0][4] == "stall" and eps[0][0] < 100
    assert out["stall_ms"] * 1000 == STALL_US
    assert 0 < out["jam_driven_max_us"] <= STALL_US
    # The 1.2 s pause: one overrun, 1.2 s less one period late, and the episode it fell in stops
    # at the time limit; every other episode runs its 100 steps.
    late = [e for e in eps if e[4] == "time limit"]
    assert len(late) == 1 and late[0][0] < 100
    assert eps[-1][2] == 1 and eps[-1][3] == PAUSE_US[1] - out["period_us"]
    assert all(e[0] == 100 for e in eps if e[4] is None)
    # The duty limit holds and one channel at a time drives; the actions reached the limit's
    # neighbourhood, so the bound was tested.
    limit = int(out["max_duty"] * 65535)
    assert 0.8 * limit < out["max_code"] <= limit and out["both_on"] == 0
    # The control period: every two duty writes inside an episode are exactly one period apart
    # (the clock is virtual: training between episodes takes no time inside them).
    gaps = dict(out["gaps"])
    assert list(gaps) == [out["period_us"]] and gaps[out["period_us"]] > 400
    assert out["codes"] == [0, 0] and out["counts"] != 0


def test_without_the_stall_stop_the_blocked_motor_stays_driven(tmp_path):
    # The same run with the stall stop pushed out of reach: the check above would catch it.
    lines, out = run_template(tmp_path, jam=JAM_US, STALL_MS=100000)
    assert all(e[4] is None for e in episodes(lines))
    assert out["jam_driven_max_us"] > STALL_US


@pytest.mark.parametrize("fault", ["KeyboardInterrupt", "OSError"])
def test_an_exception_turns_the_motor_off(tmp_path, fault):
    fault_us = 1200000  # inside the first episode, the motor running
    lines, out = run_template(tmp_path, fault=(fault_us, fault))
    assert out["raised"] == fault
    assert episodes(lines) == []
    # The motor was driven up to the fault (within two periods), and both channels are off now.
    assert fault_us - 2 * out["period_us"] <= out["last_drive_us"] <= out["last_write_us"]
    assert fault_us <= out["last_write_us"]
    assert out["codes"] == [0, 0]
