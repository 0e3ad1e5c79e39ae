"""Classical interpolation baselines: bilinear, bicubic and k-nearest-neighbour CKM construction.

Every float layer of the observation is interpolated on its own, path by path. Azimuths are interpolated
on the unit circle (their cosine and sine, then ``atan2``) so that 179 deg and -179 deg blend to 180 deg,
not 0 deg; elevations, delays and gains are plain values. NaN samples (an absent path's angles or delay) are
not used as inputs, and neither is the ``GAIN_FLOOR_DB`` code of an absent path's ``path_gain_db``: a code is
not a gain, and interpolating it drags every cell near a measured absence towards -250 dB (on the procedural
cities at x2, 2 % of the cells with the path, and half of bicubic's squared PGM error). An interpolator cannot
tell where a path ends, so every open cell gets the path interpolated from the samples that have it; the code
is kept only for a path no sample has. Observed samples are reproduced exactly, an absent path's code aside.

The bilinear and bicubic methods work on the low-resolution lattice of uniform sub-sampling
(E-SRResNet eq. (7)); :class:`KNN` works on any scattered set of observed cells.
"""

from __future__ import annotations

import abc

import numpy as np
import xarray as xr
from scipy import ndimage
from scipy.spatial import cKDTree

from ckmsim.baselines.base import Method
from ckmsim.errors import CkmsimError
from ckmsim.maps.angles import wrap_deg
from ckmsim.maps.ckm import GAIN_FLOOR_DB, make_ckm
from ckmsim.maps.degrade import Observation

#: Layers holding an angle on the circle (interpolated through cos/sin); all other float layers are linear.
CIRCULAR_LAYERS = frozenset({"aoa_az_deg", "aod_az_deg"})
#: Layers with a physical range that interpolants may overshoot, clipped after interpolation. A spline can
#: undershoot between steep samples; a path gain below the absent-path code is no gain at all.
BOUNDED_LAYERS = {"aoa_el_deg": (-90.0, 90.0), "aod_el_deg": (-90.0, 90.0), "path_gain_db": (GAIN_FLOOR_DB, np.inf)}

# Lattice cells added on each side before cubic spline filtering. The odd reflection continues a plane
# exactly, and the filter's boundary influence decays as 0.268**pad (the cubic B-spline pole), so 12 cells
# put the boundary error below float32 resolution.
_SPLINE_PAD = 12


#: Queries handled per batch, to bound the memory of dense [queries, samples] (or neighbourhood) arrays.
QUERY_CHUNK = 2048

def fill_from_nearest(values: np.ndarray, valid: np.ndarray) -> np.ndarray:
    """Replace every invalid cell by the value of its nearest valid cell (Euclidean distance).

    Input
    -----
    values : [num_y, num_x], float
    valid : [num_y, num_x], bool
        Must hold at least one True.

    Output
    ------
    filled : [num_y, num_x], float
    """
    # indices: [2, num_y, num_x], the (row, col) of the nearest valid cell
    indices = ndimage.distance_transform_edt(~valid, return_distances=False, return_indices=True)
    return values[tuple(indices)]


def lattice_spline(lattice: np.ndarray, factor: int, shape: tuple[int, int], order: int) -> np.ndarray:
    """Evaluate a spline through the lattice samples at every cell of the full grid.

    Full-grid cell ``(row, col)`` sits at the fractional lattice coordinate ``(row / factor, col / factor)``.
    Cells beyond the last lattice row or column take the edge value (``mode='nearest'``).

    Input
    -----
    lattice : [num_rows, num_cols], float
        Samples at the full-grid cells ``(i * factor, j * factor)``, all finite.
    factor : int
        Sub-sampling step.
    shape : (num_y, num_x)
        Full-grid shape.
    order : int
        Spline order: 1 (bilinear) or 3 (cubic B-spline, prefiltered so it interpolates the samples).

    Output
    ------
    values : [num_y, num_x], float64
    """
    pad = _SPLINE_PAD if order > 1 else 0
    # [num_rows + 2 pad, num_cols + 2 pad]; odd reflection (2 f(0) - f(i)) continues linear trends, which a
    # constant ('nearest') continuation would bend, so the cubic spline reproduces planes up to the edge.
    padded = np.pad(lattice.astype(np.float64), pad, mode="reflect", reflect_type="odd")
    rows = np.clip(np.arange(shape[0]) / factor, 0, lattice.shape[0] - 1) + pad
    cols = np.clip(np.arange(shape[1]) / factor, 0, lattice.shape[1] - 1) + pad
    # coordinates: [2, num_y, num_x]
    coordinates = np.stack(np.meshgrid(rows, cols, indexing="ij"))
    return ndimage.map_coordinates(padded, coordinates, order=order, mode="nearest", prefilter=True)


