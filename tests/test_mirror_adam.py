"""Adam against torch.optim.Adam for ten steps."""

import numpy as np
import pytest
import torch

from microrl_host.mirror.adam import Adam
from microrl_host.mirror.rng import Rng


@pytest.mark.parametrize("lr, betas, eps", [(1e-3, (0.9, 0.999), 1e-8), (3e-2, (0.5, 0.9), 1e-4)])
def test_ten_steps_match_torch_adam(lr, betas, eps):
    rng = Rng(21)
    params = rng.normal_array(300)
    grads = np.zeros_like(params)
    adam = Adam(params, grads, lr, betas[0], betas[1], eps)
    reference = torch.nn.Parameter(torch.from_numpy(params.copy()))
    optimizer = torch.optim.Adam([reference], lr=lr, betas=betas, eps=eps)
    for step in range(10):
        g = rng.normal_array(300) * (10.0 ** (step % 3 - 1))
        g[:10] = 0.0  # zero gradients: the update must come from the moments alone
        grads[:] = g
        adam.step()
        reference.grad = torch.from_numpy(g.copy())
        optimizer.step()
        np.testing.assert_allclose(params, reference.detach().numpy(), rtol=0, atol=1e-6)
    assert adam.t == 10
    assert np.max(np.abs(params - reference.detach().numpy())) < 1e-12


def test_float32_params_stay_float32_and_mismatch_is_rejected():
    params = np.ones(5, np.float32)
    grads = np.full(5, 0.5, np.float32)
    adam = Adam(params, grads, 0.1)
    adam.step()
    assert params.dtype == np.float32
    np.testing.assert_allclose(params, 0.9, rtol=1e-6)  # first step moves by lr * sign(g)
    with pytest.raises(ValueError, match="grads_flat"):
        Adam(params, np.ones(4, np.float32), 0.1)


def test_subnormal_first_moments_are_flushed_without_changing_the_parameters(monkeypatch):
    """Zero gradients after a few steps: m decays into the subnormal range, where 0.9 x keeps it;
    the flush sets it to zero and the parameters equal those of Adam without the flush."""
    from microrl_host.mirror import adam as adam_module

    flush_every = adam_module.FLUSH_EVERY

    def run(flush_every):
        monkeypatch.setattr(adam_module, "FLUSH_EVERY", flush_every)
        params = np.linspace(-1.0, 1.0, 64, dtype=np.float32)
        grads = np.zeros_like(params)
        adam = Adam(params, grads, 1e-3)
        for step in range(1200):
            grads[:] = 1e-3 if step < 5 else 0.0
            adam.step()
        return params, adam.m

    tiny = np.finfo(np.float32).tiny
    kept_params, kept_m = run(10**9)
    assert np.count_nonzero((kept_m != 0) & (np.abs(kept_m) < tiny)) == 64  # all stuck subnormal
    params, m = run(flush_every)
    assert not m.any()
    np.testing.assert_array_equal(params, kept_params)
