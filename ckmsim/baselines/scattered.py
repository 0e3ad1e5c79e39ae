"""Scattered-data baselines: inverse-distance weighting, radial basis functions and ordinary kriging.

Each method is an :class:`~ckmsim.baselines.interpolation.Interpolator`: it only says how to interpolate one
2-D field from its valid observed cells, and inherits the layer/path loop, the building mask and the azimuth
handling on the unit circle (cos and sin apart, then ``atan2``). Positions are (row, col) in cell units, so
no method needs the sub-sampling ``factor``: all work for any sampling pattern. All three reproduce every
observed sample (IDW by construction, RBF with ``smoothing=0``, kriging with a zero nugget).

The least-squares reconstruction of CKMDiff eq. (3), ``x = A^+ y``, is not provided: for the point-sampling
operator of :func:`~ckmsim.maps.degrade.uniform_subsample` (a row selection of the identity),
``A^+ y = A^T y`` is zero at every unobserved cell, which is meaningless in dB.
"""

from __future__ import annotations

import numpy as np
from scipy.interpolate import RBFInterpolator
from scipy.spatial import cKDTree

from ckmsim.baselines.interpolation import QUERY_CHUNK, Interpolator, fill_from_nearest, idw
from ckmsim.errors import CkmsimError
from ckmsim.maps.degrade import Observation



def _cells(shape: tuple[int, int]) -> np.ndarray:
    """[num_y * num_x, 2], float64: (row, col) of every cell, row-major like ``field.ravel()``."""
    return np.indices(shape).reshape(2, -1).T.astype(np.float64)


def _check_count(cls: str, arg: str, value, allow_none: bool = False) -> int | None:
    """A positive integer (or None if allowed), else :class:`CkmsimError` naming the argument."""
    if value is None and allow_none:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, np.integer, float)) or int(value) != value \
            or value < 1:
        raise CkmsimError(f"{cls} needs a positive integer {arg}"
                          f"{' or None' if allow_none else ''}. Received: {arg}={value!r}")
    return int(value)


def _check_real(cls: str, arg: str, value, minimum: float, strict: bool) -> float:
    """A finite real ``> minimum`` (strict) or ``>= minimum``, else :class:`CkmsimError` naming the argument."""
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)) \
            or not np.isfinite(value) or (value <= minimum if strict else value < minimum):
        raise CkmsimError(f"{cls} needs a finite {arg} {'>' if strict else '>='} {minimum}. "
                          f"Received: {arg}={value!r}")
    return float(value)


class IDW(Interpolator):
    """Inverse-distance weighting of the observed cells; exact at samples, bounded by the sample range.

    Parameters
    ----------
    power : float
        Distance exponent, > 0 (2 is Shepard's classic choice).
    k : int or None
        Number of nearest samples to weight (k-d tree), 16 by default: a local neighbourhood, as GIS tools
        use, keeps the cost linear in the number of cells (measured: 0.67 s for a 128x128 map from x4
        samples with every sample weighted, growth exponent 1.9). None weights every observed cell
        (Shepard's global form).
    """

    name = "idw"

    def __init__(self, power: float = 2.0, k: int | None = 16):
        self.power = _check_real("IDW", "power", power, 0.0, strict=True)
        self.k = _check_count("IDW", "k", k, allow_none=True)

    def _interpolate_valid(self, field: np.ndarray, valid: np.ndarray, observation: Observation) -> np.ndarray:
        cells = _cells(field.shape)
        return idw(cells[valid.ravel()], field[valid], cells, self.power, self.k).reshape(field.shape)


#: scipy's RBF kernels; the first four are scale-free, the others use ``epsilon``.
_RBF_KERNELS = ("thin_plate_spline", "linear", "cubic", "quintic", "multiquadric", "inverse_multiquadric",
                "inverse_quadratic", "gaussian")


