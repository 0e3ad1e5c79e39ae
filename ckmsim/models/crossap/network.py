r"""The UNet of cross-AP CKM inference (Dai, Wu, Xu, Zeng, "Generating CKM using others' data", Sec. III-B).

The network maps the :math:`N + 1`-channel input of eqs. (3)-(5) (channel 0: the target AP's pre-convolved
location map; channels 1..N: the feature maps of the other APs, see :mod:`ckmsim.models.crossap.data`) to the
target AP's channel gain map :math:`\mathbf{G}^{infer}_{target}` as pixels, trained with the MSE of eq. (6).
The paper describes its Fig. 4 in words only; each sentence is one piece of :class:`CrossApUNet`:

- "the 5x5 convolution kernel is used extensively" -> every :class:`ConvBlock` and the output use
  ``kernel_size = 5``;
- "dimensionality-reduction convolutions" on "the high-channel input" -> the first layer maps the
  :math:`N + 1` channels to ``reduce_channels`` (6) at full resolution;
- "down-sampling and up-sampling ... retaining low-level features with hop concatenation" -> one
  :class:`ConvBlock` + 2x2 max-pool per level on the way down, one :class:`UpBlock` (stride-2 transposed
  convolution) per level on the way up, concatenated with the encoder output of the same resolution;
- "additional convolutions are added at the resolutions of 64x64 and 32x32" -> on the paper's 256 x 256
  RadioMapSeer maps those are down-sampling levels 2 and 3 (``extra_conv_levels = (2, 3)``), where one
  more :class:`ConvBlock` runs on the way down and one after the skip concatenation on the way up.

The level widths default to those of RadioUNet's first UNet (Levie et al., the paper's ref. [5] and its
reference point on the same RadioMapSeer data: 6 channels after the first convolution, then 40, 50, 100,
150, 300, 500), which has the same layout (5x5 kernels, extra convolutions at 64x64 and 32x32 of a 256 x 256
input); the paper gives no widths of its own. Input height and width must be multiples of
``2 ** len(encoder_channels)``. Every hyper-parameter is a constructor argument, mirrored by ``get_config``,
so a model saves to and loads from a ``.keras`` file.

``residual_channel`` (issue 14) turns the same network into a learned *correction*: the output is input
channel ``residual_channel`` (the distance-weighted inference of eq. (7) as pixels, see
:class:`~ckmsim.models.crossap.data.CrossApEncoding` with ``physics=True``) plus the UNet's last
convolution, whose kernel and bias start at zero, so that the untrained network returns eq. (7) exactly and
training can only move away from it where the loss says so.

``ap_slots`` (issue 14) adds :class:`KnownApPooling` in front of the UNet for inputs encoded with
``ap_features=True``: one small network shared by every known-AP slot reads the slot's per-cell features
(:data:`~ckmsim.models.crossap.data.AP_FEATURES`) and gives a weight logit and a feature vector per cell;
a softmax over the slots *at each cell* pools them. Eq. (7) weighs a known AP by its distance to the target
alone, the same at every cell; the pooling can prefer, cell by cell, the APs that see the cell as the target
does (both in line of sight, or both behind the same buildings), and it takes any number of known APs in any
order. The UNet then sees the input's first ``ap_first_channel`` channels and the pooled features instead
of the raw per-slot channels.
"""

from __future__ import annotations

import ckmsim  # noqa: F401  (Mitsuba before TensorFlow / Keras)

import keras

from ckmsim.errors import CkmsimError
from ckmsim.validation import is_whole_number

#: RadioUNet's width after its first (dimensionality-reducing) convolution.
DEFAULT_REDUCE_CHANNELS = 6
#: Widths of the down-sampling levels 1..6 (RadioUNet's first UNet); a 256 x 256 map reaches 4 x 4.
DEFAULT_ENCODER_CHANNELS = (40, 50, 100, 150, 300, 500)
#: Levels with an additional convolution: 64 x 64 and 32 x 32 of a 256 x 256 input (Sec. III-B).
DEFAULT_EXTRA_CONV_LEVELS = (2, 3)
#: The paper's kernel size ("the 5x5 convolution kernel is used extensively").
DEFAULT_KERNEL_SIZE = 5
#: Width of the last up-sampling to full resolution (RadioUNet: 20).
DEFAULT_TOP_CHANNELS = 20

