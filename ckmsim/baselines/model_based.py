"""Model-based channel-gain baselines: path loss + kriging, 3GPP UMi, and distance-weighted cross-AP inference.

* :class:`PathLossKriging` -- CKMDiff eqs. (6)-(7): log-distance path loss fitted by least squares to the
  measured gains, plus ordinary kriging of the residual (shadowing with exponential spatial correlation).
* :func:`umi_path_loss_db`, :func:`umi_los_probability`, :class:`ThreeGppUmi` -- 3GPP TR 38.901
  Tables 7.4.1-1 and 7.4.2-1, UMi street canyon; the model-based benchmark of the cross-AP UNet paper.
* :func:`distance_weighted_cross_ap` -- cross-AP UNet paper eq. (7), the weighted benchmark.

These methods predict ``gain_db`` only (plus the ``building`` prior); gains are in dB, distances in metres.
"""

from __future__ import annotations

import numpy as np
import xarray as xr

from ckmsim.baselines.base import Method
from ckmsim.errors import CkmsimError
from ckmsim.maps.ckm import make_ckm
from ckmsim.maps.degrade import Observation

#: Speed of light used by TR 38.901 for the breakpoint distance [m/s] (the standard writes c = 3.0e8 m/s).
SPEED_OF_LIGHT_M_S = 3.0e8

#: Effective environment height h_E of UMi [m] (TR 38.901 Table 7.4.1-1, note 1): h' = h - h_E.
UMI_EFFECTIVE_ENV_HEIGHT_M = 1.0

# Distances are clamped to this [m] before log10: a log-distance law is meaningless in the near field and
# a cell centre exactly at the BS would otherwise give log10(0) = -inf.
_MIN_DISTANCE_M = 1.0

_VARIOGRAM_MODELS = ("linear", "power", "gaussian", "spherical", "exponential", "hole-effect")


def _bs_position_m(observation: Observation) -> np.ndarray:
    """``[3]``: the BS position (x, y, z) [m] from ``observation.attrs['bs_position_m']``."""
    position = observation.attrs.get("bs_position_m")
    if position is None:
        raise CkmsimError(f"observation.attrs lacks 'bs_position_m' (task '{observation.task}'); "
                          f"model-based methods need the BS position [x, y, z] in metres")
    position = np.asarray(position, dtype=np.float64)
    if position.shape != (3,) or not np.all(np.isfinite(position)):
        raise CkmsimError(f"observation.attrs['bs_position_m'] must be 3 finite numbers [x, y, z] in metres. "
                          f"Received: {observation.attrs['bs_position_m']!r}")
    return position


def _distances_m(observation: Observation) -> tuple[np.ndarray, np.ndarray]:
    """2-D and 3-D distances [m] from the BS to every cell's UE (``grid.height_m`` above the local ground),
    each [num_y, num_x]."""
    bs = _bs_position_m(observation)
    # centres: [num_y, num_x, 3]
    centres = observation.ue_positions_m()
    offset = centres - bs
    d_2d = np.hypot(offset[..., 0], offset[..., 1])
    d_3d = np.sqrt(d_2d ** 2 + offset[..., 2] ** 2)
    return d_2d, d_3d


