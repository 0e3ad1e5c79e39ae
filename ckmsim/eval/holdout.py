"""Which UEs a study scores: held out from the margin calibration, and not measured by the task.

Two things would let a method's score read the truth it is scored against, and this module removes both:

- **Calibrated margins.** Link adaptation backs off each map's predicted SNR by a margin fitted so that the
  map's outage meets a target (:func:`ckmsim.link.adaptation.calibrate_margin_db`). Fitted on the scored UEs,
  the margin would know their true channels. :func:`spatial_block_split` splits the scored UEs once per
  study into a *calibration* and a *test* set by square blocks of ``block_cells x block_cells`` grid cells,
  whole blocks drawn at random (seeded, stratified so that they spread over the area) for calibration. Blocks rather than single cells because the
  shadowing of neighbouring cells is correlated (decorrelation distances of 10-20 m in urban streets,
  3GPP TR 38.901 Table 7.5-6): a calibration cell next to a test cell would carry much of its channel. Every
  method's margin is fitted on its own predictions at the calibration UEs it did not measure; every rate a
  study reports is over test UEs.
- **Measured cells.** A method given a sub-sampled map holds the true (or noisy) value of the measured
  cells; about a quarter of the UEs of an x2 task sit on them, where every method is exact by construction.
  :func:`measured_cells` says which cells those are, from the observation's degradation operator; the
  headline rates are over the test UEs the task did not measure, the all-test-UE figure stands beside them.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ckmsim.errors import CkmsimError
from ckmsim.maps.degrade import Observation
from ckmsim.validation import is_finite_number, is_whole_number

#: Default block side [cells]: 4 cells of 2 m, i.e. 8 m, about the shadowing decorrelation distance of
#: 38.901 UMi LoS (10 m). Larger blocks leave fewer independent calibration samples: on the munich
#: quickstart (2414 UEs, 10 % outage target) the ground-truth map's test outage over 20 seeds spread
#: 5-21 % with 8-cell blocks and 7-14 % with 4-cell blocks (stratified draw, a quarter calibrating). The
#: margin is one scalar per map, so neighbouring calibration cells leak little of a test cell's channel.
DEFAULT_BLOCK_CELLS = 4
#: Default share of the blocks (holding UEs) that calibrate the margins.
DEFAULT_CALIBRATION_FRACTION = 0.25


@dataclass(frozen=True)
class UeSplit:
    """Disjoint calibration and test UEs of a study.

    Attributes
    ----------
    calibration : [num_ue], bool — UEs whose outcomes may calibrate a margin (never scored)
    block : [num_ue], int — block index of each UE (row-major over the grid of blocks)
    block_cells : int — block side [cells]
    calibration_fraction : float — requested share of the blocks that calibrate
    seed : int — seed of the block draw
    """

    calibration: np.ndarray
    block: np.ndarray
    block_cells: int
    calibration_fraction: float
    seed: int

    @property
    def test(self) -> np.ndarray:
        """``[num_ue]`` bool: the UEs every reported rate is over (the complement of :attr:`calibration`)."""
        return ~self.calibration

    def to_dict(self) -> dict:
        """What ``results.json`` records of the split."""
        return {"block_cells": self.block_cells, "calibration_fraction": self.calibration_fraction,
                "seed": self.seed, "num_calibration_ues": int(self.calibration.sum()),
                "num_test_ues": int(self.test.sum()),
                "num_calibration_blocks": int(len(np.unique(self.block[self.calibration]))),
                "num_test_blocks": int(len(np.unique(self.block[self.test])))}


def check_split_settings(block_cells, calibration_fraction) -> None:
    """Raise a :class:`CkmsimError` naming the field unless ``block_cells`` is an integer >= 1 and
    ``calibration_fraction`` lies in (0, 1) (both the calibration and the test set need UEs)."""
    if not is_whole_number(block_cells, minimum=1):
        raise CkmsimError(f"calibration_block_cells must be an integer >= 1. Received: "
                          f"calibration_block_cells={block_cells!r}")
    if not (is_finite_number(calibration_fraction) and 0.0 < calibration_fraction < 1.0):
        raise CkmsimError(f"calibration_fraction must be in (0, 1): both the calibration and the test set need "
                          f"UEs. Received: calibration_fraction={calibration_fraction!r}")


def spatial_block_split(ue_rows: np.ndarray, ue_cols: np.ndarray, block_cells: int = DEFAULT_BLOCK_CELLS,
                        calibration_fraction: float = DEFAULT_CALIBRATION_FRACTION, seed: int = 0) -> UeSplit:
    """Split UEs into calibration and test sets by seeded spatial blocks (module docstring).

    The grid is cut into ``block_cells x block_cells`` blocks from cell (0, 0); of the ``B`` blocks that hold
    at least one UE, ``round(calibration_fraction * B)`` (at least 1, at most ``B - 1``) calibrate, drawn
    stratified: the blocks in Z order are cut into that many consecutive runs and one block is drawn
    uniformly from each (a 2 x 2 super-block each for a quarter of a full grid). A block is wholly
    calibration or wholly test.

    Input
    -----
    ue_rows, ue_cols : [num_ue], int — grid cell of every UE
    block_cells : int >= 1
    calibration_fraction : float in (0, 1)
    seed : int

    Output
    ------
    UeSplit
    """
    rows, cols = np.asarray(ue_rows), np.asarray(ue_cols)
    if rows.ndim != 1 or rows.shape != cols.shape or not (np.issubdtype(rows.dtype, np.integer)
                                                          and np.issubdtype(cols.dtype, np.integer)):
        raise CkmsimError("ue_rows and ue_cols must be [num_ue] integer arrays of the same length. Received: "
                          f"{rows.shape} {rows.dtype}, {cols.shape} {cols.dtype}")
    check_split_settings(block_cells, calibration_fraction)
    if not is_whole_number(seed, minimum=0):
        raise CkmsimError(f"seed must be an integer >= 0. Received: seed={seed!r}")
    block_cells = int(block_cells)
    blocks_per_row = int(cols.max()) // block_cells + 1 if cols.size else 1
    block = (rows // block_cells) * blocks_per_row + cols // block_cells
    occupied = np.unique(block)
    if occupied.size < 2:
        raise CkmsimError(f"The {rows.size} UEs lie in {occupied.size} block(s) of {block_cells} x {block_cells} "
                          "cells: a calibration / test split needs at least 2 (use a smaller "
                          f"calibration_block_cells). Received: calibration_block_cells={block_cells}")
    num_calibration = int(np.clip(round(calibration_fraction * occupied.size), 1, occupied.size - 1))
    # A generator of its own (seed, 29): the split does not move when other seeded draws are added
    rng = np.random.default_rng([int(seed), 29])
    # Stratified draw: the occupied blocks in Z order (spatially local) cut into num_calibration runs, one
    # block drawn per run, so the calibration blocks spread over the whole area. A plain random draw of whole
    # blocks can cluster them in one kind of street.
    order = occupied[np.argsort(_z_order(occupied // blocks_per_row, occupied % blocks_per_row), kind="stable")]
    chosen = np.array([run[rng.integers(len(run))] for run in np.array_split(order, num_calibration)])
    return UeSplit(calibration=np.isin(block, chosen), block=block, block_cells=block_cells,
                   calibration_fraction=float(calibration_fraction), seed=int(seed))


def _z_order(block_rows: np.ndarray, block_cols: np.ndarray) -> np.ndarray:
    """Morton (Z-order) key of each block: bits of row and column interleaved, so blocks close in the key
    are close on the grid (the first 4 of a full 2^k x 2^k grid of blocks are its top-left 2 x 2)."""
    rows, cols = np.asarray(block_rows, dtype=np.int64), np.asarray(block_cols, dtype=np.int64)
    key = np.zeros_like(rows)
    for bit in range(16):
        key |= ((rows >> bit) & 1) << (2 * bit + 1) | ((cols >> bit) & 1) << (2 * bit)
    return key


def measured_cells(observation: Observation) -> np.ndarray:
    """``[num_y, num_x]`` bool: the cells whose own value the observation holds (the "lattice" of a task).

    A cell is measured when a row of the degradation operator ``A`` reads that cell alone (point sampling:
    :class:`~ckmsim.maps.degrade.Subsample`, masks, sparse points, with or without noise). A block average
    of several cells measures none of them (the method holds the block mean, not a cell's value); a block
    with a single open cell measures that cell. Without an operator, the observation's ``observed`` mask.
    """
    operator = observation.operator
    if operator is None:
        return np.asarray(observation.observed, dtype=bool).copy()
    matrix = operator.matrix.copy()
    matrix.eliminate_zeros()
    per_row = np.diff(matrix.indptr)
    single = np.flatnonzero(per_row == 1)
    mask = np.zeros(operator.shape[0] * operator.shape[1], dtype=bool)
    mask[matrix.indices[matrix.indptr[single]]] = True
    return mask.reshape(operator.shape)
