"""The built-in environments by name, the mirror of device/microrl/envs.py (same names, same
protocol: obs_dim, act_dim, obs_low, obs_high, reward_range, episode_steps, reset(rng) and
step(action) -> (obs, reward, terminated); see docs/ENVIRONMENTS.md)."""

NAMES = ("pendulum", "servo")


def make(name):
    """A new built-in environment."""
    if name == "pendulum":
        from microrl_host.mirror.pendulum import Pendulum
        return Pendulum()
    if name == "servo":
        from microrl_host.mirror.servo import Servo
        return Servo()
    raise ValueError(f"unknown environment {name!r} (built in: {', '.join(NAMES)})")


def factory(name):
    """A function that makes a new built-in environment ``name`` (checked now)."""
    make(name)
    return lambda: make(name)
