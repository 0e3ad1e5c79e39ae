"""LAD-CKM (location-agnostic dynamic CKM by RF radiance-field rendering, issue 16): downlink CSI from the
uplink CSI and a little downlink CSI, with no UE position.

- :mod:`.radiators`: the virtual radiators (spherical Fibonacci directions, uniform radial samples);
- :mod:`.network`: the ADM, RARE-Net, the rendering of eq. (7) and the NMSE loss of eq. (12) in one Keras
  model, :class:`~ckmsim.models.ladckm.network.LadCkm`.
"""
