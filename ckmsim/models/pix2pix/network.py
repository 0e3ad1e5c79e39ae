r"""pix2pix (Isola, Zhu, Zhou, Efros, "Image-to-image translation with conditional adversarial networks",
CVPR 2017): the cGAN baseline of CKMDiff's Tables III-VIII.

CKMDiff cites the conditional GAN of Mirza and Osindero [55], which has no image architecture; pix2pix is that
GAN for images, and its layout is the one used here, each piece one class:

- :class:`EncoderBlock` / :class:`DecoderBlock`: pix2pix's ``Ck`` (4 x 4 convolution, stride 2, normalisation,
  LeakyReLU 0.2) and ``CDk`` (4 x 4 transposed convolution, stride 2, normalisation, dropout 0.5, ReLU);
- :class:`UNetGenerator`: the U-Net generator, encoder ``C64-C128-C256-C512-...`` with skip connections to
  the mirrored decoder, dropout in the innermost decoder blocks, no normalisation on the first and the
  innermost encoder block (pix2pix's code: a 1 x 1 bottleneck normalised over a batch of one is zero);
  the last transposed convolution outputs the gain as pixels with a sigmoid (pixels lie in [0, 1]; pix2pix's
  tanh is for images in [-1, 1]);
- :class:`PatchDiscriminator`: the PatchGAN, which scores every overlapping patch of its receptive field as
  real or fake given the condition: ``C64-C128-C256-C512`` at strides 2, 2, 2, 1, then a 1-channel
  convolution (the 70 x 70 PatchGAN); :meth:`PatchDiscriminator.receptive_field` is the closed form;
- :class:`Pix2Pix`: the two networks and the objective (pix2pix eq. (4)) as a Keras model whose
  ``train_step`` takes one Adam step for each network:

  .. math::

      \mathcal{L}_G = \lambda\, \mathbb{E}\,\lVert x - G(y) \rVert_1
                      + w_{adv}\, \mathrm{BCE}\!\left(1, D(y, G(y))\right), \qquad
      \mathcal{L}_D = \tfrac12 \left[\mathrm{BCE}\!\left(1, D(y, x)\right)
                      + \mathrm{BCE}\!\left(0, D(y, G(y))\right)\right]

  with :math:`y` the condition image, :math:`x` the target pixels, :math:`\lambda = 100` and the
  non-saturating generator loss (pix2pix Sec. 3.3); :math:`w_{adv} = 0` (or no discriminator) leaves a plain
  L1 (or MSE) regressor.

Weights start from :math:`\mathcal{N}(0, 0.02)` (pix2pix Sec. 6.2). Batch normalisation uses PyTorch's
momentum (0.1 of the new batch, Keras ``momentum = 0.9``), as pix2pix's code; ``norm = "instance"`` is the
choice pix2pix's code offers for small batches. At inference dropout is off (a deterministic map; pix2pix
keeps it on as its only noise source, which a map-error baseline does not want).
"""

from __future__ import annotations

import ckmsim  # noqa: F401  (Mitsuba before TensorFlow / Keras)

import keras
from keras import layers, ops

from ckmsim.errors import CkmsimError
from ckmsim.validation import is_finite_number, is_whole_number

PACKAGE = "ckmsim"
#: Normalisations of the blocks: batch (pix2pix's default), instance (GroupNorm with one group per channel), none.
NORMS = ("batch", "instance", "none")
#: Reconstruction terms of :class:`Pix2Pix`.
RECONSTRUCTIONS = ("l1", "mse")
#: pix2pix's U-Net-256: eight stride-2 levels, 256 x 256 -> 1 x 1.
DEFAULT_GENERATOR_FILTERS = (64, 128, 256, 512, 512, 512, 512, 512)
#: Decoder blocks with dropout, counted from the innermost (pix2pix: the first three ``CD512``).
DEFAULT_NUM_DROPOUT = 3
#: pix2pix's 70 x 70 PatchGAN.
DEFAULT_DISCRIMINATOR_FILTERS = (64, 128, 256, 512)
#: pix2pix's lambda (eq. (4)), its Adam learning rate and momentum.
PIX2PIX_L1_WEIGHT = 100.0
PIX2PIX_LEARNING_RATE = 2e-4
PIX2PIX_BETA_1 = 0.5
KERNEL_SIZE = 4
LEAKY_SLOPE = 0.2
#: PyTorch's BatchNorm2d momentum 0.1 in Keras' convention.
BATCH_NORM_MOMENTUM = 0.9


