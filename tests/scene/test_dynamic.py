"""Moving cars and pedestrians in simple_street_canyon: on the street, gapped, reproducible per block, and
seen by the ray tracer."""

import ckmsim  # noqa: F401  (Mitsuba before TensorFlow)

import math

import numpy as np
import pytest

from ckmsim.errors import CkmsimError
from ckmsim.maps.grid import Grid
from ckmsim.scene.dynamic import DynamicScene, MovingObjects, draw_positions
from ckmsim.scene.geometry import building_mask
from ckmsim.scene.load import load_scene

GRID = Grid(0.0, 0.0, 32, 16, 2.0)
CONFIG = MovingObjects(num_cars=4, num_pedestrians=6)


@pytest.fixture(scope="module")
def scene():
    return load_scene("simple_street_canyon")


@pytest.fixture(scope="module")
def street(scene):
    return ~building_mask(scene, GRID)


def _check_layout(cars, peds, street, config):
    assert cars.shape == (config.num_cars, 4) and peds.shape == (config.num_pedestrians, 3)
    xy = np.concatenate([cars[:, :2], peds[:, :2]])
    radius = np.array([0.5 * math.hypot(*config.car_size_m[:2])] * len(cars)
                      + [0.5 * math.hypot(*config.pedestrian_size_m[:2])] * len(peds))
    x0, _, y0, _ = GRID.bounds_m
    col = ((xy[:, 0] - x0) // GRID.cell_size_m).astype(int)
    row = ((xy[:, 1] - y0) // GRID.cell_size_m).astype(int)
    assert street[row, col].all()
    dist = np.hypot(*(xy[:, None] - xy[None]).transpose(2, 0, 1))
    need = radius[:, None] + radius[None] + config.min_gap_m
    off_diag = ~np.eye(len(xy), dtype=bool)
    assert np.all(dist[off_diag] >= need[off_diag])


def test_positions_on_street_with_gaps(street):
    config = MovingObjects()  # defaults: 10 cars, 20 pedestrians
    cars, peds = draw_positions(street, GRID, config, np.random.default_rng(3))
    _check_layout(cars, peds, street, config)
    assert np.allclose(cars[:, 2], 0.8) and np.allclose(peds[:, 2], 0.9)
    assert np.all((cars[:, 3] >= 0) & (cars[:, 3] < 360)) and np.ptp(cars[:, 3]) > 0


def test_streets_too_small_raises(street):
    with pytest.raises(CkmsimError, match="too small"):
        draw_positions(street, GRID, MovingObjects(num_cars=200), np.random.default_rng(0))
    with pytest.raises(CkmsimError, match="No street"):
        draw_positions(np.zeros(GRID.shape, bool), GRID, CONFIG, np.random.default_rng(0))


@pytest.mark.parametrize("field, value", [("num_cars", -1), ("num_pedestrians", 2.5), ("car_size_m", (4, 2)),
                                          ("pedestrian_size_m", (0.5, 0.0, 1.8)), ("car_material", "unobtanium"),
                                          ("pedestrian_material", 3), ("min_gap_m", -1.0), ("min_gap_m", "1")])
def test_bad_config_raises(field, value):
    with pytest.raises(CkmsimError, match=field):
        MovingObjects(**{field: value})


def test_dynamic_scene_lifecycle(scene, street):
    before = set(scene.objects)
    dyn = DynamicScene(scene, GRID, CONFIG, seed=7)
    try:
        assert np.array_equal(dyn.street_mask, street)  # mask taken before the boxes went in
        names = {f"car-{i}" for i in range(4)} | {f"ped-{i}" for i in range(6)}
        assert names <= set(scene.objects)
        assert scene.objects["car-0"].radio_material.name == "ckmsim-car-metal"
        assert scene.objects["ped-5"].radio_material.name == "ckmsim-ped-wood"

        a = dyn.draw(3)
        b = DynamicScene.draw(dyn, 3)
        c = dyn.draw(4)
        assert np.array_equal(a[0], b[0]) and np.array_equal(a[1], b[1])
        assert not np.array_equal(a[0], c[0])

        cars, peds = dyn.redraw(3)
        assert np.array_equal(cars, a[0])
        _check_layout(cars, peds, street, CONFIG)
        for i, (x, y, z, yaw) in enumerate(cars):
            obj = scene.objects[f"car-{i}"]
            assert np.allclose(np.array(obj.position).ravel(), (x, y, z), atol=1e-3)
            assert math.isclose(float(obj.orientation.x[0]), math.radians(yaw), abs_tol=1e-5)
        for i, (x, y, z) in enumerate(peds):
            assert np.allclose(np.array(scene.objects[f"ped-{i}"].position).ravel(), (x, y, z), atol=1e-3)
        # box size survives moves: a pedestrian's AABB is 0.5 x 0.5 x 1.8
        bbox = scene.objects["ped-0"].mi_mesh.bbox()
        assert np.allclose(np.array(bbox.max - bbox.min).ravel(), (0.5, 0.5, 1.8), atol=1e-4)
    finally:
        dyn.remove()
    assert set(scene.objects) == before


def test_car_blocks_line_of_sight(scene):
    import sionna.rt as rt

    scene.frequency = 28e9
    scene.tx_array = rt.PlanarArray(num_rows=1, num_cols=1, pattern="iso", polarization="V")
    scene.rx_array = rt.PlanarArray(num_rows=1, num_cols=1, pattern="iso", polarization="V")
    scene.add(rt.Transmitter("dyn-tx", position=[-10.0, 0.0, 1.0]))
    scene.add(rt.Receiver("dyn-rx", position=[10.0, 0.0, 1.0]))
    solver = rt.PathSolver()

    def gain_and_los():
        paths = solver(scene, max_depth=1, los=True, specular_reflection=True, diffuse_reflection=False,
                       refraction=False)
        a_re, a_im = paths.a
        gain = float(np.sum(np.abs(a_re.numpy()) ** 2 + np.abs(a_im.numpy()) ** 2))
        inter = paths.interactions.numpy()  # [max_depth, rx, rx_ant, tx, tx_ant, paths]
        valid = paths.valid.numpy()
        los = bool(np.any(valid & np.all(inter == rt.constants.InteractionType.NONE, axis=0)))
        return gain, los

    dyn = DynamicScene(scene, GRID, MovingObjects(num_cars=1, num_pedestrians=0), seed=0)
    try:
        dyn.place([[0.0, 6.0, 0.8, 0.0]], np.zeros((0, 3)))  # aside: LoS clear
        gain_clear, los_clear = gain_and_los()
        dyn.place([[0.0, 0.0, 0.8, 90.0]], np.zeros((0, 3)))  # across the LoS
        gain_blocked, los_blocked = gain_and_los()
    finally:
        dyn.remove()
        scene.remove("dyn-tx")
        scene.remove("dyn-rx")
    assert los_clear and not los_blocked
    assert 10 * np.log10(gain_clear / gain_blocked) > 3.0
