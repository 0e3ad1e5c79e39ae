"""Map-level error metrics of a predicted CKM against its ray-traced ground truth.

The image metrics follow CKMDiff (Sec. V-B, eqs. (23)-(30)) for **one** map (``M = 1``): the batch average
``1/M sum_m`` of the paper is left to the caller, which averages the per-map scores. Every metric is computed
over a boolean ``mask`` (the region scored, by default the non-building cells), so a prediction is never
rewarded or punished for the inside of a building. The SCM similarity is E-SRResNet's eq. (9).

All functions take and return numpy values and compute in float64; scalar scores are plain Python floats so
that they can go into ``results.json`` unchanged.
"""

from __future__ import annotations

import numpy as np
import xarray as xr
from skimage.metrics import structural_similarity

from ckmsim.errors import CkmsimError
from ckmsim.maps.angles import angle_difference_deg, unit_vectors
from ckmsim.maps.ckm import GAIN_FLOOR_DB
from ckmsim.maps.pixels import gain_db_to_pixel

#: Side of the square SSIM window (Wang et al. 2004 and skimage's default).
SSIM_WIN_SIZE = 7


# ----------------------------------------------------------------------------------------------------------
# Input checks
# ----------------------------------------------------------------------------------------------------------

def _as_mask(mask: np.ndarray | None, shape: tuple[int, ...], name: str = "mask") -> np.ndarray:
    """The boolean mask ``[shape]`` (all True for None); raise if it is not boolean, mis-shaped or empty."""
    if mask is None:
        return np.ones(shape, dtype=bool)
    mask = np.asarray(mask)
    if mask.dtype != bool:
        raise CkmsimError(f"{name} must be a boolean array. Received: {name}.dtype={mask.dtype}")
    if mask.shape != shape:
        raise CkmsimError(f"{name} has shape {mask.shape}; the maps have shape {shape}")
    if not mask.any():
        raise CkmsimError(f"{name} is empty: it selects no cell to score")
    return mask


def _checked(arrays: dict[str, np.ndarray], mask: np.ndarray | None) -> tuple[list[np.ndarray], np.ndarray]:
    """Validate maps of equal shape, finite inside ``mask``; return them as float64 and the mask.

    ``arrays`` maps argument name -> array; the first one fixes the expected shape.
    """
    values = {name: np.asarray(a, dtype=np.float64) for name, a in arrays.items()}
    first_name, first = next(iter(values.items()))
    for name, value in values.items():
        if value.shape != first.shape:
            raise CkmsimError(f"{name} has shape {value.shape}, but {first_name} has shape {first.shape}")
    mask = _as_mask(mask, first.shape)
    for name, value in values.items():
        num_bad = int(np.count_nonzero(~np.isfinite(value[mask])))
        if num_bad:
            raise CkmsimError(f"{name} has {num_bad} NaN/inf value(s) inside the mask")
    return list(values.values()), mask


# ----------------------------------------------------------------------------------------------------------
# Plain and image metrics (CKMDiff eqs. (23)-(30))
# ----------------------------------------------------------------------------------------------------------

def mse(pred: np.ndarray, truth: np.ndarray, mask: np.ndarray | None = None) -> float:
    r"""Mean squared error over the mask, in the squared unit of the inputs.

    .. math::
        \mathrm{MSE} = \frac{1}{|\mathcal{M}|} \sum_{i \in \mathcal{M}} (x_i - \hat{x}_i)^2

    On pixels this is CKMDiff's pixel-level MSE (23); on ``gain_db`` it is the gain-level MSE (26) [dB^2].

    Input
    -----
    pred, truth : [...], float
        Predicted and true map, same shape and unit.
    mask : [...], bool, optional
        Cells to score; None scores all.

    Output
    ------
    mse : float
    """
    (pred, truth), mask = _checked({"pred": pred, "truth": truth}, mask)
    return float(np.mean((truth[mask] - pred[mask]) ** 2))


