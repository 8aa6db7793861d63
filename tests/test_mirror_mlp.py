"""MLP: initialisation order, gradients against finite differences and torch autograd, errors."""

import math

import numpy as np
import pytest
import torch

from microrl_host.mirror.mlp import MLP, parameter_count
from microrl_host.mirror.rng import Rng
from microrl_host.mirror.twin import TwinMLP, TwinPairs
from td3_reference import build_network

SIZES = (4, 7, 5, 2)


def _batch(n, columns, seed):
    return Rng(seed, 3).normal_array(n * columns).reshape(n, columns)


def _loss_and_grads(net, x, dy):
    """L = sum(y * dy); returns L, dL/dparams (flat copy), dL/dx."""
    n = x.shape[0]
    y = net.forward(x, n)
    loss = float(np.sum(y * dy))
    dx = net.backward(dy, n).copy()
    return loss, net.grads.copy(), dx


def test_init_draws_layer_by_layer_w_then_b_row_major():
    net = MLP(SIZES, "linear", 4, Rng(7))
    rng = Rng(7)
    for fan_in, fan_out in zip(SIZES[:-1], SIZES[1:]):
        bound = 1.0 / math.sqrt(fan_in)
        w = [[bound * (2.0 * rng.uniform() - 1.0) for _ in range(fan_out)] for _ in range(fan_in)]
        b = [bound * (2.0 * rng.uniform() - 1.0) for _ in range(fan_out)]
        k = SIZES.index(fan_in)
        assert net.weights[k].tolist() == w
        assert net.biases[k].tolist() == [b]
    assert net.params.shape == (parameter_count(SIZES),)
    assert np.shares_memory(net.weights[1], net.params)


