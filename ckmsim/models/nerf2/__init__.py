"""NeRF2 (MobiCom 2023), MIMO-CSI variant: LAD-CKM's radiance-field baseline (issue 16).

- :mod:`.network`: :class:`~ckmsim.models.nerf2.network.NeRF2`, the attenuation MLP, the radiance network
  conditioned on the uplink CSI, and NeRF2's amplitude/phase rendering along rays from the BS antennas.

It trains through LAD-CKM's training config (``[ladckm] model = "nerf2"``, :mod:`ckmsim.models.ladckm.train`),
uplink only.
"""
