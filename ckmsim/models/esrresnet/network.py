r"""E-SRResNet: SRResNet with multi-head self-attention and multi-scale feature fusion (Chen et al., Fig. 4).

The network completes one path's path gain map (PGM) and path angle map (PAM) from the uniformly sub-sampled
(low-resolution) maps and priors, eq. (7)-(8): ``[batch, h, w, c_in] -> [batch, scale h, scale w, 2]``.
It reads like the paper's figure::

    head      9x9 conv, PReLU                                   (SRResNet [7])
    trunk     B x ResidualBlock(conv-BN-PReLU-conv-BN, MHA)     MHA with 4 heads in *every* block (Sec. III-B)
              MultiScaleFusion after blocks 4, 8 and 12         branches 1x1, 3x3 d=2, 3x3 d=5, concat, 1x1 fuse
              3x3 conv, BN, + head features (global skip)
    upsample  log2(scale) x Upsample (3x3 conv to 4C, pixel shuffle x2, PReLU)
    tail      9x9 conv to 2 channels (PGM, PAM pixels), linear

Primary path: 5 input channels (PGM, PAM, LoS, binary building map, BS Gaussian map with sigma^2 = 5), 16
blocks of 64 channels. Secondary path: 4 input channels (no LoS), 18 blocks of 128 channels (Sec. V-A). Plain
SRResNet is ``attention=False, fusion_after=()``; the input ablation of Fig. 7 changes ``num_input_channels``.
See :data:`PRESETS`.

Readings where the paper is silent (stated once here):

- *Where MHA sits in a block*: after the second conv/BN, before the block's skip addition, as a pre-norm
  transformer sub-layer with its own residual (``y + MHA(LN(y))``), so a block without attention is exactly
  SRResNet's block.
- *Key size*: ``filters / num_heads`` per head (16 for 64 channels, 4 heads), as in a transformer layer.
- *MSFF*: each branch is followed by a PReLU; the concatenation (3 C channels) is fused back to C by a 1x1
  conv and added to the module's input (a residual, so inserting the module never blocks the trunk's
  gradient). In the 18-block secondary network the modules stay after blocks 4, 8 and 12.
- *Attention cost*: global attention over all ``h w`` positions (the paper's choice, the default) stores
  ``num_heads (h w)^2`` scores per block and sample: 256 MiB in float32 for a 64 x 64 input, per block.
  ``attention_mode="window"`` (attention inside non-overlapping ``window_size^2`` windows, as in Swin) and
  ``"pooled"`` (keys and values average-pooled by ``pool_size``, as in PVT's spatial-reduction attention,
  which keeps a global receptive field) are the cheaper options.

Every layer implements ``get_config``; models save to and load from ``.keras`` files
(``keras.saving.load_model(path)`` after importing this module).
"""

from __future__ import annotations

import math

import keras
from keras import layers, ops

from ckmsim.errors import CkmsimError

#: Keras registration package of every ckmsim layer (``"ckmsim>ResidualBlock"`` in a ``.keras`` file).
PACKAGE = "ckmsim"
#: Attention variants of :class:`MultiHeadSelfAttention`.
ATTENTION_MODES = ("global", "window", "pooled")

#: Named configurations of :class:`ESRResNet` (keyword arguments). ``esrresnet_*`` are the paper's networks
#: (Sec. V-A); ``srresnet_*`` the plain SRResNet baseline of the same size; ``tiny`` a CPU-sized network with
#: the same structure (MHA in every block, MSFF after each quarter of the trunk).
PRESETS: dict[str, dict] = {
    "esrresnet_primary": {"num_input_channels": 5, "num_blocks": 16, "filters": 64},
    "esrresnet_secondary": {"num_input_channels": 4, "num_blocks": 18, "filters": 128},
    "srresnet_primary": {"num_input_channels": 5, "num_blocks": 16, "filters": 64, "attention": False,
                         "fusion_after": ()},
    "srresnet_secondary": {"num_input_channels": 4, "num_blocks": 18, "filters": 128, "attention": False,
                           "fusion_after": ()},
    "tiny": {"num_input_channels": 5, "num_blocks": 4, "filters": 32, "fusion_after": (1, 2, 3)},
}


