"""Least-squares CKM construction, CKMDiff eq. (3): ``x = A^+ y`` with ``A^+ = A^T (A A^T)^{-1}``.

LS uses nothing but the degradation ``A`` of eq. (1) (``observation.operator``; point sampling of the
observed cells if the observation carries none) and the measured values ``y``; it is CKMDiff's reference
for what a reconstruction without any prior does. For the operators of :mod:`ckmsim.maps.degrade` ``A^+``
copies each measurement onto its footprint -- the observed cell itself for sampling and masks, the whole
block for a block average -- and puts *zero* everywhere else. What "zero" means decides the method:

* **Gains** (``gain_db``, ``path_gain_db``): CKMDiff solves eq. (1) on its images, where a gain is the
  CKMImageNet pixel ``(g + 250) / 200`` and pixel 0 is -250 dB, the floor a CKM stores for cells no ray
  reaches. Zero-fill in dB (0 dB, a gain no cell ever has) would be an artefact of the unit, so LS runs in
  the pixel domain: ``x = g0 + A^+ (y - g0)`` with ``g0 = pixel_to_gain_db(0) = -250 dB``, the same as
  ``pixel_to_gain_db(A^+ pixel(y))`` because the mapping is affine. Unobserved cells get -250 dB: no energy.
  The mapping's clipping at -50 dB (an 8-bit image's limit) is left out, so measured values come back exact.
* **Angles and delays**: a zero vector on the unit circle (``A^+`` of an azimuth's cosine and sine) has no
  direction, and zero delay or a 0 deg elevation would be a made-up path. Consistently with the gains --
  a cell at the floor receives no path -- these layers are NaN (absent path, the CKM contract's encoding)
  off the footprint of their finite measurements. On it, azimuths go through ``A^+`` on their cosine and
  sine and ``atan2``; elevations and delays through ``A^+`` directly.

So LS reproduces every measured value exactly (sampling), reproduces any field that is constant on the
blocks of a block average, amplifies nothing but also fills nothing: the link scorer sees no path at
unobserved cells and falls back to its default beam there. Noise in ``y`` passes straight into ``x``.
"""

from __future__ import annotations

import numpy as np
import xarray as xr

from ckmsim.baselines.base import Method
from ckmsim.errors import CkmsimError
from ckmsim.maps.angles import wrap_deg
from ckmsim.maps.ckm import make_ckm
from ckmsim.maps.degrade import LinearOperator, Observation, is_azimuth_layer, is_gain_layer
from ckmsim.maps.pixels import pixel_to_gain_db


class LeastSquares(Method):
    """CKMDiff eq. (3) per layer, ``x = A^+ y``, in the pixel domain for gains (see the module docstring).

    No hyper-parameters; :meth:`fit` learns nothing.
    """

    name = "ls"

    def predict(self, observation: Observation) -> xr.Dataset:
        """Reconstruct every float layer of the observation with ``A^+``.

        Input
        -----
        observation : Observation
            ``values`` [num_y, num_x] or [num_paths, num_y, num_x] per layer (entries of ``y`` at their anchor
            cells, NaN elsewhere), ``operator`` (``A``; None means point sampling of ``observed``), ``building``.

        Output
        ------
        ckm : xarray.Dataset
            The observation's float layers on its grid: gains at -250 dB and angles/delays NaN off the
            footprint of the measurements; ``gain_db`` NaN on building cells; ``building`` (the prior).
        """
        operator = (observation.operator if observation.operator is not None
                    else LinearOperator.sampling(observation.observed))
        if operator.shape != observation.grid.shape:
            raise CkmsimError(f"observation.operator acts on a {operator.shape} grid but task "
                              f"'{observation.task}' has a {observation.grid.shape} grid")
        layers = [name for name, var in observation.values.data_vars.items()
                  if np.issubdtype(var.dtype, np.floating)]
        if "gain_db" not in layers:
            raise CkmsimError(f"ls needs measured 'gain_db' values; observation for task '{observation.task}' "
                              f"has layers {layers}")
        variables = {}
        for name in layers:
            # [..., num_y, num_x] -> [..., num_rows]: the entries of y
            y = operator.read(observation.values[name].values.astype(np.float64))
            variables[name] = _least_squares(operator, y, name)
        variables["gain_db"][observation.building] = np.nan
        variables["building"] = observation.building
        return make_ckm(observation.grid, variables, self._prediction_attrs(observation))


def _least_squares(operator: LinearOperator, y: np.ndarray, name: str) -> np.ndarray:
    """``A^+ y`` for one layer, with the reading of "zero" that the layer's kind calls for.

    Input: y ``[..., num_rows]`` (NaN: nothing measured). Output: ``[..., num_y, num_x]``, float64.
    """
    if is_gain_layer(name):
        # pixel 0 of CKMImageNet's gain mapping: LS's zero, the floor of a CKM
        zero_db = float(pixel_to_gain_db(0.0))
        return zero_db + operator.pseudo_inverse(y - zero_db)
    # [..., num_rows] -> [..., num_y, num_x]: cells some finite measurement of this field speaks for
    covered = np.stack([operator.footprint(np.isfinite(row)) for row in y.reshape((-1, operator.num_rows))])
    covered = covered.reshape(y.shape[:-1] + operator.shape)
    if is_azimuth_layer(name):
        y_rad = np.radians(y)
        cos, sin = operator.pseudo_inverse(np.cos(y_rad)), operator.pseudo_inverse(np.sin(y_rad))
        estimate = wrap_deg(np.degrees(np.arctan2(sin, cos)))
    else:
        estimate = operator.pseudo_inverse(y)
    return np.where(covered, estimate, np.nan)


#: Registry name -> Method class.
LEAST_SQUARES: dict[str, type[LeastSquares]] = {"ls": LeastSquares}
