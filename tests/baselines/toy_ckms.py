"""Toy CKMs shared by the baseline tests: a random multi-layer truth, gain-only maps, a plane."""

import numpy as np

from ckmsim.maps.angles import angle_difference_deg
from ckmsim.maps.ckm import GAIN_FLOOR_DB, make_ckm
from ckmsim.maps.grid import Grid

FLOAT_LAYERS = ("gain_db", "path_gain_db", "aoa_az_deg", "aoa_el_deg", "toa_s")


def _grid(n):
    return Grid(center_x_m=0.0, center_y_m=0.0, num_x=n, num_y=n, cell_size_m=2.0)


def _building(n):
    """[n, n] bool: one block of buildings covering some lattice cells of every factor used here."""
    building = np.zeros((n, n), dtype=bool)
    building[5:9, 9:13] = True
    return building


def _random_truth(n, seed):
    """A CKM with every layer, two paths (the second absent in some cells) and a building block."""
    rng = np.random.default_rng(seed)
    shape = (n, n)
    building = _building(n)
    gain_db = rng.uniform(-140.0, -60.0, shape)
    gain_db[building] = np.nan
    # [2, n, n]
    path_gain_db = np.stack([gain_db - 1.0, gain_db - rng.uniform(3.0, 30.0, shape)])
    az = rng.uniform(-180.0, 180.0, (2,) + shape)
    el = rng.uniform(-30.0, 60.0, (2,) + shape)
    toa = rng.uniform(1e-7, 1e-6, (2,) + shape)
    absent = np.stack([building, building | (rng.random(shape) < 0.3)])
    path_gain_db[absent] = GAIN_FLOOR_DB
    for layer in (az, el, toa):
        layer[absent] = np.nan
    variables = {"gain_db": gain_db, "path_gain_db": path_gain_db, "aoa_az_deg": az, "aoa_el_deg": el,
                 "toa_s": toa, "los": rng.random(shape) < 0.5, "building": building}
    return make_ckm(_grid(n), variables, {"scene": "toy", "frequency_hz": 3.5e9})


def _map_truth(gain_db, building=None, az_deg=None):
    """A CKM with only ``gain_db`` [n, n] (and optionally one path of azimuth [1, n, n])."""
    n = gain_db.shape[0]
    building = np.zeros((n, n), dtype=bool) if building is None else building
    variables = {"gain_db": np.where(building, np.nan, gain_db), "building": building}
    if az_deg is not None:
        variables["aoa_az_deg"] = az_deg
    return make_ckm(_grid(n), variables)


def _plane(n):
    """[n, n]: a*x + b*y + c in cell units, in a realistic gain range [dB]."""
    rows, cols = np.indices((n, n))
    return -0.7 * cols + 1.3 * rows - 100.0



def assert_layer_close(name, got, want, atol=1e-4):
    """Predicted and measured values of layer ``name`` agree: azimuths on the circle, delays in ns."""
    if name.endswith("_az_deg"):
        np.testing.assert_array_less(np.abs(angle_difference_deg(got, want)), atol)
    elif name == "toa_s":
        np.testing.assert_allclose(got * 1e9, want * 1e9, rtol=0, atol=1e-4)
    else:
        np.testing.assert_allclose(got, want, rtol=0, atol=atol)