def idw(points: np.ndarray, values: np.ndarray, queries: np.ndarray, power: float,
        k: int | None = None) -> np.ndarray:
    """Inverse-distance weighting (Shepard): a query on a sample returns it exactly.

    .. math::
        \\hat f(q) = \\frac{\\sum_i f_i\\, d_i^{-p}}{\\sum_i d_i^{-p}}

    Input
    -----
    points : [num_samples, 2], float
        Sample positions (row, col) [cells].
    values : [num_samples], float
    queries : [num_queries, 2], float
    power : float
        Distance exponent ``p`` > 0.
    k : int or None
        Use the ``k`` nearest samples (fewer if there are fewer samples); None uses all samples.

    Output
    ------
    estimates : [num_queries], float64
    """
    estimates = np.empty(len(queries))
    tree = cKDTree(points) if k is not None else None
    num_neighbours = len(points) if k is None else min(k, len(points))
    for start in range(0, len(queries), QUERY_CHUNK):
        chunk = queries[start:start + QUERY_CHUNK]
        if tree is None:
            # distances, neighbours: [chunk, num_samples]
            distances = np.linalg.norm(chunk[:, None, :] - points[None, :, :], axis=-1)
            neighbours = np.broadcast_to(np.arange(len(points)), distances.shape)
        else:
            distances, neighbours = tree.query(chunk, k=list(range(1, num_neighbours + 1)))
        estimates[start:start + len(chunk)] = idw_mean(distances, values[neighbours], power)
    return estimates


def idw_mean(distances: np.ndarray, neighbour_values: np.ndarray, power: float) -> np.ndarray:
    """Shepard's weighted mean of each query's neighbours, given their distances: ``[num_queries, k]`` both
    -> ``[num_queries]``; a neighbour at distance 0 is returned as it is."""
    with np.errstate(divide="ignore"):
        weights = np.asarray(distances, dtype=np.float64) ** -power
    # IDW's limit as d -> 0 is the sample itself; set it explicitly instead of dividing inf by inf.
    exact_rows, exact_cols = np.nonzero(distances == 0.0)
    weights[exact_rows] = 0.0
    weights[exact_rows, exact_cols] = 1.0
    return np.sum(weights * neighbour_values, axis=1) / np.sum(weights, axis=1)