class RBF(Interpolator):
    """Radial-basis-function interpolation (:class:`scipy.interpolate.RBFInterpolator`).

    Each query is interpolated from its ``neighbors`` nearest samples, which bounds cost and memory on large
    maps. The default thin-plate spline carries a degree-1 polynomial, so it reproduces planes exactly.
    With fewer samples than the kernel's polynomial needs (3 for thin-plate), cells take the nearest sample.

    Parameters
    ----------
    kernel : str
        One of scipy's kernels: ``thin_plate_spline``, ``linear``, ``cubic``, ``quintic``, ``multiquadric``,
        ``inverse_multiquadric``, ``inverse_quadratic``, ``gaussian``.
    neighbors : int or None
        Samples per local interpolant; None solves one global system (cost grows as samples cubed).
    smoothing : float
        >= 0; 0 interpolates the samples exactly, larger values trade exactness for smoothness.
    epsilon : float
        > 0, shape parameter [1/cells] of the scale-dependent kernels (ignored by the scale-free ones).
    """

    name = "rbf"

    def __init__(self, kernel: str = "thin_plate_spline", neighbors: int | None = 64, smoothing: float = 0.0,
                 epsilon: float = 1.0):
        if kernel not in _RBF_KERNELS:
            raise CkmsimError(f"RBF needs kernel in {_RBF_KERNELS}. Received: kernel={kernel!r}")
        self.kernel = kernel
        self.neighbors = _check_count("RBF", "neighbors", neighbors, allow_none=True)
        self.smoothing = _check_real("RBF", "smoothing", smoothing, 0.0, strict=False)
        self.epsilon = _check_real("RBF", "epsilon", epsilon, 0.0, strict=True)

    def _interpolate_valid(self, field: np.ndarray, valid: np.ndarray, observation: Observation) -> np.ndarray:
        cells = _cells(field.shape)
        points, values = cells[valid.ravel()], field[valid]
        # A degree-1 polynomial (thin-plate's minimum) needs 3 samples; scale-free odd kernels need >= 1.
        if len(points) < 3:
            return fill_from_nearest(field, valid)
        neighbors = None if self.neighbors is None or self.neighbors >= len(points) else self.neighbors
        interpolant = RBFInterpolator(points, values, neighbors=neighbors, smoothing=self.smoothing,
                                      kernel=self.kernel, epsilon=self.epsilon)
        return interpolant(cells).reshape(field.shape)


#: Most lag bins for the variogram fit (pykrige bins all sample pairs, from the shortest to the longest lag).
_MAX_LAGS = 64

#: pykrige's built-in variogram models; the fitted nugget is always the last parameter.
_VARIOGRAM_MODELS = ("exponential", "spherical", "gaussian", "linear", "power", "hole-effect")