def _init():
    return keras.initializers.RandomNormal(0.0, 0.02)


def _norm_layer(norm: str, name: str):
    if norm == "batch":
        return layers.BatchNormalization(momentum=BATCH_NORM_MOMENTUM, epsilon=1e-5, name=name)
    if norm == "instance":
        return layers.GroupNormalization(groups=-1, epsilon=1e-5, name=name)
    return None


def _check_norm(norm) -> str:
    if norm not in NORMS:
        raise CkmsimError(f"norm must be one of {list(NORMS)}. Received: norm={norm!r}")
    return norm


def _positive_ints(name: str, values) -> tuple[int, ...]:
    try:
        values = tuple(values)
    except TypeError:
        raise CkmsimError(f"{name} must be a sequence of positive integers. Received: {name}={values!r}") from None
    if not values or not all(is_whole_number(v, minimum=1) for v in values):
        raise CkmsimError(f"{name} must hold at least one positive integer. Received: {name}={values!r}")
    return tuple(int(v) for v in values)


class _ConvNormBlock(layers.Layer):
    """What pix2pix's encoder and decoder blocks share: a (transposed) convolution ``self.conv`` and its optional
    normalisation ``self.normalization``, built on the convolution's output shape."""

    def build(self, input_shape):
        self.conv.build(input_shape)
        if self.normalization is not None:
            self.normalization.build(self.conv.compute_output_shape(input_shape))

    def conv_norm(self, x, training=None):
        x = self.conv(x)
        return x if self.normalization is None else self.normalization(x, training=training)

    def compute_output_shape(self, input_shape):
        return self.conv.compute_output_shape(input_shape)


@keras.saving.register_keras_serializable(package=PACKAGE)
class EncoderBlock(_ConvNormBlock):
    """pix2pix's ``Ck``: a 4 x 4 convolution at ``strides``, normalisation, LeakyReLU(0.2).

    Input
    -----
    x : ``[batch, height, width, channels]``, float32

    Output
    ------
    y : ``[batch, ceil(height / strides), ceil(width / strides), filters]``
    """

    def __init__(self, filters: int, strides: int = 2, norm: str = "batch", **kwargs):
        super().__init__(**kwargs)
        self.filters = _positive_ints("filters", [filters])[0]
        self.strides = _positive_ints("strides", [strides])[0]
        self.norm = _check_norm(norm)
        # a bias before a normalisation with its own shift is redundant (pix2pix's use_bias rule)
        self.conv = layers.Conv2D(self.filters, KERNEL_SIZE, strides=self.strides, padding="same",
                                  use_bias=self.norm == "none", kernel_initializer=_init(), name="conv")
        self.normalization = _norm_layer(self.norm, "norm")

    def call(self, x, training=None):
        return ops.leaky_relu(self.conv_norm(x, training), LEAKY_SLOPE)

    def get_config(self):
        return {**super().get_config(), "filters": self.filters, "strides": self.strides, "norm": self.norm}


@keras.saving.register_keras_serializable(package=PACKAGE)
class DecoderBlock(_ConvNormBlock):
    """pix2pix's ``CDk`` (``Ck`` with ``dropout_rate = 0``): a 4 x 4 transposed convolution at stride 2,
    normalisation, dropout, ReLU.

    Input
    -----
    x : ``[batch, height, width, channels]``, float32

    Output
    ------
    y : ``[batch, 2 height, 2 width, filters]``
    """

    def __init__(self, filters: int, dropout_rate: float = 0.0, norm: str = "batch", **kwargs):
        super().__init__(**kwargs)
        self.filters = _positive_ints("filters", [filters])[0]
        if not (is_finite_number(dropout_rate) and 0.0 <= dropout_rate < 1.0):
            raise CkmsimError(f"dropout_rate must be in [0, 1). Received: dropout_rate={dropout_rate!r}")
        self.dropout_rate = float(dropout_rate)
        self.norm = _check_norm(norm)
        self.conv = layers.Conv2DTranspose(self.filters, KERNEL_SIZE, strides=2, padding="same",
                                           use_bias=self.norm == "none", kernel_initializer=_init(),
                                           name="conv_transpose")
        self.normalization = _norm_layer(self.norm, "norm")
        self.dropout = layers.Dropout(self.dropout_rate, name="dropout") if self.dropout_rate > 0 else None

    def call(self, x, training=None):
        x = self.conv_norm(x, training)
        if self.dropout is not None:
            x = self.dropout(x, training=training)
        return ops.relu(x)

    def get_config(self):
        return {**super().get_config(), "filters": self.filters, "dropout_rate": self.dropout_rate,
                "norm": self.norm}


