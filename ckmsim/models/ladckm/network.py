r"""LAD-CKM's network (Sec. III-C, III-D): the adaptive deformation module (ADM), RARE-Net and the rendering of
eq. (7), as one Keras model, :class:`LadCkm`.

Layout. A UE's CSI is an "image" over its antenna pairs, channels last: :math:`N_r \times N_t` pixels of
:math:`2N_c` channels (the real parts of the :math:`N_c` subcarriers, then the imaginary parts: the paper's
footnote 1). There are :math:`R = N_a N_s` radiators per UE (:mod:`.radiators`).

- **Queries** (eq. (15)): the uplink CSI :math:`\mathbf{H}^U` replicated to every radiator (the straight-through
  approximation :math:`\mathbf{Q}_{raw}`), the zero-padded partial downlink CSI :math:`\xi_{ch}` and the
  ray direction :math:`\xi_{ang}` (3 channels, the same at every pixel).
- **ADM, angular stage** (:class:`AngularDeformation`, eq. (16)): a convolution over the antenna image of the
  :math:`4N_c + 3` channels, GELU, a convolution back to :math:`2N_c`; its output is added to
  :math:`\mathbf{Q}_{raw}` (the paper says the ADM "fine-tunes" the queries: a residual, whose last convolution
  starts at zero so that an untrained ADM passes the straight-through queries on). The first convolution is
  linear, so its shared part (uplink and partial downlink, the same for all radiators) is computed once per UE
  and the direction part once per ray; the sum equals the convolution of the concatenation.
- **ADM, radial stage** (:class:`RadialDeformation`, eqs. (17)-(20)): per ray, an image of
  :math:`2N_c \times N_rN_t` pixels whose :math:`3N_s` channels are the :math:`N_s` radiators' queries, the
  partial downlink CSI repeated :math:`N_s` times and the radiators' intervals :math:`\delta_{ij}`; a
  convolution, GELU, a convolution to :math:`N_s` channels, added to the queries.
- **RARE-Net** (:class:`RareNet`, Fig. 4): the EMP network -- an "up-sampling" convolution (the paper's word;
  on an :math:`N_r \times N_t` image it widens the channels to ``width``), three :class:`ResidualBlock` each
  followed by a :class:`FrequencyAttention` -- and two heads: :math:`\sigma` by a convolution to :math:`N_c`
  channels with a softplus (:math:`\sigma \ge 0`, one EM property per subcarrier and antenna pair), and the AC
  network on the features concatenated with :math:`\xi_{ang}`: a "down-sampling" residual block (to
  ``width / 2`` channels), an "up-sampling" one (back to ``width``), each with its frequency attention, and a
  convolution to the :math:`2N_c` channels of :math:`\mathbf{C}`.
- **Rendering** (:func:`render`, eq. (7)):
  :math:`\hat{\mathbf{H}}^D = \sum_i\sum_j \boldsymbol\alpha_{ij} \odot \mathbf{T}_{ij} \odot \mathbf{C}_{ij}`,
  :math:`\alpha_{ij} = 1 - e^{-\sigma_{ij}\delta_{ij}}`, :math:`T_{ij} = \prod_{k<j}(1 - \alpha_{ik})`.

Where the paper is silent (kernel sizes, widths, the residual block's inside, the frequency attention's
widths, the activation of :math:`\sigma`) the choices are the ones stated here and in each class; 3 x 3
kernels everywhere ("same" padding: an :math:`1 \times N_t` image is a row).
"""

from __future__ import annotations

import ckmsim  # noqa: F401  (Mitsuba before TensorFlow / Keras)

import keras
import numpy as np
from keras import layers, ops

from ckmsim.errors import CkmsimError
from ckmsim.models.ladckm.radiators import fibonacci_directions
from ckmsim.validation import check_positive_int, is_finite_number

PACKAGE = "ckmsim"
KERNEL_SIZE = 3


def _conv(filters: int, name: str, zero: bool = False, use_bias: bool = True):
    init = "zeros" if zero else "glorot_uniform"
    return layers.Conv2D(filters, KERNEL_SIZE, padding="same", kernel_initializer=init,
                         bias_initializer="zeros", use_bias=use_bias, name=name)


# ----------------------------------------------------------------------------------------------------------
# RARE-Net pieces
# ----------------------------------------------------------------------------------------------------------

