"""Compiled one-pass kernels (numba) of the mirror's elementwise steps, the numpy path's numbers.

Adam's step, Polyak averaging, TD3's smoothing noise and clipped double-Q target with its gradient,
the copies into the networks' inputs, the replay gather, the PCG32 block and the pendulum's step for
the evaluation episodes: each the numpy (or Python) code it replaces, in its order of operations
with its constants in its dtype, compiled as fused.py's kernels are (no fastmath, numpy's error
model). The callers use them when `fused.active()`; the numpy code stays as the reference.
"""

import ctypes
import ctypes.util

import numpy as np

from microrl_host.mirror import fused

_U32_TO_UNIT = 2.0**-24  # rng.py's
_PI = 3.141592653589793  # math.pi
_TWO_PI = 2.0 * _PI

if fused.COMPILED:
    import llvmlite.binding as llvm
    from numba import njit, types

    from microrl_host.mirror.fused import cast_like

    # libm's sin, cos, pow and fmod, which CPython's math, ** and % call, under names of their
    # own: under their usual names the compiler would treat them as builtins (pow(x, 2) -> x * x)
    _LIBM = ctypes.CDLL(ctypes.util.find_library("m"))
    for _name in ("sin", "cos", "pow", "fmod"):
        llvm.add_symbol("microrl_libm_" + _name,
                        ctypes.cast(getattr(_LIBM, _name), ctypes.c_void_p).value)
    _F = types.float64
    _sin = types.ExternalFunction("microrl_libm_sin", _F(_F))
    _cos = types.ExternalFunction("microrl_libm_cos", _F(_F))
    _pow = types.ExternalFunction("microrl_libm_pow", _F(_F, _F))
    _fmod = types.ExternalFunction("microrl_libm_fmod", _F(_F, _F))

    # ---- optimiser, targets, TD3's batch arithmetic -----------------------------------------

    @njit(cache=True, error_model="numpy")
    def adam_step(params, grads, m, v, b1, b2, gain_m, gain_v, flush, tiny, bc2_sqrt, eps,
                  step_size):
        """adam.Adam.step in one pass; scalars in the dtype, `flush`: set subnormal m to 0."""
        zero = b1 - b1
        for i in range(params.shape[0]):
            g = grads[i]
            mi = m[i] * b1 + g * gain_m
            vi = v[i] * b2 + (g * g) * gain_v
            if flush and abs(mi) < tiny:
                mi = zero
            m[i] = mi
            v[i] = vi
            d = np.sqrt(vi) / bc2_sqrt + eps
            params[i] = params[i] - (mi / d) * step_size

    @njit(cache=True, error_model="numpy")
    def polyak(target, online, keep, tau):
        """target = target * (1 - tau) + online * tau, `keep` = 1 - tau, both in the dtype."""
        for i in range(target.shape[0]):
            target[i] = target[i] * keep + online[i] * tau

    @njit(cache=True, error_model="numpy")
    def critic_target(q, q_target, reward, done, gamma, scale, y, dq):
        """y = r + gamma (1 - done) min(Q1', Q2') (np.minimum: NaN wins) and dq = (Q - y) scale."""
        one = cast_like(1.0, gamma)
        for r in range(y.shape[0]):
            a, b = q_target[0, r, 0], q_target[1, r, 0]
            low = a if (a < b or np.isnan(a)) else b
            yr = low * ((one - done[r, 0]) * gamma) + reward[r, 0]
            y[r, 0] = yr
            dq[0, r, 0] = (q[0, r, 0] - yr) * scale
            dq[1, r, 0] = (q[1, r, 0] - yr) * scale

    @njit(cache=True, error_model="numpy")
    def smoothing_noise(normals, noise, bound, out):
        """out = clip(normals * noise, -bound, bound), the product in float64 (numpy's loop for a
        float64 array and a Python float) rounded to out's dtype; `bound` in out's dtype."""
        k = 0
        for r in range(out.shape[0]):
            for c in range(out.shape[1]):
                out[r, c] = _clip(cast_like(normals[k] * noise, bound), bound)
                k += 1

    @njit(cache=True, error_model="numpy")
    def smoothed_actions(actions, smoothing, out, bound):
        """smoothing = clip(actions + smoothing, -bound, bound), copied to out too."""
        for r in range(out.shape[0]):
            for c in range(out.shape[1]):
                x = _clip(actions[r, c] + smoothing[r, c], bound)
                smoothing[r, c] = x
                out[r, c] = x

    @njit(cache=True, error_model="numpy")
    def _clip(x, bound):
        """np.maximum(x, -bound) then np.minimum(x, bound): a NaN wins, a tie gives the second
        operand (what numpy's loops give, signed zeros included)."""
        low = -bound
        x = x if (x > low or np.isnan(x)) else low
        return x if (x < bound or np.isnan(x)) else bound

    @njit(cache=True, error_model="numpy")
    def copy(src, dst):
        """dst[...] = src for 2D arrays of one shape (float32 to the dtype is exact)."""
        for r in range(dst.shape[0]):
            for c in range(dst.shape[1]):
                dst[r, c] = src[r, c]

    @njit(cache=True, error_model="numpy")
    def copy2(src, first, second):
        """first[...] = src and second[...] = src."""
        for r in range(src.shape[0]):
            for c in range(src.shape[1]):
                first[r, c] = src[r, c]
                second[r, c] = src[r, c]

    @njit(cache=True, error_model="numpy")
    def critic_inputs(obs_action, online_in, next_obs, next_obs_in, actor_target_in, normals,
                      noise, bound, smoothing):
        """The critic update's inputs in one call: the batch's (s, a) to the online critics,
        s' to the target critics and the target actor, and the smoothing noise."""
        copy(obs_action, online_in)
        copy2(next_obs, next_obs_in, actor_target_in)
        smoothing_noise(normals, noise, bound, smoothing)

    @njit(cache=True, error_model="numpy")
    def take_rows(table32, idx, rows):
        """rows[k] = table32[idx[k]] (np.take along axis 0)."""
        for k in range(idx.shape[0]):
            j = idx[k]
            if j < 0 or j >= table32.shape[0]:
                raise IndexError("replay index out of range")
            for c in range(table32.shape[1]):
                rows[k, c] = table32[j, c]

    @njit(cache=True, error_model="numpy")
    def pcg_block(jump_a, jump_c, start, u32, uniform, log_arg, cos_arg):
        """rng.Rng's block: outputs k = 0 .. len(u32) - 1 of PCG32 from state `start` (uint64)
        with the jump tables, XSH-RR, the uniforms (top 24 bits times 2**-24), and for the normals
        1 - u[k] and 2 pi u[k + 1] (numpy then takes their log and cos)."""
        s18, s27, s32, s59, s8 = (np.uint64(18), np.uint64(27), np.uint64(32), np.uint64(59),
                                  np.uint64(8))
        mask32 = np.uint64(0xFFFFFFFF)
        for k in range(u32.shape[0]):
            old = jump_a[k] * start + jump_c[k]
            x = (((old >> s18) ^ old) >> s27) & mask32
            x = ((x | (x << s32)) >> (old >> s59)) & mask32
            u32[k] = x
            uniform[k] = np.float64(x >> s8) * _U32_TO_UNIT
        for k in range(log_arg.shape[0]):
            log_arg[k] = 1.0 - uniform[k]
            cos_arg[k] = _TWO_PI * uniform[k + 1]

    @njit(cache=True, error_model="numpy")
    def box_muller(log, cos, out):
        """out = sqrt(-2 log) cos, numpy's log and cos already taken."""
        for k in range(out.shape[0]):
            out[k] = np.sqrt(-2.0 * log[k]) * cos[k]

    @njit(cache=True, error_model="numpy")
    def below(u32, n, out):
        """out = (u32 * n) >> 32 (rng.Rng.below_array), n < 2**32."""
        s32 = np.uint64(32)
        for k in range(out.shape[0]):
            out[k] = np.int64((u32[k] * n) >> s32)

    @njit(cache=True, error_model="numpy")
    def _py_clip(x, low, high):
        """min(max(x, low), high) with Python's min and max (the first operand on ties)."""
        x = low if low > x else x
        return high if high < x else x

    @njit(cache=True, error_model="numpy")
    def _py_angle_normalize(x):
        """pendulum.angle_normalize with CPython's float %: fmod, then the divisor's sign."""
        two_pi = 2.0 * _PI
        mod = _fmod(x + _PI, two_pi)
        if mod != 0.0:
            if (two_pi < 0) != (mod < 0):
                mod += two_pi
        else:
            mod = 0.0  # copysign(0, 2 pi)
        return mod - _PI

    @njit(cache=True, error_model="numpy")
    def pendulum_steps(state, actions, obs, returns, constants):
        """Pendulum.step for every row: state (n, 2) [th, thdot] float64, actions (n, act), obs
        (n, 3) written in its dtype, returns (n,) float64 += reward. `constants`: max torque,
        max speed, dt, the gravity and torque terms (pendulum.py's, as float64)."""
        max_torque, max_speed, dt, gravity_term, torque_term = (
            constants[0], constants[1], constants[2], constants[3], constants[4])
        for k in range(state.shape[0]):
            u = _py_clip(np.float64(actions[k, 0]) * max_torque, -max_torque, max_torque)
            th, thdot = state[k, 0], state[k, 1]
            cost = (_pow(_py_angle_normalize(th), 2.0) + 0.1 * _pow(thdot, 2.0)
                    + 0.001 * _pow(u, 2.0))
            thdot = thdot + (gravity_term * _sin(th) + torque_term * u) * dt
            thdot = _py_clip(thdot, -max_speed, max_speed)
            th = th + thdot * dt
            state[k, 0], state[k, 1] = th, thdot
            obs[k, 0] = _cos(th)
            obs[k, 1] = _sin(th)
            obs[k, 2] = thdot
            returns[k] = returns[k] + -cost


