r"""E-SRResNet's tensors: low-resolution inputs from an observation, full-resolution targets, decoding.

The network of :mod:`ckmsim.models.esrresnet.network` maps the uniformly sub-sampled maps of one path (eq. (7),
the lattice ``(i m, j m)`` of a :class:`~ckmsim.maps.degrade.Subsample` step) to the full maps:

- input ``x``: ``[ceil(num_y / m), ceil(num_x / m), 2 + len(priors)]`` float32, channels
  ``[PGM_l, PAM_l, *priors]`` read at the lattice cells, in CKMImageNet pixels (gain -250..-50 dB and angle
  -200..180 deg onto [0, 1], :mod:`ckmsim.maps.pixels`); unobserved lattice cells (buildings) are 0;
- target ``y``: ``[num_y, num_x, 2]`` float32, the true PGM_l and PAM_l pixels on the full grid.

The input is built from the :class:`~ckmsim.maps.degrade.Observation` alone -- the same function at training
and at prediction time, so the network never sees at training what a deployed method could not compute:

- ``building``: the binary building map (1 open, 0 building), a prior every method may use;
- ``bs_gaussian``: the BS map, a Gaussian of variance :math:`\sigma^2 = 5` cells\ :sup:`2` around the BS
  cell (from the observation's ``bs_position_m``), computed on the full grid and then sub-sampled, which is
  what the paper's Gaussian encoding is for ("prevent the loss of BS location information during
  down-sampling");
- ``los``: the LoS map of Sec. IV-A, from the paper's Friis test on the *observed* primary-path gain: a
  lattice cell is LoS when its PGM_1 lies within ``los_tolerance_db`` of the free-space gain
  :math:`20\log_{10}(\lambda / 4\pi d)` at its 3-D distance ``d`` to the BS. (The ray-traced ``los`` layer of
  the truth is available with ``los_source="truth"`` for comparison; a Method cannot use it.)

The paper's channel order is kept: PGM, PAM, LoS, building, BS map (:data:`PRIOR_SETS`).

Training data augmentation (:func:`dihedral_ckm`): the eight symmetries of the square grid applied to the
*truth* before it is degraded. A mirror image of a scene is a physically valid scene (reflection symmetry of
the propagation), so gains are unchanged and azimuths transform exactly: mirroring x maps
:math:`\phi \to 180^\circ - \phi`, mirroring y :math:`\phi \to -\phi`, swapping x and y
:math:`\phi \to 90^\circ - \phi`; elevations are unchanged.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import xarray as xr

from ckmsim.errors import CkmsimError
from ckmsim.maps.angles import wrap_deg
from ckmsim.maps.ckm import GAIN_FLOOR_DB, grid_of, make_ckm
from ckmsim.maps.degrade import Degradation, Observation, Subsample
from ckmsim.maps.grid import Grid
from ckmsim.maps.pixels import (CKMIMAGENET_ANGLE_RANGE_DEG, angle_deg_to_pixel, gain_db_to_pixel,
                                pixel_to_angle_deg, pixel_to_gain_db)
from ckmsim.maps.priors import BS_GAUSSIAN_VARIANCE_CELLS2, bs_gaussian_map, building_map, cell_of_position, los_map

#: Cells the training loss may count (:attr:`LowResPathEncoder.loss_cells`).
LOSS_CELLS = ("all", "path")
#: Speed of light [m/s].
SPEED_OF_LIGHT_M_S = 299_792_458.0
#: Priors a :class:`LowResPathEncoder` may append, in the paper's channel order.
PRIORS = ("los", "building", "bs_gaussian")
#: Input variants of the paper: the primary path (5 channels), the secondary (4, no LoS), and the input
#: ablation of Fig. 7 on the primary path (2 channels; + building; + building + LoS).
PRIOR_SETS: dict[str, tuple[str, ...]] = {
    "primary": ("los", "building", "bs_gaussian"),
    "secondary": ("building", "bs_gaussian"),
    "pgm_pam": (),
    "building": ("building",),
    "building_los": ("los", "building"),
}
#: Default tolerance of the Friis LoS test [dB]: a ray-traced LoS path matches free space to rounding; the
#: ground reflection that may add to it in the same cell is a separate path.
LOS_TOLERANCE_DB = 1.0
#: Lowest angle pixel of a real angle (-180 deg); the interval below codes buildings (Sec. IV-A).
_MIN_ANGLE_PIXEL = (-180.0 - CKMIMAGENET_ANGLE_RANGE_DEG[0]) / (CKMIMAGENET_ANGLE_RANGE_DEG[1]
                                                                - CKMIMAGENET_ANGLE_RANGE_DEG[0])


def free_space_gain_db(distance_m: np.ndarray, frequency_hz: float) -> np.ndarray:
    r"""Friis free-space gain of isotropic antennas, :math:`20\log_{10}(\lambda / 4\pi d)` [dB].

    Input: ``distance_m`` ``[...]`` [m], > 0; ``frequency_hz`` [Hz]. Output: ``[...]`` float64 [dB].
    """
    wavelength_m = SPEED_OF_LIGHT_M_S / float(frequency_hz)
    return 20.0 * np.log10(wavelength_m / (4.0 * np.pi * np.asarray(distance_m, dtype=np.float64)))


def friis_los_map(path_gain_db: np.ndarray, grid: Grid, bs_position_m, frequency_hz: float,
                  tolerance_db: float = LOS_TOLERANCE_DB) -> np.ndarray:
    """The paper's LoS test (Sec. IV-A): the strongest path's gain equals the free-space gain at the cell.

    Input
    -----
    path_gain_db : [num_y, num_x], float
        Gain of the strongest path [dB]; NaN where unknown (unobserved), which reads as not LoS.
    grid : Grid
    bs_position_m : (x, y, z) [m]
    frequency_hz : float
    tolerance_db : float
        Largest ``|gain - free space|`` still called LoS [dB].

    Output
    ------
    los : [num_y, num_x], bool
    """
    bs = np.asarray(bs_position_m, dtype=np.float64).ravel()
    if bs.size != 3 or not np.all(np.isfinite(bs)):
        raise CkmsimError(f"The LoS test needs the BS position (x, y, z) [m]. Received: bs_position_m={bs_position_m!r}")
    # [num_y, num_x]: 3-D distance from each cell centre (at the UE height) to the BS
    distance_m = np.linalg.norm(grid.cell_centers_m() - bs, axis=-1)
    expected_db = free_space_gain_db(np.maximum(distance_m, 1e-3), frequency_hz)
    with np.errstate(invalid="ignore"):
        return np.abs(np.asarray(path_gain_db, dtype=np.float64) - expected_db) <= tolerance_db


@dataclass(frozen=True)
class LowResPathEncoder:
    """Encoder of one path's x``factor`` super-resolution pair (see the module docstring).

    Parameters
    ----------
    path : int
        Path layer ``l`` (0: primary, 1: secondary).
    priors : tuple of str
        Subset of :data:`PRIORS` in that order; :data:`PRIOR_SETS` names the paper's variants.
    factor : int
        Sub-sampling step ``m`` of the task (2 in the paper).
    variance_cells2 : float
        :math:`\\sigma^2` of the BS map [full-grid cells^2].
    los_source : "friis" | "truth"
        Where the LoS prior comes from (``truth`` needs the truth CKM, so only for training and studies).
    los_tolerance_db : float
    loss_cells : "all" | "path"
        Cells the training loss counts (:meth:`loss_weights`): ``"all"`` every cell of the image (the paper's
        pixel MSE), ``"path"`` the open cells where the true path exists -- the cells the study scores. With
        ``"all"`` a small network spends its capacity on the building code and on the absent-path code of
        deep-shadow cells (pixel 0, i.e. -250 dB, against about 0.75 for a real path), and hedges between
        the two in the cells that matter (``experiments/esrresnet/RESULTS.md``).

    Call ``encoder(observation, truth)`` for a training pair, ``encoder.inputs(observation)`` at prediction.
    """

    path: int = 0
    priors: tuple[str, ...] = PRIOR_SETS["primary"]
    factor: int = 2
    variance_cells2: float = BS_GAUSSIAN_VARIANCE_CELLS2
    los_source: str = "friis"
    los_tolerance_db: float = LOS_TOLERANCE_DB
    loss_cells: str = "all"

    def __post_init__(self):
        object.__setattr__(self, "priors", tuple(self.priors))
        if isinstance(self.path, bool) or not isinstance(self.path, int) or self.path < 0:
            raise CkmsimError(f"path must be an integer >= 0. Received: path={self.path!r}")
        ordered = tuple(p for p in PRIORS if p in self.priors)
        if set(self.priors) - set(PRIORS) or ordered != self.priors:
            raise CkmsimError(f"priors must be a subset of {PRIORS} in that order. Received: priors={self.priors!r}")
        if isinstance(self.factor, bool) or not isinstance(self.factor, int) or self.factor < 1:
            raise CkmsimError(f"factor must be an integer >= 1. Received: factor={self.factor!r}")
        if self.los_source not in ("friis", "truth"):
            raise CkmsimError(f"los_source must be 'friis' or 'truth'. Received: los_source={self.los_source!r}")
        if self.loss_cells not in LOSS_CELLS:
            raise CkmsimError(f"loss_cells must be one of {LOSS_CELLS}. Received: loss_cells={self.loss_cells!r}")

    @property
    def num_input_channels(self) -> int:
        return 2 + len(self.priors)

    @property
    def num_target_channels(self) -> int:
        return 2

    def lowres_shape(self, grid: Grid) -> tuple[int, int]:
        """``(ceil(num_y / factor), ceil(num_x / factor))``: the lattice the network sees."""
        rows, cols = grid.downsampled_indices(self.factor)
        return len(rows), len(cols)

    def unsupported_reason(self, observation: Observation) -> str | None:
        """Why ``observation`` cannot be encoded (wrong task, missing layers or attrs), or None."""
        if observation.factor != self.factor:
            return (f"the network completes the x{self.factor} uniform sub-sampling lattice; task "
                    f"'{observation.task}' has factor={observation.factor}")
        for name in ("path_gain_db", "aoa_az_deg"):
            if name not in observation.values:
                return f"the observation lacks '{name}' (E-SRResNet completes PGM and PAM)"
        if observation.values.sizes.get("path", 0) <= self.path:
            return f"the observation has {observation.values.sizes.get('path', 0)} path layer(s); path {self.path} is needed"
        needs = {"bs_position_m"} if "bs_gaussian" in self.priors or "los" in self.priors else set()
        if "los" in self.priors and self.los_source == "friis":
            needs.add("frequency_hz")
        missing = sorted(needs - set(observation.attrs))
        if missing:
            return f"the observation's attrs lack {missing}, needed for the priors {list(self.priors)}"
        return None

    def inputs(self, observation: Observation, truth: xr.Dataset | None = None) -> np.ndarray:
        """The network input ``[ceil(num_y / m), ceil(num_x / m), num_input_channels]``, float32.

        ``truth`` is used only with ``los_source="truth"``.
        """
        reason = self.unsupported_reason(observation)
        if reason is not None:
            raise CkmsimError(f"LowResPathEncoder cannot encode this observation: {reason}")
        grid, building, seen = observation.grid, observation.building, observation.observed
        values = observation.values
        gain_db = np.where(seen, values["path_gain_db"].values[self.path], np.nan)
        az_deg = np.where(seen, values["aoa_az_deg"].values[self.path], np.nan)
        # Unobserved cells are 0 in both channels, as in ckmsim.data.pipeline.PathEncoder.
        channels = [np.where(seen, gain_db_to_pixel(gain_db, building), 0.0),
                    np.where(seen, angle_deg_to_pixel(az_deg, building), 0.0)]
        for name in self.priors:
            channels.append(self._prior(name, observation, truth))
        rows, cols = grid.downsampled_indices(self.factor)
        # [num_y, num_x, c] -> lattice [rows, cols, c]
        full = np.stack(channels, axis=-1)
        return full[np.ix_(rows, cols)].astype(np.float32)

    def _prior(self, name: str, observation: Observation, truth: xr.Dataset | None) -> np.ndarray:
        """One prior channel ``[num_y, num_x]`` on the full grid."""
        grid, attrs = observation.grid, observation.attrs
        if name == "building":
            return building_map(observation.building)
        if name == "bs_gaussian":
            bs_cell = cell_of_position(grid, attrs["bs_position_m"])
            return bs_gaussian_map(grid.shape, bs_cell=bs_cell, variance_cells2=self.variance_cells2)
        if self.los_source == "truth":
            if truth is None:
                raise CkmsimError("los_source='truth' needs the truth CKM. Received: truth=None")
            return los_map(truth)
        primary_db = np.where(observation.observed, observation.values["path_gain_db"].values[0], np.nan)
        los = friis_los_map(primary_db, grid, attrs["bs_position_m"], attrs["frequency_hz"], self.los_tolerance_db)
        return (los & ~observation.building).astype(np.float32)

    def target(self, truth: xr.Dataset) -> np.ndarray:
        """The true PGM_l and PAM_l pixels ``[num_y, num_x, 2]``, float32."""
        if "path" not in truth.dims or truth.sizes["path"] <= self.path:
            raise CkmsimError(f"The truth has {truth.sizes.get('path', 0)} path layer(s); path {self.path} is needed")
        building = truth["building"].values
        gain = gain_db_to_pixel(truth["path_gain_db"].values[self.path], building)
        angle = angle_deg_to_pixel(truth["aoa_az_deg"].values[self.path], building)
        return np.stack([gain, angle], axis=-1).astype(np.float32)

    def loss_weights(self, truth: xr.Dataset) -> np.ndarray:
        """Per-cell weight of the training loss ``[num_y, num_x]``, float32 (1 counted, 0 not); see ``loss_cells``."""
        if self.loss_cells == "all":
            return np.ones(truth["building"].shape, dtype=np.float32)
        has_path = truth["path_gain_db"].values[self.path] > GAIN_FLOOR_DB
        return (has_path & ~truth["building"].values).astype(np.float32)

    def __call__(self, observation: Observation, truth: xr.Dataset) -> tuple[np.ndarray, np.ndarray]:
        """``(x [h, w, c_in], y [num_y, num_x, 2])``, float32."""
        return self.inputs(observation, truth), self.target(truth)


def decode_path_maps(pixels: np.ndarray, building: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Network output pixels -> PGM [dB] and PAM [deg] on the full grid.

    Gains are clipped to the pixel range [0, 1] (-250..-50 dB); angle pixels of open cells are clipped to the
    range of real angles (-180..180 deg), so that an open cell always gets an angle (the building code is a
    prior, not a prediction). Building cells get the gain floor and a NaN angle, as in a ground-truth CKM.

    Input
    -----
    pixels : [num_y, num_x, 2], float (at least; larger outputs are cropped from the top-left corner)
    building : [num_y, num_x], bool

    Output
    ------
    gain_db : [num_y, num_x], float64 [dB]
    az_deg : [num_y, num_x], float64 [deg] in [-180, 180]
    """
    num_y, num_x = building.shape
    pixels = np.asarray(pixels, dtype=np.float64)
    if pixels.ndim != 3 or pixels.shape[0] < num_y or pixels.shape[1] < num_x or pixels.shape[2] != 2:
        raise CkmsimError(f"Network output must be [>= {num_y}, >= {num_x}, 2]. Received: shape={pixels.shape}")
    # The up-sampled lattice of a grid with an odd side is one cell longer than the grid: crop.
    pixels = pixels[:num_y, :num_x]
    gain_db = pixel_to_gain_db(np.clip(pixels[..., 0], 0.0, 1.0))
    az_deg = pixel_to_angle_deg(np.clip(pixels[..., 1], _MIN_ANGLE_PIXEL, 1.0))
    return np.where(building, GAIN_FLOOR_DB, gain_db), np.where(building, np.nan, az_deg)


