r"""E-SRResNet's tensors: what the network is given, what it predicts, and how its output becomes a CKM.

The network of :mod:`ckmsim.models.esrresnet.network` completes one path's path gain map (PGM) and path
azimuth map (PAM) from the uniformly sub-sampled lattice (eq. (7), the cells ``(i m, j m)`` of a
:class:`~ckmsim.maps.degrade.Subsample` step). ckmsim's encoding departs from the paper's CKMImageNet pixel
images in four ways, each measured on a held-out city (``experiments/esrresnet/RESULTS.md``):

1. **The network corrects ckmsim's bicubic interpolation** (:class:`~ckmsim.baselines.Bicubic`: cubic
   B-spline, azimuths on the unit circle, lattice gaps filled from the nearest sample). Its prediction is the
   *skip*, added to the network's output whose last convolution starts at zero: the untrained network is
   bicubic interpolation exactly, and the training only has to learn where bicubic is wrong. (The paper's
   network regresses pixel codes in which a building or a missing path is pixel 0, -250 dB / -200 deg.)
2. **Azimuths on the unit circle.** The network predicts ``(cos az, sin az)`` and the angle is
   ``atan2``; the loss is the squared chord between unit vectors, ``2 (1 - cos(az_hat - az))``. Linear pixel
   coding puts -179 deg and 179 deg at opposite ends of the range.
3. **Gains normalised over the range of real gains**, ``(g - GAIN_OFFSET_DB) / GAIN_SCALE_DB``, and **path
   existence as its own output**, a logit with a cross-entropy term (:class:`PathSRLoss`), so that the
   absent-path code no longer dominates a squared error.
4. **What is known at every cell is given at every cell** (the *guide*, full resolution): the open-cell
   map, the free-space gain and the direction of propagation from the BS to the cell centre (3-D, from the
   BS position and the local ground, both priors of every method), and the skip itself. A LoS path arrives
   along the BS direction with the free-space gain, which an interpolator of the lattice cannot know.

Tensors of one pair (``H, W`` the full grid padded up to ``factor * ceil(H / factor)``):

- ``lowres`` ``[ceil(H / m), ceil(W / m), 4 + len(priors)]``: normalised gain (0 where no path), path exists
  (1 / 0), ``cos az``, ``sin az`` (0 where no path), then the paper's priors (:data:`PRIOR_SETS`: Friis LoS
  map, binary building map, BS Gaussian), read at the lattice cells; unobserved lattice cells (buildings) 0;
- ``skip`` ``[H, W, 4]``: the bicubic prediction as ``[gain, cos az, sin az, exists logit]``
  (:data:`OUTPUT_CHANNELS`), the logit ``+EXISTS_LOGIT`` where bicubic's gain is above the absent-path code;
- ``guide`` ``[H, W, 8]``: :data:`GUIDE_CHANNELS`;
- target ``[H, W, 6]``: the true ``[gain, cos az, sin az, exists]`` and the loss weights of
  :data:`TARGET_CHANNELS` (the open cells where the true path exists, for gain and angle; every open cell,
  for existence).

The input is built from the :class:`~ckmsim.maps.degrade.Observation` alone -- the same function at training
and at prediction time, so the network never sees at training what a deployed method could not compute.

Training data augmentation (:func:`~ckmsim.maps.ckm.dihedral_ckm`): the eight symmetries of the square grid applied to the
*truth* before it is degraded. A mirror image of a scene is a physically valid scene (reflection symmetry of
the propagation), so gains are unchanged and azimuths transform exactly: mirroring x maps
:math:`\phi \to 180^\circ - \phi`, mirroring y :math:`\phi \to -\phi`, swapping x and y
:math:`\phi \to 90^\circ - \phi`; elevations are unchanged.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np
import xarray as xr

from ckmsim.baselines.interpolation import Bicubic
from ckmsim.errors import CkmsimError
from ckmsim.maps.angles import wrap_deg
from ckmsim.maps.ckm import GAIN_FLOOR_DB, dihedral_ckm, grid_of
from ckmsim.maps.degrade import Degradation, Observation, Subsample
from ckmsim.maps.grid import Grid
from ckmsim.maps.priors import BS_GAUSSIAN_VARIANCE_CELLS2, bs_gaussian_map, building_map, cell_of_position, los_map

#: Speed of light [m/s].
SPEED_OF_LIGHT_M_S = 299_792_458.0
#: Priors an encoder may append to the lattice channels, in the paper's channel order.
PRIORS = ("los", "building", "bs_gaussian")
#: Input variants of the paper: the primary path (LoS, building, BS map), the secondary (no LoS), and the
#: input ablation of Fig. 7 on the primary path (no prior; + building; + building + LoS).
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
#: Gain normalisation ``(g - offset) / scale``: real path gains of a 128 m tile at 28 GHz lie in about
#: -180..-80 dB (measured on the procedural cities), i.e. -2..+1.3.
GAIN_OFFSET_DB = -120.0
GAIN_SCALE_DB = 30.0
#: |Logit| of the skip's path-exists channel: a probability of 0.99966 that the network must overturn (beyond
#: :data:`ABSENT_LOGIT`, so that the untrained network decodes bicubic's absent cells as absent).
EXISTS_LOGIT = 8.0
#: Exists logit below which a decoded cell has no path: ``log(C_present / C_absent)``, the Bayes threshold
#: between two mistakes that cost differently. A wrong "absent" on a cell that has the path puts the
#: absent-path code (-250 dB) against a real gain (about -120 dB), ~(130 dB)^2; a wrong "present" gives a
#: weak path that the truth lacks, costed as one typical gain error, (7 dB)^2 (bicubic's RMSE on the
#: held-out cities). Measured on the validation city: deciding at logit 0 instead made PGM1 12 % worse than
#: bicubic, when the network's gains themselves were 2 % better.
ABSENT_LOGIT = float(np.log(7.0**2 / 130.0**2))
#: Channels of the network's output and of the skip (added to it).
OUTPUT_CHANNELS = ("gain", "cos_az", "sin_az", "exists_logit")
#: Channels of the training target: the true values, then the two per-cell loss weights.
TARGET_CHANNELS = ("gain", "cos_az", "sin_az", "exists", "weight_path", "weight_open")
#: Full-resolution guide channels.
GUIDE_CHANNELS = ("open", "free_space_gain", "cos_bs_az", "sin_bs_az", "skip_gain", "skip_cos_az", "skip_sin_az",
                  "skip_exists")
#: Lattice channels before the priors.
LATTICE_CHANNELS = ("gain", "exists", "cos_az", "sin_az")


def free_space_gain_db(distance_m: np.ndarray, frequency_hz: float) -> np.ndarray:
    r"""Friis free-space gain of isotropic antennas, :math:`20\log_{10}(\lambda / 4\pi d)` [dB].

    Input: ``distance_m`` ``[...]`` [m], > 0; ``frequency_hz`` [Hz]. Output: ``[...]`` float64 [dB].
    """
    wavelength_m = SPEED_OF_LIGHT_M_S / float(frequency_hz)
    return 20.0 * np.log10(wavelength_m / (4.0 * np.pi * np.asarray(distance_m, dtype=np.float64)))


def _bs_vector_m(grid: Grid, bs_position_m, ground_m=None) -> np.ndarray:
    """``[num_y, num_x, 3]``: from the BS to every cell centre at UE height above the local ground [m]."""
    bs = np.asarray(bs_position_m, dtype=np.float64).ravel()
    if bs.size != 3 or not np.all(np.isfinite(bs)):
        raise CkmsimError(f"The encoder needs the BS position (x, y, z) [m]. Received: bs_position_m={bs_position_m!r}")
    return grid.cell_centers_m(ground_m) - bs


def friis_los_map(path_gain_db: np.ndarray, grid: Grid, bs_position_m, frequency_hz: float,
                  tolerance_db: float = LOS_TOLERANCE_DB, ground_m: np.ndarray | None = None) -> np.ndarray:
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
    ground_m : [num_y, num_x], float, optional
        Local ground [m]: the UE stands at ``ground_m + grid.height_m`` (default 0).

    Output
    ------
    los : [num_y, num_x], bool
    """
    # [num_y, num_x]: 3-D distance from each cell centre (at the UE height) to the BS
    distance_m = np.linalg.norm(_bs_vector_m(grid, bs_position_m, ground_m), axis=-1)
    expected_db = free_space_gain_db(np.maximum(distance_m, 1e-3), frequency_hz)
    with np.errstate(invalid="ignore"):
        return np.abs(np.asarray(path_gain_db, dtype=np.float64) - expected_db) <= tolerance_db


