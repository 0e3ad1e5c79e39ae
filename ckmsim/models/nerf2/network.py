r"""NeRF2 (Zhao, An, Pan, Yang, "NeRF2: neural radio-frequency radiance fields", MobiCom 2023), MIMO-CSI variant,
written in Keras from its paper and the structure of its public code (which is PyTorch and fixes 2.4 GHz).

NeRF2 learns the radio field around a fixed receiver -- here the BS -- as a volume: each point of space
attenuates what passes through it and radiates a signal. For FDD CSI prediction the transmitter's position,
NeRF2's usual radiance input, is replaced by the measured uplink CSI. The pieces:

- **Rays** from every BS antenna element (its position in the array, metres, about the array centre): a grid of
  ``num_azimuth`` x ``num_elevation`` directions (NeRF2: 36 x 9), ``num_samples`` points per ray (NeRF2: 32) at
  the midpoints of equal stretches of ``max_distance_m``.
- **Positional encoding** :math:`\gamma(p) = (p, \sin 2^l \pi p, \cos 2^l \pi p)_{l < L}` with ``pe_levels``
  :math:`L` (NeRF2: 10) of each point (over ``max_distance_m``) and of each ray direction.
- **Attenuation network** (:class:`AttenuationNetwork`): ``depth`` dense layers of ``width`` (NeRF2: 8 x 256,
  ReLU) on :math:`\gamma(p)`, the input concatenated again after layer ``skip_layer`` (4), giving a
  non-negative amplitude attenuation :math:`\sigma`, a phase rate :math:`\phi` and a feature vector. It depends
  on the point only: the static scene, shared by every UE (computed once per call).
- **Radiance network**: the feature, :math:`\gamma(\text{direction})` and the uplink CSI (a dense embedding of
  the flattened image) through two dense layers of ``width / 2`` to the radiated signal of every UE antenna and
  subcarrier, amplitude (softplus) and phase.
- **Rendering**, NeRF2's amplitude/phase accumulation along each ray:
  :math:`H_n(f) = \frac1K\sum_{k}\sum_m T_{km}\,(1 - e^{-\sigma_{km}})\,a_{km}(f)\,e^{j\theta_{km}(f)}` with
  the complex transmittance :math:`T_{km} = e^{-\sum_{j<m}\sigma_{kj}}\,e^{-j\sum_{j<m}\phi_{kj}}`, for BS
  antenna :math:`n` (its own :math:`K` rays); :math:`\sigma` and :math:`\phi` are per stretch of the ray
  (optical depths), and the mean over rays replaces NeRF2's sum (both in the code, with why).

Input: ``{"uplink": [B, N_r, N_t, 2 N_c], ...}`` (other keys ignored: NeRF2 uses no downlink pilot). Output:
the downlink CSI image ``[B, N_r, N_t, 2 N_c]``.
"""

from __future__ import annotations

import ckmsim  # noqa: F401  (Mitsuba before TensorFlow / Keras)

import keras
import numpy as np
from keras import layers, ops

from ckmsim.errors import CkmsimError
from ckmsim.validation import check_positive_int, is_finite_number, is_whole_number

PACKAGE = "ckmsim"


def positional_encoding(x, levels: int):
    """NeRF's :math:`\\gamma`: ``[..., D]`` -> ``[..., D (1 + 2 L)]`` (the input, then sines and cosines)."""
    parts = [x]
    for level in range(int(levels)):
        parts += [ops.sin((2.0 ** level) * np.pi * x), ops.cos((2.0 ** level) * np.pi * x)]
    return ops.concatenate(parts, axis=-1)


def ray_directions(num_azimuth: int, num_elevation: int) -> np.ndarray:
    """``[num_azimuth * num_elevation, 3]`` unit vectors: azimuths ``k 360 / N_az`` deg, elevations at the
    midpoints of ``num_elevation`` equal bands of [-90, 90] deg (NeRF2's 36 x 9 grid by default)."""
    azimuth = np.radians(np.arange(num_azimuth) * 360.0 / num_azimuth)
    elevation = np.radians(-90.0 + (np.arange(num_elevation) + 0.5) * 180.0 / num_elevation)
    az, el = np.meshgrid(azimuth, elevation, indexing="ij")
    return np.stack([np.cos(el) * np.cos(az), np.cos(el) * np.sin(az), np.sin(el)], axis=-1).reshape(-1, 3)