def fit_log_distance(distance_m: np.ndarray, gain_db: np.ndarray) -> tuple[float, float]:
    """Least-squares fit of the log-distance law, CKMDiff eq. (6) without the random terms.

    .. math::
        \\Upsilon_{dB}(q) = K_{dB} - 10\\, n_{PL} \\log_{10}(\\|q\\|)

    Input
    -----
    distance_m : [num_samples], float
        Distance to the BS [m]; clamped to >= 1 m.
    gain_db : [num_samples], float
        Measured channel gain [dB].

    Output
    ------
    k_db : float
        Intercept, the gain at 1 m [dB].
    n_pl : float
        Path loss exponent [-].
    """
    log_d = np.log10(np.maximum(distance_m, _MIN_DISTANCE_M))
    # Two parameters need two distinct distances; otherwise lstsq silently returns a minimum-norm answer.
    if np.unique(log_d).size < 2:
        raise CkmsimError(f"Fitting K_dB and n_PL needs samples at >= 2 distinct distances from the BS. "
                          f"Received: {log_d.size} sample(s) at {np.unique(log_d).size} distinct distance(s)")
    # design: [num_samples, 2]; columns multiply (K_dB, n_PL)
    design = np.stack([np.ones_like(log_d), -10.0 * log_d], axis=1)
    (k_db, n_pl), *_ = np.linalg.lstsq(design, gain_db, rcond=None)
    return float(k_db), float(n_pl)


class PathLossKriging(Method):
    """Log-distance path loss fitted by least squares plus ordinary kriging of the residual (CKMDiff (6)-(7)).

    The fit uses the observed non-building cells against their 3-D distance to the BS
    (``observation.attrs['bs_position_m']``; cell centres at ``grid.height_m``). The residual
    ``gain_db - (K_dB - 10 n_PL log10 d)`` holds shadowing and fading; it is interpolated by ordinary kriging
    (pykrige, ``exact_values=True``) with a variogram fitted to it -- the exponential model matches the
    shadowing correlation sigma exp(-h / d) of eq. (7). Prediction = fitted path loss + kriged residual;
    observed cells return their measurement exactly. The fitted ``k_db`` [dB] and ``n_pl`` [-] are written
    to the prediction's attrs (``predict`` keeps no state).

    Parameters
    ----------
    variogram_model : str
        pykrige variogram model: one of ``linear, power, gaussian, spherical, exponential, hole-effect``.
    neighbors : int
        Observed cells used per kriged cell (moving-window kriging), >= 1.
    """

    name = "pathloss_kriging"

    def __init__(self, variogram_model: str = "exponential", neighbors: int = 32):
        if variogram_model not in _VARIOGRAM_MODELS:
            raise CkmsimError(f"PathLossKriging variogram_model must be one of {list(_VARIOGRAM_MODELS)}. "
                              f"Received: variogram_model={variogram_model!r}")
        if isinstance(neighbors, bool) or not isinstance(neighbors, (int, np.integer)) or neighbors < 1:
            raise CkmsimError(f"PathLossKriging needs a positive integer number of neighbors. "
                              f"Received: neighbors={neighbors!r}")
        self.variogram_model = variogram_model
        self.neighbors = int(neighbors)

    def unsupported_reason(self, observation: Observation) -> str | None:
        """The log-distance fit needs measurements at two or more distances from the BS (at least 1 m, the
        clamp of :func:`fit_log_distance`): a study area smaller than a metre around the BS (toy scenes such
        as ``simple_reflector``) has one."""
        if "gain_db" not in observation.values or "bs_position_m" not in observation.attrs:
            return None
        gain = observation.values["gain_db"].transpose("y", "x").values
        valid = np.asarray(observation.observed, dtype=bool) & ~np.asarray(observation.building, dtype=bool) \
            & np.isfinite(gain)
        _, d_3d = _distances_m(observation)
        if np.unique(np.maximum(d_3d[valid], _MIN_DISTANCE_M)).size < 2:
            return (f"{self.name}: every measured cell of task '{observation.task}' is within "
                    f"{_MIN_DISTANCE_M:g} m of the BS, so the log-distance law has one distance to fit")
        return None

    def predict(self, observation: Observation) -> xr.Dataset:
        """Fit the path loss, krige the residual, and return ``gain_db`` [dB] and ``building`` on the grid.

        Output attrs add ``k_db`` [dB] and ``n_pl`` [-], the fitted eq. (6) parameters.
        """
        if "gain_db" not in observation.values:
            raise CkmsimError(f"{self.name} needs a 'gain_db' layer; observation for task "
                              f"'{observation.task}' has {sorted(observation.values.data_vars)}")
        gain = observation.values["gain_db"].transpose("y", "x").values.astype(np.float64)
        building = np.asarray(observation.building, dtype=bool)
        valid = np.asarray(observation.observed, dtype=bool) & ~building & np.isfinite(gain)
        if valid.sum() < 3:
            raise CkmsimError(f"{self.name} needs >= 3 measured non-building 'gain_db' cells; observation "
                              f"for task '{observation.task}' has {int(valid.sum())}")
        _, d_3d = _distances_m(observation)
        k_db, n_pl = fit_log_distance(d_3d[valid], gain[valid])
        path_gain = k_db - 10.0 * n_pl * np.log10(np.maximum(d_3d, _MIN_DISTANCE_M))

        residual = np.zeros(gain.shape)
        residual[valid] = gain[valid] - path_gain[valid]
        queries = ~valid & ~building
        # A residual that is constant to 1e-6 dB (zero shadowing) has no variogram to fit (pykrige would
        # divide by a zero sill); its kriging estimate would be that constant anyway.
        if queries.any():
            samples = residual[valid]
            if np.ptp(samples) < 1e-6:
                residual[queries] = samples.mean()
            else:
                residual[queries] = self._krige(observation, valid, samples, queries)

        predicted = path_gain + residual
        # Observed cells keep their measurement bit for bit (kriging is exact there, but path_gain + residual
        # could differ from it by round-off).
        predicted[valid] = gain[valid]
        predicted[building] = np.nan
        attrs = self._prediction_attrs(observation)
        attrs.update(k_db=k_db, n_pl=n_pl)
        return make_ckm(observation.grid, {"gain_db": predicted, "building": building}, attrs)

    def _krige(self, observation: Observation, valid: np.ndarray, samples: np.ndarray,
               queries: np.ndarray) -> np.ndarray:
        """Ordinary kriging of ``samples`` (at ``valid`` cells) to the ``queries`` cells; output [num_queries]."""
        from pykrige.ok import OrdinaryKriging  # imported here: pykrige is only needed by this method

        grid = observation.grid
        xx, yy = np.meshgrid(grid.x_m, grid.y_m)
        kriging = OrdinaryKriging(xx[valid], yy[valid], samples, variogram_model=self.variogram_model,
                                  exact_values=True, enable_plotting=False, verbose=False)
        num_neighbors = min(self.neighbors, samples.size)
        # Moving-window kriging (n_closest_points) bounds the cost per query; it needs the 'loop' backend.
        estimates, _ = kriging.execute("points", xx[queries], yy[queries], backend="loop",
                                       n_closest_points=num_neighbors)
        return np.asarray(estimates, dtype=np.float64)