_PACKAGE = "ckmsim"


@keras.saving.register_keras_serializable(package=_PACKAGE)
class ConvBlock(keras.layers.Layer):
    """A same-padded convolution with ReLU, followed by a 2 x 2 max-pool when ``pool``.

    Input
    -----
    x : ``[batch, height, width, channels]``, float32

    Output
    ------
    y : ``[batch, height, width, filters]`` (``[batch, height / 2, width / 2, filters]`` with ``pool``)
    """

    def __init__(self, filters: int, kernel_size: int = DEFAULT_KERNEL_SIZE, pool: bool = False, **kwargs):
        super().__init__(**kwargs)
        _check_positive_int("filters", filters)
        _check_positive_int("kernel_size", kernel_size)
        self.filters = int(filters)
        self.kernel_size = int(kernel_size)
        self.pool = bool(pool)
        self.conv = keras.layers.Conv2D(self.filters, self.kernel_size, padding="same", activation="relu",
                                        name="conv")
        self.max_pool = keras.layers.MaxPooling2D(2, name="max_pool") if self.pool else None

    def build(self, input_shape):
        self.conv.build(input_shape)
        if self.max_pool is not None:
            self.max_pool.build(self.conv.compute_output_shape(input_shape))

    def call(self, x):
        x = self.conv(x)
        return self.max_pool(x) if self.max_pool is not None else x

    def compute_output_shape(self, input_shape):
        shape = self.conv.compute_output_shape(input_shape)
        return self.max_pool.compute_output_shape(shape) if self.max_pool is not None else shape

    def get_config(self):
        return {**super().get_config(), "filters": self.filters, "kernel_size": self.kernel_size, "pool": self.pool}


@keras.saving.register_keras_serializable(package=_PACKAGE)
class UpBlock(keras.layers.Layer):
    """Up-sampling by 2: a stride-2 transposed convolution with ReLU.

    Input
    -----
    x : ``[batch, height, width, channels]``, float32

    Output
    ------
    y : ``[batch, 2 height, 2 width, filters]``
    """

    def __init__(self, filters: int, kernel_size: int = 4, **kwargs):
        super().__init__(**kwargs)
        _check_positive_int("filters", filters)
        _check_positive_int("kernel_size", kernel_size)
        self.filters = int(filters)
        self.kernel_size = int(kernel_size)
        self.conv = keras.layers.Conv2DTranspose(self.filters, self.kernel_size, strides=2, padding="same",
                                                 activation="relu", name="conv_transpose")

    def build(self, input_shape):
        self.conv.build(input_shape)

    def call(self, x):
        return self.conv(x)

    def compute_output_shape(self, input_shape):
        return self.conv.compute_output_shape(input_shape)

    def get_config(self):
        return {**super().get_config(), "filters": self.filters, "kernel_size": self.kernel_size}


