"""The check that an environment given by the user speaks the protocol (envs.py), before any
training step: loaded only for such an environment (the built-in ones are known to)."""

_INTS = ("obs_dim", "act_dim", "episode_steps")
_BOUNDS = ("obs_low", "obs_high", "reward_range")


def _numbers(v, n):
    try:
        return len(v) == n and all(isinstance(x, (int, float)) and x == x for x in v)
    except TypeError:
        return False


def check(env, result=None, where="step()"):
    """Raise ValueError naming what ``env`` lacks or gets wrong: a protocol field, or with
    ``result``, a ``(obs, reward, terminated)`` that ``where`` returned."""
    what = None
    if result is None:
        for name in _INTS:
            v = getattr(env, name, None)
            if not isinstance(v, int) or isinstance(v, bool) or v <= 0:
                what = "%s must be a positive integer, got %r" % (name, v)
                break
        for name in _BOUNDS if what is None else ():
            v = getattr(env, name, None)
            n = 2 if name == "reward_range" else env.obs_dim
            if not _numbers(v, n):
                what = "%s must be a sequence of %d numbers, got %r" % (name, n, v)
                break
        if what is None:
            for j in range(env.obs_dim):
                if not env.obs_low[j] < env.obs_high[j]:
                    what = "obs_low[%d] must be below obs_high[%d]" % (j, j)
            if not env.reward_range[0] < env.reward_range[1]:
                what = "reward_range must be (low, high) with low < high"
            for name in ("reset", "step"):
                if not callable(getattr(env, name, None)):
                    what = "has no %s() method" % name
            if hasattr(env, "get_state") != hasattr(env, "set_state"):
                what = "has only one of get_state() and set_state()"
    elif not isinstance(result, tuple) or len(result) != 3:
        what = "%s must return (obs, reward, terminated), got %r" % (where, result)
    elif not _numbers(result[0], env.obs_dim):
        what = "%s must return %d observation floats, got %r" % (where, env.obs_dim, result[0])
    elif not isinstance(result[1], (int, float)) or isinstance(result[1], bool):
        what = "%s reward must be a number, got %r" % (where, result[1])
    if what is not None:
        raise ValueError("environment %s: %s" % (type(env).__name__, what))
