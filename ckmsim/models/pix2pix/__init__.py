"""The conditional baselines of CKMDiff's tables (issue 15): a pix2pix cGAN and RadioUNet, on CKMDiff's
3-channel condition image.

- :mod:`.network`: pix2pix's U-Net generator, its PatchGAN discriminator and :class:`~.network.Pix2Pix`, the
  Keras model whose ``train_step`` is the cGAN objective (L1 + adversarial); RadioUNet is
  :class:`~ckmsim.models.crossap.network.CrossApUNet` (one RadioUNet implementation in the project);
- :mod:`.train`: the TOML training config (``model = "pix2pix"`` or ``"radiounet"``) over the shared trainer,
  the examples being CKMDiff's (:mod:`ckmsim.models.ckmdiff.data`);
- :mod:`.method`: :class:`~ckmsim.models.pix2pix.method.Pix2PixMethod`.
"""
