r"""CKMDiff's networks (Fig. 3): the VAE, the decoupled-diffusion UNet with two output branches, and the
training wrappers that turn Alg. 1 into a Keras ``fit``.

- :class:`VAE` (LDM's autoencoder, Rombach et al. [46]): ``[batch, H, W, 1]`` gain pixels -> a
  ``[batch, H / 4, W / 4, 3]`` latent (two stride-2 stages, 3 channels: RadioDiff's ``embed_dim``) -> back.
  Residual blocks with GroupNorm and SiLU as in LDM. Loss: per-pixel MSE of the reconstruction (the score
  is a gain MSE; LDM adds a perceptual and an adversarial term that need pretrained / extra networks) plus
  ``kl_weight`` (LDM: 1e-6) times the KL divergence summed over the latent and divided by the pixels of the
  image, which keeps LDM's ratio between its per-image sums. Trained first, then frozen.
- :class:`DecoupledUNet` (``Net_theta`` of eq. (21)): input the noisy latent ``z_t``, the time ``t`` and the
  condition encoder's multi-level features ``e(y)``; a UNet whose decoder concatenates, at each level's input,
  the skip features and the condition features of that resolution (Sec. IV-D: "concatenate these features
  with the image features at the UNet decoder's input levels"); "two stacked convolutional layers ... create
  two UNet decoder branches", one for ``c`` and one for ``eps``. Time enters every residual block through a
  sinusoidal embedding and an MLP, as in DDPM / LDM. Widths: ``base_channels x channel_mults`` (the paper's
  Table I: 96 x [1, 2, 4, 8], 2 blocks per level; the CPU preset is far smaller, see
  :mod:`ckmsim.models.ckmdiff.train`).
- :class:`LatentDiffusion`: the frozen VAE encoder, the Swin condition encoder and the UNet as one Keras
  model whose forward pass *is* Alg. 1 lines 5-8 (draw ``t``, ``eps``; encode; forward-diffuse; predict) and
  returns eq. (22) per example, so the shared trainer's ``fit`` (checkpoints, resume, best model) runs it.

Every layer implements ``get_config``; models save to and load from ``.keras`` files.
"""

from __future__ import annotations

import math

import keras
from keras import layers, ops

from ckmsim.errors import CkmsimError
from ckmsim.models.ckmdiff import diffusion
from ckmsim.models.ckmdiff.swin import SwinEncoder

PACKAGE = "ckmsim"


def _positive_int(name: str, value) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise CkmsimError(f"{name} must be a positive integer. Received: {name}={value!r}")
    return value


def _int_tuple(name: str, values) -> tuple[int, ...]:
    values = tuple(values)
    if not values:
        raise CkmsimError(f"{name} must hold at least one positive integer. Received: {name}={values!r}")
    for v in values:
        _positive_int(name, v)
    return values


def _groups(channels: int) -> int:
    """GroupNorm groups: 8 where the width allows (LDM uses 32 at its widths), else the largest divisor <= 8."""
    return max(g for g in range(1, 9) if channels % g == 0)


@keras.saving.register_keras_serializable(package=PACKAGE)
class ResBlock(layers.Layer):
    """GroupNorm-SiLU-conv twice with a skip (1x1 conv where widths differ); with ``time_channels`` the time
    embedding is projected and added after the first conv (DDPM). ``[batch, h, w, c] -> [batch, h, w, filters]``."""

    def __init__(self, filters: int, time_channels: int | None = None, **kwargs):
        super().__init__(**kwargs)
        self.filters = _positive_int("filters", filters)
        self.time_channels = time_channels
        self.norm1 = None   # its groups depend on the input width: made in build
        self.conv1 = layers.Conv2D(filters, 3, padding="same", name="conv1")
        self.norm2 = layers.GroupNormalization(_groups(filters), name="norm2")
        self.conv2 = layers.Conv2D(filters, 3, padding="same", name="conv2")
        self.time = layers.Dense(filters, name="time") if time_channels else None
        self.skip = None

    def build(self, input_shape):
        shape = input_shape[0] if self.time_channels else input_shape
        self.norm1 = layers.GroupNormalization(_groups(shape[-1]), name="norm1")
        if shape[-1] != self.filters:
            self.skip = layers.Conv2D(self.filters, 1, name="skip")

    def call(self, inputs):
        x, t_emb = inputs if self.time_channels else (inputs, None)
        h = self.conv1(ops.silu(self.norm1(x)))
        if self.time is not None:
            h = h + self.time(ops.silu(t_emb))[:, None, None, :]
        h = self.conv2(ops.silu(self.norm2(h)))
        return h + (self.skip(x) if self.skip is not None else x)

    def get_config(self):
        return {**super().get_config(), "filters": self.filters, "time_channels": self.time_channels}


