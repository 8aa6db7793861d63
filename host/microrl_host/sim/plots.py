"""Pictures of a run: the learning curve and the learned swing-up (angle over time and poses).

matplotlib is imported when a picture is drawn, not with this module: the CLI imports every
command's module to build its help, and matplotlib alone takes seconds to import.
"""

import math

from microrl_host.mirror.train import SOLVED_RETURN

SOLVED_LABEL = "%g: swing-up solved" % SOLVED_RETURN  # what the dashed line in every curve means


def pyplot():
    """matplotlib.pyplot on the Agg backend (files only, no display needed)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def mark_solved(ax, solved=(SOLVED_RETURN, SOLVED_LABEL)):
    """The dashed line at the return counted as solved, labelled for the legend."""
    ax.axhline(solved[0], color="gray", ls="--", lw=1, label=solved[1])


def plot_curve(path, episode_steps, episode_returns, eval_returns, title, steps=None,
               solved=(SOLVED_RETURN, SOLVED_LABEL)):
    """Episode returns (thin) and deterministic evaluation returns (markers) against steps;
    ``steps``: the step at which each episode ended (default: every ``episode_steps`` from 0);
    ``solved``: (return, label) of the dashed line (default: the pendulum's)."""
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(7, 4))
    if steps is None:
        steps = [(i + 1) * episode_steps for i in range(len(episode_returns))]
    ax.plot(steps, episode_returns, lw=1, alpha=0.6, label="training episode return")
    if eval_returns:
        ax.plot([s for s, _ in eval_returns], [r for _, r in eval_returns], "o-",
                label="evaluation (mean of deterministic episodes)")
    mark_solved(ax, solved)
    ax.set_xlabel("environment steps")
    ax.set_ylabel("return")
    ax.set_title(title)
    ax.legend(loc="lower right", fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def angle_line(angles_rad, dt_s):
    """(times in s, angles from upright in degrees in [-180, 180)) for a line plot, with a NaN
    point where the angle wraps around (the pendulum swings through hanging straight down), so that
    the line breaks there instead of jumping across the whole axis."""
    times, degrees = [], []
    for i, a in enumerate(angles_rad):
        deg = math.degrees(((a + math.pi) % (2 * math.pi)) - math.pi)
        if degrees and abs(deg - degrees[-1]) > 180.0:
            times.append(i * dt_s)
            degrees.append(math.nan)
        times.append(i * dt_s)
        degrees.append(deg)
    return times, degrees


def plot_swingup(path, angles_rad, torques_nm, dt_s, title, poses=12):
    """Write swingup_figure(...) to ``path``."""
    fig = swingup_figure(angles_rad, torques_nm, dt_s, title, poses)
    fig.savefig(path, dpi=100)
    pyplot().close(fig)


def swingup_figure(angles_rad, torques_nm, dt_s, title, poses=12):
    """Angle from upright and torque over time, each on its own axis with its unit, above a strip
    of pendulum poses."""
    plt = pyplot()
    fig = plt.figure(figsize=(9, 6.5))
    grid = fig.add_gridspec(3, 1, height_ratios=[2, 1.2, 1.3])
    ax = fig.add_subplot(grid[0])
    ax.plot(*angle_line(angles_rad, dt_s), color="tab:blue")
    ax.axhline(0, color="gray", lw=0.8)
    ax.set_ylabel("angle from upright (deg)")
    ax.set_ylim(-180, 180)
    ax.set_yticks([-180, -90, 0, 90, 180])
    ax.set_title(title)
    ax.tick_params(labelbottom=False)
    torque = fig.add_subplot(grid[1], sharex=ax)
    torque.step([i * dt_s for i in range(len(torques_nm))], torques_nm, where="post", lw=1,
                color="tab:orange")
    torque.axhline(0, color="gray", lw=0.8)
    torque.set_ylabel("torque (N m)")
    torque.set_xlabel("time (s)")
    strip = fig.add_subplot(grid[2])
    strip.set_aspect("equal")
    strip.axis("off")
    picks = [round(i * (len(angles_rad) - 1) / (poses - 1)) for i in range(poses)]
    for k, i in enumerate(picks):
        x0 = k * 2.6
        a = angles_rad[i]
        # th = 0 is upright: the tip is at (sin th, cos th) from the pivot.
        strip.plot([x0, x0 + math.sin(a)], [0, math.cos(a)], lw=3, color="tab:blue")
        strip.plot([x0], [0], "ko", ms=3)
        strip.text(x0, -1.45, "%.1fs" % (i * dt_s), ha="center", fontsize=7)
    strip.set_xlim(-1.3, (poses - 1) * 2.6 + 1.3)
    strip.set_ylim(-1.6, 1.2)
    fig.tight_layout()
    return fig


def plot_servo(path, angles_rad, duties, target_rad, dt_s, title):
    """Write servo_figure(...) to ``path``."""
    fig = servo_figure(angles_rad, duties, target_rad, dt_s, title)
    fig.savefig(path, dpi=100)
    pyplot().close(fig)


def servo_figure(angles_rad, duties, target_rad, dt_s, title):
    """The servo's arm angle against its target over time, above the PWM duty, each axis with
    its unit."""
    plt = pyplot()
    fig, (ax, duty) = plt.subplots(2, 1, figsize=(8, 5.5), sharex=True,
                                   gridspec_kw={"height_ratios": [2, 1]})
    ax.plot(*angle_line(angles_rad, dt_s), color="tab:blue", label="arm angle")
    ax.axhline(math.degrees(target_rad), color="gray", ls="--", lw=1, label="target")
    ax.set_ylabel("angle from hanging down (deg)")
    ax.set_ylim(-180, 180)
    ax.set_yticks([-180, -90, 0, 90, 180])
    ax.set_title(title)
    ax.legend(loc="lower right", fontsize=8)
    duty.step([i * dt_s for i in range(len(duties))], duties, where="post", lw=1,
              color="tab:orange")
    duty.axhline(0, color="gray", lw=0.8)
    duty.set_ylim(-1.05, 1.05)
    duty.set_ylabel("PWM duty")
    duty.set_xlabel("time (s)")
    fig.tight_layout()
    return fig