def _check_positive(name: str, value) -> np.ndarray:
    array = np.asarray(value, dtype=np.float64)
    if not np.all(np.isfinite(array)) or np.any(array <= 0):
        raise CkmsimError(f"{name} must be finite and > 0. Received: {name}={value!r}")
    return array


def umi_los_probability(d_2d_m) -> np.ndarray:
    """LoS probability of UMi street canyon, 3GPP TR 38.901 Table 7.4.2-1.

    .. math::
        P_{LOS} = 1 \\text{ for } d_{2D} \\le 18\\,\\text{m}, \\quad
        P_{LOS} = \\frac{18}{d_{2D}} + \\exp\\left(-\\frac{d_{2D}}{36}\\right)\\left(1 - \\frac{18}{d_{2D}}\\right)
        \\text{ otherwise.}

    Input
    -----
    d_2d_m : array_like, float
        Horizontal BS-UT distance [m], >= 0.

    Output
    ------
    p_los : same shape, float64, in (0, 1]
    """
    d = np.asarray(d_2d_m, dtype=np.float64)
    if not np.all(np.isfinite(d)) or np.any(d < 0):
        raise CkmsimError(f"d_2d_m must be finite and >= 0. Received: d_2d_m={d_2d_m!r}")
    # Divide by max(d, 18) so that d <= 18 (d = 0 included) never divides by zero; those cells take 1 below.
    far = np.maximum(d, 18.0)
    p_far = 18.0 / far + np.exp(-far / 36.0) * (1.0 - 18.0 / far)
    return np.where(d <= 18.0, 1.0, p_far)


