"""Summaries of per-UE achievable rates: how well a predicted map serves users once it drives the link.

The link layer (:mod:`ckmsim.link`) returns one spectral efficiency per UE, evaluated on the true channel with
the beam / precoder chosen from a map; these functions reduce such a vector to the numbers reported in
``results.json`` and to an empirical CDF for plots.
"""

from __future__ import annotations

import numpy as np

from ckmsim.errors import CkmsimError

#: Percentile reported as the cell-edge rate (the usual "5 % worst UE" figure).
EDGE_PERCENTILE = 5.0


def _checked_rates(values: np.ndarray, name: str) -> np.ndarray:
    """``values`` as a float64 ``[num_ue]`` vector; raise if not 1-D, empty, NaN/inf or negative."""
    values = np.asarray(values, dtype=np.float64)
    if values.ndim != 1:
        raise CkmsimError(f"{name} must be a 1-D array [num_ue]. Received: {name}.shape={values.shape}")
    if values.size == 0:
        raise CkmsimError(f"{name} is empty")
    num_bad = int(np.count_nonzero(~np.isfinite(values)))
    if num_bad:
        raise CkmsimError(f"{name} has {num_bad} NaN/inf value(s)")
    num_negative = int(np.count_nonzero(values < 0))
    if num_negative:
        raise CkmsimError(f"{name} has {num_negative} negative value(s); rates are >= 0. "
                          f"Received: min {name}={values.min()}")
    return values


def rate_summary(rates_bps_hz: np.ndarray, perfect_rates_bps_hz: np.ndarray | None = None) -> dict[str, float]:
    r"""Mean, cell-edge and median rate of the UEs, and the share of the perfect-CSI rate kept.

    .. math::
        \text{fraction of perfect CSI} = \frac{\frac{1}{K}\sum_k R_k}{\frac{1}{K}\sum_k R_k^\star}

    Input
    -----
    rates_bps_hz : [num_ue], float
        Achievable rate of each UE with the map-driven link [bit/s/Hz].
    perfect_rates_bps_hz : [num_ue], float, optional
        Rate of the same UEs with perfect CSI [bit/s/Hz].

    Output
    ------
    summary : dict[str, float]
        ``mean_bps_hz``, ``p5_bps_hz`` (5th percentile, numpy's linear interpolation), ``median_bps_hz``, and
        ``fraction_of_perfect_csi`` (ratio of the means) when ``perfect_rates_bps_hz`` is given.
    """
    rates = _checked_rates(rates_bps_hz, "rates_bps_hz")
    summary = {"mean_bps_hz": float(np.mean(rates)),
               "p5_bps_hz": float(np.percentile(rates, EDGE_PERCENTILE)),
               "median_bps_hz": float(np.median(rates))}
    if perfect_rates_bps_hz is not None:
        perfect = _checked_rates(perfect_rates_bps_hz, "perfect_rates_bps_hz")
        if perfect.shape != rates.shape:
            raise CkmsimError(f"perfect_rates_bps_hz has {perfect.size} UEs, but rates_bps_hz has {rates.size}")
        perfect_mean = float(np.mean(perfect))
        if perfect_mean == 0.0:
            raise CkmsimError("perfect_rates_bps_hz are all 0; the fraction of perfect-CSI rate is undefined")
        # Ratio of means, not mean of ratios: UEs with near-zero perfect-CSI rate would dominate the latter
        summary["fraction_of_perfect_csi"] = summary["mean_bps_hz"] / perfect_mean
    return summary


#: Rates [bit/s/Hz] under which a UE counts as (near) unserved in :func:`share_below`: 0.1 bit/s/Hz is an SNR
#: of -11.4 dB after beamforming, 0.5 bit/s/Hz -3.8 dB.
NEAR_ZERO_BPS_HZ = (0.1, 0.5)


def share_below(rates_bps_hz: np.ndarray, thresholds_bps_hz=NEAR_ZERO_BPS_HZ) -> dict[str, float]:
    """Share of the UEs whose rate is below each threshold: how many a cell-edge figure (5 % rate) sits on.

    Input
    -----
    rates_bps_hz : [num_ue], float
        Achievable rate of each UE [bit/s/Hz].
    thresholds_bps_hz : sequence of float
        Thresholds [bit/s/Hz].

    Output
    ------
    shares : dict[str, float]
        ``f"{threshold:g}"`` -> share of the UEs with ``rate < threshold``, in [0, 1].
    """
    rates = _checked_rates(rates_bps_hz, "rates_bps_hz")
    return {f"{threshold:g}": float(np.mean(rates < threshold)) for threshold in thresholds_bps_hz}


def empirical_cdf(values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Empirical CDF of a sample, for step plots: ``P(X <= sorted_values[k]) = (k + 1) / n``.

    Input
    -----
    values : [n], float
        Sample (e.g. per-UE rates [bit/s/Hz]); no NaN.

    Output
    ------
    sorted_values : [n], float64
        The sample in ascending order.
    probabilities : [n], float64
        ``(1, 2, ..., n) / n``.
    """
    values = np.asarray(values, dtype=np.float64)
    if values.ndim != 1 or values.size == 0:
        raise CkmsimError(f"values must be a non-empty 1-D array. Received: values.shape={values.shape}")
    num_nan = int(np.count_nonzero(np.isnan(values)))
    if num_nan:
        raise CkmsimError(f"values has {num_nan} NaN value(s)")
    return np.sort(values), np.arange(1, values.size + 1, dtype=np.float64) / values.size
