"""True MIMO-OFDM channels of UEs from their ray-traced paths."""

from __future__ import annotations

import numpy as np
import xarray as xr

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
    array : AntennaArray at the BS
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