def umi_path_loss_db(d_2d_m, d_3d_m, h_bs_m: float, h_ut_m: float, frequency_hz: float, los) -> np.ndarray:
    """Path loss of UMi street canyon, 3GPP TR 38.901 Table 7.4.1-1 (no shadow fading) [dB].

    With f_c in GHz inside the logs and the breakpoint :math:`d'_{BP} = 4 h'_{BS} h'_{UT} f_c / c`
    (f_c in Hz, c = 3e8 m/s, :math:`h' = h - 1` m):

    .. math::
        PL_1 = 32.4 + 21 \\log_{10} d_{3D} + 20 \\log_{10} f_c, \\quad d_{2D} \\le d'_{BP}

        PL_2 = 32.4 + 40 \\log_{10} d_{3D} + 20 \\log_{10} f_c
               - 9.5 \\log_{10}\\left(d'^2_{BP} + (h_{BS} - h_{UT})^2\\right), \\quad d_{2D} > d'_{BP}

        PL_{NLOS} = \\max\\left(PL_{LOS},\\ 35.3 \\log_{10} d_{3D} + 22.4 + 21.3 \\log_{10} f_c
                    - 0.3 (h_{UT} - 1.5)\\right)

    The table's validity range (10 m <= d_2D <= 5 km, 0.5-100 GHz, h_UT 1.5-22.5 m, h_BS = 10 m) is not
    enforced: outside it the same formulas are extrapolated (PL_1 below 10 m), as a baseline map needs a
    value at every cell.

    Input
    -----
    d_2d_m, d_3d_m : array_like, float
        Horizontal and 3-D BS-UT distances [m], broadcastable; d_3d_m > 0.
    h_bs_m, h_ut_m : float
        BS and UT antenna heights [m], > 1 m (the effective heights h' must be positive).
    frequency_hz : float
        Carrier frequency [Hz], > 0.
    los : bool or array_like of bool
        Line-of-sight state, broadcastable with the distances.

    Output
    ------
    path_loss_db : broadcast shape, float64 [dB], positive for a loss
    """
    d_2d = np.asarray(d_2d_m, dtype=np.float64)
    if not np.all(np.isfinite(d_2d)) or np.any(d_2d < 0):
        raise CkmsimError(f"d_2d_m must be finite and >= 0. Received: d_2d_m={d_2d_m!r}")
    d_3d = _check_positive("d_3d_m", d_3d_m)
    frequency = float(_check_positive("frequency_hz", frequency_hz))
    for name, value in (("h_bs_m", h_bs_m), ("h_ut_m", h_ut_m)):
        if not np.isscalar(value) or not np.isfinite(value) or value <= UMI_EFFECTIVE_ENV_HEIGHT_M:
            raise CkmsimError(f"{name} must be a finite height > {UMI_EFFECTIVE_ENV_HEIGHT_M} m (the effective "
                              f"height h' = h - 1 m must be positive). Received: {name}={value!r}")
    los = np.asarray(los)
    if los.dtype != bool:
        raise CkmsimError(f"los must be a bool or an array of bool. Received dtype {los.dtype}")

    fc_ghz = frequency / 1e9
    d_bp = (4.0 * (h_bs_m - UMI_EFFECTIVE_ENV_HEIGHT_M) * (h_ut_m - UMI_EFFECTIVE_ENV_HEIGHT_M)
            * frequency / SPEED_OF_LIGHT_M_S)
    pl_1 = 32.4 + 21.0 * np.log10(d_3d) + 20.0 * np.log10(fc_ghz)
    pl_2 = (32.4 + 40.0 * np.log10(d_3d) + 20.0 * np.log10(fc_ghz)
            - 9.5 * np.log10(d_bp ** 2 + (h_bs_m - h_ut_m) ** 2))
    pl_los = np.where(d_2d <= d_bp, pl_1, pl_2)
    pl_nlos_prime = 35.3 * np.log10(d_3d) + 22.4 + 21.3 * np.log10(fc_ghz) - 0.3 * (h_ut_m - 1.5)
    # NLoS can never be weaker in loss than LoS at the same point, hence the max of the table.
    pl_nlos = np.maximum(pl_los, pl_nlos_prime)
    return np.where(los, pl_los, pl_nlos)


