"""Environments: the built-in ones by name (envcheck.py checks one given by the user).

An environment has ``obs_dim``, ``act_dim``, ``obs_low`` and ``obs_high`` (``obs_dim`` floats each:
the bounds compressed replay quantises with), ``reward_range`` (low, high), ``episode_steps``,
``reset(rng)`` returning the observation (an array of ``obs_dim`` floats it may reuse in place)
and ``step(action)`` taking ``act_dim`` floats in [-1, 1] and returning ``(obs, reward,
terminated)``. Optional: ``get_state()`` and ``set_state(state)`` (a tuple of floats, exactly), so
that a checkpoint can resume inside an episode. See docs/ENVIRONMENTS.md.
"""

NAMES = ("pendulum", "servo")


def make(name):
    """A new built-in environment; only its module is imported."""
    if name == "pendulum":
        from .pendulum import Pendulum
        return Pendulum()
    if name == "servo":
        from .servo import Servo
        return Servo()
    raise ValueError("unknown environment %r (built in: %s)" % (name, ", ".join(NAMES)))
