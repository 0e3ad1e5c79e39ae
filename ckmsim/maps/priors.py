r"""Prior maps and input encodings that the networks take next to a (degraded) CKM.

E-SRResNet (Sec. IV-A) feeds, next to the path gain and path angle maps, three priors:

- a **binary building map**: "pixel values of building regions are set to 0 and others are set to 1"
  (:func:`building_map`; note the polarity: *open* cells are 1);
- a **LoS map**: 1 where the dominant path is LoS, 0 elsewhere (:func:`los_map`; ckmsim reads the ray-traced
  ``los`` layer instead of the paper's Friis-formula test);
- a **BS map**: "a two-dimensional Gaussian centred at the BS location ... with a variance of
  :math:`\sigma^2`", :math:`\sigma^2 = 5` (:func:`bs_gaussian_map`).

Cross-AP CKM inference (Sec. III-A) encodes AP locations:

- eq. (3), the one-hot AP location map :math:`\mathbf{M}_{AP,n}` (:func:`ap_location_map`);
- eq. (4), the feature map :math:`\mathbf{M}_n = (1-\omega)\mathbf{G}_n + \omega \mathbf{M}_{AP,n}`
  (:func:`ap_feature_map`);
- eq. (5), the pre-convolved target map :math:`\mathbf{M}^*_{AP,target} = \mathbf{M}_{AP,target} * \mathbf{v}`,
  :math:`\mathbf{v} = \mathbf{1}_{3\times 3}` (:func:`preconvolved_location_map`);
- the network input, :math:`\mathbf{M}^*_{AP,target}` stacked with the :math:`N` feature maps of the other APs,
  :math:`N + 1` channels (:func:`cross_ap_input`, :func:`cross_ap_input_from_ckms`).

Inputs are ckmsim CKMs (``xarray.Dataset`` made by :func:`~ckmsim.maps.ckm.make_ckm`) or plain arrays; a cell
is ``(row, col)`` = ``(y index, x index)`` of the :class:`~ckmsim.maps.grid.Grid`. Outputs are numpy float32,
``[num_y, num_x]`` or ``[num_y, num_x, channels]`` (channels last, as Keras wants them).
"""

from __future__ import annotations

from typing import Sequence

import numpy as np
import xarray as xr
from scipy.ndimage import convolve

from ckmsim.errors import CkmsimError
from ckmsim.maps.ckm import grid_of
from ckmsim.maps.grid import Grid
from ckmsim.maps.pixels import CKMIMAGENET_GAIN_RANGE_DB, gain_db_to_pixel
from ckmsim.validation import is_finite_number

#: E-SRResNet's variance of the BS Gaussian map [cells^2] (Sec. IV-A and Sec. V, "sigma^2 of the BS map is 5").
BS_GAUSSIAN_VARIANCE_CELLS2 = 5.0

#: Cross-AP pre-convolution kernel v = 1 in R^{3x3}, eq. (5).
PRECONVOLUTION_KERNEL = np.ones((3, 3), dtype=np.float32)

MapSource = xr.Dataset | np.ndarray | Sequence[int]


# ----------------------------------------------------------------------------------------------------------
# Cells and shapes
# ----------------------------------------------------------------------------------------------------------

def cell_of_position(grid: Grid, position_m: Sequence[float]) -> tuple[int, int]:
    """The ``(row, col)`` of the grid cell that contains the horizontal point ``(x, y)`` [m].

    ``position_m`` is ``(x, y)`` or ``(x, y, z)``; z is ignored. Cells are half-open ``[edge, edge + size)``;
    a point on the grid's upper outer edge belongs to the last cell. A point outside raises
    :class:`CkmsimError`.
    """
    position = np.asarray(position_m, dtype=np.float64).ravel()
    if position.size not in (2, 3) or not np.all(np.isfinite(position)):
        raise CkmsimError(f"A position needs finite (x, y) or (x, y, z) in metres. Received: position_m={position_m!r}")
    x_min, x_max, y_min, y_max = grid.bounds_m
    x, y = position[0], position[1]
    if not (x_min <= x <= x_max and y_min <= y <= y_max):
        raise CkmsimError(f"Position ({x:g}, {y:g}) m lies outside the grid x in [{x_min:g}, {x_max:g}] m, "
                          f"y in [{y_min:g}, {y_max:g}] m. Received: position_m={position_m!r}")
    col = min(int(np.floor((x - x_min) / grid.cell_size_m)), grid.num_x - 1)
    row = min(int(np.floor((y - y_min) / grid.cell_size_m)), grid.num_y - 1)
    return row, col


