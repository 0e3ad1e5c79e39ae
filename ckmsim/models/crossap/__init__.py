"""Cross-AP UNet: the gain map of a new access point from the maps of the known ones and the building map.

- :mod:`.network`: the Keras UNet (one implementation, also the RadioUNet-style reference);
- :mod:`.data`: areas of several APs from a dataset store, the input encoding, the example stream;
- :mod:`.train`: the TOML training config and the training run over the shared trainer;
- :mod:`.method`: :class:`~ckmsim.models.crossap.method.CrossApUNetMethod` and the RadioUNet-style method.
"""