class Interpolator(Method):
    """Shared machinery of the interpolation baselines (abstract).

    :meth:`predict` loops over layers and paths; a subclass only says how to interpolate one 2-D field from
    its valid samples (:meth:`_interpolate_valid`).
    """

    def predict(self, observation: Observation) -> xr.Dataset:
        """Interpolate every float layer of the observation to every cell of its grid.

        Input
        -----
        observation : Observation
            ``values`` holds ``gain_db`` [num_y, num_x] [dB] and optionally ``path_gain_db`` [dB],
            ``aoa_az_deg``, ``aoa_el_deg`` [deg], ``toa_s`` [s], each [num_paths, num_y, num_x]; NaN where
            unmeasured or absent.

        Output
        ------
        ckm : xarray.Dataset
            The same float layers at every cell (``gain_db`` NaN on building cells), ``building`` (the
            prior), and attrs ``method`` and ``task``.
        """
        self._check(observation)
        layers = [name for name, var in observation.values.data_vars.items()
                  if np.issubdtype(var.dtype, np.floating)]
        variables = {name: self._predict_layer(observation, name) for name in layers}
        if "gain_db" not in variables or not np.isfinite(variables["gain_db"]).any():
            raise CkmsimError(f"{self.name} needs measured 'gain_db' values; observation for task "
                              f"'{observation.task}' has none")
        variables["gain_db"][observation.building] = np.nan
        variables["building"] = observation.building
        return make_ckm(observation.grid, variables, self._prediction_attrs(observation))

    def _check(self, observation: Observation) -> None:
        """Raise :class:`CkmsimError` if this method cannot use the observation; any is fine by default."""

    def _predict_layer(self, observation: Observation, name: str) -> np.ndarray:
        """Interpolate one layer, path by path. Output ``[num_y, num_x]`` or ``[num_paths, num_y, num_x]``."""
        # [..., num_y, num_x]: the leading dim, if any, is 'path'
        layer = observation.values[name].transpose(..., "y", "x").values.astype(np.float64)
        if name == "path_gain_db":
            layer = np.where(layer <= GAIN_FLOOR_DB, np.nan, layer)
        interpolate = self._predict_angle_field_deg if name in CIRCULAR_LAYERS else self._predict_field
        # [num_fields, num_y, num_x]
        fields = layer.reshape((-1,) + observation.grid.shape)
        predicted = np.stack([interpolate(field, observation) for field in fields])
        if name == "path_gain_db":
            predicted = np.where(np.isnan(predicted), GAIN_FLOOR_DB, predicted)
        if name in BOUNDED_LAYERS:
            # Splines and RBFs overshoot between samples; an elevation past the pole is not an angle.
            predicted = np.clip(predicted, *BOUNDED_LAYERS[name])
        return predicted.reshape(layer.shape)

    def _predict_field(self, field: np.ndarray, observation: Observation) -> np.ndarray:
        """Interpolate one 2-D float field from its finite observed cells.

        Input
        -----
        field : [num_y, num_x], float
            Samples at observed cells; NaN elsewhere and where a sample is absent.
        observation : Observation

        Output
        ------
        predicted : [num_y, num_x], float64
            All NaN if the field has no valid sample.
        """
        valid = observation.observed & np.isfinite(field)
        if not valid.any():
            return np.full(field.shape, np.nan)
        return self._interpolate_valid(field, valid, observation)

    def _predict_angle_field_deg(self, field_deg: np.ndarray, observation: Observation) -> np.ndarray:
        """Interpolate one 2-D azimuth field [deg] on the unit circle: cos and sin apart, then ``atan2``.

        Input / Output as :meth:`_predict_field`; output wrapped to (-180, 180] [deg].
        """
        field_rad = np.radians(field_deg)
        cos = self._predict_field(np.cos(field_rad), observation)
        sin = self._predict_field(np.sin(field_rad), observation)
        return wrap_deg(np.degrees(np.arctan2(sin, cos)))

    @abc.abstractmethod
    def _interpolate_valid(self, field: np.ndarray, valid: np.ndarray, observation: Observation) -> np.ndarray:
        """Interpolate ``field`` [num_y, num_x] from its cells where ``valid`` [num_y, num_x] (>= 1 True).

        Output ``[num_y, num_x]``, float64, finite, equal to ``field`` on valid cells.
        """


class LatticeInterpolator(Interpolator):
    """Spline interpolation on the uniform sub-sampling lattice (abstract; :attr:`order` picks the spline).

    Lattice cells without a valid sample (buildings, absent paths) are first filled from the nearest valid
    lattice cell, so the spline sees a complete low-resolution map.
    """

    order: int = 1

    def unsupported_reason(self, observation: Observation) -> str | None:
        if observation.factor is None:
            return (f"{self.name} interpolates on the uniform sub-sampling lattice and needs observation.factor; "
                    f"task '{observation.task}' has factor=None (use 'knn' for scattered observations)")
        return None

    def _check(self, observation: Observation) -> None:
        reason = self.unsupported_reason(observation)
        if reason is not None:
            raise CkmsimError(reason)

    def _interpolate_valid(self, field: np.ndarray, valid: np.ndarray, observation: Observation) -> np.ndarray:
        rows, cols = observation.grid.downsampled_indices(observation.factor)
        # [num_rows, num_cols]
        lattice, lattice_valid = field[np.ix_(rows, cols)], valid[np.ix_(rows, cols)]
        if not lattice_valid.any():
            raise CkmsimError(f"{self.name} found valid samples off the sub-sampling lattice only; "
                              f"task '{observation.task}' is not uniform sampling with factor "
                              f"{observation.factor}")
        lattice = fill_from_nearest(lattice, lattice_valid)
        return lattice_spline(lattice, observation.factor, observation.grid.shape, self.order)


class Bilinear(LatticeInterpolator):
    """Bilinear interpolation of the low-resolution lattice (needs uniform sub-sampling)."""

    name = "bilinear"
    order = 1


