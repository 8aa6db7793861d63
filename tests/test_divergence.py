"""The divergence guard under `micropython`: a NaN or an infinity in a weight, a target or the data
stops the update, is reported with its step, and the run goes back to its newest checkpoint; with
no checkpoint, or when the same data diverges again, training stops with an error."""

import pytest

from devicerun import run_device

TINY = {"actor_hidden": [8], "critic_hidden": [8], "batch_size": 8, "buffer_capacity": 300,
        "learning_starts": 20, "episode_steps": 50, "eval_every": 0, "eval_episodes": 1,
        "total_steps": 160, "seed": 2}

# Trains to ``poison_at``, writes a NaN (or inf) into one weight of ``net``, trains on to the end.
POISON = """
import os
os.chdir(%r)
from microrl.backend import K
from microrl.config import TD3Config
from microrl.train import Trainer, train
from microrl import weights
c = TD3Config(**%r)
t = Trainer(c)
reports = []
t.on_diverge = reports.append
poison_at, net, value = %r
error = None
try:
    while t.steps < c.total_steps:
        t.step()
        if t.steps == poison_at and net:
            K.set(getattr(t.agent, net).params[0], 0, 0, float(value))
            net = None  # once: the restored run passes this step clean
except ValueError as e:
    error = "%%s: %%s" %% (type(e).__name__, e)
print(json.dumps({"steps": t.steps, "reports": reports, "error": error,
                  "actor": weights.pack(t.agent.actor.params).hex()}))
"""


def _run(tmp_path, config, poison_at=0, net=None, value="nan"):
    cwd = tmp_path / ("run-%s-%s" % (net, value))
    cwd.mkdir()
    return run_device(POISON % (str(cwd), config, (poison_at, net, value)))


CHECKPOINTED = dict(TINY, checkpoint_every=25, checkpoint_replay=True)


@pytest.mark.parametrize("net, value, what", [
    ("critic1", "nan", "critic 1's loss"), ("critic2", "inf", "critic 2's loss"),
    ("critic1_target", "nan", "the critics' target"), ("actor", "nan", "the actor's loss")])
def test_a_poisoned_weight_goes_back_to_the_checkpoint_and_the_run_ends_as_if_never_poisoned(
        tmp_path, net, value, what):
    reference = _run(tmp_path, CHECKPOINTED)
    poisoned = _run(tmp_path, CHECKPOINTED, 110, net, value)
    assert reference["reports"] == [] and reference["error"] is None
    assert poisoned["error"] is None, poisoned["error"]
    (report,) = poisoned["reports"]
    print(report)
    # The first update the poison reaches meets it: the critics' at step 110 (the step after the
    # poison), the actor's at the next actor update (policy_delay 2), an infinity once a row's
    # input drives it through the ReLU; the newest checkpoint is step 100's.
    assert report["what"] == what and 110 <= report["step"] <= 115
    assert report["restored"]["steps"] == 100 and report["restored"]["seq"] == 4
    # Checkpoints hold the replay buffer and the generator: the run from step 100 is the clean one.
    assert poisoned["steps"] == reference["steps"] == 160
    assert poisoned["actor"] == reference["actor"]


def test_without_a_checkpoint_the_divergence_stops_training_with_its_step(tmp_path):
    out = _run(tmp_path, TINY, 60, "critic1", "nan")
    assert out["error"] == ("Diverged: critic 1's loss is not finite at step 60 and there is no "
                            "checkpoint to go back to (set checkpoint_every): training stopped")
    assert out["steps"] == 60  # the step whose update diverged did not count


# An environment whose reward is NaN at one step: the restored run meets the same data again.
NAN_REWARD = """
import os
os.chdir(%r)
from microrl.config import TD3Config
from microrl.pendulum import Pendulum
from microrl.train import Trainer


class Glitch(Pendulum):
    steps = 0

    def step(self, action):
        obs, r, done = Pendulum.step(self, action)
        Glitch.steps += 1
        return obs, float("nan") if Glitch.steps == 70 else r, done


c = TD3Config(**%r)
t = Trainer(c, env=Glitch(), eval_env=Pendulum())
reports = []
t.on_diverge = reports.append
error = None
try:
    while t.steps < c.total_steps:
        t.step()
except ValueError as e:
    error = "%%s: %%s" %% (type(e).__name__, e)
print(json.dumps({"steps": t.steps, "reports": reports, "error": error,
                  "size": t.agent.buffer.size}))
"""


