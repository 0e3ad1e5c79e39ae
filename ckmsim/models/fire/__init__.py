"""FIRE (Liu, Singh, Xu, Vasisht, "FIRE: enabling reciprocity for FDD MIMO systems", MobiCom 2021), LAD-CKM's
learned baseline (issue 16): a variational autoencoder from the uplink CSI to the downlink CSI.

- :mod:`.network`: :class:`~ckmsim.models.fire.network.Fire`, the Keras model.

It trains through LAD-CKM's training config (``[ladckm] model = "fire"``, :mod:`ckmsim.models.ladckm.train`):
the same examples, splits and NMSE loss, the uplink CSI only (FIRE sends no downlink pilot).
"""