def _check_positive_int(name: str, value, minimum: int = 1) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise CkmsimError(f"{name} must be an integer >= {minimum}. Received: {name}={value!r}")
    return value


def _prelu(name: str) -> layers.PReLU:
    """PReLU with one slope per channel, shared over the spatial axes (SRResNet)."""
    return layers.PReLU(shared_axes=[1, 2], name=name)


@keras.saving.register_keras_serializable(package=PACKAGE)
class MultiHeadSelfAttention(layers.Layer):
    r"""Multi-head self-attention over the spatial positions of a feature map, with a residual (Sec. III-B).

    .. math::
        \mathbf{Y} = \mathbf{X} + \mathrm{MHA}(\mathrm{LN}(\mathbf{X}))

    where the tokens are the ``h w`` positions of :math:`\mathbf{X}` (Vaswani et al. [14]).

    Parameters
    ----------
    num_heads : int
        Attention heads (4 in the paper).
    key_dim : int or None
        Size of each head's queries and keys; None: ``channels // num_heads`` (at least 1).
    mode : "global" | "window" | "pooled"
        ``global``: every position attends to every position (the paper; memory ``O((h w)^2)``).
        ``window``: attention inside non-overlapping ``window_size x window_size`` windows (``h`` and ``w``
        must be multiples of ``window_size``). ``pooled``: keys and values come from the map average-pooled by
        ``pool_size`` (``h`` and ``w`` multiples of ``pool_size``); memory ``O((h w)^2 / pool_size^2)``.
    window_size, pool_size : int

    Input
    -----
    x : [batch, h, w, channels], float

    Output
    ------
    y : [batch, h, w, channels], float
    """

    def __init__(self, num_heads: int = 4, key_dim: int | None = None, mode: str = "global", window_size: int = 8,
                 pool_size: int = 4, **kwargs):
        super().__init__(**kwargs)
        self.num_heads = _check_positive_int("num_heads", num_heads)
        self.key_dim = None if key_dim is None else _check_positive_int("key_dim", key_dim)
        if mode not in ATTENTION_MODES:
            raise CkmsimError(f"mode must be one of {ATTENTION_MODES}. Received: mode={mode!r}")
        self.mode = mode
        self.window_size = _check_positive_int("window_size", window_size)
        self.pool_size = _check_positive_int("pool_size", pool_size)

    def build(self, input_shape):
        channels = int(input_shape[-1])
        key_dim = self.key_dim or max(1, channels // self.num_heads)
        self.norm = layers.LayerNormalization(epsilon=1e-5, name="norm")
        self.norm.build(input_shape)
        self.attention = layers.MultiHeadAttention(self.num_heads, key_dim, name="mha")
        # [batch, tokens, channels] for both query and value
        self.attention.build((None, None, channels), (None, None, channels))
        self.pool = layers.AveragePooling2D(self.pool_size, name="kv_pool") if self.mode == "pooled" else None

    def call(self, x):
        # [batch, h, w, channels]
        y = self.norm(x)
        shape = ops.shape(y)
        batch, height, width, channels = shape[0], shape[1], shape[2], shape[3]
        if self.mode == "global":
            # [batch, h w, channels]
            tokens = ops.reshape(y, (batch, height * width, channels))
            attended = ops.reshape(self.attention(tokens, tokens), shape)
        elif self.mode == "pooled":
            tokens = ops.reshape(y, (batch, height * width, channels))
            pooled = self.pool(y)
            # [batch, (h / p) (w / p), channels]
            keys = ops.reshape(pooled, (batch, -1, channels))
            attended = ops.reshape(self.attention(tokens, keys), shape)
        else:
            size = self.window_size
            rows, cols = height // size, width // size
            # [batch, rows, size, cols, size, channels] -> [batch, rows, cols, size, size, channels]
            windows = ops.transpose(ops.reshape(y, (batch, rows, size, cols, size, channels)), (0, 1, 3, 2, 4, 5))
            # [batch rows cols, size^2, channels]
            tokens = ops.reshape(windows, (-1, size * size, channels))
            attended = ops.reshape(self.attention(tokens, tokens), (batch, rows, cols, size, size, channels))
            # back to [batch, h, w, channels]
            attended = ops.reshape(ops.transpose(attended, (0, 1, 3, 2, 4, 5)), shape)
        return x + attended

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        return {**super().get_config(), "num_heads": self.num_heads, "key_dim": self.key_dim, "mode": self.mode,
                "window_size": self.window_size, "pool_size": self.pool_size}


@keras.saving.register_keras_serializable(package=PACKAGE)
class ResidualBlock(layers.Layer):
    r"""SRResNet's residual block with E-SRResNet's multi-head attention inside (Sec. III-B).

    .. math::
        \mathbf{y} = \mathbf{x} + \mathrm{MHSA}(\mathrm{BN}(\mathrm{conv}(\mathrm{PReLU}(\mathrm{BN}(\mathrm{conv}(\mathbf{x}))))))

    Parameters
    ----------
    filters : int
        Channels in and out (the input must have ``filters`` channels).
    kernel_size : int
    batch_norm : bool
        SRResNet's batch normalisation after each conv.
    attention : bool
        Insert :class:`MultiHeadSelfAttention` (False: plain SRResNet block).
    num_heads, attention_mode, window_size, pool_size
        Passed to :class:`MultiHeadSelfAttention`.

    Input / Output: ``[batch, h, w, filters]``, float.
    """

    def __init__(self, filters: int, kernel_size: int = 3, batch_norm: bool = True, attention: bool = True,
                 num_heads: int = 4, attention_mode: str = "global", window_size: int = 8, pool_size: int = 4,
                 **kwargs):
        super().__init__(**kwargs)
        self.filters = _check_positive_int("filters", filters)
        self.kernel_size = _check_positive_int("kernel_size", kernel_size)
        self.batch_norm = bool(batch_norm)
        self.use_attention = bool(attention)
        self.num_heads = num_heads
        self.attention_mode = attention_mode
        self.window_size = window_size
        self.pool_size = pool_size
        self.conv1 = layers.Conv2D(self.filters, self.kernel_size, padding="same", name="conv1")
        self.bn1 = layers.BatchNormalization(name="bn1") if self.batch_norm else None
        self.act = _prelu("prelu")
        self.conv2 = layers.Conv2D(self.filters, self.kernel_size, padding="same", name="conv2")
        self.bn2 = layers.BatchNormalization(name="bn2") if self.batch_norm else None
        self.attention = (MultiHeadSelfAttention(num_heads, mode=attention_mode, window_size=window_size,
                                                 pool_size=pool_size, name="attention")
                          if self.use_attention else None)

    def build(self, input_shape):
        if input_shape[-1] != self.filters:
            raise CkmsimError(f"ResidualBlock '{self.name}' needs {self.filters} input channels for its skip "
                              f"connection. Received: input_shape={tuple(input_shape)}")
        shape = tuple(input_shape)
        for layer in (self.conv1, self.bn1, self.act, self.conv2, self.bn2, self.attention):
            if layer is not None:
                layer.build(shape)

    def call(self, x, training=None):
        y = self.conv1(x)
        if self.bn1 is not None:
            y = self.bn1(y, training=training)
        y = self.act(y)
        y = self.conv2(y)
        if self.bn2 is not None:
            y = self.bn2(y, training=training)
        if self.attention is not None:
            y = self.attention(y)
        return x + y

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        return {**super().get_config(), "filters": self.filters, "kernel_size": self.kernel_size,
                "batch_norm": self.batch_norm, "attention": self.use_attention, "num_heads": self.num_heads,
                "attention_mode": self.attention_mode, "window_size": self.window_size, "pool_size": self.pool_size}


@keras.saving.register_keras_serializable(package=PACKAGE)
class MultiScaleFusion(layers.Layer):
    r"""Multi-scale feature fusion (MSFF, Sec. III-B): parallel 1x1, 3x3 dilation-2 and 3x3 dilation-5 convs.

    .. math::
        \mathbf{y} = \mathbf{x} + \mathrm{conv}_{1\times1}\big([\,\sigma(\mathrm{conv}_{1\times1}\mathbf{x}),\;
                     \sigma(\mathrm{conv}_{3\times3,d=2}\mathbf{x}),\; \sigma(\mathrm{conv}_{3\times3,d=5}\mathbf{x})\,]\big)

    with :math:`\sigma` a PReLU and :math:`[\cdot]` channel concatenation. The dilated branches see 5 x 5 and
    11 x 11 cells with the parameters of a 3 x 3 kernel.

    Parameters
    ----------
    filters : int
        Channels of each branch and of the output (the input must have ``filters`` channels when
        ``residual``).
    dilation_rates : (int, int)
        Dilations of the two 3x3 branches (2 and 5 in the paper).
    residual : bool
        Add the input to the fused features.

    Input / Output: ``[batch, h, w, filters]``, float.
    """

    def __init__(self, filters: int, dilation_rates=(2, 5), residual: bool = True, **kwargs):
        super().__init__(**kwargs)
        self.filters = _check_positive_int("filters", filters)
        self.dilation_rates = tuple(_check_positive_int("dilation_rates", int(d)) for d in dilation_rates)
        self.residual = bool(residual)
        self.branches = [layers.Conv2D(self.filters, 1, padding="same", name="branch_1x1")]
        self.branches += [layers.Conv2D(self.filters, 3, padding="same", dilation_rate=d, name=f"branch_3x3_d{d}")
                          for d in self.dilation_rates]
        self.activations = [_prelu(f"prelu_{i}") for i in range(len(self.branches))]
        self.fuse = layers.Conv2D(self.filters, 1, padding="same", name="fuse_1x1")

    def build(self, input_shape):
        if self.residual and input_shape[-1] != self.filters:
            raise CkmsimError(f"MultiScaleFusion '{self.name}' adds its input to {self.filters} fused channels. "
                              f"Received: input_shape={tuple(input_shape)}")
        branch_shape = tuple(input_shape[:-1]) + (self.filters,)
        for branch, activation in zip(self.branches, self.activations):
            branch.build(tuple(input_shape))
            activation.build(branch_shape)
        self.fuse.build(tuple(input_shape[:-1]) + (self.filters * len(self.branches),))

    def call(self, x):
        # [batch, h, w, 3 filters]
        features = ops.concatenate([act(branch(x)) for branch, act in zip(self.branches, self.activations)], axis=-1)
        fused = self.fuse(features)
        return x + fused if self.residual else fused

    def compute_output_shape(self, input_shape):
        return tuple(input_shape[:-1]) + (self.filters,)

    def get_config(self):
        return {**super().get_config(), "filters": self.filters, "dilation_rates": list(self.dilation_rates),
                "residual": self.residual}


@keras.saving.register_keras_serializable(package=PACKAGE)
class Upsample(layers.Layer):
    """x2 up-sampling by sub-pixel convolution (SRResNet): 3x3 conv to ``4 filters``, pixel shuffle, PReLU.

    Output pixel ``(2 i + a, 2 j + b)`` comes from input pixel ``(i, j)``, so full-grid cell ``2 i`` of the
    target sits under lattice sample ``i`` (the sub-sampling of eq. (7) keeps cells ``(2 i, 2 j)``).

    Parameters
    ----------
    filters : int
        Output channels.
    scale : int
        Pixel-shuffle factor (2 in SRResNet's up-sampling blocks).

    Input: ``[batch, h, w, c]``. Output: ``[batch, scale h, scale w, filters]``, float.
    """

    def __init__(self, filters: int, scale: int = 2, **kwargs):
        super().__init__(**kwargs)
        self.filters = _check_positive_int("filters", filters)
        self.scale = _check_positive_int("scale", scale, minimum=2)
        self.conv = layers.Conv2D(self.filters * self.scale ** 2, 3, padding="same", name="conv")
        self.act = _prelu("prelu")

    def build(self, input_shape):
        self.conv.build(tuple(input_shape))
        self.act.build((None, None, None, self.filters))

    def call(self, x):
        # [batch, h, w, s^2 filters] -> [batch, s h, s w, filters]
        shuffled = ops.depth_to_space(self.conv(x), self.scale, data_format="channels_last")
        return self.act(shuffled)

    def compute_output_shape(self, input_shape):
        batch, height, width = input_shape[:3]
        scaled = [None if n is None else n * self.scale for n in (height, width)]
        return (batch, *scaled, self.filters)

    def get_config(self):
        return {**super().get_config(), "filters": self.filters, "scale": self.scale}


@keras.saving.register_keras_serializable(package=PACKAGE)
class ESRResNet(keras.Model):
    """E-SRResNet (Fig. 4) as a functional Keras model; every hyper-parameter is an argument (see
    :data:`PRESETS` for the paper's primary- and secondary-path networks and plain SRResNet).

    Parameters
    ----------
    num_input_channels : int
        5 for the primary path (PGM, PAM, LoS, building, BS map), 4 for the secondary; 2-4 in the ablation.
    num_output_channels : int
        2 (PGM, PAM pixels).
    num_blocks, filters : int
        Residual blocks and their channels (16 x 64 primary, 18 x 128 secondary).
    attention : bool
        MHA inside every residual block (False: SRResNet).
    num_heads : int
        Attention heads (4).
    attention_mode, window_size, pool_size
        See :class:`MultiHeadSelfAttention`.
    fusion_after : tuple of int
        Blocks (1-based) followed by a :class:`MultiScaleFusion` ((4, 8, 12); () for SRResNet).
    scale : int
        Up-sampling factor, a power of 2 (2 in the paper).
    batch_norm : bool
        Batch normalisation in the blocks and after the trunk (SRResNet).
    head_kernel_size : int
        Kernel of the first and last convolutions (9 in SRResNet).
    skip_channels : int
        0: the paper's network, one input, a linear output. ``> 0``: the network is given a full-resolution
        *skip* (the prediction of an interpolator, ``skip_channels`` = ``num_output_channels`` channels) and
        returns ``skip + correction``, the correction's last convolution initialised to zero, so that the
        untrained network *is* the interpolator and training can only move away from it where the data says
        so (ckmsim's choice, not the paper's; :mod:`ckmsim.models.esrresnet.data`).
    guide_channels : int
        Full-resolution channels the network is given beside the lattice (0: none). After up-sampling they are
        concatenated to the features and ``refine_blocks`` 3x3 convolutions at full resolution mix them in,
        before the tail. They carry what is known at every cell, not only on the lattice (the building map,
        the free-space gain and the direction from the BS, the skip itself).
    refine_blocks : int
        Full-resolution 3x3 conv + PReLU layers after the guide concatenation (used when ``guide_channels``).

    Input
    -----
    x : [batch, h, w, num_input_channels], float32
        Low-resolution maps (:mod:`ckmsim.models.esrresnet.data`); the only input when ``skip_channels`` and
        ``guide_channels`` are 0, else the first of ``[lowres, skip, guide]`` (``guide`` only when
        ``guide_channels > 0``)
    skip : [batch, scale h, scale w, skip_channels], float32
    guide : [batch, scale h, scale w, guide_channels], float32

    Output
    ------
    y : [batch, scale h, scale w, num_output_channels], float32
        Full-resolution maps (linear output).
    """

    def __init__(self, num_input_channels: int = 5, num_output_channels: int = 2, num_blocks: int = 16,
                 filters: int = 64, attention: bool = True, num_heads: int = 4, attention_mode: str = "global",
                 window_size: int = 8, pool_size: int = 4, fusion_after=(4, 8, 12), scale: int = 2,
                 batch_norm: bool = True, head_kernel_size: int = 9, skip_channels: int = 0,
                 guide_channels: int = 0, refine_blocks: int = 2, **kwargs):
        _check_positive_int("num_input_channels", num_input_channels)
        _check_positive_int("num_output_channels", num_output_channels)
        _check_positive_int("num_blocks", num_blocks)
        _check_positive_int("filters", filters)
        fusion_after = tuple(int(b) for b in fusion_after)
        bad = [b for b in fusion_after if not 1 <= b <= num_blocks]
        if bad or len(set(fusion_after)) != len(fusion_after):
            raise CkmsimError(f"fusion_after must list distinct blocks in 1..{num_blocks}. "
                              f"Received: fusion_after={fusion_after}")
        if isinstance(scale, bool) or not isinstance(scale, int) or scale < 2 or scale & (scale - 1):
            raise CkmsimError(f"scale must be a power of 2 (>= 2). Received: scale={scale!r}")
        if attention_mode not in ATTENTION_MODES:
            raise CkmsimError(f"attention_mode must be one of {ATTENTION_MODES}. "
                              f"Received: attention_mode={attention_mode!r}")
        _check_positive_int("guide_channels", guide_channels, minimum=0)
        _check_positive_int("refine_blocks", refine_blocks, minimum=0)
        if skip_channels not in (0, num_output_channels):
            raise CkmsimError(f"skip_channels must be 0 or num_output_channels={num_output_channels} (the skip is "
                              f"added to the output). Received: skip_channels={skip_channels!r}")

        lowres = keras.Input((None, None, num_input_channels), name="lowres_maps")
        inputs = [lowres]
        if skip_channels:
            skip = keras.Input((None, None, skip_channels), name="skip_maps")
            inputs.append(skip)
        if guide_channels:
            guide = keras.Input((None, None, guide_channels), name="guide_maps")
            inputs.append(guide)
        x = layers.Conv2D(filters, head_kernel_size, padding="same", name="head_conv")(lowres)
        head = _prelu("head_prelu")(x)
        x = head
        for block in range(1, num_blocks + 1):
            x = ResidualBlock(filters, batch_norm=batch_norm, attention=attention, num_heads=num_heads,
                              attention_mode=attention_mode, window_size=window_size, pool_size=pool_size,
                              name=f"residual_block_{block}")(x)
            if block in fusion_after:
                x = MultiScaleFusion(filters, name=f"msff_after_block_{block}")(x)
        x = layers.Conv2D(filters, 3, padding="same", name="trunk_conv")(x)
        if batch_norm:
            x = layers.BatchNormalization(name="trunk_bn")(x)
        x = layers.Add(name="global_skip")([x, head])
        for step in range(int(math.log2(scale))):
            x = Upsample(filters, 2, name=f"upsample_{step + 1}")(x)
        if guide_channels:
            x = layers.Concatenate(name="guide_concat")([x, guide])
            for step in range(refine_blocks):
                x = layers.Conv2D(filters, 3, padding="same", name=f"refine_conv_{step + 1}")(x)
                x = _prelu(f"refine_prelu_{step + 1}")(x)
        # With a skip the tail starts at zero: the untrained network returns the skip exactly.
        initializer = "zeros" if skip_channels else "glorot_uniform"
        outputs = layers.Conv2D(num_output_channels, head_kernel_size, padding="same", name="tail_conv",
                                kernel_initializer=initializer)(x)
        if skip_channels:
            outputs = layers.Add(name="skip_add")([outputs, skip])
        super().__init__(inputs=inputs if len(inputs) > 1 else lowres, outputs=outputs, **kwargs)

        self.num_input_channels = num_input_channels
        self.num_output_channels = num_output_channels
        self.num_blocks = num_blocks
        self.filters = filters
        self.attention = bool(attention)
        self.num_heads = num_heads
        self.attention_mode = attention_mode
        self.window_size = window_size
        self.pool_size = pool_size
        self.fusion_after = fusion_after
        self.scale = scale
        self.batch_norm = bool(batch_norm)
        self.head_kernel_size = head_kernel_size
        self.skip_channels = int(skip_channels)
        self.guide_channels = int(guide_channels)
        self.refine_blocks = int(refine_blocks)

    def get_config(self):
        return {"name": self.name, "trainable": self.trainable,
                "num_input_channels": self.num_input_channels, "num_output_channels": self.num_output_channels,
                "num_blocks": self.num_blocks, "filters": self.filters, "attention": self.attention,
                "num_heads": self.num_heads, "attention_mode": self.attention_mode, "window_size": self.window_size,
                "pool_size": self.pool_size, "fusion_after": list(self.fusion_after), "scale": self.scale,
                "batch_norm": self.batch_norm, "head_kernel_size": self.head_kernel_size,
                "skip_channels": self.skip_channels, "guide_channels": self.guide_channels,
                "refine_blocks": self.refine_blocks}

    @classmethod
    def from_config(cls, config):
        return cls(**config)


@keras.saving.register_keras_serializable(package=PACKAGE)
class PathSRLoss(keras.losses.Loss):
    r"""Loss of the skip-corrected path network (:mod:`ckmsim.models.esrresnet.data`), one value per batch.

    .. math::
        L = \frac{\sum_c w^p_c \big[(\hat g_c - g_c)^2
                 + 2\,(1 - \hat{\mathbf u}_c \cdot \mathbf u_c / \lVert\hat{\mathbf u}_c\rVert)\big]}
                 {\sum_c w^p_c}
            + \lambda\, \frac{\sum_c w^o_c\, \mathrm{BCE}(\hat z_c, e_c)}{\sum_c w^o_c}

    over the cells ``c`` of the batch: the normalised gain error and the squared chord between the predicted
    and true unit azimuth vectors on the cells with the true path (weight :math:`w^p`), and the binary
    cross-entropy of the exists logit :math:`\hat z` on every open cell (weight :math:`w^o`).

    Parameters
    ----------
    exists_weight : float
        :math:`\lambda`.

    Input
    -----
    y_true : [batch, H, W, 6], float (gain, cos az, sin az, exists, w_path, w_open)
    y_pred : [batch, H, W, 4], float (gain, cos az, sin az, exists logit)
    """

    def __init__(self, exists_weight: float = 0.1, name: str = "path_sr_loss", **kwargs):
        super().__init__(name=name, **kwargs)
        self.exists_weight = float(exists_weight)

    def call(self, y_true, y_pred):
        y_true = ops.cast(y_true, y_pred.dtype)
        weight_path, weight_open = y_true[..., 4], y_true[..., 5]
        gain_error = ops.square(y_pred[..., 0] - y_true[..., 0])
        predicted = y_pred[..., 1:3]
        norm = ops.sqrt(ops.sum(ops.square(predicted), axis=-1) + 1e-8)
        cosine = ops.sum(predicted * y_true[..., 1:3], axis=-1) / norm
        chord = 2.0 * (1.0 - cosine)
        logit, exists = y_pred[..., 3], y_true[..., 3]
        # numerically stable BCE with logits: softplus(z) - e z
        cross_entropy = ops.softplus(logit) - exists * logit
        path_term = ops.sum(weight_path * (gain_error + chord)) / (ops.sum(weight_path) + 1e-6)
        exists_term = ops.sum(weight_open * cross_entropy) / (ops.sum(weight_open) + 1e-6)
        return path_term + self.exists_weight * exists_term

    def get_config(self):
        return {**super().get_config(), "exists_weight": self.exists_weight}


def build_esrresnet(preset: str | None = None, **overrides) -> ESRResNet:
    """An :class:`ESRResNet` from a named preset (:data:`PRESETS`) with keyword overrides.

    ``build_esrresnet("esrresnet_primary")`` is the paper's primary-path network;
    ``build_esrresnet("tiny", num_input_channels=4)`` a small secondary-path one.
    """
    if preset is not None and preset not in PRESETS:
        raise CkmsimError(f"Unknown ESRResNet preset; expected one of {sorted(PRESETS)}. Received: preset={preset!r}")
    arguments = {**(PRESETS[preset] if preset else {}), **overrides}
    return ESRResNet(**arguments)


def load_esrresnet(path) -> keras.Model:
    """Load a model saved with ``model.save(path)`` (a ``.keras`` file), custom layers included."""
    from pathlib import Path

    path = Path(path)
    if not path.is_file():
        raise CkmsimError(f"E-SRResNet model file '{path}' does not exist")
    return keras.saving.load_model(path, compile=False)