def _shape_of(source: MapSource) -> tuple[int, int]:
    """``(num_y, num_x)`` of a CKM, a 2-D array or a shape tuple."""
    if isinstance(source, xr.Dataset):
        return grid_of(source).shape
    if isinstance(source, np.ndarray):
        if source.ndim != 2:
            raise CkmsimError(f"A map must be 2-D [y, x]. Received: shape={source.shape}")
        return source.shape
    try:
        shape = tuple(int(n) for n in source)
    except (TypeError, ValueError):
        raise CkmsimError(f"Expected a CKM, a 2-D array or a shape (num_y, num_x). Received: {type(source).__name__}") \
            from None
    if len(shape) != 2 or min(shape) < 1:
        raise CkmsimError(f"A map shape must be (num_y, num_x) with positive sizes. Received: shape={shape}")
    return shape


def _checked_cell(cell: Sequence[int], shape: tuple[int, int], name: str) -> tuple[int, int]:
    """``(row, col)`` as ints; raise unless it is a pair of whole numbers inside ``shape``."""
    values = np.asarray(cell, dtype=np.float64).ravel()
    if values.size != 2 or not np.all(np.isfinite(values)) or not np.all(values == np.round(values)):
        raise CkmsimError(f"{name} must be a (row, col) pair of integers. Received: {name}={cell!r}")
    row, col = int(values[0]), int(values[1])
    if not (0 <= row < shape[0] and 0 <= col < shape[1]):
        raise CkmsimError(f"{name} lies outside the {shape[0]} x {shape[1]} map. Received: {name}={cell!r}")
    return row, col


def _bs_cell(source: MapSource, bs_cell: Sequence[int] | None, name: str = "bs_cell") -> tuple[int, int]:
    """The transmitter's cell: ``bs_cell`` if given, else the cell of a CKM's ``bs_position_m`` attribute."""
    shape = _shape_of(source)
    if bs_cell is not None:
        return _checked_cell(bs_cell, shape, name)
    if not isinstance(source, xr.Dataset):
        raise CkmsimError(f"{name} is required when the source is an array or a shape, not a CKM. "
                          f"Received: {name}=None")
    if "bs_position_m" not in source.attrs:
        raise CkmsimError(f"The CKM has no 'bs_position_m' attribute; pass {name}=(row, col). Received: {name}=None")
    return cell_of_position(grid_of(source), source.attrs["bs_position_m"])


def _boolean_layer(source: xr.Dataset | np.ndarray, variable: str) -> np.ndarray:
    """The boolean ``[y, x]`` layer ``variable`` of a CKM, or the array itself checked to be 2-D boolean."""
    if isinstance(source, xr.Dataset):
        if variable not in source:
            raise CkmsimError(f"The CKM lacks the variable '{variable}'. "
                              f"Received: variables={sorted(source.data_vars)}")
        values = source[variable].values
    else:
        values = np.asarray(source)
    if values.ndim != 2 or values.dtype != bool:
        raise CkmsimError(f"'{variable}' must be a 2-D boolean map [y, x]. "
                          f"Received: shape={values.shape}, dtype={values.dtype}")
    return values


# ----------------------------------------------------------------------------------------------------------
# E-SRResNet priors
# ----------------------------------------------------------------------------------------------------------

def building_map(source: xr.Dataset | np.ndarray) -> np.ndarray:
    """E-SRResNet's binary building map: 0 on building cells, 1 elsewhere.

    Input
    -----
    source : CKM (uses ``building``) or ``[num_y, num_x]`` bool (True on buildings)

    Output
    ------
    map : ``[num_y, num_x]``, float32 in {0, 1}
    """
    return (~_boolean_layer(source, "building")).astype(np.float32)


def los_map(source: xr.Dataset | np.ndarray) -> np.ndarray:
    """E-SRResNet's LoS map: 1 where the dominant path is line-of-sight, 0 elsewhere (and on buildings).

    Input
    -----
    source : CKM (uses ``los``, and ``building`` to zero building cells) or ``[num_y, num_x]`` bool

    Output
    ------
    map : ``[num_y, num_x]``, float32 in {0, 1}
    """
    los = _boolean_layer(source, "los")
    if isinstance(source, xr.Dataset) and "building" in source:
        los = los & ~source["building"].values
    return los.astype(np.float32)