@keras.saving.register_keras_serializable(package=PACKAGE)
class UNetGenerator(keras.Model):
    r"""pix2pix's U-Net generator, a functional model built in ``__init__``.

    With ``D = len(filters)`` levels and :math:`c_l` = ``filters[l - 1]``:

    - down, :math:`l = 1..D`: ``EncoderBlock(c_l)`` -> ``e_l`` at :math:`1/2^l` (no normalisation at
      :math:`l = 1` and :math:`l = D`);
    - up, :math:`l = D-1..1`: ``DecoderBlock(c_l)`` (dropout in the first ``num_dropout`` of them), concatenated
      with ``e_l``;
    - out: a 4 x 4 transposed convolution at stride 2 to ``num_output_channels`` with a sigmoid.

    Input
    -----
    condition : ``[batch, height, width, num_input_channels]``, float32
        ``height`` and ``width`` multiples of ``2 ** len(filters)`` (:attr:`size_multiple`).

    Output
    ------
    pixels : ``[batch, height, width, num_output_channels]``, float32 in [0, 1]

    Parameters
    ----------
    num_input_channels, num_output_channels : int
        3 and 1 for CKMDiff's condition image and gain pixels.
    filters : sequence of int
        Width of each encoder level (default: pix2pix's U-Net-256).
    num_dropout : int or None
        Decoder blocks with dropout, from the innermost; None: pix2pix's 3 (all of them with fewer).
    dropout_rate : float
        pix2pix: 0.5.
    norm : "batch", "instance" or "none"
    """

    def __init__(self, num_input_channels: int = 3, num_output_channels: int = 1,
                 filters=DEFAULT_GENERATOR_FILTERS, num_dropout: int | None = None,
                 dropout_rate: float = 0.5, norm: str = "batch", **kwargs):
        num_input_channels = _positive_ints("num_input_channels", [num_input_channels])[0]
        num_output_channels = _positive_ints("num_output_channels", [num_output_channels])[0]
        filters = _positive_ints("filters", filters)
        depth = len(filters)
        if num_dropout is None:
            num_dropout = min(DEFAULT_NUM_DROPOUT, depth - 1)
        if not is_whole_number(num_dropout, minimum=0) or num_dropout > depth - 1:
            raise CkmsimError(f"num_dropout must be an integer in 0..{depth - 1} (the decoder blocks of {depth} "
                              f"levels). Received: num_dropout={num_dropout!r}")
        _check_norm(norm)

        inputs = keras.Input(shape=(None, None, num_input_channels), name="condition")
        skips, x = [], inputs
        for level, width in enumerate(filters, start=1):
            level_norm = "none" if level in (1, depth) else norm
            x = EncoderBlock(width, norm=level_norm, name=f"down{level}")(x)
            skips.append(x)
        # x is the bottleneck e_D; walk back up to level 1, concatenating e_l at each level.
        for k, level in enumerate(range(depth - 1, 0, -1)):
            rate = dropout_rate if k < num_dropout else 0.0
            x = DecoderBlock(filters[level - 1], dropout_rate=rate, norm=norm, name=f"up{level}")(x)
            x = layers.Concatenate(name=f"skip{level}")([x, skips[level - 1]])
        outputs = layers.Conv2DTranspose(num_output_channels, KERNEL_SIZE, strides=2, padding="same",
                                         activation="sigmoid", kernel_initializer=_init(), name="pixels")(x)
        super().__init__(inputs=inputs, outputs=outputs, **kwargs)

        self.num_input_channels = num_input_channels
        self.num_output_channels = num_output_channels
        self.filters = filters
        self.num_dropout = int(num_dropout)
        self.dropout_rate = float(dropout_rate)
        self.norm = norm

    @property
    def size_multiple(self) -> int:
        """Height and width of an input must be multiples of this (``2 ** len(filters)``)."""
        return 2 ** len(self.filters)

    def get_config(self):
        return {"name": self.name, "trainable": self.trainable, "num_input_channels": self.num_input_channels,
                "num_output_channels": self.num_output_channels, "filters": list(self.filters),
                "num_dropout": self.num_dropout, "dropout_rate": self.dropout_rate, "norm": self.norm}

    @classmethod
    def from_config(cls, config):
        return cls(**config)