def rmse(pred: np.ndarray, truth: np.ndarray, mask: np.ndarray | None = None) -> float:
    r"""Root mean squared error over the mask, in the unit of the inputs (CKMDiff eq. (24)).

    Input: ``pred``, ``truth`` ``[...]`` float; ``mask`` ``[...]`` bool or None. Output: float.
    """
    return float(np.sqrt(mse(pred, truth, mask)))


def nmse(pred: np.ndarray, truth: np.ndarray, mask: np.ndarray | None = None) -> float:
    r"""Normalised MSE of one map, CKMDiff eq. (25) with ``M = 1`` (pixel domain, linear, not dB).

    .. math::
        \mathrm{NMSE} = \frac{\sum_{i \in \mathcal{M}} (x_i - \hat{x}_i)^2}{\sum_{i \in \mathcal{M}} x_i^2}

    If the truth has no energy in the mask (all pixels 0) the ratio is undefined; it is reported as ``inf``
    when the prediction differs there and ``0.0`` when it is identical, so that a perfect prediction scores 0.

    Input
    -----
    pred, truth : [...], float
        Predicted and true pixel map.
    mask : [...], bool, optional

    Output
    ------
    nmse : float
    """
    (pred, truth), mask = _checked({"pred": pred, "truth": truth}, mask)
    error_energy = float(np.sum((truth[mask] - pred[mask]) ** 2))
    truth_energy = float(np.sum(truth[mask] ** 2))
    if truth_energy == 0.0:
        return float("inf") if error_energy > 0.0 else 0.0
    return error_energy / truth_energy


def psnr_db(pred: np.ndarray, truth: np.ndarray, mask: np.ndarray | None = None) -> float:
    r"""Peak signal-to-noise ratio [dB] of one pixel map with peak 1, CKMDiff eq. (29) with ``M = 1``.

    .. math::
        \mathrm{PSNR} = 10 \log_{10} \frac{|\mathcal{M}|}{\sum_{i \in \mathcal{M}} (x_i - \hat{x}_i)^2}

    Pixels are CKMImageNet's [0, 1] encoding, so the peak is 1. Identical maps give ``inf``.

    Input: ``pred``, ``truth`` ``[...]`` float in [0, 1]; ``mask`` ``[...]`` bool or None. Output: float [dB].
    """
    error = mse(pred, truth, mask)
    if error == 0.0:
        return float("inf")
    return float(10.0 * np.log10(1.0 / error))


def ssim(pred: np.ndarray, truth: np.ndarray, mask: np.ndarray | None = None) -> float:
    r"""Structural similarity of one pixel map, CKMDiff eq. (30) with ``M = 1``, averaged over the mask.

    .. math::
        \mathrm{SSIM}_i = \frac{(2\mu_x\mu_{\hat{x}} + C_1)(2\sigma_{x\hat{x}} + C_2)}
                               {(\mu_x^2 + \mu_{\hat{x}}^2 + C_1)(\sigma_x^2 + \sigma_{\hat{x}}^2 + C_2)}

    Reading of eq. (30): the paper writes the statistics of the whole image, but SSIM as defined in its
    reference [53] (and as every implementation computes it) is local. The local index ``SSIM_i`` is taken from
    ``skimage.metrics.structural_similarity(truth, pred, data_range=1.0, full=True)`` on the **full** 2-D
    images (uniform ``7 x 7`` window, ``C1 = (0.01)^2``, ``C2 = (0.03)^2``), so windows see the building cells
    too, and then averaged over the mask. Like skimage's own mean, cells within half a window of the image
    edge (whose windows are padded by reflection) are left out; with a full mask the result therefore equals
    skimage's mean SSIM. Images smaller than ``7 x 7`` use the largest odd window that fits (at least 3).

    Input
    -----
    pred, truth : [num_y, num_x], float
        Predicted and true pixel map in [0, 1].
    mask : [num_y, num_x], bool, optional

    Output
    ------
    ssim : float
        In [-1, 1]; 1 for identical maps.
    """
    (pred, truth), mask = _checked({"pred": pred, "truth": truth}, mask)
    if pred.ndim != 2:
        raise CkmsimError(f"ssim needs 2-D maps. Received: pred.shape={pred.shape}")
    # Only the mask matters to the score, but skimage's filters must not see NaN outside it
    pred = np.where(np.isfinite(pred), pred, 0.0)
    truth = np.where(np.isfinite(truth), truth, 0.0)
    win_size, interior = _ssim_window(pred.shape)
    scored = mask & interior
    if not scored.any():
        raise CkmsimError(f"mask selects no cell at least {(win_size - 1) // 2} cell(s) away from the map edge, "
                          f"where SSIM windows ({win_size} x {win_size}) fit")
    _, ssim_map = structural_similarity(truth, pred, data_range=1.0, win_size=win_size, full=True)
    return float(np.mean(ssim_map[scored]))