def test_a_nan_reward_is_met_again_after_the_restore_with_replay_and_training_stops(tmp_path):
    """The NaN reward of step 70 is first sampled after the checkpoint of step 100 took it into
    its replay buffer: the restored run meets it again, and training stops rather than go round."""
    out = run_device(NAN_REWARD % (str(tmp_path), CHECKPOINTED))
    (report,) = out["reports"]
    assert report["what"] == "the critics' target" and report["restored"]["steps"] == 100
    assert 100 < report["step"] < 160
    assert out["error"] == ("Diverged: the critics' target is not finite at step %d, again after "
                            "restoring step 100: training stopped" % out["steps"])
    assert out["steps"] <= report["step"]


@pytest.mark.parametrize("options, what, restored", [
    ({}, "the critics' target", 100),
    ({"replay": "compressed", "prioritized": True}, "a value the environment returned", 50)],
    ids=["float", "compressed-prioritized"])
def test_a_nan_reward_without_replay_in_the_checkpoint_refills_the_buffer_and_trains_on(
        tmp_path, options, what, restored):
    """A checkpoint without the buffer: the restore empties it (the NaN row goes with it, and
    its priority), the learner waits learning_starts steps while it refills, and the run reaches
    its end. Float rows keep the NaN until an update samples it; compressed replay has no code
    for it and stops at the step itself (70, the checkpoint before it step 50's)."""
    config = dict(CHECKPOINTED, checkpoint_replay=False, **options)
    out = run_device(NAN_REWARD % (str(tmp_path), config))
    (report,) = out["reports"]
    assert report["what"] == what and report["restored"]["steps"] == restored
    assert options == {} or report["step"] == 69  # the 70th env step
    assert out["error"] is None and out["steps"] == 160
    assert out["size"] == 160 - restored  # emptied at the restore, refilled since


def test_the_host_keeps_the_boards_divergence_reports_in_run_json(tmp_path):
    """`microrl train` records a `diverged` event of the board in run.json and says it, and goes on
    following the run's episodes."""
    import json

    from microrl_host.board.train import RunRecord, follow

    events = [{"event": "episode", "id": 1, "episode": 1, "step": 50, "return": -900.0,
               "elapsed_s": 1.0},
              {"event": "diverged", "id": 1, "step": 110, "what": "critic 1's loss",
               "restored": {"file": "ckpt1.bin", "seq": 4, "steps": 100, "skipped": []}},
              {"event": "episode", "id": 1, "episode": 2, "step": 150, "return": -800.0,
               "elapsed_s": 3.0}]

    class Link:
        def send(self, cmd, **args):
            return 1

        def wait_reply(self, request_id, what, timeout_s, on_event):
            for e in events:
                on_event(e)
            return {"steps": 150, "stopped": False}

    class Bar:
        lines = []

        def write(self, text):
            self.lines.append(text)

        def update(self, *args, **kwargs):
            pass

    record = RunRecord(tmp_path, {"config": {"episode_steps": 50, "seed": 0}, "board": "unix",
                                  "start_step": 0})
    bar = Bar()
    reply, stopped = follow(Link(), record, 150, bar, 10)
    doc = json.loads((tmp_path / "run.json").read_text())
    assert reply["steps"] == 150 and not stopped
    assert doc["divergences"] == [{"step": 110, "what": "critic 1's loss", "restored": {
        "file": "ckpt1.bin", "seq": 4, "steps": 100, "skipped": []}}]
    assert [e["step"] for e in doc["episodes"]] == [50, 150]
    assert bar.lines == ["the board's update at step 110 met a NaN or an infinity (critic 1's "
                         "loss): it went back to its checkpoint of step 100"]
