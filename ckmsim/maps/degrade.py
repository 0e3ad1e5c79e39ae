"""Degradations that turn a ground-truth CKM into what a method observes: CKMDiff eq. (1), y = A x + n.

An :class:`Observation` keeps the full grid: every entry of ``y`` sits at one *anchor* cell (NaN elsewhere),
and its :class:`LinearOperator` holds the rows of ``A`` so that least squares (CKMDiff eq. (3),
``x = A^+ y``) and any other method can use the exact degradation. A degradation is a sequence of steps,
applied in order to the complete observation of the truth (``A = I`` on the non-building cells, CKMDiff's
denoising case (i)) and driven by one seeded generator:

======================= =================== ===========================================================
step (config ``kind``)   task name           what it does to ``y`` (and ``A``)
======================= =================== ===========================================================
:class:`Subsample`       ``sr_x4``           keeps the lattice cells ``(i m, j m)`` (E-SRResNet eq. (7))
:class:`BlockAverage`    ``sr_avg_x4``       the mean of each ``m x m`` block, placed at its lattice cell
:class:`BoxMask`         ``box32x32``        drops a box (given or seeded position): inpainting
:class:`RandomMask`      ``mask50pct``       drops a seeded fraction of the observed cells
:class:`SparsePoints`    ``sparse200``       keeps N (or a fraction of the) observed cells at random
:class:`GaussianNoise`   ``noise30``         adds ``n`` to the observed values (pixel or dB std)
======================= =================== ===========================================================

A combination's task joins its steps' names with ``+`` (``sr_avg_x4+noise30``). Each step acts on the current
``y`` where its entries sit: a mask after a down-sampling drops the low-resolution values whose anchor it
covers, a block average after a mask averages the values left in each block (``A = A_2 A_1``). At most one
down-sampling step is allowed. Building cells are never
measured (no UE stands inside a building) and the building mask is a prior every method may use; the one
exception is a block average, whose value sits at the block's lattice cell even when that cell is a building
(the value is the mean of the block's open cells). Boolean layers (LoS, building) are priors, not
measurements, and never appear in ``Observation.values``.

Every operator built here has rows with disjoint footprints (each cell feeds at most one entry of ``y``),
so ``A A^T`` is diagonal and ``A^+ = A^T (A A^T)^{-1}`` is cheap and exact: zero-fill (``A^T``) for the
sampling steps, replication over the block for block averaging.
"""

from __future__ import annotations

import abc
from dataclasses import asdict, dataclass, field, replace
from typing import ClassVar, Mapping, Sequence

import numpy as np
import scipy.sparse
import xarray as xr

from ckmsim.errors import CkmsimError
from ckmsim.maps.angles import wrap_deg
from ckmsim.maps.ckm import GAIN_FLOOR_DB, GEOMETRY_VARIABLES, grid_of, validate_ckm
from ckmsim.maps.grid import Grid
from ckmsim.maps.pixels import pixel_to_gain_db
from ckmsim.validation import is_finite_number, is_whole_number

#: Task name of the complete observation (no step applied yet).
FULL_TASK = "full"


def is_gain_layer(name: str) -> bool:
    """Layers holding a power gain in dB (``gain_db``, ``path_gain_db``): noised in the pixel domain."""
    return name.endswith("gain_db")


def is_azimuth_layer(name: str) -> bool:
    """Layers holding an azimuth on the circle (``aoa_az_deg``, ``aod_az_deg``): averaged via cos/sin."""
    return name.endswith("_az_deg")


def is_elevation_layer(name: str) -> bool:
    """Layers holding an elevation in [-90, 90] deg (``aoa_el_deg``, ``aod_el_deg``)."""
    return name.endswith("_el_deg")