def _ssim_window(shape: tuple[int, int]) -> tuple[int, np.ndarray]:
    """SSIM window side for maps of ``shape`` and the ``[num_y, num_x]`` bool mask of cells skimage averages."""
    win_size = min(SSIM_WIN_SIZE, min(shape) - (1 - min(shape) % 2))
    if win_size < 3:
        raise CkmsimError(f"ssim needs maps of at least 3 x 3 cells. Received: shape={shape}")
    pad = (win_size - 1) // 2
    interior = np.zeros(shape, dtype=bool)
    interior[pad:shape[0] - pad, pad:shape[1] - pad] = True
    return win_size, interior


# ----------------------------------------------------------------------------------------------------------
# Angle metrics
# ----------------------------------------------------------------------------------------------------------

def angle_rmse_deg(pred_deg: np.ndarray, truth_deg: np.ndarray, mask: np.ndarray | None = None) -> float:
    r"""RMSE of an angle [deg], with each difference wrapped to (-180, 180] so that 179 vs -179 errs by 2.

    .. math::
        \sqrt{\frac{1}{|\mathcal{M}|} \sum_{i \in \mathcal{M}} \mathrm{wrap}(\hat{\phi}_i - \phi_i)^2}

    Input: ``pred_deg``, ``truth_deg`` ``[...]`` [deg]; ``mask`` ``[...]`` bool or None. Output: float [deg].
    """
    (pred_deg, truth_deg), mask = _checked({"pred_deg": pred_deg, "truth_deg": truth_deg}, mask)
    error_deg = angle_difference_deg(pred_deg[mask], truth_deg[mask])
    return float(np.sqrt(np.mean(error_deg ** 2)))


def direction_rmse_deg(pred_az: np.ndarray, pred_el: np.ndarray, truth_az: np.ndarray, truth_el: np.ndarray,
                       mask: np.ndarray | None = None) -> float:
    r"""RMS great-circle angle [deg] between predicted and true directions of arrival.

    .. math::
        \sqrt{\frac{1}{|\mathcal{M}|} \sum_{i \in \mathcal{M}}
              \arccos\!\big(\hat{\mathbf{u}}_i^\mathsf{T} \mathbf{u}_i\big)^2}

    with ``u`` the unit vector of (az, el) (:func:`ckmsim.maps.angles.unit_vectors`). Unlike separate
    azimuth and elevation errors it does not blow up near the poles, where azimuth is ill-defined.

    Input
    -----
    pred_az, pred_el, truth_az, truth_el : [...], float
        Azimuth and elevation [deg], all the same shape.
    mask : [...], bool, optional

    Output
    ------
    rmse : float
        [deg], in [0, 180].
    """
    (pred_az, pred_el, truth_az, truth_el), mask = _checked(
        {"pred_az": pred_az, "pred_el": pred_el, "truth_az": truth_az, "truth_el": truth_el}, mask)
    # [num_cells, 3]
    pred_u = unit_vectors(pred_az[mask], pred_el[mask])
    truth_u = unit_vectors(truth_az[mask], truth_el[mask])
    # Rounding can push the dot product of (near-)equal unit vectors just past 1
    cos_angle = np.clip(np.sum(pred_u * truth_u, axis=-1), -1.0, 1.0)
    angle_deg = np.degrees(np.arccos(cos_angle))
    return float(np.sqrt(np.mean(angle_deg ** 2)))