@keras.saving.register_keras_serializable(package=_PACKAGE)
class KnownApPooling(keras.layers.Layer):
    r"""Per-cell attention pooling over the known-AP slots (module docstring).

    For slot :math:`n` at a cell with features :math:`f_n` (``num_features`` of them, the first the 0/1
    ``valid`` flag): a shared MLP gives :math:`(\ell_n, h_n)`; :math:`w_n = \mathrm{softmax}_n(\ell_n)` over
    the valid slots; the output stacks :math:`\sum_n w_n h_n`, :math:`\max_n h_n` over the valid slots,
    and :math:`\sum_n w_n f_{n,1}` (the pooled ``transferred`` gain pixel, a direct estimate of the target's
    map).

    Input
    -----
    x : ``[batch, height, width, num_slots * num_features]``, float32, slot-major

    Output
    ------
    pooled : ``[batch, height, width, 2 * pooled_channels + 1]``, float32
    """

    def __init__(self, num_slots: int, num_features: int, hidden_channels: int = 32, pooled_channels: int = 16,
                 **kwargs):
        super().__init__(**kwargs)
        for name, value in (("num_slots", num_slots), ("num_features", num_features),
                            ("hidden_channels", hidden_channels), ("pooled_channels", pooled_channels)):
            _check_positive_int(name, value)
        if int(num_features) < 2:
            raise CkmsimError(f"KnownApPooling needs the valid flag and at least one feature per slot. "
                              f"Received: num_features={num_features!r}")
        self.num_slots = int(num_slots)
        self.num_features = int(num_features)
        self.hidden_channels = int(hidden_channels)
        self.pooled_channels = int(pooled_channels)
        self.hidden1 = keras.layers.Dense(self.hidden_channels, activation="relu", name="hidden1")
        self.hidden2 = keras.layers.Dense(self.hidden_channels, activation="relu", name="hidden2")
        self.head = keras.layers.Dense(self.pooled_channels + 1, name="head")

    def build(self, input_shape):
        slot_shape = (None, None, None, self.num_slots, self.num_features)
        self.hidden1.build(slot_shape)
        self.hidden2.build(slot_shape[:-1] + (self.hidden_channels,))
        self.head.build(slot_shape[:-1] + (self.hidden_channels,))

    def call(self, x):
        ops = keras.ops
        shape = ops.shape(x)
        # [batch, h, w, slots, features]
        slots = ops.reshape(x, (shape[0], shape[1], shape[2], self.num_slots, self.num_features))
        valid = slots[..., 0:1]
        out = self.head(self.hidden2(self.hidden1(slots)))
        # invalid slots get no weight; a cell always has one valid slot (building cells have none and are
        # not scored: there every slot's logit is equally low and the softmax stays finite)
        logits = out[..., 0:1] + (valid - 1.0) * 1e4
        weights = ops.softmax(logits, axis=-2)
        features = out[..., 1:]
        pooled_mean = ops.sum(weights * features, axis=-2)
        pooled_max = ops.max(features + (valid - 1.0) * 1e4, axis=-2)
        pooled_max = ops.where(ops.max(valid, axis=-2) > 0, pooled_max, ops.zeros_like(pooled_max))
        transferred = ops.sum(weights * slots[..., 1:2], axis=-2)
        return ops.concatenate([pooled_mean, pooled_max, transferred], axis=-1)

    def compute_output_shape(self, input_shape):
        return tuple(input_shape[:-1]) + (2 * self.pooled_channels + 1,)

    def get_config(self):
        return {**super().get_config(), "num_slots": self.num_slots, "num_features": self.num_features,
                "hidden_channels": self.hidden_channels, "pooled_channels": self.pooled_channels}


@keras.saving.register_keras_serializable(package=_PACKAGE)
class TakeChannels(keras.layers.Layer):
    """Channels ``[start, stop)`` of the input: ``[batch, h, w, C]`` -> ``[batch, h, w, stop - start]``."""

    def __init__(self, start: int, stop: int, **kwargs):
        super().__init__(**kwargs)
        if not (is_whole_number(start, minimum=0) and is_whole_number(stop, minimum=1) and stop > start):
            raise CkmsimError(f"TakeChannels needs 0 <= start < stop. Received: start={start!r}, stop={stop!r}")
        self.start, self.stop = int(start), int(stop)

    def call(self, x):
        return x[..., self.start:self.stop]

    def compute_output_shape(self, input_shape):
        return tuple(input_shape[:-1]) + (self.stop - self.start,)

    def get_config(self):
        return {**super().get_config(), "start": self.start, "stop": self.stop}


@keras.saving.register_keras_serializable(package=_PACKAGE)
class TakeChannel(TakeChannels):
    """One channel of the input, kept as a channel: ``[batch, h, w, C]`` -> ``[batch, h, w, 1]``."""

    def __init__(self, index: int, **kwargs):
        if not is_whole_number(index, minimum=0):
            raise CkmsimError(f"index must be an integer >= 0. Received: index={index!r}")
        super().__init__(int(index), int(index) + 1, **kwargs)
        self.index = int(index)

    def get_config(self):
        config = super().get_config()
        del config["start"], config["stop"]
        return {**config, "index": self.index}