@keras.saving.register_keras_serializable(package=PACKAGE)
class FrequencyAttention(layers.Layer):
    r"""Frequency-aware feature modulation (Fig. 4(b)): an affine transform of the features whose weights and
    biases come from the pooled features and the subcarrier frequencies.

    ``pooled = mean_{pixels}(x)`` ``[N, C]``; ``f`` the :math:`N_c` subcarrier frequencies [GHz], the same for
    every example ("dimension expansion": broadcast over the batch); three fully connected layers on
    ``concat(pooled, f)``, the first two with group normalisation and GELU, the third giving
    :math:`(\gamma, \beta)`; output :math:`x \odot (1 + \gamma) + \beta`. The third layer starts at zero, so
    an untrained attention is the identity.

    Input: ``x`` ``[N, h, w, C]``. Output: the same shape.
    """

    def __init__(self, frequencies_ghz, hidden: int | None = None, groups: int = 4, **kwargs):
        super().__init__(**kwargs)
        values = np.asarray(frequencies_ghz, dtype=np.float64).ravel()
        if values.size < 1 or not np.all(np.isfinite(values)):
            raise CkmsimError(f"frequencies_ghz must be finite subcarrier frequencies [GHz]. Received: {frequencies_ghz!r}")
        self.frequencies_ghz = [float(v) for v in values]
        self.hidden = None if hidden is None else check_positive_int(hidden, "hidden")
        self.groups = check_positive_int(groups, "groups")

    def build(self, input_shape):
        channels = int(input_shape[-1])
        hidden = self.hidden or channels
        groups = self.groups if hidden % self.groups == 0 else 1
        self.fc1 = layers.Dense(hidden, name="fc1")
        self.norm1 = layers.GroupNormalization(groups, name="norm1")
        self.fc2 = layers.Dense(hidden, name="fc2")
        self.norm2 = layers.GroupNormalization(groups, name="norm2")
        self.fc3 = layers.Dense(2 * channels, kernel_initializer="zeros", name="fc3")
        merged = (None, channels + len(self.frequencies_ghz))
        self.fc1.build(merged)
        self.norm1.build((None, hidden))
        self.fc2.build((None, hidden))
        self.norm2.build((None, hidden))
        self.fc3.build((None, hidden))
        self.channels = channels

    def call(self, x):
        pooled = ops.mean(x, axis=(1, 2))
        frequencies = ops.convert_to_tensor(np.asarray(self.frequencies_ghz, np.float32))
        frequencies = ops.broadcast_to(frequencies[None, :], (ops.shape(x)[0], len(self.frequencies_ghz)))
        h = ops.concatenate([pooled, frequencies], axis=-1)
        h = keras.activations.gelu(self.norm1(self.fc1(h)))
        h = keras.activations.gelu(self.norm2(self.fc2(h)))
        gamma, beta = ops.split(self.fc3(h), 2, axis=-1)
        return x * (1.0 + gamma[:, None, None, :]) + beta[:, None, None, :]

    def compute_output_shape(self, input_shape):
        return tuple(input_shape)

    def get_config(self):
        return {**super().get_config(), "frequencies_ghz": self.frequencies_ghz, "hidden": self.hidden,
                "groups": self.groups}


@keras.saving.register_keras_serializable(package=PACKAGE)
class ResidualBlock(layers.Layer):
    """Two 3 x 3 convolutions with a GELU between and after, plus the input (through a 1 x 1 convolution when
    the width changes: the AC network's "down-" and "up-sampling" blocks). Fig. 4(c) is not in the text; this
    is the usual pre-ResNet block without normalisation (batches of 2 UEs, as the paper's, make batch
    statistics meaningless).

    Input ``[N, h, w, C_in]`` -> output ``[N, h, w, filters]``.
    """

    def __init__(self, filters: int, **kwargs):
        super().__init__(**kwargs)
        self.filters = check_positive_int(filters, "filters")
        self.conv1 = _conv(self.filters, "conv1")
        self.conv2 = _conv(self.filters, "conv2")
        self.project = None

    def build(self, input_shape):
        channels = int(input_shape[-1])
        self.conv1.build(input_shape)
        self.conv2.build(tuple(input_shape[:-1]) + (self.filters,))
        if channels != self.filters:
            self.project = layers.Conv2D(self.filters, 1, name="project")
            self.project.build(input_shape)

    def call(self, x):
        skip = x if self.project is None else self.project(x)
        h = self.conv2(keras.activations.gelu(self.conv1(x)))
        return keras.activations.gelu(h + skip)

    def compute_output_shape(self, input_shape):
        return tuple(input_shape[:-1]) + (self.filters,)

    def get_config(self):
        return {**super().get_config(), "filters": self.filters}


