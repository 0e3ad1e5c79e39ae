r"""Swin Transformer encoder (Liu et al., ICCV 2021): CKMDiff's condition encoder, written from Keras layers.

CKMDiff encodes the degraded observation ``[batch, H, W, C_in]`` with a Swin encoder into multi-level feature
maps that condition the latent diffusion network. :class:`SwinEncoder` follows the Swin paper's structure::

    PatchEmbed     conv, kernel = stride = patch_size, to embed_dim channels; LayerNorm
    stage 0        depths[0] x SwinBlock(shift 0, window_size // 2, 0, ...)          embed_dim channels
    stage i > 0    PatchMerging (2x2 neighbourhood -> 4C, LN, linear to 2C), then depths[i] x SwinBlock
    each stage     a final LayerNorm; its output is one level of the returned list

    SwinBlock      x = x + W-MSA(LN(x))  (SW-MSA: cyclic shift by -shift, Swin's mask, shift back)
                   x = x + MLP(LN(x))    (linear to mlp_ratio C, GELU, linear to C)

so stage ``i`` is ``[batch, H / (patch_size 2^i), W / (patch_size 2^i), embed_dim 2^i]``. The attention inside a
window adds Swin's learned relative position bias (a ``(2 window_size - 1)^2 x num_heads`` table, eq. (4)).

The CKMDiff paper uses a Swin-B encoder (``embed_dim=128, depths=(2, 2, 18, 2), num_heads=(4, 8, 16, 32),
window_size=7, patch_size=4``); the defaults here are a small CPU-sized network of the same structure. keras-hub's
``SwinTransformerBackbone`` was not used: keras-hub 0.31 pulls tensorflow-text and TensorFlow 2.21 into this
TensorFlow 2.19 stack (measured: ``pip install --dry-run keras-hub==0.31.0`` would install tensorflow-2.21.0),
and it fails once a stage is smaller than its window. No pretrained weights can be downloaded here, so the
encoder is trained from scratch with the rest of the model.

Readings where the papers are silent, or where this code departs from the official Swin code (stated once here):

- *Stages smaller than the window*: as in the official code, a block whose map has ``min(H, W) <= window_size``
  attends over windows of size ``min(H, W)`` without shift (one window over a square map: global attention).
  ``H`` and ``W`` must be multiples of that effective window, otherwise :class:`~ckmsim.errors.CkmsimError`.
- *Relative position bias table*: always sized for the configured ``window_size`` (the official code shrinks it
  with the window); a smaller effective window reads the displacements it needs from the same table. The
  weights are therefore independent of the input size, and one encoder runs on maps of any admissible size.
- *Mask*: Swin's ``-100`` on the logits of token pairs that the cyclic shift brought together from different
  regions of the map, computed in numpy from the static ``H, W`` (:func:`shifted_window_mask`).
- *Left out*: dropout, stochastic depth and absolute position embeddings (all off in Swin's default configs
  except stochastic depth, a training regulariser a diffusion condition encoder does not need); no
  classification head (the encoder returns the stages' feature maps).
- *Initialisation*: truncated normal with std 0.02 for linear kernels and the bias table, zero biases, unit
  LayerNorm (Swin's ``_init_weights``); LayerNorm epsilon 1e-5 (PyTorch's default); exact (erf) GELU.
- *PatchMerging order*: the four neighbours are concatenated as Swin does, ``(0, 0), (1, 0), (0, 1), (1, 1)``
  as (row, column) offsets.

Every layer implements ``get_config``; :class:`SwinEncoder` saves to and loads from ``.keras`` files
(``keras.saving.load_model(path)`` after importing this module).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import keras
import numpy as np
from keras import layers, ops

from ckmsim.errors import CkmsimError

#: Keras registration package of every ckmsim layer (``"ckmsim>SwinBlock"`` in a ``.keras`` file).
PACKAGE = "ckmsim"
#: Swin's additive logit mask between tokens from different regions of the cyclically shifted map.
MASK_VALUE = -100.0
#: LayerNorm epsilon (PyTorch's default, as in the official Swin code).
LN_EPSILON = 1e-5


def _check_positive_int(name: str, value, minimum: int = 1) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < minimum:
        raise CkmsimError(f"{name} must be an integer >= {minimum}. Received: {name}={value!r}")
    return int(value)


def _check_positive_number(name: str, value) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)) \
            or not math.isfinite(value) or value <= 0:
        raise CkmsimError(f"{name} must be a finite number > 0. Received: {name}={value!r}")
    return float(value)


def _static_size(name: str, value) -> int:
    """A spatial size that must be known when the graph is built (masks and windows are built from it)."""
    if value is None or not isinstance(value, (int, np.integer)):
        raise CkmsimError(f"{name} must be static (known when the layer is called) to cut windows. "
                          f"Received: {name}={value!r}")
    return int(value)


def _dense(units: int, name: str, use_bias: bool = True) -> layers.Dense:
    return layers.Dense(units, use_bias=use_bias, kernel_initializer=keras.initializers.TruncatedNormal(stddev=0.02),
                        bias_initializer="zeros", name=name)


def _layer_norm(name: str) -> layers.LayerNormalization:
    return layers.LayerNormalization(epsilon=LN_EPSILON, name=name)


def effective_window(height: int, width: int, window_size: int, shift: int) -> tuple[int, int]:
    """``(window, shift)`` used on a ``height x width`` map: ``(min(H, W), 0)`` when ``min(H, W) <= window_size``
    (the official Swin rule), ``(window_size, shift)`` otherwise."""
    if min(height, width) <= window_size:
        return min(height, width), 0
    return window_size, shift


# ----------------------------------------------------------------------------------------------------------------
# Windows, masks and relative positions
# ----------------------------------------------------------------------------------------------------------------

def window_partition(x, window_size: int):
    """Cut a map into non-overlapping square windows.

    Input ``x`` ``[batch, h, w, c]`` (``h``, ``w`` static multiples of ``window_size``); output
    ``[batch * nW, window_size^2, c]`` with ``nW = (h / ws) (w / ws)``: the windows of one image in row-major
    order over the map, then the next image; the tokens row-major inside a window.
    """
    size = _check_positive_int("window_size", window_size)
    shape = ops.shape(x)
    height, width = _static_size("height", shape[1]), _static_size("width", shape[2])
    channels = _static_size("channels", shape[3])
    if height % size or width % size:
        raise CkmsimError(f"The map size must be a multiple of window_size={size}. "
                          f"Received: height={height}, width={width}")
    # [batch, rows, ws, cols, ws, c] -> [batch, rows, cols, ws, ws, c]
    windows = ops.reshape(x, (-1, height // size, size, width // size, size, channels))
    windows = ops.transpose(windows, (0, 1, 3, 2, 4, 5))
    return ops.reshape(windows, (-1, size * size, channels))


def window_reverse(windows, window_size: int, height: int, width: int):
    """Inverse of :func:`window_partition`: ``[batch * nW, window_size^2, c]`` -> ``[batch, height, width, c]``."""
    size = _check_positive_int("window_size", window_size)
    height, width = _check_positive_int("height", height), _check_positive_int("width", width)
    if height % size or width % size:
        raise CkmsimError(f"The map size must be a multiple of window_size={size}. "
                          f"Received: height={height}, width={width}")
    channels = _static_size("channels", ops.shape(windows)[-1])
    x = ops.reshape(windows, (-1, height // size, width // size, size, size, channels))
    x = ops.transpose(x, (0, 1, 3, 2, 4, 5))
    return ops.reshape(x, (-1, height, width, channels))


def shifted_window_mask(height: int, width: int, window_size: int, shift: int) -> np.ndarray:
    """Swin's attention mask for the map cyclically shifted by ``-shift`` on both axes.

    Returns float32 ``[nW, ws^2, ws^2]`` (windows and tokens ordered as :func:`window_partition`): 0 where two
    tokens of a window may attend to each other, :data:`MASK_VALUE` (-100) where the shift brought them
    together from different regions of the unshifted map. ``shift=0``: all zeros.
    """
    size = _check_positive_int("window_size", window_size)
    height, width = _check_positive_int("height", height), _check_positive_int("width", width)
    shift = _check_positive_int("shift", shift, minimum=0)
    if shift >= size:
        raise CkmsimError(f"shift must be smaller than window_size={size}. Received: shift={shift}")
    if height % size or width % size:
        raise CkmsimError(f"The map size must be a multiple of window_size={size}. "
                          f"Received: height={height}, width={width}")
    # region label of every position of the shifted map: [0, H - ws), [H - ws, H - shift), [H - shift, H)
    labels = np.zeros((height, width), dtype=np.int64)
    if shift:
        count = 0
        for rows in (slice(0, -size), slice(-size, -shift), slice(-shift, None)):
            for cols in (slice(0, -size), slice(-size, -shift), slice(-shift, None)):
                labels[rows, cols] = count
                count += 1
    # [nW, ws^2]
    per_window = labels.reshape(height // size, size, width // size, size).transpose(0, 2, 1, 3)
    per_window = per_window.reshape(-1, size * size)
    differ = per_window[:, :, None] != per_window[:, None, :]
    return np.where(differ, MASK_VALUE, 0.0).astype(np.float32)


def relative_position_index(window_size: int, table_window: int | None = None) -> np.ndarray:
    """Index of every token pair of a window into Swin's relative position bias table.

    Returns int ``[ws^2, ws^2]``: for tokens ``i = (y_i, x_i)``, ``j = (y_j, x_j)`` (row-major in the window),
    ``(y_i - y_j + T - 1) (2 T - 1) + (x_i - x_j + T - 1)`` into a ``(2 T - 1)^2`` table, ``T = table_window``
    (default ``window_size``; a larger table serves a smaller window, see the module docstring).
    """
    size = _check_positive_int("window_size", window_size)
    table = size if table_window is None else _check_positive_int("table_window", table_window)
    if table < size:
        raise CkmsimError(f"table_window must be >= window_size={size}. Received: table_window={table}")
    coords = np.stack(np.meshgrid(np.arange(size), np.arange(size), indexing="ij")).reshape(2, -1)
    # [2, N, N], each displacement in [-(ws - 1), ws - 1]
    relative = coords[:, :, None] - coords[:, None, :] + (table - 1)
    return (relative[0] * (2 * table - 1) + relative[1]).astype(np.int64)


# ----------------------------------------------------------------------------------------------------------------
# Layers
# ----------------------------------------------------------------------------------------------------------------

@keras.saving.register_keras_serializable(package=PACKAGE)
class WindowAttention(layers.Layer):
    r"""Multi-head self-attention inside windows with Swin's relative position bias (Liu et al., eq. (4)).

    .. math::
        \mathrm{Attention}(Q, K, V) = \mathrm{SoftMax}(Q K^T / \sqrt d + B + M)\, V

    per head, with :math:`B` read from a learned ``[(2 window_size - 1)^2, num_heads]`` table and :math:`M`
    the optional mask, followed by a linear projection.

    Parameters
    ----------
    dim : int
        Token channels (in and out); a multiple of ``num_heads``.
    num_heads : int
    window_size : int
        Largest window the bias table serves; windows of ``w^2`` tokens with ``w <= window_size`` are accepted.
    qkv_bias : bool
        Bias in the query/key/value projection (Swin: True).

    Input
    -----
    windows : [batch * nW, w^2, dim], float
    mask : [nW, w^2, w^2], float, or None
        Added to the logits of every window; window ``k`` of each image gets ``mask[k]`` (the windows of one
        image repeat over the batch, as :func:`window_partition` orders them).

    Output
    ------
    y : [batch * nW, w^2, dim], float
    """

    def __init__(self, dim: int, num_heads: int, window_size: int, qkv_bias: bool = True, **kwargs):
        super().__init__(**kwargs)
        self.dim = _check_positive_int("dim", dim)
        self.num_heads = _check_positive_int("num_heads", num_heads)
        if self.dim % self.num_heads:
            raise CkmsimError(f"dim must be a multiple of num_heads={self.num_heads}. Received: dim={self.dim}")
        self.window_size = _check_positive_int("window_size", window_size)
        self.qkv_bias = bool(qkv_bias)
        self.head_dim = self.dim // self.num_heads
        self.scale = self.head_dim ** -0.5
        self.qkv = _dense(3 * self.dim, "qkv", use_bias=self.qkv_bias)
        self.proj = _dense(self.dim, "proj")
        self._index_cache: dict[int, np.ndarray] = {}
        # ``mask`` is an attention mask, not a Keras padding mask: accept it without Keras' "destroys the mask"
        # warning, and attach none to the output (compute_mask).
        self.supports_masking = True

    def build(self, input_shape):
        channels = input_shape[-1]
        if channels is not None and int(channels) != self.dim:
            raise CkmsimError(f"WindowAttention expects {self.dim} channels (dim). Received: channels={channels}")
        self.relative_position_bias_table = self.add_weight(
            name="relative_position_bias_table", shape=((2 * self.window_size - 1) ** 2, self.num_heads),
            initializer=keras.initializers.TruncatedNormal(stddev=0.02), trainable=True)
        self.qkv.build((None, None, self.dim))
        self.proj.build((None, None, self.dim))

    def _bias_index(self, tokens: int) -> np.ndarray:
        if tokens not in self._index_cache:
            side = math.isqrt(tokens)
            if side * side != tokens or side > self.window_size:
                raise CkmsimError(f"A window must hold w^2 tokens with w <= window_size={self.window_size}. "
                                  f"Received: tokens={tokens}")
            self._index_cache[tokens] = relative_position_index(side, self.window_size).reshape(-1)
        return self._index_cache[tokens]

    def call(self, windows, mask=None):
        tokens = _static_size("tokens", ops.shape(windows)[1])
        heads, head_dim = self.num_heads, self.head_dim
        # [b', N, 3 dim] -> [3, b', heads, N, head_dim]
        qkv = ops.reshape(self.qkv(windows), (-1, tokens, 3, heads, head_dim))
        qkv = ops.transpose(qkv, (2, 0, 3, 1, 4))
        query, key, value = qkv[0] * self.scale, qkv[1], qkv[2]
        # [b', heads, N, N]
        logits = ops.matmul(query, ops.transpose(key, (0, 1, 3, 2)))
        bias = ops.take(self.relative_position_bias_table, self._bias_index(tokens), axis=0)
        bias = ops.transpose(ops.reshape(bias, (tokens, tokens, heads)), (2, 0, 1))
        logits = logits + ops.cast(bias, logits.dtype)[None]
        if mask is not None:
            mask = ops.cast(ops.convert_to_tensor(mask), logits.dtype)
            num_windows = _static_size("mask windows", ops.shape(mask)[0])
            # [batch, nW, heads, N, N] + [1, nW, 1, N, N]
            logits = ops.reshape(logits, (-1, num_windows, heads, tokens, tokens)) + mask[None, :, None]
            logits = ops.reshape(logits, (-1, heads, tokens, tokens))
        attention = ops.softmax(logits, axis=-1)
        # [b', heads, N, head_dim] -> [b', N, dim]
        out = ops.transpose(ops.matmul(attention, value), (0, 2, 1, 3))
        return self.proj(ops.reshape(out, (-1, tokens, self.dim)))

    def compute_mask(self, inputs, previous_mask=None):
        return None

    def compute_output_shape(self, input_shape):
        return tuple(input_shape[:-1]) + (self.dim,)

    def get_config(self):
        return {**super().get_config(), "dim": self.dim, "num_heads": self.num_heads,
                "window_size": self.window_size, "qkv_bias": self.qkv_bias}


@keras.saving.register_keras_serializable(package=PACKAGE)
class SwinBlock(layers.Layer):
    r"""One Swin Transformer block (W-MSA for ``shift=0``, SW-MSA otherwise; Liu et al., eq. (3)).

    .. math::
        \hat{\mathbf z} = \mathbf z + \mathrm{(S)W\text{-}MSA}(\mathrm{LN}(\mathbf z)), \qquad
        \mathbf z' = \hat{\mathbf z} + \mathrm{MLP}(\mathrm{LN}(\hat{\mathbf z}))

    With ``shift > 0`` the normalised map is rolled by ``-shift`` on both axes, attended inside windows with
    :func:`shifted_window_mask`, and rolled back. When ``min(h, w) <= window_size`` the window becomes
    ``min(h, w)`` and the shift 0 (:func:`effective_window`).

    Parameters
    ----------
    dim : int
        Channels in and out; a multiple of ``num_heads``.
    num_heads : int
    window_size : int
    shift : int
        Cyclic shift, ``0 <= shift < window_size`` (Swin: ``window_size // 2`` in every second block).
    mlp_ratio : float
        Hidden width of the MLP relative to ``dim``.

    Input / Output: ``[batch, h, w, dim]``, float, ``h`` and ``w`` static multiples of the effective window.
    """

    def __init__(self, dim: int, num_heads: int, window_size: int = 4, shift: int = 0, mlp_ratio: float = 4.0,
                 **kwargs):
        super().__init__(**kwargs)
        self.dim = _check_positive_int("dim", dim)
        self.num_heads = _check_positive_int("num_heads", num_heads)
        self.window_size = _check_positive_int("window_size", window_size)
        self.shift = _check_positive_int("shift", shift, minimum=0)
        if self.shift >= self.window_size:
            raise CkmsimError(f"shift must be smaller than window_size={self.window_size}. "
                              f"Received: shift={self.shift}")
        self.mlp_ratio = _check_positive_number("mlp_ratio", mlp_ratio)
        self.hidden = max(1, int(round(self.dim * self.mlp_ratio)))
        self.norm1 = _layer_norm("norm1")
        self.attention = WindowAttention(self.dim, self.num_heads, self.window_size, name="attention")
        self.norm2 = _layer_norm("norm2")
        self.fc1 = _dense(self.hidden, "fc1")
        self.fc2 = _dense(self.dim, "fc2")
        self._mask_cache: dict[tuple[int, int, int, int], np.ndarray] = {}

    def _check_channels(self, channels):
        if channels is not None and int(channels) != self.dim:
            raise CkmsimError(f"SwinBlock expects {self.dim} channels (dim). Received: channels={channels}")

    def build(self, input_shape):
        self._check_channels(input_shape[-1])
        if input_shape[1] is not None and input_shape[2] is not None:
            self.window_for(int(input_shape[1]), int(input_shape[2]))
        self.norm1.build((None, None, None, self.dim))
        self.attention.build((None, None, self.dim))
        self.norm2.build((None, None, None, self.dim))
        self.fc1.build((None, None, None, self.dim))
        self.fc2.build((None, None, None, self.hidden))

    def window_for(self, height: int, width: int) -> tuple[int, int]:
        """``(window, shift)`` on a ``height x width`` map; raises when the map does not tile into windows."""
        window, shift = effective_window(height, width, self.window_size, self.shift)
        if height % window or width % window:
            raise CkmsimError(f"SwinBlock needs a map size that is a multiple of its window {window} "
                              f"(window_size={self.window_size}). Received: height={height}, width={width}")
        return window, shift

    def _mask(self, height: int, width: int, window: int, shift: int) -> np.ndarray:
        key = (height, width, window, shift)
        if key not in self._mask_cache:
            self._mask_cache[key] = shifted_window_mask(height, width, window, shift)
        return self._mask_cache[key]

    def call(self, x):
        shape = ops.shape(x)
        height, width = _static_size("height", shape[1]), _static_size("width", shape[2])
        self._check_channels(shape[3] if isinstance(shape[3], int) else None)
        window, shift = self.window_for(height, width)
        y = self.norm1(x)
        if shift:
            y = ops.roll(ops.roll(y, -shift, axis=1), -shift, axis=2)
        mask = self._mask(height, width, window, shift) if shift else None
        y = self.attention(window_partition(y, window), mask=mask)
        y = window_reverse(y, window, height, width)
        if shift:
            y = ops.roll(ops.roll(y, shift, axis=1), shift, axis=2)
        x = x + y
        return x + self.fc2(ops.gelu(self.fc1(self.norm2(x)), approximate=False))

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        return {**super().get_config(), "dim": self.dim, "num_heads": self.num_heads,
                "window_size": self.window_size, "shift": self.shift, "mlp_ratio": self.mlp_ratio}


@keras.saving.register_keras_serializable(package=PACKAGE)
class PatchEmbed(layers.Layer):
    """Non-overlapping patches to tokens: conv with kernel = stride = ``patch_size`` to ``dim`` channels, LayerNorm.

    Input ``[batch, h, w, c_in]`` (``h``, ``w`` multiples of ``patch_size``); output
    ``[batch, h / patch_size, w / patch_size, dim]``.
    """

    def __init__(self, dim: int, patch_size: int = 4, **kwargs):
        super().__init__(**kwargs)
        self.dim = _check_positive_int("dim", dim)
        self.patch_size = _check_positive_int("patch_size", patch_size)
        self.proj = layers.Conv2D(self.dim, self.patch_size, strides=self.patch_size, padding="valid", name="proj")
        self.norm = _layer_norm("norm")

    def _check_sizes(self, height, width):
        for name, size in (("height", height), ("width", width)):
            if size is not None and int(size) % self.patch_size:
                raise CkmsimError(f"The input {name} must be a multiple of patch_size={self.patch_size}. "
                                  f"Received: {name}={size}")

    def build(self, input_shape):
        self._check_sizes(input_shape[1], input_shape[2])
        self.proj.build(tuple(input_shape))
        self.norm.build((None, None, None, self.dim))

    def call(self, x):
        shape = ops.shape(x)
        self._check_sizes(shape[1] if isinstance(shape[1], int) else None,
                          shape[2] if isinstance(shape[2], int) else None)
        return self.norm(self.proj(x))

    def compute_output_shape(self, input_shape):
        p = self.patch_size
        return (input_shape[0], None if input_shape[1] is None else input_shape[1] // p,
                None if input_shape[2] is None else input_shape[2] // p, self.dim)

    def get_config(self):
        return {**super().get_config(), "dim": self.dim, "patch_size": self.patch_size}


@keras.saving.register_keras_serializable(package=PACKAGE)
class PatchMerging(layers.Layer):
    """Swin's downsampling: concat each 2x2 neighbourhood (4C), LayerNorm, linear to 2C without bias.

    Input ``[batch, h, w, c]`` (``h``, ``w`` even and static); output ``[batch, h / 2, w / 2, 2 c]``.
    The neighbours are concatenated in the order ``(0, 0), (1, 0), (0, 1), (1, 1)`` (row, column offsets).
    """

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.norm = _layer_norm("norm")
        self.reduction = None

    def build(self, input_shape):
        channels = _static_size("channels", input_shape[-1])
        self.reduction = _dense(2 * channels, "reduction", use_bias=False)
        self.norm.build((None, None, None, 4 * channels))
        self.reduction.build((None, None, None, 4 * channels))

    def call(self, x):
        shape = ops.shape(x)
        height, width = _static_size("height", shape[1]), _static_size("width", shape[2])
        channels = _static_size("channels", shape[3])
        if height % 2 or width % 2:
            raise CkmsimError(f"PatchMerging needs an even map size. Received: height={height}, width={width}")
        # [batch, h/2, dy, w/2, dx, c] -> [batch, h/2, w/2, dx, dy, c]: neighbour k = 2 dx + dy
        x = ops.reshape(x, (-1, height // 2, 2, width // 2, 2, channels))
        x = ops.transpose(x, (0, 1, 3, 4, 2, 5))
        x = ops.reshape(x, (-1, height // 2, width // 2, 4 * channels))
        return self.reduction(self.norm(x))

    def compute_output_shape(self, input_shape):
        return (input_shape[0], None if input_shape[1] is None else input_shape[1] // 2,
                None if input_shape[2] is None else input_shape[2] // 2, 2 * input_shape[3])


@keras.saving.register_keras_serializable(package=PACKAGE)
class SwinEncoder(keras.Model):
    """Swin Transformer encoder returning every stage's feature map (CKMDiff's condition encoder).

    Parameters
    ----------
    embed_dim : int
        Channels of stage 0; stage ``i`` has ``embed_dim 2^i``.
    depths : sequence of int
        Swin blocks per stage (alternating shift 0 and ``window_size // 2``).
    num_heads : sequence of int
        Attention heads per stage, as many as ``depths``; ``embed_dim 2^i`` a multiple of ``num_heads[i]``.
    window_size : int
    patch_size : int
        Patch size of :class:`PatchEmbed` (stride of stage 0).
    mlp_ratio : float

    Input
    -----
    x : [batch, H, W, c_in], float; ``H``, ``W`` static multiples of ``patch_size 2^(stages - 1)`` (and each
        stage's map a multiple of its effective window).

    Output
    ------
    features : list of ``[batch, H / (patch_size 2^i), W / (patch_size 2^i), embed_dim 2^i]``, one per stage.
    """

    def __init__(self, embed_dim: int = 32, depths: Sequence[int] = (2, 2, 2), num_heads: Sequence[int] = (2, 4, 8),
                 window_size: int = 4, patch_size: int = 2, mlp_ratio: float = 4.0, **kwargs):
        super().__init__(**kwargs)
        self.embed_dim = _check_positive_int("embed_dim", embed_dim)
        self.depths = self._check_int_sequence("depths", depths)
        self.num_heads = self._check_int_sequence("num_heads", num_heads)
        if len(self.num_heads) != len(self.depths):
            raise CkmsimError(f"num_heads must have one entry per stage (len(depths)={len(self.depths)}). "
                              f"Received: num_heads={list(num_heads)!r}")
        for i, heads in enumerate(self.num_heads):
            if (self.embed_dim * 2 ** i) % heads:
                raise CkmsimError(f"Stage {i} has embed_dim * 2^{i} = {self.embed_dim * 2 ** i} channels, not a "
                                  f"multiple of num_heads[{i}]. Received: num_heads[{i}]={heads}")
        self.window_size = _check_positive_int("window_size", window_size)
        self.patch_size = _check_positive_int("patch_size", patch_size)
        self.mlp_ratio = _check_positive_number("mlp_ratio", mlp_ratio)

        self.patch_embed = PatchEmbed(self.embed_dim, self.patch_size, name="patch_embed")
        self.merges, self.stages, self.stage_norms = [], [], []
        for i, (depth, heads) in enumerate(zip(self.depths, self.num_heads)):
            dim = self.feature_channels[i]
            self.merges.append(None if i == 0 else PatchMerging(name=f"merge_{i}"))
            self.stages.append([SwinBlock(dim, heads, self.window_size, 0 if j % 2 == 0 else self.window_size // 2,
                                          self.mlp_ratio, name=f"stage_{i}_block_{j}") for j in range(depth)])
            self.stage_norms.append(_layer_norm(f"stage_{i}_norm"))

    @staticmethod
    def _check_int_sequence(name: str, values) -> tuple[int, ...]:
        if isinstance(values, (str, bytes)) or not isinstance(values, Sequence) or len(values) == 0:
            raise CkmsimError(f"{name} must be a non-empty sequence of integers >= 1. Received: {name}={values!r}")
        for i, value in enumerate(values):
            if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
                raise CkmsimError(f"{name} must be a non-empty sequence of integers >= 1. "
                                  f"Received: {name}={list(values)!r} ({name}[{i}]={value!r})")
        return tuple(int(v) for v in values)

    @property
    def feature_channels(self) -> tuple[int, ...]:
        """Channels of each stage's output: ``embed_dim 2^i``."""
        return tuple(self.embed_dim * 2 ** i for i in range(len(self.depths)))

    @property
    def feature_strides(self) -> tuple[int, ...]:
        """Downsampling of each stage's output relative to the input: ``patch_size 2^i``."""
        return tuple(self.patch_size * 2 ** i for i in range(len(self.depths)))

    def _check_input_size(self, height, width):
        multiple = self.feature_strides[-1]
        for name, size in (("height", height), ("width", width)):
            if size is not None and int(size) % multiple:
                raise CkmsimError(f"The input {name} must be a multiple of patch_size * 2^(stages - 1) = {multiple} "
                                  f"(patch_size={self.patch_size}, {len(self.depths)} stages). "
                                  f"Received: {name}={size}")

    def build(self, input_shape):
        input_shape = tuple(input_shape)
        self._check_input_size(input_shape[1], input_shape[2])
        self.patch_embed.build(input_shape)
        shape = self.patch_embed.compute_output_shape(input_shape)
        for merge, blocks, norm in zip(self.merges, self.stages, self.stage_norms):
            if merge is not None:
                merge.build(shape)
                shape = merge.compute_output_shape(shape)
            for block in blocks:
                block.build(shape)
            norm.build(shape)
        self.built = True

    def call(self, x):
        shape = ops.shape(x)
        self._check_input_size(shape[1] if isinstance(shape[1], int) else None,
                               shape[2] if isinstance(shape[2], int) else None)
        x = self.patch_embed(x)
        features = []
        for merge, blocks, norm in zip(self.merges, self.stages, self.stage_norms):
            if merge is not None:
                x = merge(x)
            for block in blocks:
                x = block(x)
            features.append(norm(x))
        return features

    def compute_output_shape(self, input_shape):
        return [(input_shape[0], None if input_shape[1] is None else input_shape[1] // s,
                 None if input_shape[2] is None else input_shape[2] // s, c)
                for s, c in zip(self.feature_strides, self.feature_channels)]

    def get_config(self):
        return {**super().get_config(), "embed_dim": self.embed_dim, "depths": list(self.depths),
                "num_heads": list(self.num_heads), "window_size": self.window_size, "patch_size": self.patch_size,
                "mlp_ratio": self.mlp_ratio}
