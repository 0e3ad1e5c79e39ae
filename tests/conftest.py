"""Shared test options and fixtures: ``--seed``, reseeding before every test, and one tiny quickstart run.

ckmsim is imported first so that Mitsuba/Dr.Jit are loaded before anything pulls in TensorFlow (see
``ckmsim/__init__.py``): a test module that imports a Sionna PHY block on its own must not load them the
other way round.
"""

from __future__ import annotations

import sys

import numpy as np
import pytest

import ckmsim  # noqa: F401  (Mitsuba before TensorFlow)

#: Study area of the tiny quickstart: a 32 m x 32 m square centred on the street of ``simple_street_canyon``,
#: whose street runs along x between the building rows at y ~ -8.6 m and y ~ 9.6 m (scene bbox
#: x in [-94.0, 92.4] m, y in [-60.3, 60.8] m). The square holds street cells and building cells on both
#: sides; the BS stands above its centre by the default rule (2 m over the highest roof of the area).
TINY_SCENE = "simple_street_canyon"
TINY_CENTER_M = (0.0, 0.0)


def pytest_addoption(parser):
    parser.addoption("--seed", action="store", type=int, default=0,
                     help="Seed of the rng fixture and of numpy's / TensorFlow's global generators (default 0).")


@pytest.fixture
def rng(request) -> np.random.Generator:
    """A fresh generator seeded with ``--seed``: the one source of randomness a test should draw from."""
    return np.random.default_rng(request.config.getoption("--seed"))


@pytest.fixture(autouse=True)
def _reseed_global_generators(request):
    """Reseed numpy's legacy generator, and TensorFlow's when some test has already imported it.

    TensorFlow is looked up, never imported, here: importing it costs seconds and must follow Mitsuba's import.
    """
    seed = request.config.getoption("--seed")
    np.random.seed(seed)
    tf = sys.modules.get("tensorflow")
    if tf is not None and hasattr(tf, "random"):
        tf.random.set_seed(seed)


@pytest.fixture(scope="session")
def tiny_quickstart_config():
    """Factory ``out -> QuickstartConfig`` of the tiny quickstart (16 x 16 cells, 1e5 / 1e4 rays, depth 2)."""
    from ckmsim.eval.quickstart import QuickstartConfig
    from ckmsim.raytrace.settings import RayTracingSettings

    def make(out) -> QuickstartConfig:
        return QuickstartConfig(
            scene=TINY_SCENE, out=str(out), num_cells=16, cell_size_m=2.0, center_m=TINY_CENTER_M,
            factors=(2, 4), num_bs_ant=8,
            ray_tracing=RayTracingSettings(radio_map_samples=10**5, path_samples=10**4, receivers_per_call=64,
                                           max_depth=2))

    return make


@pytest.fixture(scope="session")
def tiny_quickstart(tmp_path_factory, tiny_quickstart_config):
    """``(results, out_path)`` of one tiny quickstart run, made once per session (about 30 s on 2 CPU cores)."""
    from ckmsim.eval.quickstart import run_quickstart

    out = tmp_path_factory.mktemp("tiny_quickstart")
    results = run_quickstart(tiny_quickstart_config(out), progress=False, log=lambda *args: None)
    return results, out


@pytest.fixture(scope="session")
def tiny_dynamic_config():
    """``tiny_dynamic_config(name, num_map_paths)``: the dynamic-CSI dataset config of the LAD-CKM and CSI-study
    tests -- the OSM crossroads, two 16 x 16 tiles of 3 m, 3 blocks of 6 UEs (one car, two pedestrians), 8
    subcarriers, a 1 x 4 BS; ``num_map_paths`` static map paths per cell (0: none)."""
    from pathlib import Path

    from ckmsim.data.config import DatasetConfig, DynamicSettings
    from ckmsim.raytrace.csi import CsiSettings
    from ckmsim.raytrace.settings import RayTracingSettings
    from ckmsim.scene.dynamic import MovingObjects

    crossroads = str(Path(__file__).resolve().parents[1] / "scenes" / "crossroads-osm" / "scene.xml")

    def make(name: str, num_map_paths: int) -> DatasetConfig:
        return DatasetConfig(
            name=name, seed=2, scenes=(crossroads,), tile_cells=16, cell_size_m=3.0, tiles_per_scene=2,
            transmitters_per_tile=1, min_open_fraction=0.5, num_map_paths=num_map_paths, val_fraction=0.5,
            ray_tracing=RayTracingSettings(frequency_hz=6.765e9, max_depth=2, radio_map_samples=10**5,
                                           path_samples=20000, receivers_per_call=64),
            csi=CsiSettings(num_ues=6, num_subcarriers=8, bs_rows=1, bs_cols=4),
            dynamic=DynamicSettings(num_blocks=3, max_paths=16, objects=MovingObjects(num_cars=1, num_pedestrians=2)))

    return make