# ----------------------------------------------------------------------------------------------------------
# Augmentation
# ----------------------------------------------------------------------------------------------------------

def dihedral_ckm(ckm: xr.Dataset, transform: int) -> xr.Dataset:
    """One of the 8 symmetries of a square grid applied to a CKM (layers, azimuths and the BS position).

    ``transform`` in 0..7 sets three bits: 1 mirrors x (columns), 2 mirrors y (rows), 4 swaps x and y (first).
    0 is the identity. Mirrors act about the grid centre; the grid and its coordinates are unchanged.

    Input
    -----
    ckm : CKM on a square grid (for transforms with bit 4)
    transform : int in 0..7

    Output
    ------
    ckm : CKM on the same grid, every ``[..., y, x]`` layer transformed, ``*_az_deg`` remapped, the
        ``bs_position_m`` attribute moved accordingly
    """
    if isinstance(transform, bool) or not isinstance(transform, (int, np.integer)) or not 0 <= transform <= 7:
        raise CkmsimError(f"transform must be an integer in 0..7. Received: transform={transform!r}")
    if transform == 0:
        return ckm
    grid = grid_of(ckm)
    swap, flip_y, flip_x = bool(transform & 4), bool(transform & 2), bool(transform & 1)
    if swap and grid.num_x != grid.num_y:
        raise CkmsimError(f"Swapping x and y needs a square grid. Received: shape={grid.shape}")
    variables = {}
    for name, var in ckm.data_vars.items():
        # [..., y, x]
        values = var.transpose(..., "y", "x").values
        is_azimuth = name.endswith("_az_deg")
        if swap:
            values = np.swapaxes(values, -1, -2)
            values = 90.0 - values if is_azimuth else values
        if flip_y:
            values = values[..., ::-1, :]
            values = -values if is_azimuth else values
        if flip_x:
            values = values[..., :, ::-1]
            values = 180.0 - values if is_azimuth else values
        variables[name] = wrap_deg(values) if is_azimuth else np.ascontiguousarray(values)
    attrs = {key: value for key, value in ckm.attrs.items() if key != "grid"}
    if "bs_position_m" in attrs:
        x, y, *rest = (float(v) for v in attrs["bs_position_m"])
        dx, dy = x - grid.center_x_m, y - grid.center_y_m
        if swap:
            dx, dy = dy, dx
        if flip_y:
            dy = -dy
        if flip_x:
            dx = -dx
        attrs["bs_position_m"] = [grid.center_x_m + dx, grid.center_y_m + dy, *rest]
    return make_ckm(grid, variables, attrs)