class LinearOperator:
    """The degradation matrix ``A`` of CKMDiff eq. (1) on one ``[num_y, num_x]`` field, with anchors.

    Row ``r`` of ``A`` produces ``y[r]``, which an :class:`Observation` shows at the anchor cell
    ``anchors[r]`` of the full grid. Rows must be non-zero with disjoint footprints (the cells with a non-zero
    coefficient), which makes ``A`` full row rank and ``A A^T`` diagonal.

    Parameters
    ----------
    matrix : [num_rows, num_y * num_x], float (dense or scipy.sparse)
        Columns in row-major cell order (``field.ravel()``).
    anchors : [num_rows], int
        Distinct flat cell index of each row's anchor.
    shape : (num_y, num_x)
    """

    def __init__(self, matrix, anchors: np.ndarray, shape: tuple[int, int]):
        self.shape = (int(shape[0]), int(shape[1]))
        self.matrix = scipy.sparse.csr_array(matrix, dtype=np.float64)
        self.anchors = np.asarray(anchors, dtype=np.int64).reshape(-1)
        num_cells = self.shape[0] * self.shape[1]
        if self.matrix.shape != (len(self.anchors), num_cells):
            raise CkmsimError(f"LinearOperator matrix has shape {self.matrix.shape}; {len(self.anchors)} anchors "
                              f"on a {self.shape} grid need ({len(self.anchors)}, {num_cells})")
        if len(np.unique(self.anchors)) != len(self.anchors) or np.any(self.anchors < 0) \
                or np.any(self.anchors >= num_cells):
            raise CkmsimError(f"LinearOperator anchors must be distinct cell indices in [0, {num_cells}). "
                              f"Received: anchors={self.anchors.tolist()}")
        nonzero = (self.matrix != 0).astype(np.int64)
        if np.any(nonzero.sum(axis=0) > 1):
            raise CkmsimError("LinearOperator rows must have disjoint footprints (each cell feeds at most one row)")
        if np.any(nonzero.sum(axis=1) == 0):
            raise CkmsimError("LinearOperator has an all-zero row; drop it (it observes nothing)")

    # ---------------------------------------------------------------------------------------- constructors
    @classmethod
    def sampling(cls, mask: np.ndarray) -> "LinearOperator":
        """Point sampling of the cells where ``mask`` [num_y, num_x] (bool) is true, row-major: ``A`` is those
        rows of the identity, each anchored at its own cell."""
        mask = np.asarray(mask, dtype=bool)
        cells = np.flatnonzero(mask)
        matrix = scipy.sparse.csr_array((np.ones(len(cells)), (np.arange(len(cells)), cells)),
                                        shape=(len(cells), mask.size))
        return cls(matrix, cells, mask.shape)

    def select(self, rows: np.ndarray) -> "LinearOperator":
        """``S A``: the rows where ``rows`` [num_rows] (bool) is true, i.e. a mask applied to ``y``."""
        rows = np.asarray(rows, dtype=bool)
        return LinearOperator(self.matrix[np.flatnonzero(rows)], self.anchors[rows], self.shape)

    def then(self, matrix, anchors: np.ndarray) -> "LinearOperator":
        """``M A``: a second linear map ``M`` [num_new_rows, num_rows] applied to ``y``, new rows at ``anchors``."""
        return LinearOperator(scipy.sparse.csr_array(matrix) @ self.matrix, anchors, self.shape)

    # ---------------------------------------------------------------------------------------- views
    @property
    def num_rows(self) -> int:
        """``a``: the number of observed values."""
        return len(self.anchors)

    @property
    def observed(self) -> np.ndarray:
        """``[num_y, num_x]``, bool: the anchor cells, where the entries of ``y`` sit."""
        mask = np.zeros(self.shape[0] * self.shape[1], dtype=bool)
        mask[self.anchors] = True
        return mask.reshape(self.shape)

    def footprint(self, rows: np.ndarray | None = None) -> np.ndarray:
        """``[num_y, num_x]``, bool: cells with a non-zero coefficient in the chosen rows (default all), i.e.
        the cells ``A^+`` can say anything about."""
        chosen = self.matrix if rows is None else self.matrix[np.flatnonzero(np.asarray(rows, dtype=bool))]
        return np.asarray((chosen != 0).sum(axis=0) > 0).reshape(self.shape)

    def to_dense(self) -> np.ndarray:
        """``[num_rows, num_y * num_x]``, float64: ``A`` as a dense matrix (tiny grids only)."""
        return self.matrix.toarray()

    def read(self, grid_values: np.ndarray) -> np.ndarray:
        """The entries of ``y`` from their anchors: ``[..., num_y, num_x]`` -> ``[..., num_rows]``."""
        grid_values = np.asarray(grid_values)
        return grid_values.reshape(grid_values.shape[:-2] + (-1,))[..., self.anchors]

    def to_grid(self, y: np.ndarray) -> np.ndarray:
        """``y`` shown on the full grid at its anchors, NaN elsewhere: ``[..., num_rows]`` -> ``[..., num_y, num_x]``."""
        y = np.asarray(y, dtype=np.float64)
        grid = np.full(y.shape[:-1] + (self.shape[0] * self.shape[1],), np.nan)
        grid[..., self.anchors] = y
        return grid.reshape(y.shape[:-1] + self.shape)

    # ---------------------------------------------------------------------------------------- maths
    def apply(self, x: np.ndarray, circular: bool = False) -> np.ndarray:
        """``y = A x`` (CKMDiff eq. (1) without noise), field by field.

        NaN cells of ``x`` (an absent path's angle, a building's gain) are left out: each row returns the
        weighted mean of its finite cells, rescaled by the row's total weight, which is exactly ``A x`` when
        ``x`` is finite on the footprint; a row with no finite cell returns NaN.

        Input
        -----
        x : [..., num_y, num_x], float
        circular : bool
            ``x`` is an azimuth [deg]: ``A`` acts on its cosine and sine, the result is their ``atan2``
            (wrapped to (-180, 180]) -- the mean direction, which a plain mean breaks at the +-180 deg seam.

        Output
        ------
        y : [..., num_rows], float64
        """
        x = np.asarray(x, dtype=np.float64)
        return _finite_product(self.matrix, x.reshape(x.shape[:-2] + (-1,)), circular)

    def pseudo_inverse(self, y: np.ndarray) -> np.ndarray:
        """``A^+ y = A^T (A A^T)^{-1} y`` (CKMDiff eq. (3)), exact for disjoint footprints.

        For point sampling this is zero-fill (``A^T y``); for a block mean it replicates each value over its
        block. A NaN entry of ``y`` (nothing measured there) is treated as a dropped row: its footprint gets 0,
        which is ``A^+`` of the operator without that row.

        Input
        -----
        y : [..., num_rows], float

        Output
        ------
        x : [..., num_y, num_x], float64; zero off the footprint of the finite rows
        """
        y = np.asarray(y, dtype=np.float64)
        # [num_rows]: the diagonal of A A^T
        row_energy = (self.matrix.multiply(self.matrix)).sum(axis=1)
        # [num_fields, num_rows]
        scaled = np.nan_to_num(y.reshape((-1, self.num_rows)) / row_energy, nan=0.0)
        x = (self.matrix.T @ scaled.T).T
        return x.reshape(y.shape[:-1] + self.shape)


