"""Degradations y = A x + n (CKMDiff eq. (1)): seeds, mask sizes, noise statistics, the operator A and A^+,
composition, and configs."""

import tomllib

import numpy as np
import pytest

from ckmsim.errors import CkmsimError
from ckmsim.maps.ckm import GAIN_FLOOR_DB, make_ckm
from ckmsim.maps.degrade import (BlockAverage, BoxMask, Degradation, GaussianNoise, LinearOperator, Observation,
                                 RandomMask, SparsePoints, Subsample, compose, degrade, observe, uniform_subsample)
from ckmsim.maps.grid import Grid

FLOAT_LAYERS = ("gain_db", "path_gain_db", "aoa_az_deg", "aoa_el_deg", "toa_s")
NOISE30 = GaussianNoise(std_px=30 / 255)


def _truth(n, seed=0, building=True, num_paths=2):
    """[n, n] CKM with every layer; a building block (if ``building``); the second path absent in ~30 % of cells."""
    rng = np.random.default_rng(seed)
    shape = (n, n)
    mask = np.zeros(shape, dtype=bool)
    if building:
        mask[n // 4: n // 2, n // 2: 3 * n // 4 + 1] = True
    gain_db = np.where(mask, np.nan, rng.uniform(-140.0, -60.0, shape))
    path_gain_db = np.stack([gain_db - 1.0, gain_db - rng.uniform(3.0, 30.0, shape)])[:num_paths]
    az = rng.uniform(-180.0, 180.0, (num_paths,) + shape)
    el = rng.uniform(-30.0, 60.0, (num_paths,) + shape)
    toa = rng.uniform(1e-7, 1e-6, (num_paths,) + shape)
    absent = np.stack([mask, mask | (rng.random(shape) < 0.3)])[:num_paths]
    path_gain_db[absent] = GAIN_FLOOR_DB
    for layer in (az, el, toa):
        layer[absent] = np.nan
    grid = Grid(center_x_m=0.0, center_y_m=0.0, num_x=n, num_y=n, cell_size_m=2.0)
    return make_ckm(grid, {"gain_db": gain_db, "path_gain_db": path_gain_db, "aoa_az_deg": az, "aoa_el_deg": el,
                           "toa_s": toa, "los": rng.random(shape) < 0.5, "building": mask},
                    {"scene": "toy", "frequency_hz": 3.5e9})


def _same(a: Observation, b: Observation) -> bool:
    return (a.task == b.task and np.array_equal(a.observed, b.observed)
            and all(np.array_equal(a.values[name].values, b.values[name].values, equal_nan=True)
                    for name in FLOAT_LAYERS))


RANDOM_STEPS = {
    "box_mask": (BoxMask(6),),
    "random_mask": (RandomMask(0.5),),
    "sparse_points": (SparsePoints(num_points=30),),
    "sparse_fraction": (SparsePoints(fraction=0.1),),
    "noise": (NOISE30,),
    "sr_avg_x4+noise": (BlockAverage(4), NOISE30),
    "box+noise": (BoxMask(6), NOISE30),
}


# ------------------------------------------------------------------------------------------------ seeds
@pytest.mark.parametrize("name", sorted(RANDOM_STEPS))
def test_reproducible_from_seed_and_different_across_seeds(name):
    truth = _truth(16)
    steps = RANDOM_STEPS[name]
    first, again = degrade(truth, *steps, seed=3), degrade(truth, *steps, seed=3)
    assert _same(first, again)
    assert _same(degrade(truth, *steps, seed=np.random.default_rng(3)), first)
    assert not _same(degrade(truth, *steps, seed=4), first)


def test_seed_must_be_an_int_or_a_generator():
    with pytest.raises(CkmsimError, match="Received: seed=-1"):
        degrade(_truth(8), NOISE30, seed=-1)
    with pytest.raises(CkmsimError, match="Received: seed='1'"):
        compose(NOISE30, seed="1")


# ------------------------------------------------------------------------------------------------ masks
def test_full_observation_is_the_truth_off_buildings():
    truth = _truth(12)
    observation = observe(truth)
    building = truth["building"].values
    assert observation.task == "full" and observation.factor is None
    np.testing.assert_array_equal(observation.observed, ~building)
    for name in FLOAT_LAYERS:
        got = observation.values[name].values
        np.testing.assert_array_equal(got[..., ~building], truth[name].values[..., ~building])
        assert np.all(np.isnan(got[..., building]))


def test_box_mask_at_a_given_position_drops_exactly_the_box():
    truth = _truth(16)
    observation = degrade(truth, BoxMask((4, 6), position=(2, 9)))
    box = np.zeros((16, 16), dtype=bool)
    box[2:6, 9:15] = True
    np.testing.assert_array_equal(observation.observed, ~truth["building"].values & ~box)
    assert observation.task == "box4x6"
    assert observation.degradation == ({"kind": "box_mask", "size": [4, 6], "position": [2, 9]},)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_box_mask_at_a_random_position_fits_the_grid_and_is_recorded(seed):
    truth = _truth(16, building=False)
    observation = degrade(truth, BoxMask(5), seed=seed)
    row, col = observation.degradation[0]["position"]
    assert 0 <= row <= 11 and 0 <= col <= 11
    missing = ~observation.observed
    assert missing.sum() == 25
    np.testing.assert_array_equal(np.argwhere(missing).min(axis=0), [row, col])
    np.testing.assert_array_equal(np.argwhere(missing).max(axis=0), [row + 4, col + 4])
    # The recorded position rebuilds the same observation without the seed
    assert _same(Degradation.from_config({"steps": list(observation.degradation)})(truth), observation)


@pytest.mark.parametrize("fraction", [0.0, 0.25, 0.5, 0.9])
def test_random_mask_drops_the_stated_fraction_of_open_cells(fraction):
    truth = _truth(16)
    num_open = int((~truth["building"].values).sum())
    observation = degrade(truth, RandomMask(fraction), seed=7)
    assert observation.observed.sum() == num_open - round(fraction * num_open)
    assert not np.any(observation.observed & truth["building"].values)


def test_sparse_points_keep_the_stated_number_or_fraction_never_in_buildings():
    truth = _truth(16)
    building = truth["building"].values
    num_open = int((~building).sum())
    for step, expected in ((SparsePoints(num_points=17), 17), (SparsePoints(fraction=0.2), round(0.2 * num_open))):
        observation = degrade(truth, step, seed=2)
        assert observation.observed.sum() == expected
        assert not np.any(observation.observed & building)
        observed = observation.observed
        np.testing.assert_array_equal(observation.values["gain_db"].values[observed],
                                      truth["gain_db"].values[observed])
        assert np.all(np.isnan(observation.values["gain_db"].values[~observed]))
    with pytest.raises(CkmsimError, match=f"Received: num_points={num_open + 1}"):
        degrade(truth, SparsePoints(num_points=num_open + 1))


@pytest.mark.parametrize("steps", [(Subsample(3),), (BoxMask(5),), (RandomMask(0.3),), (SparsePoints(40),),
                                   (Subsample(2), RandomMask(0.5), NOISE30)])
def test_sampling_never_observes_a_building(steps):
    truth = _truth(16)
    observation = degrade(truth, *steps, seed=1)
    assert not np.any(observation.observed & truth["building"].values)
    assert np.all(np.isnan(observation.values["gain_db"].values[~observation.observed]))


def test_box_mask_that_does_not_fit_names_the_argument():
    with pytest.raises(CkmsimError, match=r"Received: size=\[9, 2\]"):
        degrade(_truth(8), BoxMask((9, 2)))
    with pytest.raises(CkmsimError, match=r"Received: position=\[0, 5\]"):
        degrade(_truth(8), BoxMask(4, position=(0, 5)))


# ------------------------------------------------------------------------------------------------ down-sampling
def test_subsample_step_is_uniform_subsample():
    truth = _truth(17)
    old = uniform_subsample(truth, 4)
    assert _same(degrade(truth, Subsample(4)), old)
    assert old.task == "sr_x4" and old.factor == 4 and old.attrs == truth.attrs


def test_block_average_by_hand_on_a_5x5_grid():
    n = 5
    gain_db = np.arange(n * n, dtype=float).reshape(n, n) - 100.0
    building = np.zeros((n, n), dtype=bool)
    building[0, 0] = building[4, 4] = True
    az = np.full((1, n, n), 179.0)
    az[0, 2, 2] = az[0, 3, 3] = -179.0
    grid = Grid(center_x_m=0.0, center_y_m=0.0, num_x=n, num_y=n, cell_size_m=1.0)
    truth = make_ckm(grid, {"gain_db": np.where(building, np.nan, gain_db), "aoa_az_deg": az,
                            "building": building})
    observation = degrade(truth, BlockAverage(2))
    assert observation.task == "sr_avg_x2" and observation.factor == 2
    # Blocks: 2x2, with the last row and column 1 cell wide; the (4, 4) block is all building: dropped
    expected_anchors = np.zeros((n, n), dtype=bool)
    expected_anchors[np.ix_([0, 2, 4], [0, 2, 4])] = True
    expected_anchors[4, 4] = False
    np.testing.assert_array_equal(observation.observed, expected_anchors)
    got = observation.values["gain_db"].values
    # (0, 0) is a building: its block's mean is over the three open cells (1, 5, 6) - 100
    np.testing.assert_allclose(got[0, 0], np.mean([1.0, 5.0, 6.0]) - 100.0)
    np.testing.assert_allclose(got[2, 2], np.mean([12.0, 13.0, 17.0, 18.0]) - 100.0)
    np.testing.assert_allclose(got[0, 4], np.mean([4.0, 9.0]) - 100.0)
    np.testing.assert_allclose(got[4, 0], np.mean([20.0, 21.0]) - 100.0)
    # Two cells at 179 deg and two at -179 deg average to 180 deg on the circle (a plain mean gives 0 deg)
    az_22 = observation.values["aoa_az_deg"].values[0, 2, 2]
    assert abs(abs(az_22) - 180.0) < 1e-3


def test_block_average_values_are_the_operator_applied_to_the_truth():
    truth = _truth(16)
    observation = degrade(truth, RandomMask(0.3), BlockAverage(4), seed=5)
    operator = observation.operator
    for name in FLOAT_LAYERS:
        got = operator.read(observation.values[name].values)
        want = operator.apply(truth[name].values, circular=name == "aoa_az_deg")
        np.testing.assert_allclose(got, want, rtol=0, atol=1e-9 if name == "toa_s" else 1e-3)


def test_only_one_down_sampling_per_degradation():
    with pytest.raises(CkmsimError, match="down-sample once"):
        compose(Subsample(2), BlockAverage(2))
    with pytest.raises(CkmsimError, match="factor=4"):
        BlockAverage(2).apply(uniform_subsample(_truth(8), 4), np.random.default_rng(0))


# ------------------------------------------------------------------------------------------------ noise
def test_pixel_noise_has_the_stated_std_on_observed_gains_only():
    n = 32
    truth = _truth(n, building=False)
    clean = observe(truth)
    noisy = degrade(truth, NOISE30, seed=11)
    # [n * n]: every cell is observed
    error_db = (noisy.values["gain_db"].values - clean.values["gain_db"].values).ravel()
    # 30 on 0..255 of a 200 dB pixel range: 23.5 dB; the sample std of 1024 draws is within 10 % w.p. 1 - 1e-5
    assert abs(np.std(error_db) / (30 / 255 * 200.0) - 1.0) < 0.1
    assert abs(np.mean(error_db)) < 4 * 23.53 / np.sqrt(n * n)
    assert noisy.task == "noise30"
    # Present paths are noised with the same std, absent ones stay at the floor; angles and delays are exact
    path_clean, path_noisy = clean.values["path_gain_db"].values, noisy.values["path_gain_db"].values
    present = path_clean > GAIN_FLOOR_DB
    assert abs(np.std((path_noisy - path_clean)[present]) / 23.53 - 1.0) < 0.1
    np.testing.assert_array_equal(path_noisy[~present], GAIN_FLOOR_DB)
    for name in ("aoa_az_deg", "aoa_el_deg", "toa_s"):
        np.testing.assert_array_equal(noisy.values[name].values, clean.values[name].values)


def test_noise_touches_only_observed_cells_and_db_and_angle_std():
    truth = _truth(32)
    clean = degrade(truth, BoxMask(8), seed=1)
    noisy = degrade(truth, BoxMask(8), GaussianNoise(std_db=2.0, std_deg=3.0), seed=1)
    np.testing.assert_array_equal(noisy.observed, clean.observed)
    assert np.all(np.isnan(noisy.values["gain_db"].values[~noisy.observed]))
    observed = noisy.observed
    error_db = noisy.values["gain_db"].values[observed] - clean.values["gain_db"].values[observed]
    assert abs(np.std(error_db) / 2.0 - 1.0) < 0.1
    # azimuth error on the circle, elevations clipped to [-90, 90]
    az_error = np.mod(noisy.values["aoa_az_deg"].values - clean.values["aoa_az_deg"].values + 180.0, 360.0) - 180.0
    az_error = az_error[np.isfinite(az_error)]
    assert abs(np.std(az_error) / 3.0 - 1.0) < 0.1
    assert np.nanmax(np.abs(noisy.values["aoa_el_deg"].values)) <= 90.0
    assert noisy.task == "box8x8+noise2db_3deg"


def test_clipped_noise_stays_in_the_pixel_range():
    truth = _truth(16, building=False)
    noisy = degrade(truth, GaussianNoise(std_px=1.0, clip=True), seed=0)
    gain = noisy.values["gain_db"].values
    assert gain.min() >= -250.0 and gain.max() <= -50.0
    assert np.any(gain == -50.0) and np.any(gain == -250.0)


# ------------------------------------------------------------------------------------------------ A and A^+
OPERATOR_STEPS = [(Subsample(3),), (BoxMask(5),), (RandomMask(0.4),), (SparsePoints(25),), (BlockAverage(4),),
                  (BlockAverage(3),), (RandomMask(0.4), BlockAverage(2)), (BlockAverage(2), BoxMask(6))]


@pytest.mark.parametrize("steps", OPERATOR_STEPS)
def test_moore_penrose_conditions_on_random_fields(steps):
    operator = degrade(_truth(16), *steps, seed=2).operator
    rng = np.random.default_rng(0)
    # [3, 16, 16] fields and [3, num_rows] measurements
    x = rng.normal(size=(3, 16, 16))
    y = rng.normal(size=(3, operator.num_rows))
    np.testing.assert_allclose(operator.apply(operator.pseudo_inverse(operator.apply(x))), operator.apply(x),
                               atol=1e-12)
    np.testing.assert_allclose(operator.pseudo_inverse(operator.apply(operator.pseudo_inverse(y))),
                               operator.pseudo_inverse(y), atol=1e-12)


@pytest.mark.parametrize("steps", [(Subsample(2),), (BoxMask(2, position=(1, 1)),), (RandomMask(0.5),),
                                   (BlockAverage(2),), (BlockAverage(3),), (RandomMask(0.25), BlockAverage(2))])
def test_pseudo_inverse_is_numpy_pinv_on_a_4x4_grid(steps):
    operator = degrade(_truth(4), *steps, seed=1).operator
    dense = operator.to_dense()
    assert dense.shape == (operator.num_rows, 16)
    y = np.random.default_rng(1).normal(size=operator.num_rows)
    np.testing.assert_allclose(operator.pseudo_inverse(y).ravel(), np.linalg.pinv(dense) @ y, atol=1e-12)
    x = np.random.default_rng(2).normal(size=(4, 4))
    np.testing.assert_allclose(operator.apply(x), dense @ x.ravel(), atol=1e-12)


def test_sampling_pseudo_inverse_is_zero_fill_and_block_average_is_replication():
    sampling = LinearOperator.sampling(np.eye(3, dtype=bool))
    np.testing.assert_array_equal(sampling.pseudo_inverse(np.array([1.0, 2.0, 3.0])), np.diag([1.0, 2.0, 3.0]))
    truth = _truth(4, building=False)
    block = degrade(truth, BlockAverage(2)).operator
    np.testing.assert_array_equal(block.pseudo_inverse(np.array([1.0, 2.0, 3.0, 4.0])),
                                  np.kron([[1.0, 2.0], [3.0, 4.0]], np.ones((2, 2))))


def test_operator_rejects_overlapping_rows_and_bad_anchors():
    with pytest.raises(CkmsimError, match="disjoint"):
        LinearOperator(np.array([[1.0, 1.0, 0.0, 0.0], [0.0, 1.0, 1.0, 0.0]]), [0, 2], (2, 2))
    with pytest.raises(CkmsimError, match="anchors"):
        LinearOperator(np.array([[1.0, 0.0, 0.0, 0.0], [0.0, 1.0, 0.0, 0.0]]), [0, 0], (2, 2))


# ------------------------------------------------------------------------------------------------ composition
@pytest.mark.parametrize("steps", [(BlockAverage(4), NOISE30), (BoxMask(8), NOISE30),
                                   (RandomMask(0.5), BlockAverage(2), NOISE30), (SparsePoints(50), BoxMask(4))])
def test_a_combination_equals_its_parts_in_order(steps):
    truth = _truth(16)
    combined = compose(*steps, seed=5)(truth)
    rng = np.random.default_rng(5)
    by_hand = observe(truth)
    for step in steps:
        by_hand = step.apply(by_hand, rng)
    assert _same(combined, by_hand)
    np.testing.assert_array_equal(combined.operator.to_dense(), by_hand.operator.to_dense())
    assert combined.task == "+".join(step.task() for step in steps)
    assert combined.factor == by_hand.factor


def test_operator_of_a_combination_is_the_product_of_the_parts():
    truth = _truth(8)
    mask = degrade(truth, BoxMask(3, position=(0, 0)))
    both = degrade(truth, BoxMask(3, position=(0, 0)), BlockAverage(2))
    # block-mean matrix over the mask's rows, by hand: rows grouped by the 2x2 block of their anchor
    rows, cols = np.divmod(mask.operator.anchors, 8)
    blocks = (rows // 2) * 4 + cols // 2
    present = np.unique(blocks)
    mean = (blocks[None, :] == present[:, None]).astype(float)
    mean /= mean.sum(axis=1, keepdims=True)
    np.testing.assert_allclose(both.operator.to_dense(), mean @ mask.operator.to_dense())


def test_task_names():
    assert compose(BlockAverage(4), NOISE30).task == "sr_avg_x4+noise30"
    assert compose(BoxMask(32), NOISE30).task == "box32x32+noise30"
    assert compose(Subsample(4)).task == "sr_x4"
    assert compose(RandomMask(0.375), SparsePoints(fraction=0.5)).task == "mask37.5pct+sparse50pct"
    assert compose().task == "full"


# ------------------------------------------------------------------------------------------------ configs
def test_config_round_trip_and_toml():
    degradation = compose(BoxMask((4, 6)), GaussianNoise(std_px=30 / 255, std_deg=1.0), seed=9)
    rebuilt = Degradation.from_config(degradation.to_config())
    truth = _truth(16)
    assert _same(rebuilt(truth), degradation(truth))
    toml = """
        seed = 9
        [[steps]]
        kind = "box_mask"
        size = [4, 6]
        [[steps]]
        kind = "noise"
        std_px = 0.11764705882352941
        std_deg = 1.0
    """
    assert _same(Degradation.from_config(tomllib.loads(toml))(truth), degradation(truth))


@pytest.mark.parametrize("config, match", [
    ({"steps": [{"kind": "box_mask", "sise": 32}]}, r"Unknown key\(s\) \['sise'\].*Received: sise=32"),
    ({"steps": [{"kind": "boxmask", "size": 32}]}, "Received: kind='boxmask'"),
    ({"steps": [{"size": 32}]}, "lacks 'kind'"),
    ({"steps": [{"kind": "box_mask"}]}, r"steps\[0\] \(kind 'box_mask'\) is incomplete"),
    ({"steps": [{"kind": "block_average", "factor": 0}]}, "Received: factor=0"),
    ({"steps": [{"kind": "random_mask", "missing_fraction": 1.5}]}, "Received: missing_fraction=1.5"),
    ({"steps": [{"kind": "noise", "std_px": 0.1, "std_db": 3}]}, "exactly one of std_px and std_db"),
    ({"steps": [{"kind": "noise", "std_px": -0.1}]}, "Received: std_px=-0.1"),
    ({"steps": [{"kind": "noise", "std_px": 0.1, "clip": "yes"}]}, "Received: clip='yes'"),
    ({"steps": [{"kind": "sparse_points"}]}, "exactly one of num_points and fraction"),
    ({"steps": [{"kind": "box_mask", "size": [4, 4, 4]}]}, r"Received: size=\[4, 4, 4\]"),
    ({"steps": [{"kind": "subsample", "factor": 2}, {"kind": "block_average", "factor": 2}]}, "down-sample once"),
    ({"step": []}, r"Unknown key\(s\) \['step'\].*Received: step=\[\]"),
    ({"steps": {"kind": "noise"}}, "must be a list of tables"),
    ({"steps": [], "seed": 1.5}, "Received: seed=1.5"),
])
def test_config_errors_name_the_field(config, match):
    with pytest.raises(CkmsimError, match=match):
        Degradation.from_config(config)


def test_observation_stays_constructible_the_old_way():
    truth = _truth(4)
    old = uniform_subsample(truth, 2)
    by_hand = Observation(old.task, old.grid, old.values, old.observed, old.building, 2, {})
    assert by_hand.operator is None and by_hand.degradation == ()