@keras.saving.register_keras_serializable(package=PACKAGE)
class RareNet(layers.Layer):
    r"""RARE-Net (Fig. 4(a)): the EMP network and the AC network (module docstring).

    Input
    -----
    queries : ``[N, N_r, N_t, 2 N_c]``, the ADM's queries of N radiators
    directions : ``[N, N_r, N_t, 3]``, each radiator's ray direction at every pixel

    Output
    ------
    sigma : ``[N, N_r, N_t, N_c]``, >= 0, the EM property of every sub-radiator and subcarrier
    coefficients : ``[N, N_r, N_t, 2 N_c]``, the aggregating coefficients C (real parts, then imaginary)
    """

    def __init__(self, num_subcarriers: int, frequencies_ghz, width: int = 32, **kwargs):
        super().__init__(**kwargs)
        self.num_subcarriers = check_positive_int(num_subcarriers, "num_subcarriers")
        self.width = check_positive_int(width, "width")
        if self.width < 2:
            raise CkmsimError(f"width must be >= 2 (the AC network halves it). Received: width={width!r}")
        self.frequencies_ghz = [float(v) for v in np.asarray(frequencies_ghz, dtype=np.float64).ravel()]
        if len(self.frequencies_ghz) != self.num_subcarriers:
            raise CkmsimError(f"frequencies_ghz must hold one frequency per subcarrier ({self.num_subcarriers}). "
                              f"Received: {len(self.frequencies_ghz)}")
        w = self.width
        self.widen = _conv(w, "emp_up")
        self.emp_blocks = [ResidualBlock(w, name=f"emp_res{i}") for i in range(3)]
        self.emp_attention = [FrequencyAttention(self.frequencies_ghz, name=f"emp_fa{i}") for i in range(3)]
        self.sigma_head = _conv(self.num_subcarriers, "sigma")
        self.ac_down = ResidualBlock(max(1, w // 2), name="ac_down")
        self.ac_down_attention = FrequencyAttention(self.frequencies_ghz, name="ac_fa_down")
        self.ac_up = ResidualBlock(w, name="ac_up")
        self.ac_up_attention = FrequencyAttention(self.frequencies_ghz, name="ac_fa_up")
        self.coefficient_head = _conv(2 * self.num_subcarriers, "coefficients")

    def build(self, input_shape):
        queries_shape, _ = input_shape
        pixels = tuple(queries_shape[:-1])
        w = self.width
        self.widen.build(queries_shape)
        for block, attention in zip(self.emp_blocks, self.emp_attention):
            block.build(pixels + (w,))
            attention.build(pixels + (w,))
        self.sigma_head.build(pixels + (w,))
        self.ac_down.build(pixels + (w + 3,))
        self.ac_down_attention.build(pixels + (self.ac_down.filters,))
        self.ac_up.build(pixels + (self.ac_down.filters,))
        self.ac_up_attention.build(pixels + (w,))
        self.coefficient_head.build(pixels + (w,))

    def call(self, inputs):
        queries, directions = inputs
        x = keras.activations.gelu(self.widen(queries))
        for block, attention in zip(self.emp_blocks, self.emp_attention):
            x = attention(block(x))
        sigma = keras.activations.softplus(self.sigma_head(x))
        h = ops.concatenate([x, directions], axis=-1)
        h = self.ac_down_attention(self.ac_down(h))
        h = self.ac_up_attention(self.ac_up(h))
        return sigma, self.coefficient_head(h)

    def compute_output_shape(self, input_shape):
        queries_shape, _ = input_shape
        pixels = tuple(queries_shape[:-1])
        return pixels + (self.num_subcarriers,), pixels + (2 * self.num_subcarriers,)

    def get_config(self):
        return {**super().get_config(), "num_subcarriers": self.num_subcarriers,
                "frequencies_ghz": self.frequencies_ghz, "width": self.width}


# ----------------------------------------------------------------------------------------------------------
# ADM
# ----------------------------------------------------------------------------------------------------------

@keras.saving.register_keras_serializable(package=PACKAGE)
class AngularDeformation(layers.Layer):
    r"""The ADM's first stage, eq. (16) (module docstring).

    Input
    -----
    uplink, partial_downlink : ``[B, N_r, N_t, 2 N_c]``
    directions : ``[R, 3]``, each radiator's ray direction (radiator ``r = i N_s + j``)

    Output
    ------
    queries : ``[B, R, N_r, N_t, 2 N_c]``, :math:`\mathbf{Q}_{ang}`
    """

    def __init__(self, hidden: int = 32, **kwargs):
        super().__init__(**kwargs)
        self.hidden = check_positive_int(hidden, "hidden")
        self.shared = _conv(self.hidden, "shared")
        self.direction = _conv(self.hidden, "direction", use_bias=False)
        self.out = None

    def build(self, input_shape):
        uplink_shape = tuple(input_shape[0])
        channels = int(uplink_shape[-1])
        pixels = uplink_shape[1:3]
        self.shared.build((None,) + pixels + (2 * channels,))
        self.direction.build((None,) + pixels + (3,))
        self.out = _conv(channels, "out", zero=True)
        self.out.build((None,) + pixels + (self.hidden,))

    def call(self, inputs):
        uplink, partial_downlink, directions = inputs
        shape = ops.shape(uplink)
        batch, rows, cols, channels = shape[0], shape[1], shape[2], shape[3]
        radiators = ops.shape(directions)[0]
        # [B, 1, r, c, hidden]: the uplink and partial downlink part, once per UE
        shared = self.shared(ops.concatenate([uplink, partial_downlink], axis=-1))[:, None]
        # [1, R, r, c, hidden]: the direction part, once per ray (constant image through the same padding)
        direction_image = ops.broadcast_to(directions[:, None, None, :], (radiators, rows, cols, 3))
        per_ray = self.direction(direction_image)[None]
        hidden = keras.activations.gelu(shared + per_ray)
        hidden = ops.reshape(hidden, (batch * radiators, rows, cols, self.hidden))
        change = ops.reshape(self.out(hidden), (batch, radiators, rows, cols, channels))
        return uplink[:, None] + change

    def get_config(self):
        return {**super().get_config(), "hidden": self.hidden}


@keras.saving.register_keras_serializable(package=PACKAGE)
class RadialDeformation(layers.Layer):
    r"""The ADM's second stage, eqs. (17)-(20) (module docstring).

    Input
    -----
    queries : ``[B, N_a, N_s, N_r N_t, 2 N_c]`` (:math:`\mathbf{Q}_{ang}` grouped by ray)
    partial_downlink : ``[B, N_r N_t, 2 N_c]``
    intervals : ``[B, N_a, N_s]``, :math:`\delta_{ij}` [m] over the scale ``interval_scale_m``

    Output
    ------
    queries : ``[B, N_a, N_s, N_r N_t, 2 N_c]``, the ADM's output :math:`\mathbf{Q}`
    """

    def __init__(self, num_samples: int, hidden: int = 16, **kwargs):
        super().__init__(**kwargs)
        self.num_samples = check_positive_int(num_samples, "num_samples")
        self.hidden = check_positive_int(hidden, "hidden")
        self.conv1 = _conv(self.hidden, "conv1")
        self.conv2 = _conv(self.num_samples, "conv2", zero=True)

    def build(self, input_shape):
        queries_shape = tuple(input_shape[0])
        pixels = (queries_shape[4], queries_shape[3])
        self.conv1.build((None,) + pixels + (3 * self.num_samples,))
        self.conv2.build((None,) + pixels + (self.hidden,))

    def call(self, inputs):
        queries, partial_downlink, intervals = inputs
        shape = ops.shape(queries)
        batch, rays, samples, pairs, channels = shape[0], shape[1], shape[2], shape[3], shape[4]
        # per ray an image of 2N_c x N_rN_t pixels whose channels are the N_s radiators: [B N_a, 2N_c, N_rN_t, N_s]
        image = ops.reshape(ops.transpose(queries, (0, 1, 4, 3, 2)), (batch * rays, channels, pairs, samples))
        pilots = ops.transpose(partial_downlink, (0, 2, 1))[:, None, :, :, None]
        pilots = ops.reshape(ops.broadcast_to(pilots, (batch, rays, channels, pairs, samples)),
                             (batch * rays, channels, pairs, samples))
        spacing = ops.reshape(ops.broadcast_to(intervals[:, :, None, None, :], (batch, rays, channels, pairs, samples)),
                              (batch * rays, channels, pairs, samples))
        hidden = keras.activations.gelu(self.conv1(ops.concatenate([image, pilots, spacing], axis=-1)))
        change = ops.reshape(self.conv2(hidden), (batch, rays, channels, pairs, samples))
        return queries + ops.transpose(change, (0, 1, 4, 3, 2))

    def get_config(self):
        return {**super().get_config(), "num_samples": self.num_samples, "hidden": self.hidden}


# ----------------------------------------------------------------------------------------------------------
# Rendering, eq. (7), and the loss, eq. (12)
# ----------------------------------------------------------------------------------------------------------

def render(sigma, coefficients, intervals_m):
    r"""Eq. (7): :math:`\hat{\mathbf{H}} = \sum_{i,j} \alpha_{ij} T_{ij} \mathbf{C}_{ij}`.

    Input
    -----
    sigma : ``[B, N_a, N_s, ..., N_c]``, >= 0 [1/m]
    coefficients : ``[B, N_a, N_s, ..., 2 N_c]`` (real parts, then imaginary: the same weight scales both)
    intervals_m : ``[B, N_a, N_s]`` [m]

    Output
    ------
    h : ``[B, ..., 2 N_c]``
    """
    delta = intervals_m
    for _ in range(len(sigma.shape) - 3):
        delta = ops.expand_dims(delta, -1)
    optical = sigma * delta
    alpha = 1.0 - ops.exp(-optical)
    # T_ij = exp(-sum_{k<j} sigma_ik delta_ik): the exclusive cumulative sum along the radiators of a ray
    transmittance = ops.exp(-(ops.cumsum(optical, axis=2) - optical))
    weight = alpha * transmittance
    weight = ops.concatenate([weight, weight], axis=-1)
    return ops.sum(weight * coefficients, axis=(1, 2))


@keras.saving.register_keras_serializable(package=PACKAGE)
def nmse_loss(y_true, y_pred):
    r"""Eq. (12) per UE: the mean over subcarriers of :math:`\lVert\hat{\mathbf{H}}(f) - \mathbf{H}(f)\rVert^2 /
    \lVert\mathbf{H}(f)\rVert^2`. ``[B, N_r, N_t, 2 N_c]`` real layout -> ``[B]`` (a subcarrier with no power
    counts its error power over a floor of 1e-12)."""
    num_subcarriers = ops.shape(y_true)[-1] // 2

    def power(x):
        # [B, N_c]: |re|^2 + |im|^2 summed over the antenna pairs
        squared = ops.sum(ops.square(x), axis=(1, 2))
        return squared[:, :num_subcarriers] + squared[:, num_subcarriers:]

    return ops.mean(power(y_pred - y_true) / ops.maximum(power(y_true), 1e-12), axis=-1)


# ----------------------------------------------------------------------------------------------------------
# The model
# ----------------------------------------------------------------------------------------------------------

@keras.saving.register_keras_serializable(package=PACKAGE)
class LadCkm(keras.Model):
    r"""LAD-CKM: uplink CSI (+ partial downlink CSI) -> downlink CSI, by the rendering of eq. (7).

    Input
    -----
    inputs : dict
        ``uplink``: ``[B, N_r, N_t, 2 N_c]``, the uplink CSI (normalised: :mod:`.data`);
        ``partial_downlink``: ``[B, N_r, N_t, 2 N_c]``, the downlink CSI on the pilot pattern, zero elsewhere
        (all zero for :math:`\rho = 0`);
        ``intervals``: ``[B, N_a, N_s]`` [m] (optional: the midpoint intervals when absent; training draws
        stratified ones, :func:`~ckmsim.models.ladckm.radiators.radial_intervals`).

    Output
    ------
    downlink : ``[B, N_r, N_t, 2 N_c]``, :math:`\hat{\mathbf{H}}^D` in the same normalisation

    Parameters
    ----------
    num_subcarriers : int, :math:`N_c`
    frequencies_ghz : the downlink subcarrier frequencies [GHz] (the frequency attention's side information)
    num_directions, num_samples : :math:`N_a`, :math:`N_s`
    max_distance_m : ray length [m]; the intervals enter the ADM over it
    width : RARE-Net's width; adm_hidden, radial_hidden : the ADM stages' widths
    """

    def __init__(self, num_subcarriers: int, frequencies_ghz, num_directions: int = 16, num_samples: int = 4,
                 max_distance_m: float = 100.0, width: int = 32, adm_hidden: int = 32, radial_hidden: int = 16,
                 **kwargs):
        super().__init__(**kwargs)
        self.num_subcarriers = check_positive_int(num_subcarriers, "num_subcarriers")
        self.num_directions = check_positive_int(num_directions, "num_directions")
        self.num_samples = check_positive_int(num_samples, "num_samples")
        if not (is_finite_number(max_distance_m) and max_distance_m > 0):
            raise CkmsimError(f"max_distance_m must be a number > 0. Received: max_distance_m={max_distance_m!r}")
        self.max_distance_m = float(max_distance_m)
        self.width, self.adm_hidden, self.radial_hidden = int(width), int(adm_hidden), int(radial_hidden)
        self.frequencies_ghz = [float(v) for v in np.asarray(frequencies_ghz, dtype=np.float64).ravel()]
        # [R, 3], radiator r = i N_s + j on ray i
        self.directions = np.repeat(fibonacci_directions(self.num_directions), self.num_samples, axis=0)
        self.angular = AngularDeformation(self.adm_hidden, name="adm_angular")
        self.radial = RadialDeformation(self.num_samples, self.radial_hidden, name="adm_radial")
        self.rare_net = RareNet(self.num_subcarriers, self.frequencies_ghz, self.width, name="rare_net")

    def midpoint_intervals(self, batch) -> np.ndarray:
        """``[batch, N_a, N_s]`` equal intervals [m] (inference)."""
        return np.full((batch, self.num_directions, self.num_samples), self.max_distance_m / self.num_samples,
                       np.float32)

    def check_inputs(self, uplink_shape) -> None:
        if len(uplink_shape) != 4 or uplink_shape[-1] != 2 * self.num_subcarriers:
            raise CkmsimError(f"LAD-CKM takes CSI images [batch, N_r, N_t, 2 N_c = {2 * self.num_subcarriers}]. "
                              f"Received: {tuple(uplink_shape)}")

    def call(self, inputs):
        uplink, partial = inputs["uplink"], inputs["partial_downlink"]
        intervals = inputs.get("intervals")
        shape = ops.shape(uplink)
        batch, rows, cols, channels = shape[0], shape[1], shape[2], shape[3]
        if intervals is None:
            intervals = ops.full((batch, self.num_directions, self.num_samples),
                                 self.max_distance_m / self.num_samples)
        directions = ops.convert_to_tensor(self.directions)
        rays, samples, radiators = self.num_directions, self.num_samples, self.directions.shape[0]
        queries = self.angular([uplink, partial, directions])
        queries = ops.reshape(queries, (batch, rays, samples, rows * cols, channels))
        queries = self.radial([queries, ops.reshape(partial, (batch, rows * cols, channels)),
                               intervals / self.max_distance_m])
        queries = ops.reshape(queries, (batch * radiators, rows, cols, channels))
        direction_image = ops.broadcast_to(directions[None, :, None, None, :], (batch, radiators, rows, cols, 3))
        sigma, coefficients = self.rare_net([queries, ops.reshape(direction_image, (batch * radiators, rows, cols, 3))])
        sigma = ops.reshape(sigma, (batch, rays, samples, rows, cols, self.num_subcarriers))
        coefficients = ops.reshape(coefficients, (batch, rays, samples, rows, cols, channels))
        return render(sigma, coefficients, intervals)

    def get_config(self):
        return {"name": self.name, "trainable": self.trainable, "num_subcarriers": self.num_subcarriers,
                "frequencies_ghz": self.frequencies_ghz, "num_directions": self.num_directions,
                "num_samples": self.num_samples, "max_distance_m": self.max_distance_m, "width": self.width,
                "adm_hidden": self.adm_hidden, "radial_hidden": self.radial_hidden}

    @classmethod
    def from_config(cls, config):
        return cls(**config)