@dataclass
class Observation:
    """What a method is given for one task.

    Attributes
    ----------
    task : str
        Task name, e.g. ``"sr_x4"`` or ``"box32x32+noise30"``.
    grid : Grid
        The full-resolution grid the prediction must cover.
    values : xarray.Dataset
        The CKM's measured layers on the full grid: the entries of ``y`` at their anchor cells, NaN elsewhere.
    observed : [num_y, num_x], bool
        Cells that hold a measurement (the anchors).
    building : [num_y, num_x], bool
        Building mask prior.
    ground_m : [num_y, num_x], float or None
        Local ground height prior [m] (the truth's ``ground_m``): the UE of a cell stands at
        ``ground_m + grid.height_m``. None when the truth has none (ground at z = 0).
    factor : int or None
        Down-sampling step of a :class:`Subsample` or :class:`BlockAverage` step: the low-resolution values
        sit at the lattice cells ``(i * factor, j * factor)``, which grid-based methods read.
    attrs : dict
        Provenance copied from the ground truth (scene, frequency, BS position).
    operator : LinearOperator or None
        The ``A`` that produced ``values['gain_db']`` (layers with absent values use its rows over their
        finite cells, see :meth:`LinearOperator.apply`). None for hand-made observations: point sampling of
        ``observed`` is then the only reading.
    degradation : tuple of dict
        The steps applied, as configs with their random choices resolved (e.g. a box's position), so the
        same observation can be rebuilt without the seed.
    """

    task: str
    grid: Grid
    values: xr.Dataset
    observed: np.ndarray
    building: np.ndarray
    factor: int | None = None
    attrs: dict = field(default_factory=dict)
    operator: LinearOperator | None = None
    degradation: tuple = ()
    ground_m: np.ndarray | None = None

    def ue_positions_m(self) -> np.ndarray:
        """``[num_y, num_x, 3]``, float64: where the UE of each cell stands (x, y, ground + UE height) [m]."""
        return self.grid.cell_centers_m(self.ground_m)


def as_generator(seed) -> np.random.Generator:
    """An ``np.random.Generator`` from an int seed (>= 0) or a generator (returned as is)."""
    if isinstance(seed, np.random.Generator):
        return seed
    if not is_whole_number(seed):
        raise CkmsimError(f"A seed must be an integer >= 0 or a numpy Generator. Received: seed={seed!r}")
    return np.random.default_rng(int(seed))


def observe(truth: xr.Dataset) -> Observation:
    """The complete observation of a CKM: ``A = I`` on the non-building cells (CKMDiff case (i)).

    Input
    -----
    truth : CKM on a ``[num_y, num_x]`` grid

    Output
    ------
    Observation with task ``"full"``, every non-building cell observed, and every non-boolean layer copied.
    """
    validate_ckm(truth)
    grid = grid_of(truth)
    building = truth["building"].values.astype(bool)
    operator = LinearOperator.sampling(~building)
    # geometry (building, ground) is a prior, not a measurement
    measured = [name for name in truth.data_vars if truth[name].dtype != bool and name not in GEOMETRY_VARIABLES]
    values = truth[measured].copy(deep=True)
    keep = xr.DataArray(operator.observed, dims=("y", "x"))
    for name in measured:
        values[name] = values[name].where(keep)
    ground_m = truth["ground_m"].values.astype(np.float64) if "ground_m" in truth else None
    return Observation(task=FULL_TASK, grid=grid, values=values, observed=operator.observed,
                       building=building.copy(), attrs=dict(truth.attrs), operator=operator, ground_m=ground_m)


def _float_layers(observation: Observation) -> list[str]:
    return [name for name, var in observation.values.data_vars.items() if np.issubdtype(var.dtype, np.floating)]


def _operator_of(observation: Observation) -> LinearOperator:
    return observation.operator if observation.operator is not None else LinearOperator.sampling(observation.observed)


def _joined_task(task: str, step_task: str) -> str:
    return step_task if task == FULL_TASK else f"{task}+{step_task}"


# ------------------------------------------------------------------------------------------------ steps
class Step(abc.ABC):
    """One degradation step (abstract): a frozen dataclass whose fields are its config.

    Subclasses set :attr:`kind` (the config name), validate their fields in ``__post_init__`` and implement
    :meth:`task` and :meth:`apply`.
    """

    kind: ClassVar[str] = "step"

    @abc.abstractmethod
    def task(self) -> str:
        """Short task name of this step, e.g. ``"box32x32"``."""

    @abc.abstractmethod
    def apply(self, observation: Observation, rng: np.random.Generator) -> Observation:
        """Degrade an observation further; draws from ``rng`` only if the step is random."""

    def to_config(self) -> dict:
        """The step as a config dict: ``kind`` and the set fields (tuples as lists, None left out: TOML has no
        null)."""
        config = {"kind": self.kind}
        for key, value in asdict(self).items():
            if value is not None:
                config[key] = list(value) if isinstance(value, tuple) else value
        return config

    def _record(self, observation: Observation, config: dict | None = None, **changes) -> Observation:
        """The observation with this step's task and config appended, and ``changes`` applied."""
        return replace(observation, task=_joined_task(observation.task, self.task()),
                       degradation=observation.degradation + (config or self.to_config(),), **changes)