# ----------------------------------------------------------------------------------------------------------
# Spatial correlation matrices (E-SRResNet eq. (9))
# ----------------------------------------------------------------------------------------------------------

def scm_cosine_similarity(pred_scm: np.ndarray, truth_scm: np.ndarray) -> np.ndarray | float:
    r"""Cosine similarity of spatial correlation matrices, E-SRResNet eq. (9).

    .. math::
        \mathrm{Corr} = \frac{\Re\,\mathrm{tr}(\widehat{\mathbf{R}}\mathbf{R})}
                             {\|\widehat{\mathbf{R}}\|_F \, \|\mathbf{R}\|_F}

    For Hermitian SCMs ``tr(R_hat R)`` is real and equals the Frobenius inner product, so ``Corr`` lies in
    [-1, 1] (in [0, 1] for positive semi-definite ones) and is blind to a positive scale of either matrix;
    the real part only drops rounding residue. Where either matrix is all zero the similarity is undefined and
    reported as 0 (nothing of the true structure is captured).

    Input
    -----
    pred_scm, truth_scm : [..., N, N], complex or float
        Predicted and true SCMs, same shape.

    Output
    ------
    corr : [...], float64
        A Python float when the inputs are single ``[N, N]`` matrices.
    """
    pred_scm = np.asarray(pred_scm)
    truth_scm = np.asarray(truth_scm)
    if pred_scm.shape != truth_scm.shape:
        raise CkmsimError(f"pred_scm has shape {pred_scm.shape}, but truth_scm has shape {truth_scm.shape}")
    if pred_scm.ndim < 2 or pred_scm.shape[-1] != pred_scm.shape[-2]:
        raise CkmsimError(f"SCMs must be square matrices [..., N, N]. Received: pred_scm.shape={pred_scm.shape}")
    for name, scm in (("pred_scm", pred_scm), ("truth_scm", truth_scm)):
        num_bad = int(np.count_nonzero(~np.isfinite(scm)))
        if num_bad:
            raise CkmsimError(f"{name} has {num_bad} NaN/inf entr(y/ies)")
    # [...]: tr(A B) = sum_ij A_ij B_ji
    trace = np.real(np.einsum("...ij,...ji->...", pred_scm, truth_scm))
    norms = np.linalg.norm(pred_scm, axis=(-2, -1)) * np.linalg.norm(truth_scm, axis=(-2, -1))
    corr = np.divide(trace, norms, out=np.zeros_like(trace, dtype=np.float64), where=norms > 0)
    return float(corr) if corr.ndim == 0 else corr


# ----------------------------------------------------------------------------------------------------------
# The record of one predicted CKM
# ----------------------------------------------------------------------------------------------------------

