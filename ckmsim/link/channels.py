"""True MIMO-OFDM channels of UEs from their ray-traced paths.

:func:`ofdm_channels` gives the BS-side channel vector of a single-antenna UE (beam selection, SCM precoding);
:func:`mimo_ofdm_channels` the downlink matrix between a BS and a UE array (CSI-based beamforming, LAD-CKM
eqs. (9)-(11)). Both apply the arrays to the path angles as Sionna RT's synthetic arrays do, with the element
layout of :class:`~ckmsim.maps.antenna_array.AntennaArray` (ULA or UPA), on the same subcarriers.
:func:`path_set` and :func:`random_path_set` make path sets from plain arrays, for channels without ray tracing.
"""

from __future__ import annotations

import numpy as np
import xarray as xr

from ckmsim.errors import CkmsimError
from ckmsim.link.budget import LinkBudget
from ckmsim.maps.antenna_array import AntennaArray


def ofdm_channels(paths: xr.Dataset, array: AntennaArray, budget: LinkBudget,
                  ues_per_batch: int = 256) -> np.ndarray:
    r"""Frequency response of every UE's channel at the BS array, with Sionna's ``cir_to_ofdm_channel``.

    Each path's gain is spread over the array with the steering vector of its BS-side angle,
    :math:`h_n(f) = \sum_\ell a_\ell\, e^{-j 2\pi f \tau_\ell}\, [\mathbf{a}(\mathrm{az}_\ell, \mathrm{el}_\ell)]_n`,
    exactly what Sionna RT's synthetic arrays do. :math:`\mathbf{h}` is the uplink channel (the vector of
    E-SRResNet eq. (1)); a downlink precoder :math:`\mathbf{f}^*` sees the same gain
    :math:`|\mathbf{f}^\mathsf{H}\mathbf{h}|^2` by reciprocity.

    Input
    -----
    paths : path set (see :mod:`ckmsim.raytrace.paths`)
    array : AntennaArray at the BS (ULA or UPA)
    budget : LinkBudget (bandwidth and number of subcarriers)
    ues_per_batch : int
        UEs per Sionna call, to bound memory.

    Output
    ------
    h : [num_ue, num_subcarriers, num_ant], complex64
    """
    import tensorflow as tf
    from sionna.phy.channel import cir_to_ofdm_channel, subcarrier_frequencies

    frequencies = subcarrier_frequencies(budget.num_subcarriers, budget.subcarrier_spacing_hz, precision="single")
    valid = paths["valid"].values
    gains = np.where(valid, paths["a"].values, 0.0)
    # Invalid slots have NaN angles/delays; zero gain alone would still give 0 * NaN = NaN.
    az = np.where(valid, paths["dep_az_deg"].values, 0.0)
    el = np.where(valid, paths["dep_el_deg"].values, 0.0)
    delays = np.where(valid, paths["delay_s"].values, 0.0)
    out = []
    for start in range(0, gains.shape[0], ues_per_batch):
        part = slice(start, start + ues_per_batch)
        # [batch, num_paths, num_ant]
        per_antenna = gains[part, :, None] * array.steering_vectors(az[part], el[part])
        # [batch, num_rx=1, num_rx_ant=1, num_tx=1, num_tx_ant, num_paths, num_time_steps=1]
        a = np.transpose(per_antenna, (0, 2, 1))[:, None, None, None, :, :, None]
        # [batch, num_rx=1, num_tx=1, num_paths]
        tau = delays[part][:, None, None, :]
        h = cir_to_ofdm_channel(frequencies, tf.constant(a.astype(np.complex64)),
                                tf.constant(tau.astype(np.float32)))
        # [batch, 1, 1, 1, num_ant, 1, num_subcarriers] -> [batch, num_subcarriers, num_ant]
        out.append(np.transpose(h.numpy()[:, 0, 0, 0, :, 0, :], (0, 2, 1)))
    if not out:
        return np.zeros((0, budget.num_subcarriers, array.num_ant), dtype=np.complex64)
    return np.concatenate(out).astype(np.complex64)


def subcarrier_frequencies_hz(budget: LinkBudget) -> np.ndarray:
    """``[num_subcarriers]`` baseband subcarrier frequencies [Hz], as Sionna's ``subcarrier_frequencies``:
    index ``-K/2 .. K/2-1`` (even ``K``) or ``-(K-1)/2 .. (K-1)/2`` (odd ``K``) times the spacing."""
    k = np.arange(budget.num_subcarriers) - budget.num_subcarriers // 2
    return k * budget.subcarrier_spacing_hz


