"""The pictures of a run: labelled axes with units, the angle line broken where it wraps, and the
-200 line explained in the legend of every learning curve."""

import math

import numpy as np

from microrl_host.bench import learn
from microrl_host.sim import plots


def test_angle_line_breaks_where_the_angle_wraps():
    # Swinging through hanging straight down (+-180 deg from upright) and on to upright.
    angles = [math.pi - 0.1, math.pi + 0.1, math.pi + 1.0, 2 * math.pi]
    times, degrees = plots.angle_line(angles, 0.5)
    assert times == [0.0, 0.5, 0.5, 1.0, 1.5]
    np.testing.assert_allclose(degrees, [180 - math.degrees(0.1), math.nan,
                                         -180 + math.degrees(0.1), -180 + math.degrees(1.0), 0.0],
                               atol=1e-9)
    assert plots.angle_line([0.0, 0.5, -0.5], 1.0)[1] == [0.0, math.degrees(0.5),
                                                          -math.degrees(0.5)]  # no wrap, no gap


def test_swingup_figure_has_an_axis_per_unit():
    angles = [math.pi + 0.3 * i for i in range(50)]
    torques = [2.0 * math.sin(i) for i in range(49)]
    fig = plots.swingup_figure(angles, torques, 0.05, "title")
    angle_ax, torque_ax = fig.axes[:2]
    assert angle_ax.get_ylabel() == "angle from upright (deg)"
    assert angle_ax.get_ylim() == (-180.0, 180.0)
    assert torque_ax.get_ylabel() == "torque (N m)" and torque_ax.get_xlabel() == "time (s)"
    angle_y = angle_ax.lines[0].get_ydata()
    assert np.isnan(angle_y).sum() == 2  # 49 * 0.3 rad = 2.3 turns: two wraps, two gaps
    assert np.nanmax(np.abs(angle_y)) <= 180
    np.testing.assert_allclose(torque_ax.lines[0].get_ydata(), torques)  # N m, not scaled
    plots.pyplot().close(fig)


def test_every_curve_explains_the_minus_200_line(tmp_path, monkeypatch):
    saved = []
    plt = plots.pyplot()
    monkeypatch.setattr(plt.Figure, "savefig", lambda fig, *a, **k: saved.append(fig))
    plots.plot_curve(tmp_path / "c.png", 200, [-1500.0, -900.0], [[400, -800.0]], "t")
    learn._plot([{"seed": 0, "eval_curve": [[1000, -1200.0], [2000, -180.0]]}],
                tmp_path / "l.png")
    assert len(saved) == 2
    for fig in saved:
        legend = [t.get_text() for t in fig.axes[0].get_legend().get_texts()]
        assert "-200: swing-up solved" in legend, legend
        dashed = [line for line in fig.axes[0].lines if line.get_linestyle() == "--"]
        assert [list(line.get_ydata()) for line in dashed] == [[-200.0, -200.0]]