class Kriging(Interpolator):
    """Ordinary kriging with a variogram fitted by pykrige, solved in local neighbourhoods.

    Cost is bounded in two steps. The variogram is fitted once per field on all samples with
    :class:`pykrige.ok.OrdinaryKriging` (its binned-semivariance least-squares fit, with lag bins about one
    sample spacing wide; leave-one-out statistics off). Then each query solves its own ordinary-kriging system with its ``neighbors`` nearest samples,
    batched with numpy — a ``[neighbors + 1]``-square system per cell instead of one system over all
    samples, the same local neighbourhood as pykrige's ``n_closest_points`` but vectorised.

    The fitted nugget is set to zero, so kriging interpolates: a query on a sample returns it exactly (as
    pykrige's ``exact_values=True``). A constant field is returned as is; if the fit is degenerate (zero
    sill, a range below the sample spacing, or fewer than 4 samples) a linear variogram is used, whose weights do not depend on its
    slope.

    Parameters
    ----------
    variogram_model : str
        One of pykrige's models: ``exponential``, ``spherical``, ``gaussian``, ``linear``, ``power``,
        ``hole-effect``.
    neighbors : int
        Samples per local system, >= 1 (fewer if there are fewer samples).
    """

    name = "kriging"

    def __init__(self, variogram_model: str = "exponential", neighbors: int = 32):
        if variogram_model not in _VARIOGRAM_MODELS:
            raise CkmsimError(f"Kriging needs variogram_model in {_VARIOGRAM_MODELS}. "
                              f"Received: variogram_model={variogram_model!r}")
        self.variogram_model = variogram_model
        self.neighbors = _check_count("Kriging", "neighbors", neighbors)

    def _variogram(self, points: np.ndarray, values: np.ndarray):
        """The fitted variogram with zero nugget, as a function of distance [cells] (array in, array out)."""
        if len(points) >= 4:
            from pykrige.ok import OrdinaryKriging

            # Lag bins one sample spacing wide: pykrige's default 6 bins over the whole map are far wider than
            # the correlation length of a CKM and fit a pure-nugget model (kriging would return local means).
            spacing = float(np.median(cKDTree(points).query(points, k=2)[0][:, 1]))
            extent = float(np.linalg.norm(np.ptp(points, axis=0)))
            nlags = int(np.clip(np.ceil(extent / spacing), 6, _MAX_LAGS))
            fitted = OrdinaryKriging(points[:, 1], points[:, 0], values, variogram_model=self.variogram_model,
                                     nlags=nlags, enable_statistics=False)
            parameters = np.array(fitted.variogram_model_parameters, dtype=np.float64)
            parameters[-1] = 0.0
            model = fitted.variogram_function
            probe = model(parameters, np.array([0.5 * spacing, spacing]))
            # A range below the sample spacing is a pure nugget in disguise: use the linear fallback.
            if np.all(np.isfinite(probe)) and np.all(probe > 0) and probe[0] < probe[1]:
                return lambda distances: model(parameters, distances)
        return lambda distances: distances

    def _interpolate_valid(self, field: np.ndarray, valid: np.ndarray, observation: Observation) -> np.ndarray:
        values = field[valid]
        if np.ptp(values) == 0.0:
            return np.full(field.shape, values[0])
        cells = _cells(field.shape)
        points = cells[valid.ravel()]
        variogram = self._variogram(points, values)
        num_neighbours = min(self.neighbors, len(points))
        tree = cKDTree(points)
        estimates = np.empty(len(cells))
        for start in range(0, len(cells), QUERY_CHUNK):
            chunk = cells[start:start + QUERY_CHUNK]
            # distances, neighbours: [chunk, num_neighbours], nearest first
            distances, neighbours = tree.query(chunk, k=list(range(1, num_neighbours + 1)))
            # local: [chunk, num_neighbours, 2]
            local = points[neighbours]
            pair_distances = np.linalg.norm(local[:, :, None, :] - local[:, None, :, :], axis=-1)
            # system: [chunk, num_neighbours + 1, num_neighbours + 1]; the last row/column is unbiasedness
            system = np.ones((len(chunk), num_neighbours + 1, num_neighbours + 1))
            system[:, :-1, :-1] = variogram(pair_distances)
            system[:, np.arange(num_neighbours), np.arange(num_neighbours)] = 0.0
            system[:, -1, -1] = 0.0
            # rhs: [chunk, num_neighbours + 1, 1]
            rhs = np.ones((len(chunk), num_neighbours + 1, 1))
            rhs[:, :-1, 0] = np.where(distances == 0.0, 0.0, variogram(distances))
            try:
                weights = np.linalg.solve(system, rhs)[:, :-1, 0]
            except np.linalg.LinAlgError:
                weights = (np.linalg.pinv(system) @ rhs)[:, :-1, 0]
            # A query on a sample is that sample (exact kriging), without round-off.
            exact = distances[:, 0] == 0.0
            weights[exact] = 0.0
            weights[exact, 0] = 1.0
            estimates[start:start + len(chunk)] = np.sum(weights * values[neighbours], axis=1)
        return estimates.reshape(field.shape)


#: Registry name -> Method class.
SCATTERED: dict[str, type[Interpolator]] = {"idw": IDW, "rbf": RBF, "kriging": Kriging}