def bs_gaussian_map(source: MapSource, bs_cell: Sequence[int] | None = None,
                    variance_cells2: float = BS_GAUSSIAN_VARIANCE_CELLS2, normalization: str = "peak") -> np.ndarray:
    r"""E-SRResNet's BS map: a 2-D Gaussian centred on the BS cell :math:`(r_0, c_0)`.

    .. math::
        B(r, c) = A \exp\left(-\frac{(r - r_0)^2 + (c - c_0)^2}{2\sigma^2}\right)

    with :math:`\sigma^2` in cells\ :sup:`2` (5 in the paper). The paper gives the variance but neither the
    amplitude nor a normalisation; ckmsim uses ``normalization="peak"`` (:math:`A = 1`: the BS cell is 1, like
    the other [0, 1] input channels, as in the paper's figure where the BS is the brightest pixel), or
    ``"sum"`` (:math:`A` such that the map sums to 1 over the grid).

    Input
    -----
    source : CKM, ``[num_y, num_x]`` array or shape ``(num_y, num_x)``
    bs_cell : (row, col), optional
        Defaults to the cell containing a CKM's ``bs_position_m``.
    variance_cells2 : float
        :math:`\sigma^2` [cells^2], > 0.
    normalization : "peak" | "sum"

    Output
    ------
    map : ``[num_y, num_x]``, float32
    """
    shape = _shape_of(source)
    row0, col0 = _bs_cell(source, bs_cell)
    if not (is_finite_number(variance_cells2) and variance_cells2 > 0):
        raise CkmsimError(f"variance_cells2 must be a finite number > 0. Received: variance_cells2={variance_cells2!r}")
    if normalization not in ("peak", "sum"):
        raise CkmsimError(f"normalization must be 'peak' or 'sum'. Received: normalization={normalization!r}")
    rows = np.arange(shape[0])[:, None] - row0
    cols = np.arange(shape[1])[None, :] - col0
    gaussian = np.exp(-(rows**2 + cols**2) / (2.0 * variance_cells2))
    if normalization == "sum":
        gaussian = gaussian / gaussian.sum()
    return gaussian.astype(np.float32)


# ----------------------------------------------------------------------------------------------------------
# Cross-AP inference encodings, eqs. (3)-(5)
# ----------------------------------------------------------------------------------------------------------

def ap_location_map(source: MapSource, ap_cell: Sequence[int] | None = None) -> np.ndarray:
    r"""Cross-AP eq. (3): the one-hot AP location map, 1 at the AP's cell :math:`\mathbf{c}_n`, 0 elsewhere.

    Input
    -----
    source : CKM, ``[num_y, num_x]`` array or shape ``(num_y, num_x)``
    ap_cell : (row, col), optional
        Defaults to the cell containing a CKM's ``bs_position_m`` (the AP that transmitted the map).

    Output
    ------
    map : ``[num_y, num_x]``, float32, a single 1
    """
    shape = _shape_of(source)
    row, col = _bs_cell(source, ap_cell, name="ap_cell")
    one_hot = np.zeros(shape, dtype=np.float32)
    one_hot[row, col] = 1.0
    return one_hot


def preconvolved_location_map(location_map: np.ndarray) -> np.ndarray:
    r"""Cross-AP eq. (5): :math:`\mathbf{M}^* = \mathbf{M}_{AP} * \mathbf{v}`, a 3 x 3 kernel of ones.

    A "same"-size convolution with zero padding: for a one-hot map, the 3 x 3 block around the AP becomes 1,
    cut to 2 x 3 on an edge and 2 x 2 in a corner (the paper: "all elements in the surrounding 3x3 grids of
    the AP location are set to 1").

    Input
    -----
    location_map : ``[num_y, num_x]``, float (e.g. from :func:`ap_location_map`)

    Output
    ------
    map : ``[num_y, num_x]``, float32
    """
    location_map = np.asarray(location_map, dtype=np.float32)
    if location_map.ndim != 2:
        raise CkmsimError(f"location_map must be 2-D [y, x]. Received: shape={location_map.shape}")
    return convolve(location_map, PRECONVOLUTION_KERNEL, mode="constant", cval=0.0).astype(np.float32)


def ap_feature_map(gain_pixels: np.ndarray, ap_cell: Sequence[int], weight: float) -> np.ndarray:
    r"""Cross-AP eq. (4): :math:`\mathbf{M}_n = (1 - \omega)\mathbf{G}_n + \omega \mathbf{M}_{AP,n}`.

    Input
    -----
    gain_pixels : ``[num_y, num_x]``, float
        The AP's channel gain map :math:`\mathbf{G}_n` as pixels in [0, 1] (the paper uses RadioMapSeer's
        gray levels / 255; convert dB with :mod:`ckmsim.maps.pixels`).
    ap_cell : (row, col)
        The AP's cell :math:`\mathbf{c}_n`.
    weight : float
        :math:`\omega \in [0, 1]`; the paper gives no value ("increasing the weight strengthens the AP location
        feature but weakens the details of the CKM"), so it has no default.

    Output
    ------
    map : ``[num_y, num_x]``, float32
    """
    gain_pixels = np.asarray(gain_pixels, dtype=np.float64)
    if gain_pixels.ndim != 2:
        raise CkmsimError(f"gain_pixels must be 2-D [y, x]. Received: shape={gain_pixels.shape}")
    if not (is_finite_number(weight) and 0.0 <= weight <= 1.0):
        raise CkmsimError(f"weight (omega of eq. (4)) must lie in [0, 1]. Received: weight={weight!r}")
    if not np.all(np.isfinite(gain_pixels)):
        raise CkmsimError("gain_pixels has NaN/inf values: map dB to pixels first (buildings -> 0)")
    one_hot = ap_location_map(gain_pixels, ap_cell)
    return ((1.0 - weight) * gain_pixels + weight * one_hot).astype(np.float32)


