r"""Decoupled diffusion in the latent space (CKMDiff Sec. IV-D, eqs. (18)-(22), Alg. 1-2; Huang et al. [48]).

The forward process attenuates the latent to zero while a Wiener process adds noise, both over
:math:`t \in [0, 1]` (eq. (18) with :math:`\mathbf f_t = \mathbf c`, :math:`\mathbf c = -\mathbf z_0`):

.. math::
    \mathbf z_t = \mathbf z_0 + t\,\mathbf c + \sqrt t\,\boldsymbol\epsilon = (1 - t)\,\mathbf z_0 + \sqrt t\,\boldsymbol\epsilon,
    \qquad q(\mathbf z_t \mid \mathbf z_0) = \mathcal N((1 - t)\,\mathbf z_0,\; t\,\mathbf I)   \quad (19)

so :math:`\mathbf z_1 \sim \mathcal N(\mathbf 0, \mathbf I)`. Going back by :math:`\Delta t` from :math:`t` to
:math:`s = t - \Delta t`, the Wiener process given its value at :math:`t` is a Brownian bridge
(:math:`\mathbf W_s \mid \mathbf W_t \sim \mathcal N(\tfrac st \mathbf W_t, \tfrac{s (t - s)}{t}\mathbf I)`), hence

.. math::
    q(\mathbf z_s \mid \mathbf z_t, \mathbf z_0) = \mathcal N\Big(\mathbf z_t - \Delta t\,\mathbf c
        - \tfrac{\Delta t}{\sqrt t}\,\boldsymbol\epsilon,\; \tfrac{\Delta t\,(t - \Delta t)}{t}\,\mathbf I\Big),

Alg. 2, line 7. (Eq. (20) prints the variance as :math:`\Delta t (1 - \Delta t) / t`; the algorithm's
:math:`\Delta t (t - \Delta t) / t` is the bridge's, which is zero at the last step so that the sampler ends on
its prediction of :math:`\mathbf z_0`. ckmsim follows the algorithm.) The network predicts
:math:`\mathbf c` and :math:`\boldsymbol\epsilon` (eq. (21)); training minimises eq. (22),
:math:`\|\mathbf c - \mathbf c_\theta\|^2 + \|\boldsymbol\epsilon - \boldsymbol\epsilon_\theta\|^2`, optionally
with RadioDiff's time weights :math:`w_c(t) = 2 e^{1 - t}`, :math:`w_\epsilon(t) = e^{\sqrt t}` (its
``ddm_const_sde.py``; the CKMDiff paper gives none).

Everything here is numpy or ``keras.ops`` on arrays of any shape ``[batch, ...]``; nothing is learned.
"""

from __future__ import annotations

from typing import Callable

import numpy as np

from ckmsim.errors import CkmsimError
from ckmsim.validation import is_whole_number

#: Loss weightings of :func:`loss_weights`: eq. (22) as printed, and RadioDiff's time weights.
LOSS_WEIGHTINGS = ("paper", "radiodiff")
#: Smallest time drawn in training (the paper's Table I-II "smallest time step" 1e-4): eps / sqrt(t) stays finite.
T_MIN = 1e-4


def forward(z0, t, eps):
    r"""``z_t = (1 - t) z0 + sqrt(t) eps`` (eq. (19)); ``t`` ``[batch]`` broadcast over the other axes."""
    t = _expand(t, z0)
    return (1.0 - t) * z0 + np.sqrt(t) * eps if isinstance(z0, np.ndarray) else _ops_forward(z0, t, eps)


def _ops_forward(z0, t, eps):
    from keras import ops

    return (1.0 - t) * z0 + ops.sqrt(t) * eps


def targets(z0, z_t, t):
    r"""What the network must predict from ``z_t``: ``(c, eps)`` with ``c = -z0`` and
    ``eps = (z_t - (1 - t) z0) / sqrt(t)`` (numpy)."""
    z0, z_t = np.asarray(z0), np.asarray(z_t)
    t = _expand(np.asarray(t, dtype=z0.dtype), z0)
    return -z0, (z_t - (1.0 - t) * z0) / np.sqrt(t)


