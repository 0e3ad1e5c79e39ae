"""Put one base station into a Sionna RT scene, ready for the solvers."""

from __future__ import annotations

from ckmsim.errors import CkmsimError
from ckmsim.raytrace.settings import RayTracingSettings

BS_NAME = "bs"


def place_base_station(scene, bs_position_m, settings: RayTracingSettings) -> None:
    """Configure ``scene`` for ground-truth tracing from one BS.

    Removes any transmitters and receivers the scene file brought, sets the carrier frequency, gives
    transmitters and receivers a single isotropic, vertically polarised element and adds the BS. The BS
    array is applied afterwards by ckmsim (:mod:`ckmsim.link.channels`) from the traced path angles, which
    is what Sionna's synthetic arrays do too, so one trace serves every array size.

    Input
    -----
    scene : sionna.rt.Scene
    bs_position_m : sequence of 3 floats
    settings : RayTracingSettings
    """
    import mitsuba as mi
    import sionna.rt as rt

    if len(bs_position_m) != 3:
        raise CkmsimError(f"BS position needs (x, y, z) in metres. Received: {bs_position_m}")
    for name in list(scene.transmitters) + list(scene.receivers):
        scene.remove(name)
    scene.frequency = float(settings.frequency_hz)
    scene.tx_array = rt.PlanarArray(num_rows=1, num_cols=1, pattern="iso", polarization="V")
    scene.rx_array = rt.PlanarArray(num_rows=1, num_cols=1, pattern="iso", polarization="V")
    # Sionna RT rejects numpy float64 scalars as device coordinates: convert to Python floats.
    x, y, z = (float(v) for v in bs_position_m)
    scene.add(rt.Transmitter(BS_NAME, position=mi.Point3f(x, y, z)))