def _keep(observation: Observation, keep_rows: np.ndarray) -> dict:
    """Changes that drop the rows of ``y`` where ``keep_rows`` [num_rows] (bool) is false: ``A' = S A``."""
    operator = _operator_of(observation).select(keep_rows)
    keep = xr.DataArray(operator.observed, dims=("y", "x"))
    values = observation.values.copy()
    for name in _float_layers(observation):
        values[name] = values[name].where(keep)
    return {"values": values, "observed": operator.observed, "operator": operator}


def _check_factor(cls: str, factor) -> int:
    if not is_whole_number(factor, minimum=1):
        raise CkmsimError(f"{cls} needs a positive integer factor. Received: factor={factor!r}")
    return int(factor)


def _check_not_downsampled(step: Step, observation: Observation) -> None:
    if observation.factor is not None:
        raise CkmsimError(f"{type(step).__name__} cannot follow another down-sampling: task "
                          f"'{observation.task}' is already down-sampled by factor={observation.factor}")


@dataclass(frozen=True)
class Subsample(Step):
    """Uniform sparse sampling, E-SRResNet eq. (7): keep the observed cells on the lattice ``(i m, j m)``.

    ``A`` selects those cells (rows of the identity); ``A^+`` is zero-fill. Task ``sr_x{m}``.

    Parameters
    ----------
    factor : int
        Lattice step ``m`` >= 1.
    """

    kind: ClassVar[str] = "subsample"
    factor: int

    def __post_init__(self):
        object.__setattr__(self, "factor", _check_factor("Subsample", self.factor))

    def task(self) -> str:
        return f"sr_x{self.factor}"

    def apply(self, observation: Observation, rng: np.random.Generator) -> Observation:
        _check_not_downsampled(self, observation)
        rows, cols = observation.grid.downsampled_indices(self.factor)
        lattice = np.zeros(observation.grid.shape, dtype=bool)
        lattice[np.ix_(rows, cols)] = True
        keep_rows = _operator_of(observation).read(lattice)
        return self._record(observation, factor=self.factor, **_keep(observation, keep_rows))