class Bicubic(LatticeInterpolator):
    """Cubic B-spline interpolation of the low-resolution lattice (needs uniform sub-sampling).

    The spline is prefiltered, so it passes through every lattice sample; it reproduces planes exactly.
    """

    name = "bicubic"
    order = 3


class KNN(Interpolator):
    """Inverse-distance-weighted mean of the ``k`` nearest observed cells; works for any sampling pattern.

    Parameters
    ----------
    k : int
        Number of neighbours, >= 1.
    """

    name = "knn"

    def __init__(self, k: int = 4):
        if isinstance(k, bool) or int(k) != k or k < 1:
            raise CkmsimError(f"KNN needs a positive integer number of neighbours. Received: k={k}")
        self.k = int(k)

    def _interpolate_valid(self, field: np.ndarray, valid: np.ndarray, observation: Observation) -> np.ndarray:
        # [num_y * num_x, 2]: (row, col) of every cell, row-major like field.ravel()
        cells = np.indices(field.shape).reshape(2, -1).T.astype(np.float64)
        estimates = idw(cells[valid.ravel()], field[valid], cells, power=1.0, k=self.k)
        return estimates.reshape(field.shape)


class CodedBicubic(Method):
    """The E-SRResNet paper's bicubic baseline: bicubic interpolation of the CKMImageNet *pixel images*.

    The paper compares against bicubic up-sampling of its coded images, in which a building cell or an absent
    path is pixel 0 of both images (-250 dB, -200 deg) and azimuths are linear pixels over -200..180 deg
    (:mod:`ckmsim.maps.pixels`). Each path's PGM and PAM lattice is interpolated as it is coded (no nearest
    fill, no unit circle) and decoded: gains clipped to the pixel range, azimuths to -180..180 deg (a pixel in
    the building code of an open cell reads as -180 deg). ckmsim's own :class:`Bicubic` is the stronger
    interpolator; both are reported so that the paper's Table I is compared like for like.

    Only ``path_gain_db`` and ``aoa_az_deg`` (the maps the paper super-resolves) are coded; every other layer
    is ckmsim's :class:`Bicubic`, so that the prediction is a complete CKM for the link studies.
    """

    name = "bicubic-coded"

    def unsupported_reason(self, observation: Observation) -> str | None:
        if observation.factor is None:
            return f"{self.name} interpolates the sub-sampling lattice; task '{observation.task}' has factor=None"
        for layer in ("path_gain_db", "aoa_az_deg"):
            if layer not in observation.values:
                return f"{self.name} completes PGM and PAM; the observation lacks '{layer}'"
        return None

    def predict(self, observation: Observation) -> xr.Dataset:
        from ckmsim.maps.pixels import angle_deg_to_pixel, gain_db_to_pixel, pixel_to_angle_deg, pixel_to_gain_db

        reason = self.unsupported_reason(observation)
        if reason is not None:
            raise CkmsimError(reason)
        grid, building, factor = observation.grid, observation.building, observation.factor
        rows, cols = grid.downsampled_indices(factor)
        gains, angles = [], []
        for path in range(observation.values.sizes["path"]):
            gain_pixel = gain_db_to_pixel(observation.values["path_gain_db"].values[path], building)
            angle_pixel = angle_deg_to_pixel(observation.values["aoa_az_deg"].values[path], building)
            gain = lattice_spline(gain_pixel[np.ix_(rows, cols)], factor, grid.shape, order=3)
            angle = lattice_spline(angle_pixel[np.ix_(rows, cols)], factor, grid.shape, order=3)
            gains.append(np.where(building, GAIN_FLOOR_DB, pixel_to_gain_db(np.clip(gain, 0.0, 1.0))))
            # an open cell pulled to the building code reads as -180 deg, as the paper's decoded image does
            angles.append(np.where(building, np.nan, pixel_to_angle_deg(angle, building_as_nan=False)))
        base = Bicubic().predict(observation)
        variables = {name: base[name].values for name in base.data_vars}
        variables.update(path_gain_db=np.stack(gains), aoa_az_deg=np.stack(angles))
        return make_ckm(grid, variables, self._prediction_attrs(observation))


#: Registry name -> Method class.
INTERPOLATORS: dict[str, type[Interpolator]] = {"bilinear": Bilinear, "bicubic": Bicubic, "knn": KNN}