def cross_ap_input(gain_pixels: np.ndarray, ap_cells: np.ndarray, target_cell: Sequence[int],
                   weight: float) -> np.ndarray:
    r"""The cross-AP UNet input: :math:`[\mathbf{M}^*_{AP,target}, \mathbf{M}_1, \dots, \mathbf{M}_N]`.

    Channel 0 is the target AP's pre-convolved location map, eq. (5); channel :math:`n` (1..N) is the
    feature map of the n-th other AP, eq. (4). (The paper's "mask operation" on the target map is not
    specified further and is not applied.)

    Input
    -----
    gain_pixels : ``[N, num_y, num_x]``, float
        Gain maps of the N other APs as pixels in [0, 1].
    ap_cells : ``[N, 2]``, int
        ``(row, col)`` of each of those APs.
    target_cell : (row, col)
        Cell of the AP whose map is to be inferred.
    weight : float
        :math:`\omega` of eq. (4), in [0, 1].

    Output
    ------
    inputs : ``[num_y, num_x, N + 1]``, float32
    """
    gain_pixels = np.asarray(gain_pixels, dtype=np.float64)
    ap_cells = np.asarray(ap_cells)
    if gain_pixels.ndim != 3 or gain_pixels.shape[0] < 1:
        raise CkmsimError(f"gain_pixels must be [N, y, x] with N >= 1. Received: shape={gain_pixels.shape}")
    if ap_cells.shape != (gain_pixels.shape[0], 2):
        raise CkmsimError(f"ap_cells must be [N, 2] with N = {gain_pixels.shape[0]} (one cell per map). "
                          f"Received: ap_cells.shape={ap_cells.shape}")
    shape = gain_pixels.shape[1:]
    target = preconvolved_location_map(ap_location_map(shape, target_cell))
    features = [ap_feature_map(g, cell, weight) for g, cell in zip(gain_pixels, ap_cells)]
    # [N + 1, y, x] -> [y, x, N + 1]
    return np.stack([target, *features], axis=-1).astype(np.float32)


def cross_ap_input_from_ckms(ckms: Sequence[xr.Dataset], target_position_m: Sequence[float], weight: float,
                             gain_range_db: tuple[float, float] = CKMIMAGENET_GAIN_RANGE_DB) -> np.ndarray:
    """:func:`cross_ap_input` for CKMs of the other APs on one grid, each with its ``bs_position_m``.

    Each CKM's ``gain_db`` is mapped to pixels with :func:`~ckmsim.maps.pixels.gain_db_to_pixel` over
    ``gain_range_db`` (buildings -> 0); the default is CKMImageNet's [-250, -50] dB, the range ckmsim stores.

    Input
    -----
    ckms : N CKMs on the same grid
    target_position_m : (x, y) or (x, y, z) of the target AP [m]
    weight : float
        :math:`\\omega` of eq. (4), in [0, 1].
    gain_range_db : (low, high)

    Output
    ------
    inputs : ``[num_y, num_x, N + 1]``, float32
    """
    if len(ckms) < 1:
        raise CkmsimError("cross_ap_input_from_ckms needs at least one CKM of another AP. Received: 0 CKMs")
    grid = grid_of(ckms[0])
    for index, ckm in enumerate(ckms[1:], start=1):
        if grid_of(ckm) != grid:
            raise CkmsimError(f"All CKMs must share one grid; CKM {index} differs from CKM 0. "
                              f"Received: {grid_of(ckm)} vs {grid}")
    # [N, y, x]
    gain_pixels = np.stack([gain_db_to_pixel(ckm["gain_db"].values, ckm["building"].values, gain_range_db)
                            for ckm in ckms])
    ap_cells = np.array([_bs_cell(ckm, None, name="ap_cell") for ckm in ckms])
    target_cell = cell_of_position(grid, target_position_m)
    return cross_ap_input(gain_pixels, ap_cells, target_cell, weight)