class ThreeGppUmi(Method):
    """3GPP TR 38.901 UMi street-canyon map: the cross-AP UNet paper's model-based benchmark.

    ``gain_db = -PL`` with the expected path gain over the LoS state (``los="probability"``):

    .. math::
        G_{dB} = 10 \\log_{10}\\left(P_{LOS}\\, 10^{-PL_{LOS}/10} + (1 - P_{LOS})\\, 10^{-PL_{NLOS}/10}\\right)

    with P_LOS from Table 7.4.2-1 and PL from Table 7.4.1-1. The average is taken over linear power gains,
    since the expected received power is what a power map describes; averaging dB would be a geometric mean.
    h_BS is ``bs_position_m[2]`` above the open cells' median local ground, h_UT is ``grid.height_m``, f_c is ``attrs['frequency_hz']``. The
    measurements are ignored (a pure model); only the ``building`` prior is used (NaN gain there).

    Parameters
    ----------
    los : str
        ``"probability"`` (the only mode: an observation carries no LoS map to use).
    """

    name = "umi_3gpp"

    def __init__(self, los: str = "probability"):
        if los != "probability":
            raise CkmsimError(f"ThreeGppUmi supports los='probability' only (observations carry no LoS map). "
                              f"Received: los={los!r}")
        self.los = los

    def predict(self, observation: Observation) -> xr.Dataset:
        """Return ``gain_db`` [dB] (the expected UMi path gain) and ``building`` on the observation's grid."""
        frequency_hz = observation.attrs.get("frequency_hz")
        if frequency_hz is None:
            raise CkmsimError(f"observation.attrs lacks 'frequency_hz' (task '{observation.task}'); "
                              f"{self.name} needs the carrier frequency in Hz")
        bs = _bs_position_m(observation)
        d_2d, d_3d = _distances_m(observation)
        # A cell centre at the BS itself has d_3d = 0; clamp so the log stays finite (near field anyway).
        d_3d = np.maximum(d_3d, _MIN_DISTANCE_M)
        # 38.901's h_BS is a height above the ground: over terrain, above the open cells' median ground
        open_ground_m = (np.zeros(0) if observation.ground_m is None else
                         np.asarray(observation.ground_m)[~np.asarray(observation.building, dtype=bool)])
        ground_m = float(np.median(open_ground_m)) if open_ground_m.size else 0.0
        h_bs, h_ut = float(bs[2]) - ground_m, float(observation.grid.height_m)
        pl_los = umi_path_loss_db(d_2d, d_3d, h_bs, h_ut, frequency_hz, los=True)
        pl_nlos = umi_path_loss_db(d_2d, d_3d, h_bs, h_ut, frequency_hz, los=False)
        p_los = umi_los_probability(d_2d)
        gain_linear = p_los * 10.0 ** (-pl_los / 10.0) + (1.0 - p_los) * 10.0 ** (-pl_nlos / 10.0)
        gain_db = 10.0 * np.log10(gain_linear)
        building = np.asarray(observation.building, dtype=bool)
        gain_db[building] = np.nan
        return make_ckm(observation.grid, {"gain_db": gain_db, "building": building},
                        self._prediction_attrs(observation))