def timestep_embedding(t, dim: int):
    r"""Sinusoidal embedding of ``t`` in [0, 1] (scaled by 1000, DDPM's step range): ``[batch] -> [batch, dim]``."""
    half = dim // 2
    freqs = ops.exp(-math.log(10000.0) * ops.arange(half, dtype="float32") / half)
    args = 1000.0 * ops.cast(ops.reshape(t, (-1, 1)), "float32") * freqs[None, :]
    return ops.concatenate([ops.sin(args), ops.cos(args)], axis=-1)


@keras.saving.register_keras_serializable(package=PACKAGE)
class VAE(keras.Model):
    r"""LDM-style KL autoencoder, x4 down-sampling: ``[batch, H, W, in_channels] <-> [batch, H/4, W/4, latent_channels]``.

    ``call(x)`` returns the reconstruction of a posterior sample (the mean outside training) and adds the KL
    term as a model loss; :meth:`encode` gives the posterior mean (what the diffusion model is trained on),
    :meth:`decode` maps a latent back to pixels.
    """

    def __init__(self, in_channels: int = 1, latent_channels: int = 3, channels=(32, 64), kl_weight: float = 1e-6,
                 **kwargs):
        super().__init__(**kwargs)
        self.in_channels = _positive_int("in_channels", in_channels)
        self.latent_channels = _positive_int("latent_channels", latent_channels)
        self.channels = _int_tuple("channels", channels)
        if len(self.channels) != 2:
            raise CkmsimError(f"channels gives the widths of the VAE's two down-sampling stages (x4 in all). "
                              f"Received: channels={self.channels!r}")
        if not (isinstance(kl_weight, (int, float)) and 0 <= kl_weight < 1):
            raise CkmsimError(f"kl_weight must be a number in [0, 1). Received: kl_weight={kl_weight!r}")
        self.kl_weight = float(kl_weight)
        c0, c1 = self.channels
        self.enc = [layers.Conv2D(c0, 3, padding="same", name="enc_in"), ResBlock(c0, name="enc_block0"),
                    layers.Conv2D(c0, 3, strides=2, padding="same", name="enc_down0"), ResBlock(c1, name="enc_block1"),
                    layers.Conv2D(c1, 3, strides=2, padding="same", name="enc_down1"), ResBlock(c1, name="enc_mid")]
        self.enc_norm = layers.GroupNormalization(_groups(c1), name="enc_norm")
        self.enc_out = layers.Conv2D(2 * latent_channels, 3, padding="same", name="enc_out")
        self.dec = [layers.Conv2D(c1, 3, padding="same", name="dec_in"), ResBlock(c1, name="dec_mid"),
                    layers.UpSampling2D(2, name="dec_up0"), layers.Conv2D(c1, 3, padding="same", name="dec_upconv0"),
                    ResBlock(c0, name="dec_block0"), layers.UpSampling2D(2, name="dec_up1"),
                    layers.Conv2D(c0, 3, padding="same", name="dec_upconv1"), ResBlock(c0, name="dec_block1")]
        self.dec_norm = layers.GroupNormalization(_groups(c0), name="dec_norm")
        self.dec_out = layers.Conv2D(in_channels, 3, padding="same", name="dec_out")
        self.seeds = keras.random.SeedGenerator(0)

    def moments(self, x):
        """Posterior mean and log-variance, each ``[batch, H/4, W/4, latent_channels]``."""
        h = x
        for layer in self.enc:
            h = layer(h)
        h = self.enc_out(ops.silu(self.enc_norm(h)))
        mean, logvar = ops.split(h, 2, axis=-1)
        return mean, ops.clip(logvar, -30.0, 20.0)

    def encode(self, x):
        return self.moments(x)[0]

    def decode(self, z):
        h = z
        for layer in self.dec:
            h = layer(h)
        return self.dec_out(ops.silu(self.dec_norm(h)))

    def call(self, x, training=False):
        mean, logvar = self.moments(x)
        z = mean + ops.exp(0.5 * logvar) * keras.random.normal(ops.shape(mean), seed=self.seeds) if training else mean
        # KL(q || N(0, I)) summed over the latent, per pixel of the image (see the module docstring)
        kl = 0.5 * ops.sum(ops.square(mean) + ops.exp(logvar) - 1.0 - logvar, axis=(1, 2, 3))
        pixels = ops.cast(ops.shape(x)[1] * ops.shape(x)[2] * ops.shape(x)[3], "float32")
        self.add_loss(self.kl_weight * ops.mean(kl) / pixels)
        return self.decode(z)

    def get_config(self):
        return {**super().get_config(), "in_channels": self.in_channels, "latent_channels": self.latent_channels,
                "channels": list(self.channels), "kl_weight": self.kl_weight}


