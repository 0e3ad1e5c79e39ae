"""MIMO-OFDM CSI of a UE drop, uplink and downlink (FDD), from Sionna RT paths.

LAD-CKM's setting: the BS and the UE carry planar arrays, uplink and downlink sit on different carriers, and
a method predicts the downlink channel from the uplink one. The paths of the drop are traced once per
carrier (materials and free-space loss depend on frequency) with isotropic single elements; the arrays are
applied afterwards from the path angles, which is what Sionna RT's synthetic arrays do
(``synthetic_array=True``) and lets one trace serve every array size.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass, replace

import numpy as np
import xarray as xr

from ckmsim.errors import CkmsimError
from ckmsim.maps.antenna_array import AntennaArray
from ckmsim.raytrace.paths import trace_paths
from ckmsim.raytrace.scene_setup import place_base_station
from ckmsim.raytrace.settings import RayTracingSettings
from ckmsim.validation import is_finite_number, is_whole_number


@dataclass(frozen=True)
class CsiSettings:
    """What the CSI of a UE drop is: carriers, OFDM numerology and arrays.

    Defaults follow LAD-CKM Sec. V: 6.765 GHz downlink, 6.715 GHz uplink, 64 subcarriers of 312.5 kHz;
    a 4x4 BS UPA and a single-antenna UE (the paper sweeps 8..128 BS and 1 or 4 UE antennas).

    Parameters
    ----------
    num_ues : int
        UEs dropped per sample, at distinct random non-building cell centres.
    downlink_hz, uplink_hz : float
        Carrier frequencies [Hz].
    num_subcarriers : int
    subcarrier_spacing_hz : float
    bs_rows, bs_cols, ue_rows, ue_cols : int
        Planar-array sizes (Sionna ``PlanarArray`` layout, see :mod:`ckmsim.maps.antenna_array`).
    spacing_wavelengths : float
        Element spacing of both arrays [wavelengths of the downlink carrier].
    """

    num_ues: int = 16
    downlink_hz: float = 6.765e9
    uplink_hz: float = 6.715e9
    num_subcarriers: int = 64
    subcarrier_spacing_hz: float = 312.5e3
    bs_rows: int = 4
    bs_cols: int = 4
    ue_rows: int = 1
    ue_cols: int = 1
    spacing_wavelengths: float = 0.5

    def __post_init__(self):
        for name in ("num_ues", "num_subcarriers", "bs_rows", "bs_cols", "ue_rows", "ue_cols"):
            if not is_whole_number(getattr(self, name), minimum=1):
                raise CkmsimError(f"CsiSettings.{name} must be a positive integer. Received: "
                                  f"{name}={getattr(self, name)!r}")
        for name in ("downlink_hz", "uplink_hz", "subcarrier_spacing_hz", "spacing_wavelengths"):
            value = getattr(self, name)
            if not (is_finite_number(value) and value > 0):
                raise CkmsimError(f"CsiSettings.{name} must be a number > 0. Received: {name}={value!r}")

    def arrays(self, carrier_hz: float) -> tuple[AntennaArray, AntennaArray]:
        """``(bs_array, ue_array)`` as seen at ``carrier_hz``: the element spacing is fixed in metres (set
        at the downlink carrier), so in wavelengths of another carrier it scales with the frequency."""
        spacing = self.spacing_wavelengths * float(carrier_hz) / self.downlink_hz
        return (AntennaArray(num_cols=self.bs_cols, num_rows=self.bs_rows, spacing_wavelengths=spacing),
                AntennaArray(num_cols=self.ue_cols, num_rows=self.ue_rows, spacing_wavelengths=spacing))

    def subcarrier_offsets_hz(self) -> np.ndarray:
        """``[num_subcarriers]`` baseband frequencies [Hz], centred on the carrier as Sionna's
        ``subcarrier_frequencies`` (index ``-K/2 .. K/2-1`` for even ``K``)."""
        k = np.arange(self.num_subcarriers) - self.num_subcarriers // 2
        return k * float(self.subcarrier_spacing_hz)

    def to_dict(self) -> dict:
        return asdict(self)


def mimo_ofdm_channel(paths: xr.Dataset, bs_array: AntennaArray, ue_array: AntennaArray,
                      frequencies_hz: np.ndarray) -> np.ndarray:
    r"""Downlink frequency response of every UE of a path set.

    .. math::
        \mathbf{H}(f) = \sum_\ell a_\ell\, e^{-j 2\pi f \tau_\ell}\,
        \mathbf{a}_\mathrm{UE}(\mathrm{az}^\mathrm{r}_\ell, \mathrm{el}^\mathrm{r}_\ell)\,
        \mathbf{a}_\mathrm{BS}(\mathrm{az}^\mathrm{t}_\ell, \mathrm{el}^\mathrm{t}_\ell)^\mathsf{T}

    with :math:`a_\ell` the path's baseband gain (carrier phase included) and the steering vectors of
    :class:`~ckmsim.maps.antenna_array.AntennaArray`. The uplink channel on the same carrier is its
    transpose (reciprocity).

    Input
    -----
    paths : path set (see :mod:`ckmsim.raytrace.paths`)
    bs_array, ue_array : AntennaArray
    frequencies_hz : [num_subcarriers], baseband subcarrier frequencies [Hz]

    Output
    ------
    h : [num_ue, num_subcarriers, num_ue_ant, num_bs_ant], complex64
    """
    valid = paths["valid"].values
    # Invalid slots have NaN angles and delays; zero gain alone would still give 0 * NaN = NaN.
    gains = np.where(valid, paths["a"].values, 0.0)
    angle = {name: np.where(valid, paths[name].values, 0.0)
             for name in ("dep_az_deg", "dep_el_deg", "arr_az_deg", "arr_el_deg", "delay_s")}
    # [num_ue, num_paths, num_bs_ant] and [num_ue, num_paths, num_ue_ant]
    a_bs = bs_array.steering_vectors(angle["dep_az_deg"], angle["dep_el_deg"])
    a_ue = ue_array.steering_vectors(angle["arr_az_deg"], angle["arr_el_deg"])
    # [num_ue, num_paths, num_subcarriers]
    per_subcarrier = gains[..., None] * np.exp(-2j * np.pi * angle["delay_s"][..., None]
                                               * np.asarray(frequencies_hz)[None, None, :])
    num_ue, num_paths, num_subcarriers = per_subcarrier.shape
    num_ue_ant, num_bs_ant = a_ue.shape[-1], a_bs.shape[-1]
    h = np.empty((num_ue, num_subcarriers, num_ue_ant, num_bs_ant), dtype=np.complex64)
    # One batched matmul per chunk of UEs, [k, p] x [p, r t]: a three-operand einsum would loop in C over
    # every (u, k, r, t, p); the chunk bounds the [u, p, r t] outer products to about 64 MiB.
    chunk = max(1, (64 * 2**20) // max(1, 8 * num_paths * num_ue_ant * num_bs_ant))
    # complex64 once, for the output's precision: [u, k, p] and the two array responses
    coefficients = per_subcarrier.transpose(0, 2, 1).astype(np.complex64)
    a_ue, a_bs = a_ue.astype(np.complex64), a_bs.astype(np.complex64)
    for start in range(0, num_ue, chunk):
        ues = slice(start, start + chunk)
        # [u, p, r t]
        outer = (a_ue[ues, :, :, None] * a_bs[ues, :, None, :]).reshape(-1, num_paths, num_ue_ant * num_bs_ant)
        # [u, k, p] @ [u, p, r t] -> [u, k, r t]
        h[ues] = np.matmul(coefficients[ues], outer).reshape(-1, num_subcarriers, num_ue_ant, num_bs_ant)
    return h


#: Carriers of a UE drop: key prefix -> :class:`CsiSettings` field of its frequency.
CARRIERS = {"dl": "downlink_hz", "ul": "uplink_hz"}
#: Path-set variables a stored drop keeps per carrier (:func:`truncate_paths`); the arrays are applied when read.
STORED_PATH_VARIABLES = ("a", "delay_s", "dep_az_deg", "dep_el_deg", "arr_az_deg", "arr_el_deg", "valid")


def trace_carrier_paths(scene, bs_position_m, ue_positions_m: np.ndarray, carrier_hz: float, csi: CsiSettings,
                        settings: RayTracingSettings) -> tuple[xr.Dataset, float]:
    """The path set from the BS at ``bs_position_m`` to every UE on one carrier (isotropic single elements),
    in PathSolver calls of ``csi.num_ues`` receivers, and the seconds spent in the solver."""
    carrier_settings = replace(settings, frequency_hz=float(carrier_hz), receivers_per_call=int(csi.num_ues))
    place_base_station(scene, bs_position_m, carrier_settings)
    start = time.perf_counter()
    paths = trace_paths(scene, ue_positions_m, carrier_settings, progress=False)
    return paths, time.perf_counter() - start


def carrier_channel(paths: xr.Dataset, csi: CsiSettings, carrier: str) -> np.ndarray:
    """The CSI of one carrier (``"dl"`` or ``"ul"``) from its path set, with ``csi``'s arrays and subcarriers.

    ``"dl"``: ``[num_ue, num_subcarriers, num_ue_ant, num_bs_ant]`` (BS transmits); ``"ul"``: the reciprocal
    channel on the uplink carrier, ``[num_ue, num_subcarriers, num_bs_ant, num_ue_ant]``. complex64.
    """
    if carrier not in CARRIERS:
        raise CkmsimError(f"carrier must be one of {list(CARRIERS)}. Received: carrier={carrier!r}")
    carrier_hz = getattr(csi, CARRIERS[carrier])
    h = mimo_ofdm_channel(paths, *csi.arrays(carrier_hz), csi.subcarrier_offsets_hz())
    # The uplink is the reciprocal channel on its own carrier: [ue, K, ue_ant, bs_ant] -> [ue, K, bs_ant, ue_ant]
    return h if carrier == "dl" else np.swapaxes(h, -1, -2)


def truncate_paths(paths: xr.Dataset, max_paths: int) -> dict[str, np.ndarray]:
    """The ``max_paths`` strongest paths of every UE (a path set is sorted strongest first) as plain arrays
    ``[num_ue, max_paths]`` of :data:`STORED_PATH_VARIABLES`, padded with invalid slots (gain 0, NaN angles
    and delays) where a UE has fewer.

    The stored drop keeps these instead of the CSI so that one trace serves every array size; paths beyond
    ``max_paths`` are dropped (:func:`dropped_power_share` says how much power that loses).
    """
    if not is_whole_number(max_paths, minimum=1):
        raise CkmsimError(f"max_paths must be a positive integer. Received: max_paths={max_paths!r}")
    num_ue, num_paths = paths.sizes["ue"], paths.sizes["path"]
    keep = min(int(max_paths), num_paths)
    out = {}
    for name in STORED_PATH_VARIABLES:
        values = paths[name].values[:, :keep]
        fill = False if name == "valid" else (0.0 if name == "a" else np.nan)
        padded = np.full((num_ue, int(max_paths)), fill, dtype=values.dtype)
        padded[:, :keep] = values
        out[name] = padded
    return out


def dropped_power_share(paths: xr.Dataset, max_paths: int) -> np.ndarray:
    """``[num_ue]`` share of each UE's path power (sum of :math:`|a|^2`) beyond its ``max_paths`` strongest
    paths (0 for a UE without paths)."""
    power = np.where(paths["valid"].values, np.abs(paths["a"].values) ** 2, 0.0)
    total = power.sum(axis=1)
    kept = power[:, :int(max_paths)].sum(axis=1)
    return np.where(total > 0, 1.0 - kept / np.where(total > 0, total, 1.0), 0.0)


def paths_from_arrays(arrays: dict[str, np.ndarray]) -> xr.Dataset:
    """A path set (the variables :func:`mimo_ofdm_channel` reads) from stored ``[num_ue, max_paths]`` arrays of
    :data:`STORED_PATH_VARIABLES` (:func:`truncate_paths`)."""
    missing = [name for name in STORED_PATH_VARIABLES if name not in arrays]
    if missing:
        raise CkmsimError(f"Stored paths lack {missing}; expected {list(STORED_PATH_VARIABLES)}")
    shapes = {np.shape(arrays[name]) for name in STORED_PATH_VARIABLES}
    if len(shapes) != 1 or len(next(iter(shapes))) != 2:
        raise CkmsimError(f"Stored paths must all be [num_ue, max_paths]. Received shapes {sorted(shapes)}")
    return xr.Dataset({name: (("ue", "path"), np.asarray(arrays[name])) for name in STORED_PATH_VARIABLES})


def trace_csi(scene, bs_position_m, ue_positions_m: np.ndarray, csi: CsiSettings,
              settings: RayTracingSettings) -> tuple[dict[str, np.ndarray], float]:
    """Downlink and uplink MIMO-OFDM CSI of UEs at ``ue_positions_m`` from the BS.

    Each carrier is traced separately with ``settings`` (its frequency replaced), in one PathSolver call
    whose receiver count is ``csi.num_ues`` (fixed per dataset, so Dr.Jit compiles once).

    Input
    -----
    scene : sionna.rt.Scene (its transmitters and receivers are replaced)
    bs_position_m : (x, y, z) [m]
    ue_positions_m : [num_ue, 3], float [m]
    csi : CsiSettings
    settings : RayTracingSettings

    Output
    ------
    channels : dict
        ``h_dl``: [num_ue, num_subcarriers, num_ue_ant, num_bs_ant], complex64 (BS transmits);
        ``h_ul``: [num_ue, num_subcarriers, num_bs_ant, num_ue_ant], complex64 (UE transmits).
    solver_s : float, seconds spent in the PathSolver
    """
    channels, solver_s = {}, 0.0
    for carrier, field_name in CARRIERS.items():
        paths, seconds = trace_carrier_paths(scene, bs_position_m, ue_positions_m, getattr(csi, field_name), csi,
                                             settings)
        solver_s += seconds
        channels[f"h_{carrier}"] = carrier_channel(paths, csi, carrier)
    return channels, solver_s
