"""MIMO-OFDM CSI of a UE drop against Sionna RT's own synthetic planar arrays at both link ends."""

import ckmsim  # noqa: F401  (Mitsuba before TensorFlow)

from dataclasses import replace

import numpy as np
import pytest

from ckmsim.errors import CkmsimError
from ckmsim.raytrace.csi import CsiSettings, mimo_ofdm_channel, trace_csi
from ckmsim.raytrace.paths import trace_paths
from ckmsim.raytrace.scene_setup import place_base_station
from ckmsim.raytrace.settings import RayTracingSettings
from ckmsim.scene.load import load_scene

pytestmark = pytest.mark.raytrace

BS = (-40.0, 1.0, 10.0)
UES = np.array([[0.0, 0.0, 1.5], [20.0, 3.0, 1.5], [-10.0, -4.0, 1.5]])
CSI = CsiSettings(num_ues=3, num_subcarriers=8, subcarrier_spacing_hz=1e6, bs_rows=2, bs_cols=4, ue_rows=1,
                  ue_cols=2)
SETTINGS = RayTracingSettings(frequency_hz=CSI.downlink_hz, max_depth=2, diffraction=False,
                              edge_diffraction=False, path_samples=10**4, receivers_per_call=3)


def _sionna_cfr(scene) -> np.ndarray:
    """Sionna RT's frequency response with the CSI arrays as synthetic arrays: [ue, K, ue_ant, bs_ant]."""
    import mitsuba as mi
    import sionna.rt as rt

    spacing = CSI.spacing_wavelengths
    scene.tx_array = rt.PlanarArray(num_rows=CSI.bs_rows, num_cols=CSI.bs_cols, vertical_spacing=spacing,
                                    horizontal_spacing=spacing, pattern="iso", polarization="V")
    scene.rx_array = rt.PlanarArray(num_rows=CSI.ue_rows, num_cols=CSI.ue_cols, vertical_spacing=spacing,
                                    horizontal_spacing=spacing, pattern="iso", polarization="V")
    for i, (x, y, z) in enumerate(UES):
        scene.add(rt.Receiver(f"probe-{i}", position=mi.Point3f(float(x), float(y), float(z))))
    paths = rt.PathSolver()(scene, max_depth=SETTINGS.max_depth, samples_per_src=SETTINGS.path_samples,
                            max_num_paths_per_src=SETTINGS.max_num_paths_per_src, synthetic_array=True,
                            seed=SETTINGS.seed)
    cfr = paths.cfr(frequencies=mi.Float(CSI.subcarrier_offsets_hz()), normalize_delays=False, out_type="numpy")
    # [num_rx, num_rx_ant, num_tx, num_tx_ant, num_time_steps, num_frequencies] -> [ue, K, ue_ant, bs_ant]
    return np.transpose(np.asarray(cfr)[:, :, 0, :, 0, :], (0, 3, 1, 2))


def test_downlink_csi_equals_sionna_synthetic_planar_arrays():
    scene = load_scene("simple_street_canyon")
    place_base_station(scene, BS, SETTINGS)
    ours = mimo_ofdm_channel(trace_paths(scene, UES, SETTINGS, progress=False), *CSI.arrays(CSI.downlink_hz),
                             CSI.subcarrier_offsets_hz())
    place_base_station(scene, BS, SETTINGS)
    theirs = _sionna_cfr(scene)
    assert ours.shape == theirs.shape == (3, 8, 2, 8)
    scale = np.max(np.abs(theirs))
    np.testing.assert_allclose(ours, theirs, atol=1e-4 * scale)


def test_trace_csi_uplink_is_the_reciprocal_channel_on_its_own_carrier():
    scene = load_scene("simple_street_canyon")
    same_carrier = replace(CSI, uplink_hz=CSI.downlink_hz)
    channels, solver_s = trace_csi(scene, BS, UES, same_carrier, SETTINGS)
    assert solver_s > 0
    np.testing.assert_allclose(channels["h_ul"], np.swapaxes(channels["h_dl"], -1, -2), rtol=1e-5, atol=1e-12)
    # On another carrier a LoS-only channel follows Friis, (lambda / 4 pi d)^2: the uplink at the lower
    # carrier is stronger by (f_dl / f_ul)^2.
    channels, _ = trace_csi(scene, BS, UES, CSI, replace(SETTINGS, max_depth=0))
    ratio = np.mean(np.abs(channels["h_ul"]) ** 2) / np.mean(np.abs(channels["h_dl"]) ** 2)
    assert ratio == pytest.approx((CSI.downlink_hz / CSI.uplink_hz) ** 2, rel=1e-4)


@pytest.mark.parametrize("field, value", [("num_ues", 0), ("bs_rows", 1.5), ("uplink_hz", -1.0),
                                          ("subcarrier_spacing_hz", float("nan"))])
def test_bad_csi_settings_name_the_field(field, value):
    with pytest.raises(CkmsimError, match=field):
        CsiSettings(**{field: value})
