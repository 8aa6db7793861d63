"""The compiled kernels (mirror/fused.py) against the numpy path they replace: equal to the bit."""

import numpy as np
import pytest

from microrl_host.mirror import fused, fused_steps
from microrl_host.mirror.config import TD3Config
from microrl_host.mirror.mlp import MLP
from microrl_host.mirror.rng import Rng
from microrl_host.mirror.train import train
from microrl_host.mirror.twin import TwinMLP


def _both(build):
    """(compiled, numpy) objects from `build()`."""
    fast = build()
    with fused.numpy_path():
        reference = build()
    return fast, reference


def test_the_compiled_path_is_active_after_setup():
    assert fused.active()
    with fused.numpy_path():
        assert not fused.active()
    assert fused.active()


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("sizes, activation", [((3, 64, 64, 1), "tanh"), ((4, 64, 64, 1), "linear"),
                                               ((3, 16, 2), "tanh"), ((5, 40, 30, 3), "linear")])
@pytest.mark.parametrize("n", [1, 2, 10, 100])
def test_mlp_forward_and_backward_are_the_numpy_path_bit_for_bit(dtype, sizes, activation, n):
    # n = 1 and single outputs take numpy's dot, gemv and plain-loop branches; n = 100 its gemm
    fast, reference = _both(lambda: MLP(sizes, activation, 100, Rng(1), dtype))
    assert fast._fused and not reference._fused
    data = np.random.default_rng(n)
    x = data.normal(size=(n, sizes[0])).astype(dtype)
    dy = data.normal(size=(n, sizes[-1])).astype(dtype)
    outputs = [net.forward(x, n).copy() for net in (fast, reference)]
    assert outputs[0].dtype == dtype
    np.testing.assert_array_equal(outputs[0], outputs[1])
    dx = [net.backward(dy, n).copy() for net in (fast, reference)]
    np.testing.assert_array_equal(dx[0], dx[1])
    np.testing.assert_array_equal(fast.grads, reference.grads)
    assert np.count_nonzero(fast.grads) > 0
    assert fast.backward(dy, n, param_grads=False, input_grads=False) is None


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_twin_backward_is_the_numpy_path_bit_for_bit(dtype):
    def build():
        params = np.zeros(2 * 4545, dtype)
        grads = np.zeros_like(params)
        nets = [MLP((4, 64, 64, 1), "linear", 50, Rng(k), dtype, params[k * 4545:(k + 1) * 4545],
                    grads[k * 4545:(k + 1) * 4545]) for k in range(2)]
        return TwinMLP(*nets), grads

    (fast, fast_grads), (reference, reference_grads) = _both(build)
    x = np.random.default_rng(0).normal(size=(50, 4)).astype(dtype)
    dy = np.random.default_rng(1).normal(size=(2, 50, 1)).astype(dtype)
    np.testing.assert_array_equal(fast.forward(x, 50), reference.forward(x, 50))
    fast.backward(dy, 50)
    reference.backward(dy, 50)
    np.testing.assert_array_equal(fast_grads, reference_grads)
    assert np.count_nonzero(fast_grads) > fast_grads.size // 4


def test_block_draws_are_the_numpy_path_bit_for_bit():
    fast, reference = _both(lambda: Rng(7, 3))
    for _ in range(60):  # several blocks of 4096 outputs
        for name, args in (("normal_array", (150,)), ("below_array", (100, 12345)),
                           ("uniform_array", (7,)), ("u32_array", (33,))):
            got, want = getattr(fast, name)(*args), getattr(reference, name)(*args)
            assert got.dtype == want.dtype
            np.testing.assert_array_equal(got, want)
        assert fast.normal() == reference.normal()
    assert fast.state == reference.state


CASES = {
    "float replay": {},
    "compressed prioritized": {"replay": "compressed", "prioritized": True},
    "int16 adam": {"adam_state": "int16"},
    "servo": {"env": "servo"},
}


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("case", sorted(CASES))
def test_td3_training_is_the_numpy_path_bit_for_bit(case, dtype):
    """A few hundred updates (critics, actor, targets, replay, draws, evaluation) both ways."""
    config = TD3Config(seed=4, total_steps=700, learning_starts=300, buffer_capacity=500,
                       eval_every=350, eval_episodes=2, episode_steps=100, **CASES[case])
    fast, reference = _both(lambda: train(config, dtype))
    agent, reference_agent = fast["agent"], reference["agent"]
    assert agent._fused is not None and reference_agent._fused is None
    assert agent.critic_updates == 400
    np.testing.assert_array_equal(agent.params, reference_agent.params)
    np.testing.assert_array_equal(agent.target_params, reference_agent.target_params)
    np.testing.assert_array_equal(agent.critic_optimizer.m, reference_agent.critic_optimizer.m)
    assert fast["episode_returns"] == reference["episode_returns"]
    assert fast["eval_returns"] == reference["eval_returns"]
    assert np.isfinite(fast["final_eval_return"])


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_clip_and_minimum_kernels_follow_numpy_on_nan_and_signed_zeros(dtype):
    specials = np.array([0.0, -0.0, 0.5, -0.5, 0.7, -0.7, np.nan, np.inf, -np.inf])
    normals = np.repeat(specials, specials.size)  # every value against every bound below
    for bound in (dtype(0.5), dtype(0.0)):
        got = np.zeros((normals.size, 1), dtype)
        fused_steps.smoothing_noise(normals, 1.0, bound, got)
        want = np.maximum(normals.reshape(-1, 1).astype(dtype), -bound)
        want = np.minimum(want, bound)
        np.testing.assert_array_equal(got, want)
        assert np.array_equal(np.signbit(got), np.signbit(want))
    q_target = np.stack([np.repeat(specials, specials.size), np.tile(specials, specials.size)])
    q_target = q_target.reshape(2, -1, 1).astype(dtype)
    rows = q_target.shape[1]
    y, dq = np.zeros((rows, 1), dtype), np.zeros((2, rows, 1), dtype)
    zeros = np.zeros((rows, 1), dtype)
    fused_steps.critic_target(np.zeros((2, rows, 1), dtype), q_target, zeros, zeros, dtype(1.0),
                        dtype(1.0), y, dq)
    want = np.minimum(q_target[0], q_target[1]) + zeros
    np.testing.assert_array_equal(y, want)
    assert np.array_equal(np.signbit(y), np.signbit(want))


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_pendulum_evaluation_is_the_numpy_loop_bit_for_bit(dtype):
    from microrl_host.mirror.train import evaluate

    def build():
        actor = MLP((3, 16, 1), "tanh", 100, Rng(2), dtype)
        actor.params *= 4.0  # saturating torques: the clips are taken too
        return actor

    fast, reference = _both(build)
    got, want = evaluate(fast, 10, 3), evaluate(reference, 10, 3)
    assert got == want and -2000.0 < got < 0.0


def test_a_backward_the_kernels_do_not_take_reads_the_masks_of_the_compiled_forward():
    # dy in float64 for a float32 network: numpy's mixed-precision multiply, the numpy steps
    fast, reference = _both(lambda: MLP((3, 32, 32, 1), "tanh", 20, Rng(4), np.float32))
    x = np.random.default_rng(2).normal(size=(20, 3))
    dy = np.random.default_rng(3).normal(size=(20, 1))
    np.testing.assert_array_equal(fast.forward(x, 20), reference.forward(x, 20))
    np.testing.assert_array_equal(fast.backward(dy, 20), reference.backward(dy, 20))
    np.testing.assert_array_equal(fast.grads, reference.grads)
    assert np.count_nonzero(fast.grads) > fast.grads.size // 4