@keras.saving.register_keras_serializable(package=PACKAGE)
class AttenuationNetwork(layers.Layer):
    """NeRF2's attenuation MLP: ``depth`` ReLU layers of ``width`` with the input concatenated after layer
    ``skip_layer``; outputs (sigma >= 0, phase rate, feature ``[width]``). Input ``[P, D]``."""

    def __init__(self, depth: int = 8, width: int = 256, skip_layer: int = 4, **kwargs):
        super().__init__(**kwargs)
        self.depth, self.width, self.skip_layer = int(depth), int(width), int(skip_layer)
        if not 0 < self.skip_layer < self.depth:
            raise CkmsimError(f"skip_layer must lie in 1..depth-1. Received: skip_layer={skip_layer!r}, depth={depth!r}")
        self.hidden = [layers.Dense(self.width, activation="relu", name=f"dense{i}") for i in range(self.depth)]
        self.head = layers.Dense(2, name="attenuation")

    def build(self, input_shape):
        width_in = int(input_shape[-1])
        for i, dense in enumerate(self.hidden):
            size = width_in if i == 0 else self.width + (width_in if i == self.skip_layer else 0)
            dense.build((None, size))
        self.head.build((None, self.width))

    def call(self, x):
        h = x
        for i, dense in enumerate(self.hidden):
            if i == self.skip_layer:
                h = ops.concatenate([h, x], axis=-1)
            h = dense(h)
        out = self.head(h)
        return keras.activations.softplus(out[:, 0]), out[:, 1], h

    def get_config(self):
        return {**super().get_config(), "depth": self.depth, "width": self.width, "skip_layer": self.skip_layer}