@keras.saving.register_keras_serializable(package=PACKAGE)
class DecoupledUNet(keras.Model):
    r"""``Net_theta``: ``(z_t [batch, h, w, C], t [batch], features)`` -> ``(c, eps)``, each ``[batch, h, w, C]``.

    ``features`` is the condition encoder's list, one map per level: level ``i`` has resolution
    ``h / 2^i`` and is concatenated at the decoder's input of that level (``cond_levels`` of them, from the
    top; ``None``: unconditional). ``h`` and ``w`` must be multiples of ``2^(len(channel_mults) - 1)``.
    """

    def __init__(self, latent_channels: int = 3, base_channels: int = 32, channel_mults=(1, 2, 4),
                 num_blocks: int = 1, cond_levels: int = 3, **kwargs):
        super().__init__(**kwargs)
        self.latent_channels = _positive_int("latent_channels", latent_channels)
        self.base_channels = _positive_int("base_channels", base_channels)
        self.channel_mults = _int_tuple("channel_mults", channel_mults)
        self.num_blocks = _positive_int("num_blocks", num_blocks)
        if isinstance(cond_levels, bool) or not isinstance(cond_levels, int) or not 0 <= cond_levels <= len(channel_mults):
            raise CkmsimError(f"cond_levels must be an integer in [0, {len(self.channel_mults)}] (levels of the "
                              f"UNet). Received: cond_levels={cond_levels!r}")
        self.cond_levels = cond_levels
        widths = [base_channels * m for m in self.channel_mults]
        temb = 4 * base_channels
        self.temb_dense1 = layers.Dense(temb, name="temb_dense1")
        self.temb_dense2 = layers.Dense(temb, name="temb_dense2")
        self.conv_in = layers.Conv2D(widths[0], 3, padding="same", name="conv_in")
        self.down_blocks, self.downsamples = [], []
        for i, w in enumerate(widths):
            self.down_blocks.append([ResBlock(w, temb, name=f"down{i}_block{b}") for b in range(num_blocks)])
            self.downsamples.append(layers.Conv2D(w, 3, strides=2, padding="same", name=f"down{i}_pool")
                                    if i < len(widths) - 1 else None)
        self.mid = [ResBlock(widths[-1], temb, name="mid_block0"), ResBlock(widths[-1], temb, name="mid_block1")]
        self.up_blocks, self.upsamples = [], []
        for i in reversed(range(len(widths))):
            self.up_blocks.append([ResBlock(widths[i], temb, name=f"up{i}_block{b}") for b in range(num_blocks)])
            self.upsamples.append(layers.Conv2DTranspose(widths[i - 1], 2, strides=2, name=f"up{i}_unpool")
                                  if i > 0 else None)
        self.branches = {}
        for name in ("c", "eps"):
            self.branches[name] = [layers.GroupNormalization(_groups(widths[0]), name=f"{name}_norm"),
                                   layers.Conv2D(widths[0], 3, padding="same", name=f"{name}_conv1"),
                                   layers.Conv2D(latent_channels, 3, padding="same", name=f"{name}_conv2")]

    def call(self, inputs):
        z_t, t, *features = inputs
        levels = len(self.channel_mults)
        if len(features) != self.cond_levels:
            raise CkmsimError(f"DecoupledUNet was built for {self.cond_levels} condition feature map(s). "
                              f"Received: {len(features)}")
        t_emb = self.temb_dense2(ops.silu(self.temb_dense1(timestep_embedding(t, self.base_channels))))
        h = self.conv_in(z_t)
        skips = []
        for i in range(levels):
            for block in self.down_blocks[i]:
                h = block([h, t_emb])
            skips.append(h)
            if self.downsamples[i] is not None:
                h = self.downsamples[i](h)
        for block in self.mid:
            h = block([h, t_emb])
        for k, i in enumerate(reversed(range(levels))):
            parts = [h, skips[i]] + ([features[i]] if i < self.cond_levels else [])
            h = ops.concatenate(parts, axis=-1)
            for block in self.up_blocks[k]:
                h = block([h, t_emb])
            if self.upsamples[k] is not None:
                h = self.upsamples[k](h)
        outputs = []
        for name in ("c", "eps"):
            norm, conv1, conv2 = self.branches[name]
            outputs.append(conv2(ops.silu(conv1(ops.silu(norm(h))))))
        return tuple(outputs)

    def get_config(self):
        return {**super().get_config(), "latent_channels": self.latent_channels, "base_channels": self.base_channels,
                "channel_mults": list(self.channel_mults), "num_blocks": self.num_blocks,
                "cond_levels": self.cond_levels}


