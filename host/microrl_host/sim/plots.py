"""Pictures of a run: the learning curve and the learned swing-up (angle over time and poses)."""

import math

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

SOLVED_RETURN = -200.0


def plot_curve(path, episode_steps, episode_returns, eval_returns, title):
    """Episode returns (thin) and deterministic evaluation returns (markers) against steps."""
    fig, ax = plt.subplots(figsize=(7, 4))
    steps = [(i + 1) * episode_steps for i in range(len(episode_returns))]
    ax.plot(steps, episode_returns, lw=1, alpha=0.6, label="training episode return")
    if eval_returns:
        ax.plot([s for s, _ in eval_returns], [r for _, r in eval_returns], "o-",
                label="evaluation (mean of deterministic episodes)")
    ax.axhline(SOLVED_RETURN, color="gray", ls="--", lw=1, label="-200")
    ax.set_xlabel("environment steps")
    ax.set_ylabel("return")
    ax.set_title(title)
    ax.legend(loc="lower right", fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def plot_swingup(path, angles_rad, torques_nm, dt_s, title, poses=12):
    """Angle from upright and torque over time, above a strip of pendulum poses."""
    fig = plt.figure(figsize=(9, 5))
    grid = fig.add_gridspec(2, 1, height_ratios=[2, 1])
    ax = fig.add_subplot(grid[0])
    t = [i * dt_s for i in range(len(angles_rad))]
    upright = [((a + math.pi) % (2 * math.pi)) - math.pi for a in angles_rad]
    ax.plot(t, [math.degrees(a) for a in upright], label="angle from upright (deg)")
    ax.plot(t[:-1], [20 * u for u in torques_nm], lw=1, alpha=0.7, label="torque x 20 (N m)")
    ax.axhline(0, color="gray", lw=0.8)
    ax.set_xlabel("time (s)")
    ax.set_ylim(-200, 200)
    ax.set_title(title)
    ax.legend(loc="upper right", fontsize=8)
    strip = fig.add_subplot(grid[1])
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
    fig.savefig(path, dpi=100)
    plt.close(fig)
