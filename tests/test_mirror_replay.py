"""Replay buffer: float32 rows, ring overwrite, sampling order, errors."""

import numpy as np
import pytest

from microrl_host.mirror.replay import ReplayBuffer
from microrl_host.mirror.rng import Rng


def _fill(buffer, count, start=0):
    for i in range(start, start + count):
        buffer.add([i, i + 0.1, i + 0.2], 0.3 + i, -float(i), [i + 1, i + 1.1, i + 1.2], 0.0)


def test_rows_are_float32_and_ring_overwrites_oldest():
    buffer = ReplayBuffer(5)
    _fill(buffer, 3)
    assert buffer.size == 3
    _fill(buffer, 4, start=3)
    assert buffer.size == 5
    obs, action, reward, next_obs, done = buffer.sample(Rng(0), 5)
    # Rows 0 and 1 were overwritten by 5 and 6.
    assert set(reward[:, 0].tolist()) <= {-2.0, -3.0, -4.0, -5.0, -6.0}
    buffer2 = ReplayBuffer(1)
    buffer2.add([0.1, 0.2, 0.3], 0.7, 1e-9, [0, 0, 0], 1.0)
    obs, action, reward, next_obs, done = buffer2.sample(Rng(0), 1)
    assert obs.dtype == np.float64
    assert obs[0].tolist() == np.array([0.1, 0.2, 0.3], np.float32).astype(np.float64).tolist()
    assert action[0, 0] == float(np.float32(0.7))
    assert done[0, 0] == 1.0


def test_sample_uses_below_draws_in_order():
    buffer = ReplayBuffer(50, dtype=np.float32)
    _fill(buffer, 37)
    rng = Rng(4)
    copy = Rng(4)
    obs, action, reward, next_obs, done = buffer.sample(rng, 20)
    expected = [copy.below(37) for _ in range(20)]
    assert (-reward[:, 0]).astype(int).tolist() == expected
    assert obs.dtype == np.float32
    np.testing.assert_array_equal(buffer.obs_action[:, :3], obs)
    np.testing.assert_array_equal(buffer.obs_action[:, 3:], action)
    np.testing.assert_array_equal(next_obs[:, 0], obs[:, 0] + 1)
    assert rng.state == copy.state


def test_errors_name_capacity_and_batch():
    with pytest.raises(ValueError, match="capacity"):
        ReplayBuffer(0)
    buffer = ReplayBuffer(10)
    with pytest.raises(ValueError, match="empty"):
        buffer.sample(Rng(0), 4)
    _fill(buffer, 2)
    with pytest.raises(ValueError, match="batch"):
        buffer.sample(Rng(0), 11)
    with pytest.raises(ValueError, match="batch"):
        buffer.sample(Rng(0), 0)