@keras.saving.register_keras_serializable(package=PACKAGE)
class NeRF2(keras.Model):
    """NeRF2, MIMO-CSI variant (module docstring).

    Parameters
    ----------
    num_subcarriers : :math:`N_c`
    antenna_positions_m : ``[N_t, 3]`` BS element positions about the array centre [m]
    num_ue_antennas : :math:`N_r`
    num_azimuth, num_elevation, num_samples, max_distance_m : the rays
    depth, width, skip_layer, pe_levels : the attenuation MLP and the positional encoding
    """

    def __init__(self, num_subcarriers: int, antenna_positions_m, num_ue_antennas: int = 1, num_azimuth: int = 36,
                 num_elevation: int = 9, num_samples: int = 32, max_distance_m: float = 100.0, depth: int = 8,
                 width: int = 256, skip_layer: int = 4, pe_levels: int = 10, **kwargs):
        super().__init__(**kwargs)
        for name, value in (("num_subcarriers", num_subcarriers), ("num_ue_antennas", num_ue_antennas),
                            ("num_azimuth", num_azimuth), ("num_elevation", num_elevation),
                            ("num_samples", num_samples), ("depth", depth), ("width", width)):
            check_positive_int(value, name)
        if not is_whole_number(pe_levels, minimum=0):
            raise CkmsimError(f"pe_levels must be an integer >= 0. Received: pe_levels={pe_levels!r}")
        if not (is_finite_number(max_distance_m) and max_distance_m > 0):
            raise CkmsimError(f"max_distance_m must be a number > 0. Received: max_distance_m={max_distance_m!r}")
        positions = np.asarray(antenna_positions_m, dtype=np.float64)
        if positions.ndim != 2 or positions.shape[1] != 3 or not np.all(np.isfinite(positions)):
            raise CkmsimError(f"antenna_positions_m must be [N_t, 3] [m]. Received shape {positions.shape}")
        self.num_subcarriers, self.num_ue_antennas = int(num_subcarriers), int(num_ue_antennas)
        self.antenna_positions_m = positions.tolist()
        self.num_bs_antennas = positions.shape[0]
        self.num_azimuth, self.num_elevation, self.num_samples = int(num_azimuth), int(num_elevation), int(num_samples)
        self.max_distance_m = float(max_distance_m)
        self.depth, self.width, self.skip_layer, self.pe_levels = int(depth), int(width), int(skip_layer), int(pe_levels)
        directions = ray_directions(self.num_azimuth, self.num_elevation)
        self.delta_m = self.max_distance_m / self.num_samples
        distances = (np.arange(self.num_samples) + 0.5) * self.delta_m
        # [N_t, K, M, 3] sample points (over the ray length) and [K, 3] directions
        points = positions[:, None, None, :] + distances[None, None, :, None] * directions[None, :, None, :]
        self.points = (points / self.max_distance_m).astype(np.float32)
        self.directions = directions.astype(np.float32)
        self.attenuation = AttenuationNetwork(self.depth, self.width, self.skip_layer, name="attenuation_network")
        half = max(1, self.width // 2)
        self.condition = layers.Dense(half, activation="relu", name="uplink_embedding")
        # radiance0 is linear: the uplink's projection is added before its ReLU (module docstring)
        self.radiance = [layers.Dense(half, name="radiance0"), layers.Dense(half, activation="relu", name="radiance1")]
        self.condition_projection = layers.Dense(half, use_bias=False, name="condition_projection")
        self.signal = layers.Dense(2 * self.num_ue_antennas * self.num_subcarriers, name="signal")

    def call(self, inputs):
        uplink = inputs["uplink"] if isinstance(inputs, dict) else inputs
        expected = (self.num_ue_antennas, self.num_bs_antennas, 2 * self.num_subcarriers)
        if tuple(uplink.shape[1:]) != expected:
            raise CkmsimError(f"NeRF2 was built for uplink images [B, {expected[0]}, {expected[1]}, {expected[2]}]. "
                              f"Received: {tuple(uplink.shape)}")
        batch = ops.shape(uplink)[0]
        nt, k, m = self.points.shape[:3]
        # the static scene: [P] attenuation and phase rate, [P, width] features, P = N_t K M
        sigma, phase_rate, feature = self.attenuation(positional_encoding(
            ops.convert_to_tensor(self.points.reshape(-1, 3)), self.pe_levels))
        view = positional_encoding(ops.convert_to_tensor(self.directions), max(1, self.pe_levels // 2))
        view = ops.reshape(ops.broadcast_to(view[None, :, None, :], (nt, k, m, view.shape[-1])), (nt * k * m, -1))
        # [B, half]: the uplink CSI in place of NeRF2's transmitter position
        condition = self.condition(ops.reshape(uplink, (batch, -1)))
        per_point = ops.concatenate([feature, view], axis=-1)
        # the first radiance layer on concat(feature, view, uplink) = W_p [feature, view] + W_u uplink: the
        # per-point part once, the per-UE part once, summed by broadcasting
        h = self.radiance[0](per_point)[None] + self.condition_projection(condition)[:, None]
        h = self.radiance[1](keras.activations.relu(h))
        signal = ops.reshape(self.signal(h), (batch, nt, k, m, self.num_ue_antennas, 2 * self.num_subcarriers))
        amplitude = keras.activations.softplus(signal[..., :self.num_subcarriers])
        phase = signal[..., self.num_subcarriers:]
        # NeRF2's accumulation along each ray: amplitude by exp(-sum sigma delta), phase by sum phi delta
        # sigma and phi per stretch of the ray (delta_m): unit-free optical depths, of order one at
        # initialisation, so that every sample of a ray starts out contributing (in metres, 1/m rates of
        # order one over stretches of ~20 m would leave only each ray's first sample)
        sigma = ops.reshape(sigma, (nt, k, m))
        phase_rate = ops.reshape(phase_rate, (nt, k, m))
        before = ops.cumsum(sigma, axis=-1) - sigma
        weight_amplitude = ops.exp(-before) * (1.0 - ops.exp(-sigma))
        weight_phase = -(ops.cumsum(phase_rate, axis=-1) - phase_rate)
        # [1, N_t, K, M, 1, 1] against [B, N_t, K, M, N_r, N_c]
        total_amplitude = weight_amplitude[None, :, :, :, None, None] * amplitude
        total_phase = weight_phase[None, :, :, :, None, None] + phase
        # the mean over the rays (NeRF2 sums them; the 1/K keeps an untrained field's output of order one, where
        # the sum of K ~ 0.7 amplitudes drove a first training of the softplus amplitudes to zero, where they
        # stayed: NMSE 1 from the second epoch on)
        real = ops.sum(total_amplitude * ops.cos(total_phase), axis=(2, 3)) / k
        imag = ops.sum(total_amplitude * ops.sin(total_phase), axis=(2, 3)) / k
        # [B, N_t, N_r, N_c] -> [B, N_r, N_t, 2 N_c]
        return ops.transpose(ops.concatenate([real, imag], axis=-1), (0, 2, 1, 3))

    def get_config(self):
        return {"name": self.name, "trainable": self.trainable, "num_subcarriers": self.num_subcarriers,
                "antenna_positions_m": self.antenna_positions_m, "num_ue_antennas": self.num_ue_antennas,
                "num_azimuth": self.num_azimuth, "num_elevation": self.num_elevation,
                "num_samples": self.num_samples, "max_distance_m": self.max_distance_m, "depth": self.depth,
                "width": self.width, "skip_layer": self.skip_layer, "pe_levels": self.pe_levels}

    @classmethod
    def from_config(cls, config):
        return cls(**config)