@keras.saving.register_keras_serializable(package=_PACKAGE)
class CrossApUNet(keras.Model):
    r"""The cross-AP inference UNet (Sec. III-B), a functional model built in ``__init__``.

    With ``D = len(encoder_channels)`` levels and :math:`c_l` the width of level :math:`l`:

    - reduce: ``ConvBlock(reduce_channels, reduce_kernel_size)`` at full resolution -> ``r``
    - down, :math:`l = 1..D`: ``ConvBlock(c_l, kernel_size, pool=True)`` -> ``e_l`` at :math:`1/2^l`,
      then one more ``ConvBlock(c_l)`` when :math:`l` is in ``extra_conv_levels``
    - up, :math:`l = D-1..1`: ``UpBlock(c_l)``, concatenate ``e_l``, and one ``ConvBlock(c_l)`` when
      :math:`l` is in ``extra_conv_levels``
    - top: ``UpBlock(top_channels)``, concatenate ``r`` and the input, ``ConvBlock(top_channels)``, then a
      ``kernel_size`` convolution to one channel with ``output_activation`` (linear by default: the target
      pixels lie in [0, 1], and a ReLU output can die at 0 where buildings and the floor sit)
    - with ``residual_channel``: that zero-initialised convolution's output plus input channel
      ``residual_channel`` (linear output)

    Input
    -----
    inputs : ``[batch, height, width, num_input_channels]``, float32
        ``height`` and ``width`` multiples of ``2 ** len(encoder_channels)``.

    Output
    ------
    gain_pixels : ``[batch, height, width, 1]``, float32, the inferred gain map as pixels

    Parameters
    ----------
    num_input_channels : int
        :math:`N + 1` (the paper: 80 on RadioMapSeer).
    reduce_channels, reduce_kernel_size : int
        The dimensionality-reducing first convolution.
    encoder_channels : sequence of int
        Width of each down-sampling level.
    extra_conv_levels : sequence of int
        Levels (1-based, in ``1..len(encoder_channels) - 1``) with the additional convolutions.
    kernel_size : int
        Kernel of every other convolution (5 in the paper).
    top_channels : int
        Width of the last up-sampling block.
    output_activation : str or None
        Keras activation of the output convolution (must be None with ``residual_channel``).
    residual_channel : int or None
        Input channel the output is added to (module docstring); None: the paper's plain output.
    ap_slots, ap_features, ap_first_channel : int or None
        With ``ap_slots``: the input's channels from ``ap_first_channel`` on are ``ap_slots`` known-AP slots of
        ``ap_features`` features each, pooled by :class:`KnownApPooling` (module docstring).
    ap_hidden_channels, ap_pooled_channels : int
        Width of the pooling's shared MLP and of its pooled features.
    """

    def __init__(self, num_input_channels: int, reduce_channels: int = DEFAULT_REDUCE_CHANNELS,
                 reduce_kernel_size: int = 3, encoder_channels=DEFAULT_ENCODER_CHANNELS,
                 extra_conv_levels=DEFAULT_EXTRA_CONV_LEVELS, kernel_size: int = DEFAULT_KERNEL_SIZE,
                 top_channels: int = DEFAULT_TOP_CHANNELS, output_activation: str | None = None,
                 residual_channel: int | None = None, ap_slots: int | None = None, ap_features: int | None = None,
                 ap_first_channel: int | None = None, ap_hidden_channels: int = 32, ap_pooled_channels: int = 16,
                 **kwargs):
        for name, value in (("num_input_channels", num_input_channels), ("reduce_channels", reduce_channels),
                            ("reduce_kernel_size", reduce_kernel_size), ("kernel_size", kernel_size),
                            ("top_channels", top_channels)):
            _check_positive_int(name, value)
        encoder_channels = tuple(int(c) for c in _int_sequence("encoder_channels", encoder_channels, minimum=1))
        if not encoder_channels:
            raise CkmsimError("encoder_channels needs at least one level. Received: encoder_channels=()")
        extra_conv_levels = tuple(sorted(set(int(v) for v in _int_sequence("extra_conv_levels", extra_conv_levels,
                                                                           minimum=1))))
        depth = len(encoder_channels)
        if any(level >= depth for level in extra_conv_levels):
            raise CkmsimError(f"extra_conv_levels must lie in 1..{depth - 1} (levels with a skip connection) for "
                              f"{depth} encoder levels. Received: extra_conv_levels={extra_conv_levels}")

        if residual_channel is not None:
            if not is_whole_number(residual_channel, minimum=0) or residual_channel >= num_input_channels:
                raise CkmsimError(f"residual_channel must index one of the {num_input_channels} input channels. "
                                  f"Received: residual_channel={residual_channel!r}")
            if output_activation is not None:
                raise CkmsimError(f"A residual output is linear (the correction may be negative). "
                                  f"Received: output_activation={output_activation!r}")
            residual_channel = int(residual_channel)

        if ap_slots is not None:
            if not (is_whole_number(ap_first_channel, minimum=1) and is_whole_number(ap_features, minimum=2)
                    and is_whole_number(ap_slots, minimum=1)
                    and int(ap_first_channel) + int(ap_slots) * int(ap_features) == int(num_input_channels)):
                raise CkmsimError(f"The known-AP slots must fill the input's last channels: ap_first_channel + "
                                  f"ap_slots * ap_features == num_input_channels. Received: ap_first_channel="
                                  f"{ap_first_channel!r}, ap_slots={ap_slots!r}, ap_features={ap_features!r}, "
                                  f"num_input_channels={num_input_channels!r}")
            if residual_channel is not None and residual_channel >= int(ap_first_channel):
                raise CkmsimError(f"residual_channel must lie before the known-AP slots (< {ap_first_channel}). "
                                  f"Received: residual_channel={residual_channel!r}")
            ap_slots, ap_features, ap_first_channel = int(ap_slots), int(ap_features), int(ap_first_channel)

        inputs = keras.Input(shape=(None, None, int(num_input_channels)), name="crossap_input")
        features = inputs
        if ap_slots is not None:
            pooled = KnownApPooling(ap_slots, ap_features, ap_hidden_channels, ap_pooled_channels,
                                    name="known_ap_pooling")(
                TakeChannels(ap_first_channel, int(num_input_channels), name="known_ap_slots")(inputs))
            features = keras.layers.Concatenate(name="with_pooled")(
                [TakeChannels(0, ap_first_channel, name="shared_channels")(inputs), pooled])
        reduced = ConvBlock(reduce_channels, reduce_kernel_size, name="reduce")(features)
        skips, x = [], reduced
        for level, width in enumerate(encoder_channels, start=1):
            x = ConvBlock(width, kernel_size, pool=True, name=f"down{level}")(x)
            if level in extra_conv_levels:
                x = ConvBlock(width, kernel_size, name=f"down{level}_extra")(x)
            skips.append(x)
        # x is the bottleneck e_D; walk back up to level 1, concatenating e_l at each level.
        for level in range(depth - 1, 0, -1):
            x = UpBlock(encoder_channels[level - 1], name=f"up{level}")(x)
            x = keras.layers.Concatenate(name=f"skip{level}")([x, skips[level - 1]])
            if level in extra_conv_levels:
                x = ConvBlock(encoder_channels[level - 1], kernel_size, name=f"up{level}_extra")(x)
        x = UpBlock(top_channels, name="up0")(x)
        x = keras.layers.Concatenate(name="skip0")([x, reduced, features])
        x = ConvBlock(top_channels, kernel_size, name="top")(x)
        if residual_channel is None:
            outputs = keras.layers.Conv2D(1, kernel_size, padding="same", activation=output_activation,
                                          name="gain_pixels")(x)
        else:
            correction = keras.layers.Conv2D(1, kernel_size, padding="same", kernel_initializer="zeros",
                                             bias_initializer="zeros", name="correction")(x)
            base = TakeChannel(residual_channel, name="distance_weighted")(inputs)
            outputs = keras.layers.Add(name="gain_pixels")([base, correction])
        super().__init__(inputs=inputs, outputs=outputs, **kwargs)

        self.num_input_channels = int(num_input_channels)
        self.reduce_channels = int(reduce_channels)
        self.reduce_kernel_size = int(reduce_kernel_size)
        self.encoder_channels = encoder_channels
        self.extra_conv_levels = extra_conv_levels
        self.kernel_size = int(kernel_size)
        self.top_channels = int(top_channels)
        self.output_activation = output_activation
        self.residual_channel = residual_channel
        self.ap_slots, self.ap_features, self.ap_first_channel = ap_slots, ap_features, ap_first_channel
        self.ap_hidden_channels, self.ap_pooled_channels = int(ap_hidden_channels), int(ap_pooled_channels)

    @property
    def size_multiple(self) -> int:
        """Height and width of an input must be multiples of this (``2 ** len(encoder_channels)``)."""
        return 2 ** len(self.encoder_channels)

    def get_config(self):
        return {"name": self.name, "trainable": self.trainable, "num_input_channels": self.num_input_channels,
                "reduce_channels": self.reduce_channels, "reduce_kernel_size": self.reduce_kernel_size,
                "encoder_channels": list(self.encoder_channels), "extra_conv_levels": list(self.extra_conv_levels),
                "kernel_size": self.kernel_size, "top_channels": self.top_channels,
                "output_activation": self.output_activation, "residual_channel": self.residual_channel,
                "ap_slots": self.ap_slots, "ap_features": self.ap_features, "ap_first_channel": self.ap_first_channel,
                "ap_hidden_channels": self.ap_hidden_channels, "ap_pooled_channels": self.ap_pooled_channels}

    @classmethod
    def from_config(cls, config):
        return cls(**config)