@keras.saving.register_keras_serializable(package=PACKAGE)
def per_example_loss(y_true, y_pred):
    """The models below return their loss per example as ``y_pred``; ``y_true`` is a placeholder."""
    del y_true
    return y_pred


@keras.saving.register_keras_serializable(package=PACKAGE)
class LatentDiffusion(keras.Model):
    r"""Alg. 1 as a model: ``call({"x": [batch, H, W, 1], "cond": [batch, H, W, C_y]})`` -> eq. (22) ``[batch]``.

    ``vae`` is frozen (trained first); ``latent_scale`` multiplies its posterior means so that the latents
    have unit variance over the training set (LDM's scale factor), which the forward process of eq. (19)
    assumes (``z_1`` is standard normal). ``cond_encoder`` may be None for the unconditional model
    (generation, ``A = 0``). :meth:`predict_c_eps` is ``Net_theta`` given the condition, for the sampler.
    """

    def __init__(self, vae: VAE, unet: DecoupledUNet, cond_encoder: SwinEncoder | None = None,
                 latent_scale: float = 1.0, weighting: str = "paper", seed: int = 0, **kwargs):
        super().__init__(**kwargs)
        diffusion.check_weighting(weighting)
        self.vae = vae
        self.vae.trainable = False
        self.unet = unet
        self.cond_encoder = cond_encoder
        self.latent_scale = float(latent_scale)
        self.weighting = weighting
        self.seed = int(seed)
        self.seeds = keras.random.SeedGenerator(self.seed)

    def condition_features(self, cond):
        """``e(y)``: the condition encoder's multi-level features (the first ``unet.cond_levels``)."""
        if self.cond_encoder is None:
            return []
        return list(self.cond_encoder(cond))[:self.unet.cond_levels]

    def latents(self, x):
        """``z_0 = latent_scale * E(x)``."""
        return self.latent_scale * self.vae.encode(x)

    def decode(self, z0):
        """``D(z_0 / latent_scale)``: pixels ``[batch, H, W, 1]``."""
        return self.vae.decode(z0 / self.latent_scale)

    def predict_c_eps(self, z_t, t, features):
        return self.unet([z_t, t, *features])

    def call(self, inputs, training=False):
        x, cond = inputs["x"], inputs.get("cond")
        z0 = ops.stop_gradient(self.latents(x))
        batch = ops.shape(z0)[0]
        t = keras.random.uniform((batch,), minval=diffusion.T_MIN, maxval=1.0, seed=self.seeds)
        eps = keras.random.normal(ops.shape(z0), seed=self.seeds)
        z_t = diffusion.forward(z0, t, eps)
        c_pred, eps_pred = self.predict_c_eps(z_t, t, self.condition_features(cond) if cond is not None else [])
        w_c, w_eps = diffusion.loss_weights(t, self.weighting)
        # eq. (22): squared errors of c = -z0 and eps, mean over the latent elements
        c_err = ops.mean(ops.square(c_pred + z0), axis=(1, 2, 3))
        eps_err = ops.mean(ops.square(eps_pred - eps), axis=(1, 2, 3))
        return w_c * c_err + w_eps * eps_err

    def get_config(self):
        return {**super().get_config(), "vae": keras.saving.serialize_keras_object(self.vae),
                "unet": keras.saving.serialize_keras_object(self.unet),
                "cond_encoder": (keras.saving.serialize_keras_object(self.cond_encoder)
                                 if self.cond_encoder is not None else None),
                "latent_scale": self.latent_scale, "weighting": self.weighting, "seed": self.seed}

    @classmethod
    def from_config(cls, config):
        config = dict(config)
        for key in ("vae", "unet", "cond_encoder"):
            if config.get(key) is not None:
                config[key] = keras.saving.deserialize_keras_object(config[key])
        return cls(**config)
