r"""FIRE's variational autoencoder, written in Keras from its paper (no public code of it could be used here).

FIRE learns the map from a UE's uplink channel to its downlink channel across the FDD frequency gap through a
low-dimensional latent: an encoder :math:`q(z \mid \mathbf{H}^U)` gives the mean and log-variance of a
Gaussian latent, a decoder maps a latent draw to :math:`\hat{\mathbf{H}}^D`; the loss is the reconstruction
error plus :math:`\beta` times the KL divergence to :math:`\mathcal{N}(0, I)`, and inference decodes the mean.
The paper's exact layer list is not reproduced here; what was chosen:

- input and output: LAD-CKM's CSI images, ``[N_r, N_t, 2 N_c]`` (antenna pairs as pixels, the real then the
  imaginary parts of the subcarriers as channels), normalised by the uplink RMS (:mod:`ckmsim.models.ladckm.data`);
- encoder: two 3 x 3 convolutions of ``width`` channels with GELU, flattened, a dense layer to
  :math:`2 \times` ``latent_dim`` (mean, log-variance);
- decoder: a dense layer to ``N_r x N_t x width``, two 3 x 3 convolutions (GELU, then linear to :math:`2N_c`);
- loss: the NMSE of eq. (12) (the training config's) plus ``kl_weight`` times the mean KL per latent unit,
  added by the model itself.

Input: ``{"uplink": [B, N_r, N_t, 2 N_c], ...}`` (other keys, e.g. LAD-CKM's ``partial_downlink`` and
``intervals``, are ignored: FIRE uses the uplink only). Output: ``[B, N_r, N_t, 2 N_c]``.
"""

from __future__ import annotations

import ckmsim  # noqa: F401  (Mitsuba before TensorFlow / Keras)

import keras
from keras import layers, ops

from ckmsim.errors import CkmsimError
from ckmsim.validation import check_positive_int, is_finite_number

PACKAGE = "ckmsim"


@keras.saving.register_keras_serializable(package=PACKAGE)
class Fire(keras.Model):
    """FIRE's VAE (module docstring).

    Parameters
    ----------
    num_subcarriers : :math:`N_c`
    num_bs_antennas, num_ue_antennas : :math:`N_t`, :math:`N_r` (the dense layers fix the array)
    latent_dim, width : latent size and convolution width
    kl_weight : :math:`\\beta`
    """

    def __init__(self, num_subcarriers: int, num_bs_antennas: int, num_ue_antennas: int = 1, latent_dim: int = 32,
                 width: int = 64, kl_weight: float = 1e-3, **kwargs):
        super().__init__(**kwargs)
        for name, value in (("num_subcarriers", num_subcarriers), ("num_bs_antennas", num_bs_antennas),
                            ("num_ue_antennas", num_ue_antennas), ("latent_dim", latent_dim), ("width", width)):
            check_positive_int(value, name)
        if not (is_finite_number(kl_weight) and kl_weight >= 0):
            raise CkmsimError(f"kl_weight must be a number >= 0. Received: kl_weight={kl_weight!r}")
        self.num_subcarriers, self.num_bs_antennas = int(num_subcarriers), int(num_bs_antennas)
        self.num_ue_antennas, self.latent_dim, self.width = int(num_ue_antennas), int(latent_dim), int(width)
        self.kl_weight = float(kl_weight)
        conv = dict(kernel_size=3, padding="same")
        self.encoder_convs = [layers.Conv2D(self.width, activation="gelu", name=f"enc{i}", **conv) for i in range(2)]
        self.to_latent = layers.Dense(2 * self.latent_dim, name="to_latent")
        pixels = self.num_ue_antennas * self.num_bs_antennas
        self.from_latent = layers.Dense(pixels * self.width, activation="gelu", name="from_latent")
        self.decoder_convs = [layers.Conv2D(self.width, activation="gelu", name="dec0", **conv),
                              layers.Conv2D(2 * self.num_subcarriers, name="dec1", **conv)]
        self.seed_generator = keras.random.SeedGenerator(0)

    def encode(self, uplink):
        """``[B, N_r, N_t, 2 N_c]`` -> (mean, log-variance), each ``[B, latent_dim]``."""
        if tuple(uplink.shape[1:]) != (self.num_ue_antennas, self.num_bs_antennas, 2 * self.num_subcarriers):
            raise CkmsimError(f"FIRE was built for uplink images [B, {self.num_ue_antennas}, {self.num_bs_antennas}, "
                              f"{2 * self.num_subcarriers}]. Received: {tuple(uplink.shape)}")
        h = uplink
        for conv in self.encoder_convs:
            h = conv(h)
        stats = self.to_latent(ops.reshape(h, (ops.shape(h)[0], -1)))
        return stats[:, :self.latent_dim], stats[:, self.latent_dim:]

    def decode(self, z):
        """``[B, latent_dim]`` -> ``[B, N_r, N_t, 2 N_c]``."""
        h = ops.reshape(self.from_latent(z), (ops.shape(z)[0], self.num_ue_antennas, self.num_bs_antennas,
                                              self.width))
        for conv in self.decoder_convs:
            h = conv(h)
        return h

    def call(self, inputs, training=False):
        uplink = inputs["uplink"] if isinstance(inputs, dict) else inputs
        mean, log_var = self.encode(uplink)
        if training:
            # the reparameterisation trick; the mean at inference
            z = mean + ops.exp(0.5 * log_var) * keras.random.normal(ops.shape(mean), seed=self.seed_generator)
            kl = -0.5 * ops.mean(1.0 + log_var - ops.square(mean) - ops.exp(log_var))
            self.add_loss(self.kl_weight * kl)
        else:
            z = mean
        return self.decode(z)

    def get_config(self):
        return {"name": self.name, "trainable": self.trainable, "num_subcarriers": self.num_subcarriers,
                "num_bs_antennas": self.num_bs_antennas, "num_ue_antennas": self.num_ue_antennas,
                "latent_dim": self.latent_dim, "width": self.width, "kl_weight": self.kl_weight}

    @classmethod
    def from_config(cls, config):
        return cls(**config)