@keras.saving.register_keras_serializable(package=_PACKAGE)
def masked_mse(y_true, y_pred):
    """MSE over the cells whose weight is 1 (the loss with ``[data] loss_cells`` "open" or "reached").

    ``y_true`` ``[batch, h, w, 2]`` (target pixels, 0/1 weight), ``y_pred`` ``[batch, h, w, 1]``. Output
    ``[batch]``, float32: per example the mean squared error over its weighted cells (0 if it has none).
    """
    weight = y_true[..., 1:2]
    squared = weight * keras.ops.square(y_pred - y_true[..., 0:1])
    return keras.ops.sum(squared, axis=(1, 2, 3)) / keras.ops.maximum(keras.ops.sum(weight, axis=(1, 2, 3)), 1.0)


def check_input_size(model: CrossApUNet, shape) -> None:
    """Raise :class:`CkmsimError` unless a ``[..., height, width, channels]`` shape fits ``model``."""
    height, width, channels = (int(v) for v in tuple(shape)[-3:])
    multiple = model.size_multiple
    if height % multiple or width % multiple:
        raise CkmsimError(f"The UNet has {len(model.encoder_channels)} down-sampling levels: map height and width "
                          f"must be multiples of {multiple}. Received: shape={tuple(shape)}")
    if channels != model.num_input_channels:
        raise CkmsimError(f"The UNet takes {model.num_input_channels} input channels. Received: shape={tuple(shape)}")


def _check_positive_int(name: str, value) -> None:
    if not is_whole_number(value, minimum=1):
        raise CkmsimError(f"{name} must be a positive integer. Received: {name}={value!r}")


def _int_sequence(name: str, values, minimum: int) -> tuple:
    try:
        values = tuple(values)
    except TypeError:
        raise CkmsimError(f"{name} must be a sequence of integers. Received: {name}={values!r}") from None
    if not all(is_whole_number(v, minimum=minimum) for v in values):
        raise CkmsimError(f"{name} must hold integers >= {minimum}. Received: {name}={values!r}")
    return values