@keras.saving.register_keras_serializable(package=PACKAGE)
class PatchDiscriminator(keras.Model):
    r"""pix2pix's PatchGAN conditioned on the condition image, a functional model built in ``__init__``.

    ``EncoderBlock(filters[i], strides[i])`` for each level (no normalisation on the first), then a 4 x 4
    convolution at stride 1 to one logit per patch. With kernels :math:`k = 4` and strides :math:`s_i` of
    all :math:`L + 1` convolutions (the last :math:`s = 1`), an output cell sees

    .. math::  r = 1 + \sum_{i=1}^{L+1} (k - 1) \prod_{j<i} s_j

    input cells (:meth:`receptive_field`; pix2pix's ``C64-C128-C256-C512``: 70) and the output grid is the
    input's divided by :math:`\prod_i s_i` (rounded up; :meth:`output_size`).

    Input
    -----
    [condition, pixels] : ``[batch, height, width, num_condition_channels]`` and
        ``[batch, height, width, num_image_channels]``, float32

    Output
    ------
    logits : ``[batch, ceil(height / S), ceil(width / S), 1]``, float32 (``S`` the product of the strides),
        one real/fake logit per patch

    Parameters
    ----------
    num_condition_channels, num_image_channels : int
    filters : sequence of int
        Width of each level (default: pix2pix's 70 x 70 PatchGAN).
    strides : sequence of int or None
        Stride of each level; None: 2 for all but the last level, 1 for it (pix2pix).
    norm : "batch", "instance" or "none"
    """

    def __init__(self, num_condition_channels: int = 3, num_image_channels: int = 1,
                 filters=DEFAULT_DISCRIMINATOR_FILTERS, strides=None, norm: str = "batch", **kwargs):
        num_condition_channels = _positive_ints("num_condition_channels", [num_condition_channels])[0]
        num_image_channels = _positive_ints("num_image_channels", [num_image_channels])[0]
        filters = _positive_ints("filters", filters)
        strides = (2,) * (len(filters) - 1) + (1,) if strides is None else _positive_ints("strides", strides)
        if len(strides) != len(filters):
            raise CkmsimError(f"strides needs one value per level of filters={list(filters)}. "
                              f"Received: strides={list(strides)}")
        _check_norm(norm)

        condition = keras.Input(shape=(None, None, num_condition_channels), name="condition")
        image = keras.Input(shape=(None, None, num_image_channels), name="pixels")
        x = layers.Concatenate(name="pair")([condition, image])
        for level, (width, stride) in enumerate(zip(filters, strides), start=1):
            x = EncoderBlock(width, stride, norm="none" if level == 1 else norm, name=f"level{level}")(x)
        logits = layers.Conv2D(1, KERNEL_SIZE, padding="same", kernel_initializer=_init(), name="logits")(x)
        super().__init__(inputs=[condition, image], outputs=logits, **kwargs)

        self.num_condition_channels = num_condition_channels
        self.num_image_channels = num_image_channels
        self.filters = filters
        self.strides = strides
        self.norm = norm

    @property
    def receptive_field(self) -> int:
        """Side of the input patch one output logit sees, in cells (the class docstring's closed form)."""
        size, jump = 1, 1
        for stride in self.strides + (1,):
            size += (KERNEL_SIZE - 1) * jump
            jump *= stride
        return size

    def output_size(self, height: int, width: int) -> tuple[int, int]:
        """The logit grid of a ``height x width`` input: each side divided by the strides' product, rounded up."""
        total = 1
        for stride in self.strides:
            total *= stride
        return -(-int(height) // total), -(-int(width) // total)

    def get_config(self):
        return {"name": self.name, "trainable": self.trainable,
                "num_condition_channels": self.num_condition_channels,
                "num_image_channels": self.num_image_channels, "filters": list(self.filters),
                "strides": list(self.strides), "norm": self.norm}

    @classmethod
    def from_config(cls, config):
        return cls(**config)


@keras.saving.register_keras_serializable(package=PACKAGE)
class Pix2Pix(keras.Model):
    r"""The cGAN: a generator, a discriminator and pix2pix's objective (module docstring) in ``train_step``.

    ``call(condition)`` is the generator's map. :meth:`compile` takes the generator's optimizer (the shared
    trainer passes its Adam at the run's learning rate) and sets pix2pix's momentum ``beta_1`` on it when it
    is an Adam; the discriminator steps with a twin of it (same class and settings). The logs are ``loss``,
    the reconstruction term alone (L1 or MSE of the pixels, what the trainer's best model and learning-rate
    schedule watch: the adversarial terms of a GAN do not fall as it improves), and, with a discriminator,
    ``g_loss`` (:math:`\mathcal{L}_G`), ``adversarial`` (its BCE term) and ``d_loss`` (:math:`\mathcal{L}_D`).

    Input
    -----
    condition : ``[batch, height, width, num_input_channels]``, float32

    Output
    ------
    pixels : ``[batch, height, width, 1]``, float32

    Parameters
    ----------
    generator : keras.Model (:class:`UNetGenerator`, or any image-to-image model)
    discriminator : :class:`PatchDiscriminator` or None
        None: no adversarial term (``adversarial_weight`` must be 0).
    reconstruction : "l1" (pix2pix) or "mse"
    reconstruction_weight : float
        :math:`\lambda` (pix2pix: 100).
    adversarial_weight : float
        :math:`w_{adv}` (pix2pix: 1; 0 gives a plain regressor whatever the discriminator does).
    beta_1 : float
        Adam's momentum set on the optimizers by :meth:`compile` (pix2pix: 0.5).
    """

    def __init__(self, generator, discriminator=None, reconstruction: str = "l1",
                 reconstruction_weight: float = PIX2PIX_L1_WEIGHT, adversarial_weight: float = 1.0,
                 beta_1: float = PIX2PIX_BETA_1, **kwargs):
        super().__init__(**kwargs)
        if reconstruction not in RECONSTRUCTIONS:
            raise CkmsimError(f"reconstruction must be one of {list(RECONSTRUCTIONS)}. "
                              f"Received: reconstruction={reconstruction!r}")
        for name, value in (("reconstruction_weight", reconstruction_weight),
                            ("adversarial_weight", adversarial_weight)):
            if not (is_finite_number(value) and value >= 0):
                raise CkmsimError(f"{name} must be a number >= 0. Received: {name}={value!r}")
        if not (is_finite_number(beta_1) and 0.0 <= beta_1 < 1.0):
            raise CkmsimError(f"beta_1 must be in [0, 1). Received: beta_1={beta_1!r}")
        if discriminator is None and adversarial_weight > 0:
            raise CkmsimError(f"An adversarial term needs a discriminator. Received: discriminator=None, "
                              f"adversarial_weight={adversarial_weight!r}")
        self.generator = generator
        self.discriminator = discriminator
        self.reconstruction = reconstruction
        self.reconstruction_weight = float(reconstruction_weight)
        self.adversarial_weight = float(adversarial_weight)
        self.beta_1 = float(beta_1)
        names = ("loss", "g_loss", "adversarial", "d_loss") if discriminator is not None else ("loss",)
        self.trackers = [keras.metrics.Mean(name=name) for name in names]
        self.discriminator_optimizer = None
        # functional networks are built at construction, and so is the pair (it has no weights of its own)
        self.built = bool(generator.built and (discriminator is None or discriminator.built))

    def call(self, condition, training=False):
        return self.generator(condition, training=training)

    def compile(self, optimizer="adam", loss=None, metrics=None, **kwargs):
        """Keras' ``compile`` for the generator's ``optimizer``; ``loss`` and ``metrics`` must be empty (the
        losses are the objective's, the logs the class docstring's)."""
        if loss is not None or metrics:
            raise CkmsimError(f"Pix2Pix computes its own losses and logs. Received: loss={loss!r}, "
                              f"metrics={metrics!r}")
        super().compile(optimizer=optimizer, **kwargs)
        if isinstance(self.optimizer, keras.optimizers.Adam):
            self.optimizer.beta_1 = self.beta_1
        # Both built now on their own network's variables, so that the trainer's backups restore into them
        # (Keras would build the generator's on every trainable variable of the model, D's included).
        self.optimizer.build(self.generator.trainable_variables)
        if self.discriminator is not None:
            optimizer = self.optimizer
            self.discriminator_optimizer = type(optimizer).from_config(optimizer.get_config())
            self.discriminator_optimizer.build(self.discriminator.trainable_variables)

    def compile_from_config(self, config):
        """Keras' loading hook for a compiled ``.keras`` file: :meth:`compile` again, so that both optimizers
        exist, built, before their saved state is read."""
        self.compile(**keras.saving.deserialize_keras_object(config))

    @property
    def metrics(self):
        return list(self.trackers)

    def reconstruction_loss(self, target, pixels):
        """Mean absolute (``"l1"``) or squared (``"mse"``) pixel error over the batch, a scalar."""
        error = pixels - target
        return ops.mean(ops.abs(error) if self.reconstruction == "l1" else ops.square(error))

    def objective(self, condition, target, training: bool):
        """``{"loss", "g_loss"[, "adversarial", "d_loss"]}`` scalars of one batch (class docstring)."""
        pixels = self.generator(condition, training=training)
        reconstruction = self.reconstruction_loss(target, pixels)
        losses = {"loss": reconstruction, "g_loss": self.reconstruction_weight * reconstruction}
        if self.discriminator is not None:
            real = self.discriminator([condition, target], training=training)
            fake = self.discriminator([condition, pixels], training=training)
            # non-saturating generator loss; the discriminator's objective halved (pix2pix Sec. 3.3)
            adversarial = _bce_logits(ops.ones_like(fake), fake)
            losses["adversarial"] = adversarial
            losses["g_loss"] = losses["g_loss"] + self.adversarial_weight * adversarial
            losses["d_loss"] = 0.5 * (_bce_logits(ops.ones_like(real), real) + _bce_logits(ops.zeros_like(fake), fake))
        return losses

    def train_step(self, data):
        import tensorflow as tf

        condition, target = data[0], data[1]
        with tf.GradientTape(persistent=True) as tape:
            losses = self.objective(condition, target, training=True)
        generator_variables = self.generator.trainable_variables
        self.optimizer.apply_gradients(zip(tape.gradient(losses["g_loss"], generator_variables),
                                           generator_variables))
        if self.discriminator is not None:
            discriminator_variables = self.discriminator.trainable_variables
            self.discriminator_optimizer.apply_gradients(
                zip(tape.gradient(losses["d_loss"], discriminator_variables), discriminator_variables))
        del tape
        return self._log(losses)

    def test_step(self, data):
        return self._log(self.objective(data[0], data[1], training=False))

    def _log(self, losses):
        for tracker in self.trackers:
            tracker.update_state(losses[tracker.name])
        return {tracker.name: tracker.result() for tracker in self.trackers}

    def get_config(self):
        return {**super().get_config(), "generator": keras.saving.serialize_keras_object(self.generator),
                "discriminator": (keras.saving.serialize_keras_object(self.discriminator)
                                  if self.discriminator is not None else None),
                "reconstruction": self.reconstruction, "reconstruction_weight": self.reconstruction_weight,
                "adversarial_weight": self.adversarial_weight, "beta_1": self.beta_1}

    @classmethod
    def from_config(cls, config):
        config = dict(config)
        for key in ("generator", "discriminator"):
            if config.get(key) is not None:
                config[key] = keras.saving.deserialize_keras_object(config[key])
        return cls(**config)


def _bce_logits(labels, logits):
    """Binary cross-entropy of logits, the mean over every patch of the batch."""
    return ops.mean(ops.binary_crossentropy(labels, logits, from_logits=True))
