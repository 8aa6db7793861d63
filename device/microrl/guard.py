"""The divergence guard: after an update met a NaN or an infinity (td3.Diverged), report it and
go back to the run's newest checkpoint; never train on. Loaded only when that happens."""

from .checkpoint import CheckpointError, resume
from .td3 import Diverged


def recover(trainer, error):
    """Restore ``trainer`` from its newest valid checkpoint after ``error`` at this step, set
    ``trainer.diverged`` to {"step", "what", "restored"} and pass it to ``trainer.on_diverge``
    when the caller set one (both attributes exist only when used: a learner on a small heap
    carries no more than it needs).

    Raises Diverged (training stops) when nothing can be restored: no checkpointing, no valid
    checkpoint, or a second divergence before the run got past the step of the first (the same
    data would diverge again)."""
    step = trainer.steps
    what = "%s is not finite at step %d" % (error, step)
    last = getattr(trainer, "diverged", None)
    if last is not None and step <= last["step"]:
        raise Diverged("%s, again after restoring step %d: training stopped"
                       % (what, last["restored"]["steps"]))
    if trainer.checkpoint is None:
        raise Diverged("%s and there is no checkpoint to go back to (set checkpoint_every): "
                       "training stopped" % what)
    try:
        info = resume(trainer)
    except CheckpointError as e:
        raise Diverged("%s: training stopped (%s)" % (what, e))
    agent = trainer.agent
    if not trainer.checkpoint.replay:  # the buffer may hold what diverged: start it again
        agent.buffer.clear()
        if agent.per is not None:
            agent.per.clear()
    trainer.diverged = {"step": step, "what": str(error), "restored": info}
    report = getattr(trainer, "on_diverge", None)
    if report is not None:
        report(trainer.diverged)