@dataclass(frozen=True)
class BlockAverage(Step):
    """Block-average down-sampling: the mean of each ``m x m`` block, the usual image super-resolution
    degradation (an ``l/m x w/m`` image, CKMDiff case (iii)). Task ``sr_avg_x{m}``.

    Block ``(i, j)`` covers rows ``i m .. i m + m - 1`` and columns ``j m .. j m + m - 1`` (clipped at the
    edge); its mean sits at the lattice cell ``(i m, j m)``, where :class:`Subsample` puts its samples and
    where lattice interpolators (bilinear, bicubic) read ``Observation.factor``'s lattice. The value is the
    mean over the block's observed cells; a block with none is dropped.

    * Gains are averaged **in dB** (equivalently in CKMImageNet's pixel domain, which is affine in dB): CKMDiff
      writes ``y = A x`` on the map it reconstructs, and it reconstructs the dB/pixel image, so only a dB mean
      keeps ``A`` linear in ``x`` and ``A^+`` meaningful for least squares. A mean of linear power (what a
      power meter integrating over the block reads) would be ``log(A 10^(x/10))``, not ``A x``; it would sit
      a few dB above the dB mean (Jensen) where gains vary within a block.
    * Azimuths are averaged **on the unit circle** (cosine and sine, then ``atan2``), so blocks across the
      +-180 deg seam stay near 180 deg; elevations and delays are plain means.
    * Absent values (an absent path's NaN angles and delay) are left out of their block's mean; an absent
      path's ``path_gain_db`` is the floor, a value like any other (pixel 0 in CKMImageNet).

    ``A`` has ``1 / n_b`` on the ``n_b`` observed cells of block ``b``; ``A^+`` replicates each block mean
    over those cells. Parameters: ``factor`` (int), the block side ``m`` >= 1.
    """

    kind: ClassVar[str] = "block_average"
    factor: int

    def __post_init__(self):
        object.__setattr__(self, "factor", _check_factor("BlockAverage", self.factor))

    def task(self) -> str:
        return f"sr_avg_x{self.factor}"

    def apply(self, observation: Observation, rng: np.random.Generator) -> Observation:
        _check_not_downsampled(self, observation)
        operator = _operator_of(observation)
        num_x = observation.grid.num_x
        rows, cols = np.divmod(operator.anchors, num_x)
        # [num_rows]: the lattice cell (flat index) of the block holding each row's anchor
        block_anchor = (rows // self.factor * self.factor) * num_x + cols // self.factor * self.factor
        anchors, block = np.unique(block_anchor, return_inverse=True)
        # [num_blocks, num_rows]: 1/k on the k rows of each block
        counts = np.bincount(block, minlength=len(anchors)).astype(np.float64)
        mean = scipy.sparse.csr_array((1.0 / counts[block], (block, np.arange(operator.num_rows))),
                                      shape=(len(anchors), operator.num_rows))
        new_operator = operator.then(mean, anchors)
        values = observation.values.copy()
        for name in _float_layers(observation):
            var = values[name]
            # [..., num_rows] -> [..., num_blocks]: the block means of the current y
            y = operator.read(var.values.astype(np.float64))
            means = _finite_product(mean, y, circular=is_azimuth_layer(name))
            values[name] = var.copy(data=new_operator.to_grid(means).astype(var.dtype))
        return self._record(observation, values=values, observed=new_operator.observed,
                            operator=new_operator, factor=self.factor)


def _finite_product(matrix, values: np.ndarray, circular: bool = False) -> np.ndarray:
    """``matrix @ values`` over the finite entries only, each row rescaled to its full weight.

    Row ``r`` returns ``sum_c m_rc v_c * (sum_c m_rc) / (sum_{c finite} m_rc)``: exactly ``matrix @ values``
    when every entry in the row's footprint is finite, the weighted mean of the finite ones otherwise, NaN
    when none is. With ``circular`` the values are azimuths [deg], combined through their cosine and sine.

    Input: matrix ``[num_out, num_in]`` (sparse, non-negative); values ``[..., num_in]``.
    Output: ``[..., num_out]``, float64.
    """
    values = np.asarray(values, dtype=np.float64)
    if circular:
        rad = np.radians(values)
        cos, sin = _finite_product(matrix, np.cos(rad)), _finite_product(matrix, np.sin(rad))
        return np.where(np.isfinite(cos), wrap_deg(np.degrees(np.arctan2(sin, cos))), np.nan)
    # [num_fields, num_in]
    flat = values.reshape((-1, values.shape[-1]))
    valid = np.isfinite(flat)
    weighted = (matrix @ np.where(valid, flat, 0.0).T).T
    covered = (matrix @ valid.T.astype(np.float64)).T
    total = np.asarray(matrix.sum(axis=1)).reshape(-1)
    with np.errstate(invalid="ignore", divide="ignore"):
        # total / covered is 1 (up to rounding) on rows whose footprint is all finite
        product = np.where(covered != 0, weighted * (total / covered), np.nan)
    return product.reshape(values.shape[:-1] + (matrix.shape[0],))


def _number(value, digits: int = 4) -> str:
    """A short decimal for task names: 30.000000000000004 -> '30', 0.125 -> '0.125'."""
    return f"{round(float(value), digits):g}"


def _check_pair(cls: str, name: str, value, minimum: int) -> tuple[int, int]:
    """An int or a pair of ints >= ``minimum`` as ``(rows, cols)``, else :class:`CkmsimError` naming it."""
    pair = (value, value) if is_whole_number(value) else value
    if isinstance(pair, (str, bytes)) or not isinstance(pair, Sequence) or len(pair) != 2 \
            or not all(is_whole_number(v, minimum=minimum) for v in pair):
        raise CkmsimError(f"{cls} needs {name} as an integer >= {minimum} or a pair [rows, cols] of them. "
                          f"Received: {name}={value!r}")
    return (int(pair[0]), int(pair[1]))


def _check_fraction(cls: str, name: str, value, low_open: bool) -> float:
    """A number in [0, 1] (or (0, 1] with ``low_open``), else :class:`CkmsimError` naming it."""
    if not is_finite_number(value) or not (0.0 < value <= 1.0 if low_open else 0.0 <= value <= 1.0):
        interval = "(0, 1]" if low_open else "[0, 1]"
        raise CkmsimError(f"{cls} needs {name} in {interval}. Received: {name}={value!r}")
    return float(value)


def _check_std(cls: str, name: str, value, allow_none: bool) -> float | None:
    if value is None and allow_none:
        return None
    if not is_finite_number(value) or value < 0:
        raise CkmsimError(f"{cls} needs {name} as a finite number >= 0. Received: {name}={value!r}")
    return float(value)


def _keep_random(step: Step, observation: Observation, num_keep: int, name: str, value,
                 rng: np.random.Generator) -> Observation:
    """Keep ``num_keep`` rows of ``y`` drawn uniformly without replacement; ``name=value`` asked for them."""
    num_rows = _operator_of(observation).num_rows
    if num_keep > num_rows:
        raise CkmsimError(f"{type(step).__name__} cannot keep {num_keep} of the {num_rows} observed cells of "
                          f"task '{observation.task}'. Received: {name}={value!r}")
    keep_rows = np.zeros(num_rows, dtype=bool)
    keep_rows[rng.choice(num_rows, size=num_keep, replace=False)] = True
    return step._record(observation, **_keep(observation, keep_rows))


@dataclass(frozen=True)
class BoxMask(Step):
    """Inpainting box: drop the observed values inside one rectangle of cells. Task ``box{h}x{w}``.

    CKMDiff's CKMImageNet experiment masks a 32 x 32 box of a 128 x 128 map. ``A`` drops those rows of
    ``y``; ``A^+`` zero-fills them.

    Parameters
    ----------
    size : int or (int, int)
        Box height and width in cells (rows, cols), >= 1; an int is a square.
    position : (int, int) or None
        Top-left cell (row, col) of the box; None draws it uniformly among the positions where the box fits
        in the grid (the drawn position is recorded in ``Observation.degradation``).
    """

    kind: ClassVar[str] = "box_mask"
    size: int | tuple[int, int]
    position: tuple[int, int] | None = None

    def __post_init__(self):
        object.__setattr__(self, "size", _check_pair("BoxMask", "size", self.size, minimum=1))
        if self.position is not None:
            object.__setattr__(self, "position", _check_pair("BoxMask", "position", self.position, minimum=0))

    def task(self) -> str:
        return f"box{self.size[0]}x{self.size[1]}"

    def apply(self, observation: Observation, rng: np.random.Generator) -> Observation:
        (height, width), (num_y, num_x) = self.size, observation.grid.shape
        if height > num_y or width > num_x:
            raise CkmsimError(f"BoxMask of {height}x{width} cells does not fit the {num_y}x{num_x} grid. "
                              f"Received: size={list(self.size)}")
        if self.position is None:
            position = (int(rng.integers(0, num_y - height + 1)), int(rng.integers(0, num_x - width + 1)))
        elif self.position[0] + height > num_y or self.position[1] + width > num_x:
            raise CkmsimError(f"BoxMask of {height}x{width} cells at (row, col) {self.position} leaves the "
                              f"{num_y}x{num_x} grid. Received: position={list(self.position)}")
        else:
            position = self.position
        box = np.zeros(observation.grid.shape, dtype=bool)
        box[position[0]:position[0] + height, position[1]:position[1] + width] = True
        keep_rows = ~_operator_of(observation).read(box)
        config = replace(self, position=position).to_config()
        return self._record(observation, config, **_keep(observation, keep_rows))


@dataclass(frozen=True)
class RandomMask(Step):
    """Drop a fraction of the observed values, chosen uniformly at random. Task ``mask{p}pct``.

    Exactly ``round(missing_fraction * a)`` of the ``a`` observed values are dropped.

    Parameters
    ----------
    missing_fraction : float
        In [0, 1].
    """

    kind: ClassVar[str] = "random_mask"
    missing_fraction: float

    def __post_init__(self):
        object.__setattr__(self, "missing_fraction",
                           _check_fraction("RandomMask", "missing_fraction", self.missing_fraction, low_open=False))

    def task(self) -> str:
        return f"mask{_number(100 * self.missing_fraction)}pct"

    def apply(self, observation: Observation, rng: np.random.Generator) -> Observation:
        num_rows = _operator_of(observation).num_rows
        num_keep = num_rows - int(round(self.missing_fraction * num_rows))
        return _keep_random(self, observation, num_keep, "missing_fraction", self.missing_fraction, rng)


@dataclass(frozen=True)
class SparsePoints(Step):
    """Keep a few observed values, chosen uniformly at random: sparse measurements (e.g. RadioUNet's input).

    Applied first, it observes ``num_points`` non-building cells. Task ``sparse{N}`` or ``sparse{p}pct``.

    Parameters
    ----------
    num_points : int or None
        Number of values kept, >= 1.
    fraction : float or None
        Fraction of the observed values kept, in (0, 1]; exactly ``round(fraction * a)``. Give one of the two.
    """

    kind: ClassVar[str] = "sparse_points"
    num_points: int | None = None
    fraction: float | None = None

    def __post_init__(self):
        if (self.num_points is None) == (self.fraction is None):
            raise CkmsimError(f"SparsePoints needs exactly one of num_points and fraction. "
                              f"Received: num_points={self.num_points!r}, fraction={self.fraction!r}")
        if self.num_points is not None:
            if not is_whole_number(self.num_points, minimum=1):
                raise CkmsimError(f"SparsePoints needs num_points as an integer >= 1. "
                                  f"Received: num_points={self.num_points!r}")
            object.__setattr__(self, "num_points", int(self.num_points))
        else:
            object.__setattr__(self, "fraction", _check_fraction("SparsePoints", "fraction", self.fraction,
                                                                 low_open=True))

    def task(self) -> str:
        if self.num_points is not None:
            return f"sparse{self.num_points}"
        return f"sparse{_number(100 * self.fraction)}pct"

    def apply(self, observation: Observation, rng: np.random.Generator) -> Observation:
        if self.num_points is not None:
            return _keep_random(self, observation, self.num_points, "num_points", self.num_points, rng)
        num_keep = int(round(self.fraction * _operator_of(observation).num_rows))
        return _keep_random(self, observation, num_keep, "fraction", self.fraction, rng)


def _pixel_span_db() -> float:
    """The span of CKMImageNet's gain-to-pixel mapping [dB]: one pixel unit (the [0, 1] range) in dB (200)."""
    return float(pixel_to_gain_db(1.0) - pixel_to_gain_db(0.0))


@dataclass(frozen=True)
class GaussianNoise(Step):
    """Additive white Gaussian noise ``n`` of CKMDiff eq. (1) on the observed values. Task ``noise{s}``.

    Gains (``gain_db``, ``path_gain_db``) get zero-mean noise of standard deviation ``std_px`` in pixel units
    of CKMImageNet's mapping (the [0, 1] pixel range spans -250..-50 dB, so ``std_px = 30 / 255``, CKMDiff's
    "30 on 0..255", is 23.5 dB), or ``std_db`` in dB directly. Only observed, finite values are noised; a
    ``path_gain_db`` at the floor marks an absent path, which is not a measured power, and stays noise-free.
    Angles get noise only when ``std_deg`` > 0 (azimuths wrapped to (-180, 180], elevations clipped to
    [-90, 90]); delays never. Task names use CKMDiff's 0..255 scale: ``noise30``, or ``noise5db``, with
    ``_2deg`` for angle noise and ``_clip`` for clipping.

    Parameters
    ----------
    std_px : float or None
        Gain noise std in pixel units of [0, 1], >= 0.
    std_db : float or None
        Gain noise std [dB], >= 0. Give exactly one of ``std_px`` and ``std_db``.
    std_deg : float
        Angle noise std [deg], >= 0; 0 leaves angles exact.
    clip : bool
        Clip noisy gains to the pixel range (-250..-50 dB), as an 8-bit image would; off by default, so the
        noise stays additive and ``y = A x + n`` holds exactly.
    """

    kind: ClassVar[str] = "noise"
    std_px: float | None = None
    std_db: float | None = None
    std_deg: float = 0.0
    clip: bool = False

    def __post_init__(self):
        if (self.std_px is None) == (self.std_db is None):
            raise CkmsimError(f"GaussianNoise needs exactly one of std_px and std_db. "
                              f"Received: std_px={self.std_px!r}, std_db={self.std_db!r}")
        for name in ("std_px", "std_db", "std_deg"):
            object.__setattr__(self, name, _check_std("GaussianNoise", name, getattr(self, name),
                                                      allow_none=name != "std_deg"))
        if not isinstance(self.clip, (bool, np.bool_)):
            raise CkmsimError(f"GaussianNoise needs clip as true or false. Received: clip={self.clip!r}")

    @property
    def gain_std_db(self) -> float:
        """Standard deviation of the gain noise [dB]."""
        return self.std_db if self.std_db is not None else self.std_px * _pixel_span_db()

    def task(self) -> str:
        name = f"noise{_number(255 * self.std_px)}" if self.std_px is not None else f"noise{_number(self.std_db)}db"
        if self.std_deg > 0:
            name += f"_{_number(self.std_deg)}deg"
        return name + ("_clip" if self.clip else "")

    def apply(self, observation: Observation, rng: np.random.Generator) -> Observation:
        values = observation.values.copy()
        for name in _float_layers(observation):
            var = values[name]
            layer = var.values.astype(np.float64)
            noisy = np.isfinite(layer) & observation.observed
            if is_gain_layer(name):
                std = self.gain_std_db
                if "path" in var.dims:
                    noisy &= layer > GAIN_FLOOR_DB
            elif is_azimuth_layer(name) or is_elevation_layer(name):
                std = self.std_deg
            else:
                continue
            if std == 0:
                continue
            layer = np.where(noisy, layer + rng.normal(0.0, std, size=layer.shape), layer)
            if is_gain_layer(name) and self.clip:
                layer = np.clip(layer, pixel_to_gain_db(0.0), pixel_to_gain_db(1.0))
            elif is_azimuth_layer(name):
                layer = wrap_deg(layer)
            elif is_elevation_layer(name):
                layer = np.clip(layer, -90.0, 90.0)
            values[name] = var.copy(data=layer.astype(var.dtype))
        return self._record(observation, values=values)


#: Config ``kind`` -> step class.
STEPS: dict[str, type[Step]] = {cls.kind: cls for cls in (Subsample, BlockAverage, BoxMask, RandomMask,
                                                          SparsePoints, GaussianNoise)}
_DOWNSAMPLING = (Subsample, BlockAverage)


# ------------------------------------------------------------------------------------------------ composition
class Degradation:
    """A sequence of steps applied in order with one seeded generator: ``y = A_k ... A_1 x + n``.

    ``Degradation([BlockAverage(4), GaussianNoise(std_px=30 / 255)], seed=1)(truth)`` is CKMDiff's noisy x4
    super-resolution input; ``[BoxMask(32), GaussianNoise(std_px=30 / 255)]`` its noisy inpainting input.
    The same seed gives the same observation; every random step draws from the one generator in turn.

    Parameters
    ----------
    steps : sequence of Step
        At most one down-sampling step (:class:`Subsample` or :class:`BlockAverage`).
    seed : int or numpy.random.Generator
        Default seed of :meth:`__call__` (an int makes every call the same; a generator moves on).
    """

    def __init__(self, steps: Sequence[Step] = (), seed: int | np.random.Generator = 0):
        steps = tuple(steps)
        for index, step in enumerate(steps):
            if not isinstance(step, Step):
                raise CkmsimError(f"Degradation steps must be Step objects (Subsample, BlockAverage, BoxMask, "
                                  f"RandomMask, SparsePoints, GaussianNoise). Received: steps[{index}]={step!r}")
        if sum(isinstance(step, _DOWNSAMPLING) for step in steps) > 1:
            raise CkmsimError(f"A degradation may down-sample once (one Subsample or BlockAverage). "
                              f"Received: steps={[step.task() for step in steps]}")
        as_generator(seed)
        self.steps = steps
        self.seed = seed

    @property
    def task(self) -> str:
        """The task name of the observations this degradation makes, e.g. ``"sr_avg_x4+noise30"``."""
        return "+".join(step.task() for step in self.steps) or FULL_TASK

    def __call__(self, truth: xr.Dataset, seed: int | np.random.Generator | None = None) -> Observation:
        """Degrade a ground-truth CKM.

        Input
        -----
        truth : CKM on a ``[num_y, num_x]`` grid
        seed : int, numpy.random.Generator or None
            Overrides the degradation's seed for this call.

        Output
        ------
        Observation
        """
        rng = as_generator(self.seed if seed is None else seed)
        return self.apply(observe(truth), rng)

    def apply(self, observation: Observation, rng: np.random.Generator) -> Observation:
        """Apply the steps in order to an observation, drawing from ``rng``."""
        for step in self.steps:
            observation = step.apply(observation, rng)
        return observation

    def to_config(self) -> dict:
        """``{"seed": ..., "steps": [{"kind": ..., ...}, ...]}``; the seed only if it is an int."""
        config = {"steps": [step.to_config() for step in self.steps]}
        if not isinstance(self.seed, np.random.Generator):
            config["seed"] = int(self.seed)
        return config

    @classmethod
    def from_config(cls, config: Mapping) -> "Degradation":
        """Build from a dict or a parsed TOML table; unknown keys and bad values fail with their names.

        Input
        -----
        config : mapping
            ``steps`` (a list of tables, each with ``kind`` and that step's fields) and optional ``seed``::

                seed = 1
                [[steps]]
                kind = "box_mask"
                size = 32
                [[steps]]
                kind = "noise"
                std_px = 0.11764705882352941
        """
        if not isinstance(config, Mapping):
            raise CkmsimError(f"A degradation config must be a table with 'steps' and optional 'seed'. "
                              f"Received: config={config!r}")
        unknown = sorted(set(config) - {"steps", "seed"})
        if unknown:
            raise CkmsimError(f"Unknown key(s) {unknown} in the degradation config; expected 'steps' and 'seed'. "
                              f"Received: {unknown[0]}={config[unknown[0]]!r}")
        entries = config.get("steps", [])
        if isinstance(entries, (str, bytes, Mapping)) or not isinstance(entries, Sequence):
            raise CkmsimError(f"The degradation config's 'steps' must be a list of tables. Received: steps={entries!r}")
        steps = [step_from_config(entry, where=f"steps[{index}]") for index, entry in enumerate(entries)]
        return cls(steps, seed=config.get("seed", 0))

    def __repr__(self) -> str:
        return f"Degradation({list(self.steps)!r}, seed={self.seed!r})"


def step_from_config(config: Mapping, where: str = "step") -> Step:
    """One step from its config table (``kind`` and the step's fields); errors name ``where`` and the key."""
    if not isinstance(config, Mapping):
        raise CkmsimError(f"Degradation {where} must be a table with a 'kind'. Received: {where}={config!r}")
    if "kind" not in config:
        raise CkmsimError(f"Degradation {where} lacks 'kind'; expected one of {sorted(STEPS)}. "
                          f"Received: {where}={dict(config)!r}")
    kind = config["kind"]
    if kind not in STEPS:
        raise CkmsimError(f"Unknown degradation kind in {where}; expected one of {sorted(STEPS)}. "
                          f"Received: kind={kind!r}")
    cls = STEPS[kind]
    fields = cls.__dataclass_fields__
    unknown = sorted(set(config) - set(fields) - {"kind"})
    if unknown:
        raise CkmsimError(f"Unknown key(s) {unknown} in degradation {where} (kind '{kind}'); expected a subset "
                          f"of {sorted(fields)}. Received: {unknown[0]}={config[unknown[0]]!r}")
    params = {key: value for key, value in config.items() if key != "kind"}
    try:
        return cls(**params)
    except TypeError as err:
        raise CkmsimError(f"Degradation {where} (kind '{kind}') is incomplete: {err}") from None
    except CkmsimError as err:
        raise CkmsimError(f"Degradation {where} (kind '{kind}'): {err}") from None


def compose(*steps: Step, seed: int | np.random.Generator = 0) -> Degradation:
    """``compose(BlockAverage(4), GaussianNoise(std_px=30 / 255))``: the steps as one :class:`Degradation`."""
    return Degradation(steps, seed=seed)


def degrade(truth: xr.Dataset, *steps: Step, seed: int | np.random.Generator = 0) -> Observation:
    """Apply the steps in order to a ground-truth CKM: ``compose(*steps, seed=seed)(truth)``."""
    return compose(*steps, seed=seed)(truth)


def uniform_subsample(truth: xr.Dataset, factor: int) -> Observation:
    """Keep every ``factor``-th cell along x and y (x ``factor`` super-resolution task, E-SRResNet eq. (7)).

    Input
    -----
    truth : CKM on a ``[num_y, num_x]`` grid
    factor : int, >= 1

    Output
    ------
    Observation with ``observed`` true on the lattice's non-building cells; task ``sr_x{factor}``.
    """
    return degrade(truth, Subsample(factor))
