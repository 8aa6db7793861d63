"""The int16-moment Adam step on array storage (the pure-Python and viper backends), loaded only
by a learner with ``adam_state = "int16"``: a small heap does not carry it otherwise."""

from math import ceil as _ceil, sqrt as _sqrt

from .kernels_py import ROUND_UP_SLACK


def adam16(p, g, qm, qv, scales, k, step_size, beta1, beta2, eps, inv_sqrt_bc2):
    """Adam on int16 moments: qm codes m / s_m, qv codes sqrt(v) / s_v, (s_m, s_v) is row k of
    ``scales``. Dequantize, update, step p, then requantize with the new largest values."""
    pd, gd, md, vd, sd = p[0], g[0], qm[0], qv[0], scales[0]
    c1 = 1.0 - beta1
    c2 = 1.0 - beta2
    sm = sd[2 * k]
    sv = sd[2 * k + 1]
    top_m = 0.0
    top_v = 0.0
    for i in range(len(pd)):
        gi = gd[i]
        mi = beta1 * (md[i] * sm) + c1 * gi
        ri = vd[i] * sv
        ri = _sqrt(beta2 * (ri * ri) + c2 * (gi * gi))
        pd[i] -= step_size * (mi / (ri * inv_sqrt_bc2 + eps))
        a = abs(mi)
        if a > top_m:
            top_m = a
        if ri > top_v:
            top_v = ri
    new_sm = top_m / 32767.0
    new_sv = top_v / 32767.0
    for i in range(len(pd)):  # the same arithmetic again, now coding with the new scales
        gi = gd[i]
        mi = beta1 * (md[i] * sm) + c1 * gi
        ri = vd[i] * sv
        ri = _sqrt(beta2 * (ri * ri) + c2 * (gi * gi))
        md[i] = round(mi / new_sm) if new_sm > 0.0 else 0
        vd[i] = min(_ceil(ri / new_sv - ROUND_UP_SLACK), 32767) if new_sv > 0.0 else 0
    sd[2 * k] = new_sm
    sd[2 * k + 1] = new_sv