def map_scores(pred_ckm: xr.Dataset, truth_ckm: xr.Dataset, region: np.ndarray | None = None) -> dict[str, float]:
    """All map-level scores of a predicted CKM against the true one: the record written to ``results.json``.

    Keys (always):

    - ``gain_mse_db2``, ``gain_rmse_db``: MSE [dB^2] (CKMDiff eq. (26)) and RMSE [dB] of ``gain_db``;
    - ``pixel_mse``, ``pixel_rmse``, ``nmse``, ``psnr_db``, ``ssim``: eqs. (23), (24), (25), (29), (30) on the
      CKMImageNet pixels ``gain_db_to_pixel(gain_db, building)`` of both maps, with the truth's buildings.

    Keys when both CKMs carry the layers (pooled over the paths both carry, matched by the ``path`` coordinate):

    - ``path_gain_rmse_db`` [dB] on ``path_gain_db``, over region cells where the true path exists
      (``path_gain_db > gain_floor_db``);
    - ``aoa_az_rmse_deg`` (wrapped), ``aoa_el_rmse_deg``, ``aoa_rmse_deg`` (great-circle, needs both angles)
      over region cells where the true and the predicted angle of that path are both finite.

    A path metric with no qualifying cell is ``nan`` (e.g. a region in deep shadow), not an error; so is
    ``ssim`` when the region has no cell a full SSIM window away from the map edge (see :func:`ssim`).

    Input
    -----
    pred_ckm, truth_ckm : xarray.Dataset
        CKMs on the same grid (:mod:`ckmsim.maps.ckm`).
    region : [num_y, num_x], bool, optional
        Cells to score; default: the truth's non-building cells.

    Output
    ------
    scores : dict[str, float]
    """
    truth_gain = truth_ckm["gain_db"].values
    pred_gain = pred_ckm["gain_db"].values
    region = _scored_region(pred_ckm, truth_ckm, region)
    building = truth_ckm["building"].values.astype(bool)

    scores = {"gain_mse_db2": mse(pred_gain, truth_gain, region)}
    scores["gain_rmse_db"] = float(np.sqrt(scores["gain_mse_db2"]))
    # Building cells come from the truth for both maps: a method is scored on its gain, not on the footprints
    pred_pixel = gain_db_to_pixel(pred_gain, building)
    truth_pixel = gain_db_to_pixel(truth_gain, building)
    scores["pixel_mse"] = mse(pred_pixel, truth_pixel, region)
    scores["pixel_rmse"] = float(np.sqrt(scores["pixel_mse"]))
    scores["nmse"] = nmse(pred_pixel, truth_pixel, region)
    scores["psnr_db"] = psnr_db(pred_pixel, truth_pixel, region)
    # A region hugging the map edge has no cell with a full SSIM window; like a missing path, that is nan
    has_ssim_cell = (region & _ssim_window(region.shape)[1]).any()
    scores["ssim"] = ssim(pred_pixel, truth_pixel, region) if has_ssim_cell else float("nan")
    scores.update(_path_scores(pred_ckm, truth_ckm, region))
    return scores


def _common_path_layers(pred_ckm: xr.Dataset, truth_ckm: xr.Dataset, names: tuple[str, ...]):
    """``{name: (pred [num_common, y, x], truth [num_common, y, x])}`` for layers both CKMs carry, else None."""
    if not all(name in pred_ckm and name in truth_ckm for name in names):
        return None
    paths = np.intersect1d(pred_ckm["path"].values, truth_ckm["path"].values)
    if paths.size == 0:
        return None
    return {name: (pred_ckm[name].sel(path=paths).values.astype(np.float64),
                   truth_ckm[name].sel(path=paths).values.astype(np.float64)) for name in names}


def map_score_cells(pred_ckm: xr.Dataset, truth_ckm: xr.Dataset, region: np.ndarray | None = None) -> dict[str, int]:
    """How many cells each score of :func:`map_scores` (same arguments) averages over.

    The gain and pixel scores average over the region's cells; ``ssim`` over those of them a full SSIM window
    away from the map edge; the path scores over *path-cells* (a cell counted once per path it is scored on,
    pooled over the paths both CKMs carry): ``path_gain_rmse_db`` where the true path exists, the angle scores
    where both the true and the predicted angle are finite. A method that predicts an angle on only some
    cells (e.g. least squares on its measured cells) is thus scored on fewer path-cells than the others.

    Output
    ------
    num_cells : dict[str, int]
        Score key of :func:`map_scores` -> cells (path-cells for the path scores) it averaged over.
    """
    region = _scored_region(pred_ckm, truth_ckm, region)
    num_region = int(np.count_nonzero(region))
    cells = dict.fromkeys(("gain_mse_db2", "gain_rmse_db", "pixel_mse", "pixel_rmse", "nmse", "psnr_db"), num_region)
    cells["ssim"] = int(np.count_nonzero(region & _ssim_window(region.shape)[1]))
    for key, (_, arrays, mask) in _path_terms(pred_ckm, truth_ckm, region).items():
        cells[key] = int(np.count_nonzero(np.broadcast_to(mask, arrays[0].shape)))
    return cells