@pytest.mark.parametrize("activation", ["tanh", "linear"])
def test_gradients_match_central_finite_differences(activation):
    net = MLP(SIZES, activation, 8, Rng(1))
    x = _batch(6, SIZES[0], 2)
    dy = _batch(6, SIZES[-1], 3)
    _, grads, dx = _loss_and_grads(net, x, dy)
    h = 1e-6
    numeric = np.zeros_like(grads)
    for i in range(net.params.shape[0]):
        keep = net.params[i]
        net.params[i] = keep + h
        up = float(np.sum(net.forward(x, 6) * dy))
        net.params[i] = keep - h
        down = float(np.sum(net.forward(x, 6) * dy))
        net.params[i] = keep
        numeric[i] = (up - down) / (2 * h)
    np.testing.assert_allclose(grads, numeric, rtol=1e-6, atol=1e-6)
    numeric_dx = np.zeros_like(x)
    for idx in np.ndindex(*x.shape):
        xp, xm = x.copy(), x.copy()
        xp[idx] += h
        xm[idx] -= h
        numeric_dx[idx] = (np.sum(net.forward(xp, 6) * dy) - np.sum(net.forward(xm, 6) * dy)) / (2 * h)
    np.testing.assert_allclose(dx, numeric_dx, rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize("activation", ["tanh", "linear"])
def test_forward_and_gradients_match_torch_autograd(activation):
    sizes = (3, 64, 64, 1)
    net = MLP(sizes, activation, 100, Rng(4))
    x = _batch(100, 3, 5)
    dy = _batch(100, 1, 6)
    y = net.forward(x, 100).copy()
    dx = net.backward(dy, 100).copy()
    reference = build_network(net.get_weights(), activation)
    xt = torch.from_numpy(x.copy()).requires_grad_(True)
    yt = reference(xt)
    (yt * torch.from_numpy(dy)).sum().backward()
    np.testing.assert_allclose(y, yt.detach().numpy(), rtol=0, atol=1e-12)
    np.testing.assert_allclose(dx, xt.grad.numpy(), rtol=1e-6, atol=1e-12)
    linears = [m for m in reference if isinstance(m, torch.nn.Linear)]
    for k, linear in enumerate(linears):
        np.testing.assert_allclose(net.weight_grads[k], linear.weight.grad.numpy().T,
                                   rtol=1e-6, atol=1e-12)
        np.testing.assert_allclose(net.bias_grads[k][0], linear.bias.grad.numpy(),
                                   rtol=1e-6, atol=1e-12)


def test_backward_without_param_grads_leaves_them_and_returns_same_dx():
    net = MLP(SIZES, "tanh", 8, Rng(2))
    x = _batch(5, SIZES[0], 1)
    dy = _batch(5, SIZES[-1], 2)
    net.forward(x, 5)
    dx_full = net.backward(dy, 5).copy()
    before = net.grads.copy()
    net.forward(x * 0.5, 5)
    net.forward(x, 5)
    dx_only = net.backward(dy * 3.0, 5, param_grads=False)
    np.testing.assert_array_equal(net.grads, before)
    np.testing.assert_allclose(dx_only, 3.0 * dx_full, rtol=1e-12)


def test_float32_forward_is_close_to_float64():
    net64 = MLP((3, 64, 64, 1), "tanh", 10, Rng(3))
    net32 = MLP((3, 64, 64, 1), "tanh", 10, Rng(3), dtype=np.float32)
    assert net32.params.dtype == np.float32
    np.testing.assert_array_equal(net32.params, net64.params.astype(np.float32))
    x = _batch(10, 3, 4)
    np.testing.assert_allclose(net32.forward(x.astype(np.float32), 10), net64.forward(x, 10),
                               atol=1e-5)


def test_copy_and_polyak():
    online = MLP(SIZES, "linear", 2, Rng(1))
    target = MLP(SIZES, "linear", 2)
    assert not target.params.any()
    target.copy_from(online)
    np.testing.assert_array_equal(target.params, online.params)
    start = target.params.copy()
    online.params += 1.0
    target.polyak_from(online, 0.25)
    np.testing.assert_allclose(target.params, 0.75 * start + 0.25 * online.params, rtol=1e-15)


def test_twin_mlp_equals_two_mlps():
    flat = np.zeros(2 * parameter_count((4, 16, 16, 1)) + 5)
    grads = np.zeros_like(flat)
    rng = Rng(8)
    count = parameter_count((4, 16, 16, 1))
    first = MLP((4, 16, 16, 1), "linear", 12, rng, params=flat[5:5 + count],
                grads=grads[5:5 + count])
    second = MLP((4, 16, 16, 1), "linear", 12, rng, params=flat[5 + count:],
                 grads=grads[5 + count:])
    twin = TwinMLP(first, second)
    x = _batch(12, 4, 9)
    dy = _batch(24, 1, 10).reshape(2, 12, 1)
    q = twin.forward(x, 12).copy()
    twin.backward(dy, 12)
    twin_grads = grads.copy()
    np.testing.assert_allclose(q[0], first.forward(x, 12), rtol=1e-14, atol=1e-15)
    np.testing.assert_allclose(q[1], second.forward(x, 12), rtol=1e-14, atol=1e-15)
    first.forward(x, 12)
    first.backward(dy[0], 12)
    second.forward(x, 12)
    second.backward(dy[1], 12)
    np.testing.assert_allclose(twin_grads, grads, rtol=1e-13, atol=1e-15)
    with pytest.raises(ValueError, match="one buffer"):
        TwinMLP(MLP((4, 16, 16, 1), "linear", 12), MLP((4, 16, 16, 1), "linear", 12))


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_twin_pairs_give_the_bits_of_two_twins(dtype):
    sizes = (4, 16, 16, 1)
    count = parameter_count(sizes)
    flat = np.zeros(4 * count + 6, dtype)  # online pair, then the target pair, as TD3 lays them
    grads = np.zeros(4 * count + 6, dtype)
    rng = Rng(11)
    nets = [MLP(sizes, "linear", 12, rng, dtype, flat[3 + i * count:3 + (i + 1) * count],
                grads[3 + i * count:3 + (i + 1) * count]) for i in range(4)]
    pairs = TwinPairs(nets[0:2], nets[2:4])
    x, x_target = _batch(12, 4, 12).astype(dtype), _batch(12, 4, 13).astype(dtype)
    inputs = pairs.inputs(9)
    inputs[0] = x[:9]
    inputs[1] = x_target[:9]
    q, q_target = pairs.forward(9).copy()
    dy = _batch(18, 1, 14).reshape(2, 9, 1).astype(dtype)
    pairs.online.backward(dy, 9)
    stacked_grads = grads.copy()
    for got, net, x_net in zip((q[0], q[1], q_target[0], q_target[1]), nets, (x, x, x_target,
                                                                               x_target)):
        assert np.array_equal(got, net.forward(x_net[:9], 9))
    alone = TwinMLP(nets[0], nets[1])
    assert np.array_equal(q, alone.forward(x[:9], 9))
    alone.backward(dy, 9)
    assert np.array_equal(stacked_grads, grads)
    assert np.count_nonzero(stacked_grads) > 2 * count // 2  # the gradients are not all zero
    with pytest.raises(ValueError, match="one buffer"):
        TwinPairs(nets[0:2], [MLP(sizes, "linear", 12, dtype=dtype) for _ in range(2)])


@pytest.mark.parametrize("bad", ["relu", "Tanh", None])
def test_bad_output_activation_is_named(bad):
    with pytest.raises(ValueError, match="output_activation"):
        MLP((3, 4, 1), bad, 1)


@pytest.mark.parametrize("sizes", [(3, 0, 1), (3, -4, 1), (3,), (3, 2.5, 1)])
def test_bad_sizes_are_named(sizes):
    with pytest.raises(ValueError, match="sizes"):
        MLP(sizes, "linear", 1)


def test_backward_without_input_grads_gives_the_same_param_grads():
    net = MLP((3, 64, 64, 1), "tanh", 20, Rng(6))
    x = _batch(20, 3, 7)
    dy = _batch(20, 1, 8)
    net.forward(x, 20)
    net.backward(dy, 20)
    full = net.grads.copy()
    net.grads[:] = 0.0
    assert net.backward(dy, 20, input_grads=False) is None
    np.testing.assert_array_equal(net.grads, full)