def cross_ap_weights(ap_positions, target_position, beta: float = 0.1) -> np.ndarray:
    """Weights of the cross-AP UNet paper eq. (7): a softmax of -beta times the distance to the target AP.

    .. math::
        w_n = \\frac{e^{-\\beta d_{t,n}}}{\\sum_{i=1}^{N} e^{-\\beta d_{t,i}}}

    Input
    -----
    ap_positions : [N, 2] or [N, 3], float
        Positions of the N known APs [m].
    target_position : [2] or [3], float
        Position of the target AP [m], same length as a row of ``ap_positions``.
    beta : float
        Weight parameter [1/m], >= 0 (the paper uses 0.1).

    Output
    ------
    weights : [N], float64, summing to 1
    """
    positions = np.asarray(ap_positions, dtype=np.float64)
    target = np.asarray(target_position, dtype=np.float64)
    if positions.ndim != 2 or positions.shape[0] < 1 or positions.shape[1] not in (2, 3):
        raise CkmsimError(f"ap_positions must have shape [N, 2] or [N, 3] with N >= 1. "
                          f"Received shape {positions.shape}")
    if target.shape != (positions.shape[1],):
        raise CkmsimError(f"target_position must have shape ({positions.shape[1]},) to match ap_positions. "
                          f"Received shape {target.shape}")
    if not (np.all(np.isfinite(positions)) and np.all(np.isfinite(target))):
        raise CkmsimError("ap_positions and target_position must be finite")
    if isinstance(beta, bool) or not np.isscalar(beta) or not np.isfinite(beta) or beta < 0:
        raise CkmsimError(f"beta must be a finite number >= 0. Received: beta={beta!r}")
    distances = np.linalg.norm(positions - target, axis=1)
    # Shift by the smallest distance before exponentiating: the softmax is unchanged, but a large beta * d
    # no longer underflows every weight to 0 (0 / 0); the nearest AP always keeps weight exp(0) = 1.
    logits = -beta * (distances - distances.min())
    weights = np.exp(logits)
    return weights / weights.sum()


#: Single-transmitter channel-gain methods by registry name (the cross-AP scheme needs other APs' maps).
MODEL_BASED = {PathLossKriging.name: PathLossKriging, ThreeGppUmi.name: ThreeGppUmi}


def distance_weighted_cross_ap(maps_db, ap_positions, target_position, beta: float = 0.1) -> np.ndarray:
    """Infer the target AP's gain map as the distance-weighted sum of other APs' maps (cross-AP UNet eq. (7)).

    .. math::
        G_0^{infer} = \\sum_{n=1}^{N} w_n G_n, \\quad w_n = \\text{softmax}_n(-\\beta d_{t,n})

    The average is taken in dB: the paper's G_n are channel-gain maps stored as images of dB values, and
    eq. (7) sums them as they are. NaN cells (buildings) in any map stay NaN.

    Input
    -----
    maps_db : [N, num_y, num_x], float
        Gain maps of the N known APs [dB].
    ap_positions : [N, 2] or [N, 3], float
        Their positions [m].
    target_position : [2] or [3], float
        Target AP position [m].
    beta : float
        Weight parameter [1/m], >= 0; default 0.1 as in the paper.

    Output
    ------
    map_db : [num_y, num_x], float64 [dB]
    """
    maps = np.asarray(maps_db, dtype=np.float64)
    if maps.ndim != 3:
        raise CkmsimError(f"maps_db must have shape [N, num_y, num_x]. Received shape {maps.shape}")
    weights = cross_ap_weights(ap_positions, target_position, beta)
    if weights.shape[0] != maps.shape[0]:
        raise CkmsimError(f"maps_db holds {maps.shape[0]} map(s) but ap_positions {weights.shape[0]} "
                          f"position(s); they must match")
    return np.tensordot(weights, maps, axes=1)
