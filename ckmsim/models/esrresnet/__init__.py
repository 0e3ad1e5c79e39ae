"""E-SRResNet (Chen et al.): x``factor`` super-resolution of the path gain and path angle maps of the two
strongest paths.

- :mod:`.network`: the Keras model (residual blocks with multi-head self-attention, multi-scale fusion,
  pixel-shuffle up-sampling);
- :mod:`.data`: the encoder between observations / CKMs and the network's tensors, and augmentation;
- :mod:`.train`: the TOML training config and the training run over the shared trainer;
- :mod:`.method`: :class:`~ckmsim.models.esrresnet.method.ESRResNetMethod`, the Method face;
- ``weights/``: the shipped networks with their ``provenance.json`` (:mod:`ckmsim.models.pretrained`).
"""
