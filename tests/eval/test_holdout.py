"""Calibration / test split by spatial blocks and the cells a task measured (ckmsim.eval.holdout)."""

import numpy as np
import pytest

from ckmsim.errors import CkmsimError
from ckmsim.eval.holdout import measured_cells, spatial_block_split
from ckmsim.maps.ckm import make_ckm
from ckmsim.maps.degrade import BlockAverage, Degradation, GaussianNoise, RandomMask, Subsample, observe
from ckmsim.maps.grid import Grid


def _cells(num: int):
    rows, cols = np.divmod(np.arange(num * num), num)
    return rows, cols


def test_split_is_disjoint_whole_blocks_seeded():
    rows, cols = _cells(32)
    split = spatial_block_split(rows, cols, block_cells=8, calibration_fraction=0.25, seed=3)
    assert split.calibration.shape == (1024,)
    assert not np.any(split.calibration & split.test) and np.all(split.calibration | split.test)
    # 16 blocks of 8 x 8 cells, 4 of them calibrate: 256 UEs
    assert split.calibration.sum() == 256
    # A block is wholly one or the other: its cells are (row // 8, col // 8)
    for block in np.unique(split.block):
        members = split.calibration[split.block == block]
        assert members.all() or not members.any()
        assert len(set(zip(rows[split.block == block] // 8, cols[split.block == block] // 8))) == 1
    again = spatial_block_split(rows, cols, 8, 0.25, seed=3)
    np.testing.assert_array_equal(again.calibration, split.calibration)
    other = spatial_block_split(rows, cols, 8, 0.25, seed=4)
    assert not np.array_equal(other.calibration, split.calibration)
    record = split.to_dict()
    assert record["num_calibration_blocks"] == 4 and record["num_test_blocks"] == 12


def test_split_keeps_at_least_one_block_on_each_side_and_names_bad_input():
    rows, cols = _cells(16)
    for fraction in (0.01, 0.99):
        split = spatial_block_split(rows, cols, 8, fraction, seed=0)
        assert 0 < split.calibration.sum() < 256
    with pytest.raises(CkmsimError, match="at least 2"):
        spatial_block_split(rows, cols, 16, 0.5)
    with pytest.raises(CkmsimError, match="calibration_fraction"):
        spatial_block_split(rows, cols, 8, 1.0)
    with pytest.raises(CkmsimError, match="calibration_block_cells"):
        spatial_block_split(rows, cols, 0, 0.5)
    with pytest.raises(CkmsimError, match="integer arrays"):
        spatial_block_split(rows.astype(float), cols, 8, 0.5)


def _truth(num: int = 8, building=None) -> "xr.Dataset":
    grid = Grid(0.0, 0.0, num, num, 1.0)
    building = np.zeros((num, num), bool) if building is None else building
    gain = np.where(building, np.nan, -100.0 + np.arange(num * num).reshape(num, num) / 10)
    return make_ckm(grid, {"gain_db": gain, "building": building}, {"frequency_hz": 3.5e9})


def test_measured_cells_of_subsampling_are_the_lattice_even_with_noise():
    truth = _truth()
    for steps in ([Subsample(2)], [Subsample(2), GaussianNoise(std_db=3.0)]):
        measured = measured_cells(Degradation(steps, seed=1)(truth))
        expected = np.zeros((8, 8), bool)
        expected[::2, ::2] = True
        np.testing.assert_array_equal(measured, expected)


def test_measured_cells_of_a_random_mask_are_the_kept_cells():
    truth = _truth()
    observation = Degradation([RandomMask(0.5)], seed=2)(truth)
    measured = measured_cells(observation)
    np.testing.assert_array_equal(measured, observation.observed)
    assert measured.sum() == 32
    assert measured_cells(observe(truth)).all()


def test_a_block_average_measures_no_cell_of_a_full_block():
    """The method holds a block's mean, not any cell's value: only a block with one open cell is measured."""
    building = np.zeros((8, 8), bool)
    building[4:6, 4:6] = True
    building[4, 5] = building[5, 4] = True
    building[5, 5] = False  # block (2, 2) has a single open cell, (5, 5)
    observation = Degradation([BlockAverage(2)], seed=0)(_truth(building=building))
    measured = measured_cells(observation)
    expected = np.zeros((8, 8), bool)
    expected[5, 5] = True
    np.testing.assert_array_equal(measured, expected)
    # whereas the anchors sit on every block's lattice cell
    assert observation.observed.sum() == 16


def test_calibration_blocks_spread_over_the_area():
    """A quarter of a full 8 x 8 grid of blocks: one calibration block in every 2 x 2 super-block (brute
    force over the super-blocks), for every seed; a plain random draw of 16 of 64 blocks leaves some
    super-block empty with probability ~1."""
    rows, cols = _cells(64)
    for seed in range(5):
        split = spatial_block_split(rows, cols, block_cells=8, calibration_fraction=0.25, seed=seed)
        calibration_blocks = {(r // 8, c // 8) for r, c in zip(rows[split.calibration], cols[split.calibration])}
        assert len(calibration_blocks) == 16
        for super_row in range(4):
            for super_col in range(4):
                inside = {(2 * super_row + i, 2 * super_col + j) for i in range(2) for j in range(2)}
                assert len(inside & calibration_blocks) == 1