def mimo_ofdm_channels(paths: xr.Dataset, bs_array: AntennaArray, ue_array: AntennaArray,
                       budget: LinkBudget) -> np.ndarray:
    r"""Downlink frequency response :math:`\mathbf{H}^\mathrm{D}(f)` between the BS and the UE arrays.

    The matrix of LAD-CKM eq. (9), from :func:`ckmsim.raytrace.csi.mimo_ofdm_channel` on the budget's
    subcarriers. With a single-antenna UE its one row is :func:`ofdm_channels`' vector: the uplink vector
    of the same carrier, by reciprocity.

    Input
    -----
    paths : path set with departure (BS) and arrival (UE) angles (see :mod:`ckmsim.raytrace.paths`)
    bs_array, ue_array : AntennaArray
    budget : LinkBudget (bandwidth and number of subcarriers)

    Output
    ------
    h : [num_ue, num_subcarriers, num_ue_ant, num_bs_ant], complex64
    """
    from ckmsim.raytrace.csi import mimo_ofdm_channel

    return mimo_ofdm_channel(paths, bs_array, ue_array, subcarrier_frequencies_hz(budget))


def path_set(a: np.ndarray, delay_s: np.ndarray, dep_az_deg: np.ndarray, dep_el_deg: np.ndarray,
             arr_az_deg: np.ndarray | None = None, arr_el_deg: np.ndarray | None = None,
             valid: np.ndarray | None = None, ue_row: np.ndarray | None = None,
             ue_col: np.ndarray | None = None) -> xr.Dataset:
    """A path set (layout of :mod:`ckmsim.raytrace.paths`) from plain arrays, for channels without ray tracing.

    Input
    -----
    a : [num_ue, num_paths], complex — baseband path gains
    delay_s, dep_az_deg, dep_el_deg : [num_ue, num_paths], float — delays [s], departure angles at the BS [deg]
    arr_az_deg, arr_el_deg : [num_ue, num_paths], float, optional — arrival angles at the UE [deg] (0 if absent)
    valid : [num_ue, num_paths], bool, optional — all True if absent; invalid slots get zero gain, NaN angles
    ue_row, ue_col : [num_ue], int, optional — map cell of each UE (for the map scorers)

    Output
    ------
    paths : xarray.Dataset with dims ``(ue, path)``
    """
    a = np.asarray(a)
    shape = a.shape
    if a.ndim != 2:
        raise CkmsimError(f"path gains must be [num_ue, num_paths]. Received: a.shape={shape}")
    valid = np.ones(shape, dtype=bool) if valid is None else np.broadcast_to(np.asarray(valid, dtype=bool), shape)
    zeros = np.zeros(shape)
    values = {"delay_s": delay_s, "dep_az_deg": dep_az_deg, "dep_el_deg": dep_el_deg,
              "arr_az_deg": zeros if arr_az_deg is None else arr_az_deg,
              "arr_el_deg": zeros if arr_el_deg is None else arr_el_deg}
    dims = ("ue", "path")
    data = {"a": (dims, np.where(valid, a, 0.0).astype(np.complex64))}
    for name, value in values.items():
        value = np.asarray(value, dtype=np.float64)
        if value.shape != shape:
            raise CkmsimError(f"{name} must have the shape of the path gains {shape}. "
                              f"Received: {name}.shape={value.shape}")
        data[name] = (dims, np.where(valid, value, np.nan))
    data["los"] = (dims, np.zeros(shape, dtype=bool))
    data["valid"] = (dims, valid.copy())
    coords = {}
    if ue_row is not None:
        coords["ue_row"] = ("ue", np.asarray(ue_row))
    if ue_col is not None:
        coords["ue_col"] = ("ue", np.asarray(ue_col))
    return xr.Dataset(data, coords=coords)


def random_path_set(num_ue: int, num_paths: int, seed=0, gain_db_range=(-110.0, -80.0),
                    delay_s_range=(1e-7, 1e-6), el_deg_range=(-30.0, 10.0)) -> xr.Dataset:
    """Random multipath path set: independent paths with uniform gains [dB], delays, azimuths over the full
    circle, elevations in ``el_deg_range`` (both link ends) and uniform phases; UEs on the cells of a
    ``ceil(sqrt(num_ue))``-wide grid, row by row.

    Input: num_ue, num_paths : int; seed : int or ``np.random.Generator``; ranges as ``(low, high)``.
    Output: path set (see :func:`path_set`).
    """
    rng = seed if isinstance(seed, np.random.Generator) else np.random.default_rng(seed)
    shape = (int(num_ue), int(num_paths))
    amplitude = 10.0 ** (rng.uniform(*gain_db_range, size=shape) / 20.0)
    a = amplitude * np.exp(2j * np.pi * rng.random(shape))
    width = max(1, int(np.ceil(np.sqrt(num_ue))))
    return path_set(a, rng.uniform(*delay_s_range, size=shape),
                    rng.uniform(-180.0, 180.0, size=shape), rng.uniform(*el_deg_range, size=shape),
                    rng.uniform(-180.0, 180.0, size=shape), rng.uniform(*el_deg_range, size=shape),
                    ue_row=np.arange(num_ue) // width, ue_col=np.arange(num_ue) % width)