# ----------------------------------------------------------------------------------------------------------
# Pairs from a dataset store
# ----------------------------------------------------------------------------------------------------------

def encode_store(store, encoder: LowResPathEncoder, split: str | None, augment: bool = False,
                 log=None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Every pair of a split in memory: ``x [n, h, w, c_in]``, ``y [n, num_y, num_x, 2]`` and the loss weights
    ``w [n, num_y, num_x]`` (:meth:`LowResPathEncoder.loss_weights`), float32.

    The degradation is :class:`~ckmsim.maps.degrade.Subsample` (deterministic), so each sample (and each of
    its 8 dihedral copies with ``augment``) gives exactly one pair; they are encoded once, not every epoch.
    For CKMImageNet's size (22k samples of 128 x 128) that is 4.7 GB of float32, fine on a training host.

    Input
    -----
    store : ckmsim.data.store.DatasetStore
    encoder : LowResPathEncoder
    split : "train" | "val" | "test" | None
    augment : bool
        Add the 7 non-trivial dihedral copies of every sample (:func:`dihedral_ckm`).
    log : callable or None
        Progress messages.
    """
    indices = store.indices(split)
    if not len(indices):
        raise CkmsimError(f"Dataset '{store.path}' has no sample in split {split!r}")
    degradation = Degradation([Subsample(encoder.factor)])
    transforms = range(8) if augment else (0,)
    xs, ys, ws = [], [], []
    for index in indices:
        truth = store.ckm(int(index))
        for transform in transforms:
            copy = dihedral_ckm(truth, transform)
            x, y = encoder(degradation(copy), copy)
            xs.append(x)
            ys.append(y)
            ws.append(encoder.loss_weights(copy))
    if log is not None:
        log(f"encoded {len(xs)} pairs of split {split!r} ({len(indices)} samples"
            f"{', x8 dihedral copies' if augment else ''})")
    return np.stack(xs), np.stack(ys), np.stack(ws)


def pairs_dataset(x: np.ndarray, y: np.ndarray, batch_size: int, shuffle: bool = True, seed: int = 0,
                  weights: np.ndarray | None = None):
    """A ``tf.data.Dataset`` of ``(x [batch, ...], y [batch, ...])`` batches from in-memory pairs, or of
    ``(x, y, w [batch, num_y, num_x])`` with per-cell loss ``weights`` (Keras sample weights: the MSE over the
    two channels of each cell is weighted, then averaged over every cell of the batch).

    With ``shuffle`` every epoch visits the pairs in a new order drawn from ``seed`` (reproducible).
    """
    import tensorflow as tf

    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
        raise CkmsimError(f"batch_size must be an integer >= 1. Received: batch_size={batch_size!r}")
    dataset = tf.data.Dataset.from_tensor_slices((x, y) if weights is None else (x, y, weights))
    if shuffle:
        dataset = dataset.shuffle(len(x), seed=seed, reshuffle_each_iteration=True)
    return dataset.batch(batch_size).prefetch(2)