def gain_db_to_unit(gain_db: np.ndarray) -> np.ndarray:
    """Gain [dB] -> the network's unit ``(g - GAIN_OFFSET_DB) / GAIN_SCALE_DB`` (float64, NaN kept)."""
    return (np.asarray(gain_db, dtype=np.float64) - GAIN_OFFSET_DB) / GAIN_SCALE_DB


def unit_to_gain_db(unit: np.ndarray) -> np.ndarray:
    """Inverse of :func:`gain_db_to_unit` [dB]."""
    return np.asarray(unit, dtype=np.float64) * GAIN_SCALE_DB + GAIN_OFFSET_DB


def _path_value_channels(gain_db: np.ndarray, az_rad: np.ndarray, exists: np.ndarray) -> list[np.ndarray]:
    """``[normalised gain, cos az, sin az]`` where the path exists, 0 elsewhere (each ``[num_y, num_x]``)."""
    return [np.where(exists, gain_db_to_unit(np.where(exists, gain_db, 0.0)), 0.0),
            np.where(exists, np.cos(np.where(exists, az_rad, 0.0)), 0.0),
            np.where(exists, np.sin(np.where(exists, az_rad, 0.0)), 0.0)]


def _pad_to(array: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """Edge-pad ``[num_y, num_x, ...]`` at the bottom and right to ``shape`` (the up-sampled lattice)."""
    extra = [(0, shape[0] - array.shape[0]), (0, shape[1] - array.shape[1])] + [(0, 0)] * (array.ndim - 2)
    return np.pad(array, extra, mode="edge")


@dataclass(frozen=True)
class PathSREncoder:
    """Encoder of one path's x``factor`` super-resolution (see the module docstring).

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

    ``encoder(observation, truth)`` gives a training pair, ``encoder.inputs(observation)`` the inputs at
    prediction, ``encoder.decode(output, observation)`` the maps. :meth:`to_dict` is what a trained network's
    provenance stores, so that the Method rebuilds the encoder the network was trained with.
    """

    path: int = 0
    priors: tuple[str, ...] = PRIOR_SETS["primary"]
    factor: int = 2
    variance_cells2: float = BS_GAUSSIAN_VARIANCE_CELLS2
    los_source: str = "friis"
    los_tolerance_db: float = LOS_TOLERANCE_DB

    def __post_init__(self):
        object.__setattr__(self, "priors", tuple(self.priors))
        if isinstance(self.path, bool) or not isinstance(self.path, int) or self.path < 0:
            raise CkmsimError(f"path must be an integer >= 0. Received: path={self.path!r}")
        ordered = tuple(p for p in PRIORS if p in self.priors)
        if set(self.priors) - set(PRIORS) or ordered != self.priors:
            raise CkmsimError(f"priors must be a subset of {PRIORS} in that order. Received: priors={self.priors!r}")
        if isinstance(self.factor, bool) or not isinstance(self.factor, int) or self.factor < 2 \
                or self.factor & (self.factor - 1):
            raise CkmsimError(f"factor must be a power of 2 (>= 2), the network's up-sampling. "
                              f"Received: factor={self.factor!r}")
        if self.los_source not in ("friis", "truth"):
            raise CkmsimError(f"los_source must be 'friis' or 'truth'. Received: los_source={self.los_source!r}")

    def to_dict(self) -> dict:
        out = asdict(self)
        out["priors"] = list(self.priors)
        return out

    @classmethod
    def from_dict(cls, values: dict) -> "PathSREncoder":
        known = {"path", "priors", "factor", "variance_cells2", "los_source", "los_tolerance_db"}
        unknown = sorted(set(values) - known)
        if unknown:
            raise CkmsimError(f"Unknown E-SRResNet encoder setting(s) {unknown}; expected {sorted(known)}")
        return cls(**{**values, "priors": tuple(values.get("priors", PRIOR_SETS["primary"]))})

    @property
    def num_input_channels(self) -> int:
        return len(LATTICE_CHANNELS) + len(self.priors)

    @property
    def num_output_channels(self) -> int:
        return len(OUTPUT_CHANNELS)

    @property
    def num_guide_channels(self) -> int:
        return len(GUIDE_CHANNELS)

    def model_arguments(self) -> dict:
        """The :class:`~ckmsim.models.esrresnet.network.ESRResNet` arguments this encoding fixes."""
        return {"num_input_channels": self.num_input_channels, "num_output_channels": self.num_output_channels,
                "skip_channels": self.num_output_channels, "guide_channels": self.num_guide_channels,
                "scale": self.factor}

    def lowres_shape(self, grid: Grid) -> tuple[int, int]:
        """``(ceil(num_y / factor), ceil(num_x / factor))``: the lattice the network sees."""
        rows, cols = grid.downsampled_indices(self.factor)
        return len(rows), len(cols)

    def _fullres_shape(self, grid: Grid) -> tuple[int, int]:
        rows, cols = self.lowres_shape(grid)
        return rows * self.factor, cols * self.factor

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
        missing = sorted({"bs_position_m", "frequency_hz"} - set(observation.attrs))
        if missing:
            return f"the observation's attrs lack {missing} (the BS map, the free-space gain and the BS direction)"
        return None

    def _check(self, observation: Observation) -> None:
        reason = self.unsupported_reason(observation)
        if reason is not None:
            raise CkmsimError(f"PathSREncoder cannot encode this observation: {reason}")

    def inputs(self, observation: Observation, truth: xr.Dataset | None = None,
               bicubic: xr.Dataset | None = None) -> dict[str, np.ndarray]:
        """The network inputs ``{"lowres_maps", "skip_maps", "guide_maps"}`` (shapes in the module docstring), float32.

        ``truth`` is used only with ``los_source="truth"``; ``bicubic`` is ``Bicubic().predict(observation)``
        when the caller has it already (one per observation serves both paths).
        """
        self._check(observation)
        if bicubic is None:
            bicubic = Bicubic().predict(observation)
        skip = self._skip_channels(bicubic)
        shape = self._fullres_shape(observation.grid)
        return {"lowres_maps": self._lowres(observation, truth), "skip_maps": _pad_to(skip, shape).astype(np.float32),
                "guide_maps": _pad_to(self._guide(observation, skip), shape).astype(np.float32)}

    def _lowres(self, observation: Observation, truth: xr.Dataset | None) -> np.ndarray:
        seen, values = observation.observed, observation.values
        gain_db = values["path_gain_db"].values[self.path]
        az_rad = np.radians(values["aoa_az_deg"].values[self.path])
        exists = seen & np.isfinite(gain_db) & (gain_db > GAIN_FLOOR_DB) & np.isfinite(az_rad)
        # Cells without a path (or unobserved) are 0 in the value channels; the exists channel says which.
        gain, cos, sin = _path_value_channels(gain_db, az_rad, exists)
        channels = [gain, exists.astype(np.float64), cos, sin]
        channels += [self._prior(name, observation, truth) for name in self.priors]
        rows, cols = observation.grid.downsampled_indices(self.factor)
        # [num_y, num_x, c] -> lattice [rows, cols, c]
        return np.stack(channels, axis=-1)[np.ix_(rows, cols)].astype(np.float32)

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
        los = friis_los_map(primary_db, grid, attrs["bs_position_m"], attrs["frequency_hz"], self.los_tolerance_db,
                            observation.ground_m)
        return (los & ~observation.building).astype(np.float32)

    def _skip_channels(self, bicubic: xr.Dataset) -> np.ndarray:
        """Bicubic's path maps as ``[num_y, num_x, 4]`` :data:`OUTPUT_CHANNELS`, float64 (not padded)."""
        gain_db = bicubic["path_gain_db"].values[self.path]
        az_rad = np.radians(bicubic["aoa_az_deg"].values[self.path])
        # A cell with no angle anywhere to interpolate from keeps (0, 0): decoded as no angle.
        cos, sin = np.nan_to_num(np.cos(az_rad)), np.nan_to_num(np.sin(az_rad))
        exists = np.where(np.nan_to_num(gain_db, nan=GAIN_FLOOR_DB) > GAIN_FLOOR_DB, EXISTS_LOGIT, -EXISTS_LOGIT)
        gain = gain_db_to_unit(np.nan_to_num(gain_db, nan=GAIN_FLOOR_DB))
        return np.stack([gain, cos, sin, exists], axis=-1)

    def _guide(self, observation: Observation, skip: np.ndarray) -> np.ndarray:
        """The :data:`GUIDE_CHANNELS` ``[num_y, num_x, 8]`` (not padded); ``skip`` from :meth:`_skip_channels`."""
        grid, attrs = observation.grid, observation.attrs
        # [num_y, num_x, 3]: propagation direction of a LoS ray, BS -> cell centre at UE height
        vector_m = _bs_vector_m(grid, attrs["bs_position_m"], observation.ground_m)
        distance_m = np.maximum(np.linalg.norm(vector_m, axis=-1), 1e-3)
        bs_az_rad = np.arctan2(vector_m[..., 1], vector_m[..., 0])
        channels = [(~observation.building).astype(np.float64),
                    gain_db_to_unit(free_space_gain_db(distance_m, attrs["frequency_hz"])),
                    np.cos(bs_az_rad), np.sin(bs_az_rad),
                    # the skip's gain clipped to the range of real gains: the absent-path code is an outlier
                    np.clip(skip[..., 0], gain_db_to_unit(-200.0), gain_db_to_unit(-40.0)),
                    skip[..., 1], skip[..., 2], (skip[..., 3] > 0).astype(np.float64)]
        return np.stack(channels, axis=-1)

    def target(self, truth: xr.Dataset) -> np.ndarray:
        """The true path maps and loss weights ``[H, W, 6]`` (:data:`TARGET_CHANNELS`), float32, padded like the skip."""
        if "path" not in truth.dims or truth.sizes["path"] <= self.path:
            raise CkmsimError(f"The truth has {truth.sizes.get('path', 0)} path layer(s); path {self.path} is needed")
        building = truth["building"].values
        gain_db = truth["path_gain_db"].values[self.path]
        az_rad = np.radians(truth["aoa_az_deg"].values[self.path])
        exists = ~building & (gain_db > GAIN_FLOOR_DB) & np.isfinite(az_rad)
        channels = _path_value_channels(gain_db, az_rad, exists) + [
            exists.astype(np.float64), exists.astype(np.float64), (~building).astype(np.float64)]
        target = np.stack(channels, axis=-1)
        rows, cols = self._fullres_shape(grid_of(truth))
        # padding cells carry zero weight
        padded = np.zeros((rows, cols, len(TARGET_CHANNELS)))
        padded[:target.shape[0], :target.shape[1]] = target
        return padded.astype(np.float32)

    def __call__(self, observation: Observation, truth: xr.Dataset,
                 bicubic: xr.Dataset | None = None) -> tuple[dict[str, np.ndarray], np.ndarray]:
        """``(inputs, target)`` of one training pair."""
        return self.inputs(observation, truth, bicubic), self.target(truth)

    def decode(self, output: np.ndarray, observation: Observation, keep_observed: bool = True,
               absent_logit: float = ABSENT_LOGIT) -> tuple[np.ndarray, np.ndarray]:
        """The network's output -> PGM [dB] and PAM [deg] on the grid.

        A cell whose exists logit is below ``absent_logit`` (:data:`ABSENT_LOGIT`) gets the absent-path gain
        code; the azimuth is ``atan2`` of the predicted ``(sin, cos)`` on every open cell (as bicubic gives
        every open cell an angle). Buildings get
        the gain floor and a NaN angle, as in a ground-truth CKM. With ``keep_observed`` the measured lattice
        cells keep their measured values (data consistency, as every interpolator does).

        Input
        -----
        output : [>= num_y, >= num_x, 4], float (:data:`OUTPUT_CHANNELS`; cropped from the top-left corner)
        observation : Observation

        Output
        ------
        gain_db : [num_y, num_x], float64 [dB]
        az_deg : [num_y, num_x], float64 [deg] in (-180, 180]
        """
        building = observation.building
        num_y, num_x = building.shape
        output = np.asarray(output, dtype=np.float64)
        if output.ndim != 3 or output.shape[0] < num_y or output.shape[1] < num_x or output.shape[2] != 4:
            raise CkmsimError(f"Network output must be [>= {num_y}, >= {num_x}, 4]. Received: shape={output.shape}")
        output = output[:num_y, :num_x]
        gain_db = np.where(output[..., 3] >= absent_logit, unit_to_gain_db(output[..., 0]), GAIN_FLOOR_DB)
        gain_db = np.maximum(gain_db, GAIN_FLOOR_DB)
        norm = np.hypot(output[..., 1], output[..., 2])
        az_deg = np.where(norm > 0, wrap_deg(np.degrees(np.arctan2(output[..., 2], output[..., 1]))), np.nan)
        if keep_observed:
            # a measured cell without the path keeps an angle, as bicubic gives it one (from its neighbours)
            for name, values in (("path_gain_db", gain_db), ("aoa_az_deg", az_deg)):
                measured = observation.values[name].values[self.path]
                values[...] = np.where(observation.observed & np.isfinite(measured), measured, values)
        return np.where(building, GAIN_FLOOR_DB, gain_db), np.where(building, np.nan, az_deg)


# ----------------------------------------------------------------------------------------------------------
# Augmentation
# ----------------------------------------------------------------------------------------------------------

# ----------------------------------------------------------------------------------------------------------
# Pairs from a dataset store
# ----------------------------------------------------------------------------------------------------------

def encode_store(store, encoder: PathSREncoder, split: str | None, augment: bool = False,
                 log=None) -> tuple[dict[str, np.ndarray], np.ndarray]:
    """Every pair of a split in memory: the inputs ``{name: [n, ...]}`` and the targets ``[n, H, W, 6]``, float32.

    The degradation is :class:`~ckmsim.maps.degrade.Subsample` (deterministic), so each sample (and each of
    its 8 dihedral copies with ``augment``) gives exactly one pair; they are encoded once, not every epoch.

    Input
    -----
    store : ckmsim.data.store.DatasetStore
    encoder : PathSREncoder
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
    inputs: dict[str, list] = {}
    targets = []
    for index in indices:
        truth = store.ckm(int(index))
        for transform in transforms:
            copy = dihedral_ckm(truth, transform)
            x, y = encoder(degradation(copy), copy)
            for name, value in x.items():
                inputs.setdefault(name, []).append(value)
            targets.append(y)
    if log is not None:
        log(f"encoded {len(targets)} pairs of split {split!r} ({len(indices)} samples"
            f"{', x8 dihedral copies' if augment else ''})")
    return {name: np.stack(values) for name, values in inputs.items()}, np.stack(targets)


def pairs_dataset(x: dict[str, np.ndarray], y: np.ndarray, batch_size: int, shuffle: bool = True, seed: int = 0,
                  repeat: bool = False):
    """A ``tf.data.Dataset`` of ``(inputs {name: [batch, ...]}, target [batch, H, W, 6])`` batches from in-memory
    pairs. With ``shuffle`` every pass visits the pairs in a new order drawn from ``seed`` (reproducible); with
    ``repeat`` the passes never end (for a training of ``steps_per_epoch`` batches per epoch).
    """
    import tensorflow as tf

    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
        raise CkmsimError(f"batch_size must be an integer >= 1. Received: batch_size={batch_size!r}")
    dataset = tf.data.Dataset.from_tensor_slices((x, y))
    if shuffle:
        dataset = dataset.shuffle(len(y), seed=seed, reshuffle_each_iteration=True)
    if repeat:
        dataset = dataset.repeat()
    return dataset.batch(batch_size).prefetch(2)
