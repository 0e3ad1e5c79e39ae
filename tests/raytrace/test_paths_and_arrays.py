"""Ray-traced paths against geometry, and ckmsim's array convention against Sionna RT's synthetic arrays."""

import ckmsim  # noqa: F401  (Mitsuba before TensorFlow)

import numpy as np
import pytest

from ckmsim.link.budget import LinkBudget
from ckmsim.link.channels import ofdm_channels
from ckmsim.maps.angles import direction_to_az_el_deg, sionna_to_az_el_deg
from ckmsim.maps.antenna_array import AntennaArray
from ckmsim.maps.scm import scm_from_paths
from ckmsim.raytrace.paths import trace_paths
from ckmsim.raytrace.scene_setup import place_base_station
from ckmsim.raytrace.settings import RayTracingSettings
from ckmsim.scene.load import load_scene

pytestmark = pytest.mark.raytrace

BS = (-40.0, 1.0, 10.0)
# Street cells of simple_street_canyon (the street runs along x between y = -8 m and y = 8 m)
UES = np.array([[0.0, 0.0, 1.5], [20.0, 3.0, 1.5], [-10.0, -4.0, 1.5], [35.0, -2.0, 1.5]])
SETTINGS = RayTracingSettings(max_depth=2, diffraction=False, edge_diffraction=False, path_samples=10**4,
                              radio_map_samples=10**5, receivers_per_call=4)


@pytest.fixture(scope="module")
def canyon():
    scene = load_scene("simple_street_canyon")
    place_base_station(scene, BS, SETTINGS)
    return scene


@pytest.fixture(scope="module")
def street_paths(canyon):
    return trace_paths(canyon, UES, SETTINGS, progress=False)


def _sionna_paths_with_ula(scene, array: AntennaArray):
    """Sionna RT's own synthetic-array paths for the same UEs, BS array = ``array``."""
    import mitsuba as mi
    import sionna.rt as rt

    scene.tx_array = rt.PlanarArray(num_rows=array.num_rows, num_cols=array.num_cols,
                                    vertical_spacing=array.spacing_wavelengths,
                                    horizontal_spacing=array.spacing_wavelengths, pattern="iso", polarization="V")
    names = []
    try:
        for i, (x, y, z) in enumerate(UES):
            names.append(f"probe-{i}")
            scene.add(rt.Receiver(names[-1], position=mi.Point3f(float(x), float(y), float(z))))
        paths = rt.PathSolver()(scene, max_depth=SETTINGS.max_depth, samples_per_src=SETTINGS.path_samples,
                                max_num_paths_per_src=SETTINGS.max_num_paths_per_src, synthetic_array=True,
                                seed=SETTINGS.seed)
        frequencies = None
        return paths, frequencies
    finally:
        for name in names:
            scene.remove(name)
        scene.tx_array = rt.PlanarArray(num_rows=1, num_cols=1, pattern="iso", polarization="V")


def test_los_path_points_from_bs_to_ue(street_paths):
    """In an open street the strongest path is LoS and leaves the BS towards the UE."""
    los = street_paths["los"].values
    assert los[:, 0].all(), "every street UE should have a LoS strongest path"
    az_geo, el_geo = direction_to_az_el_deg(UES - np.array(BS))
    np.testing.assert_allclose(street_paths["dep_az_deg"].values[:, 0], az_geo, atol=0.05)
    np.testing.assert_allclose(street_paths["dep_el_deg"].values[:, 0], el_geo, atol=0.05)
    distance = np.linalg.norm(UES - np.array(BS), axis=1)
    np.testing.assert_allclose(street_paths["delay_s"].values[:, 0], distance / 299792458.0, rtol=1e-5)
    # Free-space (Friis) gain of isotropic antennas: (lambda / (4 pi d))^2
    wavelength = 299792458.0 / SETTINGS.frequency_hz
    friis = (wavelength / (4 * np.pi * distance)) ** 2
    np.testing.assert_allclose(np.abs(street_paths["a"].values[:, 0]) ** 2, friis, rtol=1e-3)


def test_paths_sorted_strongest_first(street_paths):
    power = np.where(street_paths["valid"].values, np.abs(street_paths["a"].values) ** 2, -1.0)
    assert np.all(np.diff(power, axis=1) <= 0)
    assert street_paths["valid"].values.sum(axis=1).min() >= 2  # LoS plus ground/wall reflections


def test_channels_equal_sionna_synthetic_array(canyon, street_paths):
    """ckmsim's steering convention reproduces Sionna RT's synthetic ULA, antenna by antenna."""
    import tensorflow as tf
    from sionna.phy.channel import cir_to_ofdm_channel, subcarrier_frequencies

    array = AntennaArray(num_cols=8)
    budget = LinkBudget(num_subcarriers=16, bandwidth_hz=100e6)
    ours = ofdm_channels(street_paths, array, budget)
    sionna_paths, _ = _sionna_paths_with_ula(canyon, array)
    a, tau = sionna_paths.cir(normalize_delays=False, out_type="numpy")
    frequencies = subcarrier_frequencies(budget.num_subcarriers, budget.subcarrier_spacing_hz, precision="single")
    # [num_rx, 1, num_tx, num_tx_ant, num_paths, 1] -> add batch; tau [num_rx, num_tx, num_paths]
    h = cir_to_ofdm_channel(frequencies, tf.constant(a[None].astype(np.complex64)),
                            tf.constant(tau[None].astype(np.float32))).numpy()
    # [1, num_rx, 1, 1, num_ant, 1, num_subcarriers] -> [num_rx, num_subcarriers, num_ant]
    theirs = np.transpose(h[0, :, 0, 0, :, 0, :], (0, 2, 1))
    scale = np.abs(theirs).max()
    np.testing.assert_allclose(ours / scale, theirs / scale, atol=2e-4)


def test_scm_equals_covariance_of_ray_traced_channel(canyon, street_paths, rng):
    """Eq. (5)-(6): the SCM from (gain, angle) equals E[h h^H] of Sionna's per-antenna path gains with
    independent uniform path phases, both exactly (expectation) and as a sample covariance."""
    array = AntennaArray(num_cols=8)
    sionna_paths, _ = _sionna_paths_with_ula(canyon, array)
    a_real, a_imag = sionna_paths.a
    # [num_rx, 1, num_tx, num_ant, num_paths] -> [num_rx, num_ant, num_paths]
    per_antenna = (np.array(a_real.numpy()) + 1j * np.array(a_imag.numpy()))[:, 0, 0]
    valid = np.array(sionna_paths.valid.numpy(), dtype=bool)[:, 0]
    az, el = sionna_to_az_el_deg(np.array(sionna_paths.theta_t.numpy())[:, 0], np.array(sionna_paths.phi_t.numpy())[:, 0])
    gain_db = np.where(valid, 10 * np.log10(np.abs(per_antenna[:, 0, :]) ** 2 + 1e-300), np.nan)
    scm = scm_from_paths(gain_db, np.where(valid, az, np.nan), np.where(valid, el, np.nan), array)
    expected = np.einsum("unl,uml->unm", per_antenna, per_antenna.conj())
    for ue in range(len(UES)):
        norm = np.linalg.norm(expected[ue])
        assert np.linalg.norm(scm[ue] - expected[ue]) / norm < 1e-4
        # Sample covariance over random path phases
        phases = np.exp(2j * np.pi * rng.random((20000, per_antenna.shape[-1])))
        h = np.einsum("nl,sl->sn", per_antenna[ue], phases)
        sample = h.T @ h.conj() / len(h)
        assert np.linalg.norm(sample - scm[ue]) / norm < 0.05