def _scored_region(pred_ckm: xr.Dataset, truth_ckm: xr.Dataset, region) -> np.ndarray:
    """The ``[num_y, num_x]`` bool region :func:`map_scores` scores (default: the truth's non-building cells),
    checked against both CKMs' grid."""
    truth_shape, pred_shape = truth_ckm["gain_db"].shape, pred_ckm["gain_db"].shape
    if pred_shape != truth_shape:
        raise CkmsimError(f"pred_ckm 'gain_db' has shape {pred_shape}, but truth_ckm 'gain_db' has shape "
                          f"{truth_shape}; both CKMs must be on the same grid")
    building = truth_ckm["building"].values.astype(bool)
    region = ~building if region is None else np.asarray(getattr(region, "values", region))
    return _as_mask(region, truth_shape, name="region")


def _path_terms(pred_ckm: xr.Dataset, truth_ckm: xr.Dataset, region: np.ndarray) -> dict[str, tuple]:
    """Score key -> ``(metric, arrays, mask)`` of each per-path score both CKMs allow, pooled over their
    common paths: the one place that decides which path-cells a path score averages over."""
    terms = {}
    # [1, y, x]: the region applies to every path
    region = region[None]
    layers = _common_path_layers(pred_ckm, truth_ckm, ("path_gain_db",))
    if layers is not None:
        pred, truth = layers["path_gain_db"]
        floor_db = float(truth_ckm.attrs.get("gain_floor_db", GAIN_FLOOR_DB))
        terms["path_gain_rmse_db"] = (rmse, (pred, truth), region & (truth > floor_db))

    angles = {}
    for key, name in (("aoa_az_rmse_deg", "aoa_az_deg"), ("aoa_el_rmse_deg", "aoa_el_deg")):
        layers = _common_path_layers(pred_ckm, truth_ckm, (name,))
        if layers is None:
            continue
        pred, truth = angles[name] = layers[name]
        metric = angle_rmse_deg if name == "aoa_az_deg" else rmse
        terms[key] = (metric, (pred, truth), region & np.isfinite(pred) & np.isfinite(truth))
    if len(angles) == 2:
        (pred_az, truth_az), (pred_el, truth_el) = angles["aoa_az_deg"], angles["aoa_el_deg"]
        both = np.isfinite(pred_az) & np.isfinite(truth_az) & np.isfinite(pred_el) & np.isfinite(truth_el)
        terms["aoa_rmse_deg"] = (direction_rmse_deg, (pred_az, pred_el, truth_az, truth_el), region & both)
    return terms


def _path_scores(pred_ckm: xr.Dataset, truth_ckm: xr.Dataset, region: np.ndarray) -> dict[str, float]:
    """Per-path gain and angle-of-arrival errors of :func:`map_scores`, pooled over the common paths."""
    return {key: _rmse_or_nan(metric, arrays, mask)
            for key, (metric, arrays, mask) in _path_terms(pred_ckm, truth_ckm, region).items()}


def _rmse_or_nan(metric, arrays: tuple[np.ndarray, ...], mask: np.ndarray) -> float:
    """``metric(*arrays, mask)``, or ``nan`` when no cell qualifies (an absent path is not a user error)."""
    mask = np.broadcast_to(mask, arrays[0].shape)
    if not mask.any():
        return float("nan")
    return metric(*arrays, mask)