def reverse_step(z_t, t: float, dt: float, c, eps, noise=None):
    r"""One step of Alg. 2 (line 7) from ``t`` to ``t - dt``: the mean
    ``z_t - dt c - dt / sqrt(t) eps`` plus ``sqrt(dt (t - dt) / t)`` times ``noise`` (standard normal, or none
    for the mean). numpy, any shape."""
    if not (0.0 < dt <= t <= 1.0 + 1e-9):
        raise CkmsimError(f"A reverse step needs 0 < dt <= t <= 1. Received: t={t!r}, dt={dt!r}")
    mean = np.asarray(z_t) - dt * np.asarray(c) - dt / np.sqrt(t) * np.asarray(eps)
    if noise is None:
        return mean
    return mean + np.sqrt(max(posterior_variance(t, dt), 0.0)) * np.asarray(noise)


def posterior_variance(t: float, dt: float) -> float:
    r"""Variance of :math:`q(\mathbf z_{t - \Delta t} \mid \mathbf z_t, \mathbf z_0)` per element."""
    return dt * (t - dt) / t


def sample(predict: Callable, shape: tuple, num_steps: int, rng: np.random.Generator, z1=None) -> np.ndarray:
    r"""Alg. 2: from ``z_1 ~ N(0, I)`` (or the given ``z1``) down to ``z_0`` in ``num_steps`` equal steps.

    ``predict(z_t [shape], t [batch]) -> (c, eps)`` is the network given the condition; each step draws its
    own standard-normal noise from ``rng``, so a seeded generator gives a reproducible sample. ``num_steps = 1``
    returns ``z_1 - c - eps`` from one network call: the posterior-mean estimate of :math:`\mathbf z_0`.

    Output: ``z0`` of ``shape``, float32.
    """
    if not is_whole_number(num_steps, minimum=1):
        raise CkmsimError(f"num_steps (S of Alg. 2) must be a positive integer. Received: num_steps={num_steps!r}")
    z = rng.standard_normal(shape).astype(np.float32) if z1 is None else np.asarray(z1, dtype=np.float32)
    dt = 1.0 / int(num_steps)
    batch = shape[0]
    for k in range(int(num_steps), 0, -1):
        t = k * dt
        c, eps = predict(z, np.full(batch, t, dtype=np.float32))
        noise = rng.standard_normal(shape).astype(np.float32) if k > 1 else None
        z = reverse_step(z, t, dt, c, eps, noise).astype(np.float32)
    return z


def check_weighting(weighting) -> None:
    """A :class:`CkmsimError` naming ``weighting`` unless it is one of :data:`LOSS_WEIGHTINGS`."""
    if weighting not in LOSS_WEIGHTINGS:
        raise CkmsimError(f"weighting must be one of {list(LOSS_WEIGHTINGS)}. Received: weighting={weighting!r}")


def loss_weights(t, weighting: str = "paper"):
    r"""``(w_c, w_eps)`` per example for eq. (22): ones (``"paper"``) or RadioDiff's ``2 e^(1 - t)``,
    ``e^sqrt(t)`` (``"radiodiff"``). ``t`` ``[batch]``, numpy or a tensor."""
    check_weighting(weighting)
    from keras import ops

    if weighting == "paper":
        ones = ops.ones_like(t)
        return ones, ones
    return 2.0 * ops.exp(1.0 - t), ops.exp(ops.sqrt(t))


def _expand(t, like):
    """``t`` [batch] -> [batch, 1, ..., 1] with ``like``'s rank (numpy or a tensor)."""
    if isinstance(like, np.ndarray):
        t = np.asarray(t, dtype=like.dtype)
        return t.reshape(t.shape + (1,) * (like.ndim - t.ndim))
    from keras import ops

    rank = len(like.shape)
    return ops.reshape(t, (-1,) + (1,) * (rank - 1))
