"""Downlink MIMO-OFDM CSI predicted by a CKM, and CSI-based beamforming driven by it (LAD-CKM eqs. (9)-(11)).

A CKM with per-path layers knows, at every cell, the :math:`L` strongest paths' power gains, angles at both
ends and delays. :func:`map_csi` turns the paths at each UE's cell into a path set (:func:`map_path_set`) and
hands it to :func:`ckmsim.link.channels.mimo_ofdm_channels`, the very code that makes the *true* CSI from the
ray-traced paths, so the predicted and the true channel share their steering vectors, subcarriers and
conventions:

.. math::
    \\hat{\\mathbf{H}}(f) = \\sum_{\\ell=1}^{L} \\sqrt{\\hat g_\\ell}\\; e^{-j 2\\pi f_c \\hat\\tau_\\ell}\\,
    e^{-j 2\\pi f \\hat\\tau_\\ell}\\,
    \\mathbf{a}_\\mathrm{UE}(\\widehat{\\mathrm{AoD}}_\\ell)\\,
    \\mathbf{a}_\\mathrm{BS}(\\widehat{\\mathrm{AoA}}_\\ell)^\\mathsf{T}.

Angles. The CKM follows the uplink (:mod:`ckmsim.maps.ckm`): ``aoa_*`` is at the BS, ``aod_*`` at the UE. The
true CSI applies the BS array to the downlink trace's departure angles and the UE array to its arrival
angles, which by reciprocity are the CKM's ``aoa_*`` and ``aod_*`` (:func:`ckmsim.raytrace.ground_truth.path_layers`
stores them that way); :func:`map_path_set` maps them back the same way.

Phase. A CKM stores each path's power, not its complex gain, so the carrier phase has to be assumed. The
path's phase is taken as the propagation phase :math:`-2\\pi f_c \\hat\\tau_\\ell` of its predicted delay, which is
what a geometric (free-space) model gives and, up to a constant of the antenna patterns, what the ray tracer
gives a line-of-sight path (:mod:`ckmsim.raytrace.paths` stores Sionna's ``cir``, carrier phase
:math:`e^{-j2\\pi f_c\\tau}` included). It misses the phase shifts of reflections and diffraction, which
no map layer holds. One consequence: with one path per cell the predicted CSI is exact up to a common phase
(which eq. (10) ignores); with several paths their relative phases are only as good as the predicted delays
(at 28 GHz a delay error of 36 ps turns a path by a full cycle), so the subcarrier average of eq. (10), over
which the cross terms of paths whose delays differ by more than :math:`1/B` fade, carries most of the
information.

What a path needs. A path contributes nothing when its gain is at or below the CKM's gain floor, or NaN, or
when any of its angles or its delay is NaN (an absent or unpredicted path). A UE cell with no usable path has
a zero predicted CSI (eq. (10) then picks the first pair). Layers are required, never guessed: gain, BS-side
angles (``aoa_*``) and delay ``toa_s`` always; UE-side angles (``aod_*``) unless the UE has one antenna, whose
response does not depend on the direction. A missing layer is a :class:`~ckmsim.errors.CkmsimError` naming it.

:class:`MapCsiBeamformingScorer` ties this to :class:`~ckmsim.link.csi_beamforming.CsiBeamformingScorer`: built
once from the true paths of the UEs, it scores a CKM by the rate its predicted CSI's beam pair earns on the
true CSI.
"""

from __future__ import annotations

import numpy as np
import xarray as xr

from ckmsim.errors import CkmsimError
from ckmsim.link.budget import LinkBudget
from ckmsim.link.channels import mimo_ofdm_channels, path_set
from ckmsim.link.codebook import dft_codebook
from ckmsim.link.csi_beamforming import CsiBeamformingScore, CsiBeamformingScorer
from ckmsim.link.score import BeamSelectionScorer
from ckmsim.maps.antenna_array import AntennaArray
from ckmsim.maps.ckm import GAIN_FLOOR_DB, grid_of
from ckmsim.maps.priors import cell_of_position
from ckmsim.validation import check_fraction, is_finite_number

#: LAD-CKM's pilot overhead :math:`\rho` with partial downlink pilots (Sec. V): what a method that refines its
#: CSI with partial downlink pilots declares (``Method.downlink_pilot_overhead``). A map read at the UE's
#: position sends no pilot and declares 0; each method's rate pays its own declaration.
PARTIAL_PILOT_OVERHEAD = 0.125
#: Layers every predicted CSI needs: path gain, angle of arrival at the BS and delay.
BS_SIDE_LAYERS = ("path_gain_db", "aoa_az_deg", "aoa_el_deg", "toa_s")
#: Layers a multi-antenna UE needs in addition: the angle of departure at the UE.
UE_SIDE_LAYERS = ("aod_az_deg", "aod_el_deg")


def required_layers(ue_array: AntennaArray) -> tuple[str, ...]:
    """The CKM layers :func:`map_csi` needs for a UE with ``ue_array`` (no UE angles for one antenna)."""
    return BS_SIDE_LAYERS + (UE_SIDE_LAYERS if ue_array.num_ant > 1 else ())


def missing_layers(ckm: xr.Dataset, ue_array: AntennaArray) -> list[str]:
    """Layers of :func:`required_layers` that ``ckm`` lacks (empty: it can predict CSI)."""
    return [name for name in required_layers(ue_array) if name not in ckm]


def _check_cells(ckm: xr.Dataset, ue_cells) -> tuple[np.ndarray, np.ndarray]:
    try:
        rows, cols = (np.asarray(v) for v in ue_cells)
    except (TypeError, ValueError):
        raise CkmsimError("ue_cells must be a pair (rows, cols) of [num_ue] integer arrays. "
                          f"Received: {type(ue_cells).__name__}") from None
    if rows.ndim != 1 or rows.shape != cols.shape or not (np.issubdtype(rows.dtype, np.integer)
                                                          and np.issubdtype(cols.dtype, np.integer)):
        raise CkmsimError("ue_cells must be a pair (rows, cols) of [num_ue] integer arrays. "
                          f"Received: rows {rows.shape} {rows.dtype}, cols {cols.shape} {cols.dtype}")
    num_y, num_x = ckm.sizes["y"], ckm.sizes["x"]
    outside = (rows < 0) | (rows >= num_y) | (cols < 0) | (cols >= num_x)
    if outside.any():
        first = int(np.argmax(outside))
        raise CkmsimError(f"ue_cells must lie on the CKM's {num_y} x {num_x} grid. Received: UE {first} at "
                          f"(row={rows[first]}, col={cols[first]})")
    return rows, cols


def reported_cells(ckm: xr.Dataset, positions_m, sigma_m: float, rng: np.random.Generator) -> np.ndarray:
    """The cells a location-based CKM reads for UEs whose reported position is wrong by ``sigma_m``.

    Each UE reports its true horizontal position plus independent Gaussian errors of standard deviation
    ``sigma_m`` per axis (GNSS-like; 0 gives the true cell). A report outside the map is clipped to its edge,
    and one that falls on a building is moved to the nearest open cell, since a map holds no CSI inside
    buildings and a UE cannot stand there.

    Input
    -----
    ckm : the map (its grid and ``building`` layer)
    positions_m : ``[n, 2]`` or ``[n, 3]`` true UE positions [m]
    sigma_m : float >= 0, position error per horizontal axis [m]
    rng : numpy Generator of the errors

    Output
    ------
    cells : ``[n, 2]`` int (row, col) open cells, for :func:`map_path_set` / :func:`map_csi`
    """
    if not (is_finite_number(sigma_m) and sigma_m >= 0):
        raise CkmsimError(f"sigma_m must be a finite number >= 0 [m]. Received: sigma_m={sigma_m!r}")
    positions = np.asarray(positions_m, dtype=np.float64)
    if positions.ndim != 2 or positions.shape[1] not in (2, 3):
        raise CkmsimError(f"positions_m must be [n, 2] or [n, 3] [m]. Received: shape={positions.shape}")
    grid = grid_of(ckm)
    building = np.asarray(ckm["building"].values, dtype=bool)
    open_cells = np.argwhere(~building)
    if not len(open_cells):
        raise CkmsimError("The map has no open cell to read")
    x_min, x_max, y_min, y_max = grid.bounds_m
    reported = positions[:, :2] + (rng.normal(scale=sigma_m, size=(len(positions), 2)) if sigma_m > 0 else 0.0)
    reported = np.stack([np.clip(reported[:, 0], x_min, x_max), np.clip(reported[:, 1], y_min, y_max)], axis=1)
    cells = np.array([cell_of_position(grid, p) for p in reported], dtype=np.int64).reshape(-1, 2)
    inside = building[cells[:, 0], cells[:, 1]]
    if inside.any():
        distance = np.linalg.norm(cells[inside][:, None, :] - open_cells[None], axis=-1)
        cells[inside] = open_cells[np.argmin(distance, axis=1)]
    return cells


def map_path_set(ckm: xr.Dataset, ue_cells, carrier_hz: float | None = None,
                 ue_angles: bool = True) -> xr.Dataset:
    """The paths a CKM predicts at each UE's cell, as a path set (layout of :mod:`ckmsim.raytrace.paths`).

    Gains are :math:`\\sqrt{\\hat g_\\ell}\\,e^{-j2\\pi f_c\\hat\\tau_\\ell}` (see the module docstring for the phase);
    the departure angles at the BS are the CKM's ``aoa_*``, the arrival angles at the UE its ``aod_*``.

    Input
    -----
    ckm : CKM with the per-path layers of :func:`required_layers` ``[num_paths, num_y, num_x]``
    ue_cells : ``(rows, cols)``, each ``[num_ue]`` int — grid cell of every UE
        (e.g. :attr:`ckmsim.link.score.BeamSelectionScorer.ue_cells`)
    carrier_hz : float, optional — carrier frequency :math:`f_c` [Hz]; ``ckm.attrs["frequency_hz"]`` if None
    ue_angles : bool — read ``aod_*`` (False: UE angles 0, for a single-antenna UE)

    Output
    ------
    paths : path set with dims ``(ue, path)``, ``ue_row``/``ue_col`` coordinates; slots of unusable paths
        are invalid
    """
    needed = BS_SIDE_LAYERS + (UE_SIDE_LAYERS if ue_angles else ())
    missing = [name for name in needed if name not in ckm]
    if missing:
        raise CkmsimError(f"CKM lacks {missing}: predicted CSI needs per-path gains, angles at the BS"
                          f"{' and the UE' if ue_angles else ''} and delays ({list(needed)})")
    for name in needed:
        if tuple(ckm[name].dims) != ("path", "y", "x"):
            raise CkmsimError(f"CKM layer '{name}' must have dims ('path', 'y', 'x'). Received: {ckm[name].dims}")
    carrier_hz = ckm.attrs.get("frequency_hz") if carrier_hz is None else carrier_hz
    if not (is_finite_number(carrier_hz) and carrier_hz > 0):
        raise CkmsimError("The carrier frequency must be a number > 0 [Hz], given as carrier_hz or the CKM's "
                          f"'frequency_hz' attribute. Received: {carrier_hz!r}")
    rows, cols = _check_cells(ckm, ue_cells)
    # [path, y, x] -> [num_ue, path]
    at_ues = {name: ckm[name].values[:, rows, cols].T.astype(np.float64) for name in needed}
    floor_db = float(ckm.attrs.get("gain_floor_db", GAIN_FLOOR_DB))
    gain_db = at_ues["path_gain_db"]
    with np.errstate(invalid="ignore"):
        valid = np.isfinite(gain_db) & (gain_db > floor_db)
    for name in needed[1:]:
        valid &= np.isfinite(at_ues[name])
    if rows.size and not valid.any():
        raise CkmsimError(f"CKM has no usable path at any of the {rows.size} UE cells: every path is at the gain "
                          f"floor ({floor_db:g} dB) or has a NaN gain, angle or delay in {list(needed)}")
    delay_s = np.where(valid, at_ues["toa_s"], 0.0)
    amplitude = np.where(valid, 10.0 ** (np.where(valid, gain_db, 0.0) / 20.0), 0.0)
    a = amplitude * np.exp(-2j * np.pi * float(carrier_hz) * delay_s)
    zeros = np.zeros(a.shape)
    return path_set(a, delay_s, at_ues["aoa_az_deg"], at_ues["aoa_el_deg"],
                    at_ues["aod_az_deg"] if ue_angles else zeros, at_ues["aod_el_deg"] if ue_angles else zeros,
                    valid=valid, ue_row=rows, ue_col=cols)


def map_csi(ckm: xr.Dataset, ue_cells, bs_array: AntennaArray, ue_array: AntennaArray, budget: LinkBudget,
            carrier_hz: float | None = None) -> np.ndarray:
    """Downlink MIMO-OFDM CSI that a CKM predicts at each UE's cell (module docstring; LAD-CKM eq. (9)'s H).

    Input
    -----
    ckm : CKM with the per-path layers of :func:`required_layers` (``[num_paths, num_y, num_x]``)
    ue_cells : ``(rows, cols)``, each ``[num_ue]`` int — grid cell of every UE
    bs_array, ue_array : AntennaArray — as for the true CSI
    budget : LinkBudget — subcarriers (:func:`ckmsim.link.channels.subcarrier_frequencies_hz`)
    carrier_hz : float, optional — :math:`f_c` of the phase assumption [Hz]; ``ckm.attrs["frequency_hz"]`` if None

    Output
    ------
    h : [num_ue, num_subcarriers, num_ue_ant, num_bs_ant], complex64 (zero where a cell has no usable path)
    """
    paths = map_path_set(ckm, ue_cells, carrier_hz, ue_angles=ue_array.num_ant > 1)
    return mimo_ofdm_channels(paths, bs_array, ue_array, budget)


class MapCsiBeamformingScorer:
    """Scores CKMs by CSI-based beamforming (LAD-CKM eqs. (10)-(11)) from the CSI they predict.

    Built once from the true paths of the UEs (their true CSI and its perfect-CSI pairs); ``rates(ckm)``
    synthesises the CKM's CSI at each UE's cell (:func:`map_csi`), chooses the (BS beam, UE beam) pair on it
    and scores the pair on the true CSI, paying the pilot overhead the method that made the CKM declares
    (``rates(ckm, pilot_overhead)``). The references (perfect CSI, beam sweep, random beam, unconstrained)
    are those of :attr:`scorer`; a :class:`~ckmsim.link.score.RateScorer`.

    Parameters
    ----------
    true_paths : path set with ``ue_row``/``ue_col`` (only UEs with at least one path are scored)
    bs_array, ue_array : AntennaArray — DFT codebooks of both (:func:`~ckmsim.link.codebook.dft_codebook`)
    budget : LinkBudget
    carrier_hz : float — carrier of the true paths [Hz], for the phase assumption of :func:`map_csi`
    oversampling : int or (int, int) — BS codebook oversampling (the UE codebook is not oversampled)
    pilot_overhead : float in [0, 1] — default :math:`\\rho` of :meth:`rates` (0: a map read at the UE's
        position sends no pilot)
    precision : None | "single" | "double" — of the pair search (``"single"``: about twice as fast)
    h_true : [num_served_ue, num_subcarriers, num_ue_ant, num_bs_ant], complex, optional
        True CSI of the served UEs if it is already known (see :meth:`from_beam_selection`); otherwise
        :func:`~ckmsim.link.channels.mimo_ofdm_channels` of ``true_paths``, whose cost grows with the number of
        ray-traced paths times both array sizes (tens of seconds for a few thousand UEs with ~100 paths each
        and a 4-antenna UE on 2 CPU cores).
    """

    def __init__(self, true_paths: xr.Dataset, bs_array: AntennaArray, ue_array: AntennaArray, budget: LinkBudget,
                 carrier_hz: float, oversampling=1, pilot_overhead: float = 0.0,
                 precision: str | None = "single", h_true: np.ndarray | None = None):
        if not (is_finite_number(carrier_hz) and carrier_hz > 0):
            raise CkmsimError(f"carrier_hz must be a number > 0 [Hz]. Received: carrier_hz={carrier_hz!r}")
        served = true_paths["valid"].values.any(axis=1)
        self.paths = true_paths.isel(ue=np.nonzero(served)[0])
        if self.paths.sizes["ue"] == 0:
            raise CkmsimError("No UE has a ray-traced path to the BS: nothing to score (check the BS position)")
        self.bs_array, self.ue_array, self.budget = bs_array, ue_array, budget
        self.carrier_hz = float(carrier_hz)
        self.pilot_overhead = check_fraction(pilot_overhead, "pilot_overhead")
        expected = (self.paths.sizes["ue"], budget.num_subcarriers, ue_array.num_ant, bs_array.num_ant)
        if h_true is None:
            h_true = mimo_ofdm_channels(self.paths, bs_array, ue_array, budget)
        elif np.shape(h_true) != expected:
            raise CkmsimError(f"h_true must be the CSI of the {expected[0]} served UEs, {expected}. "
                              f"Received: h_true.shape={np.shape(h_true)}")
        ue_codebook = dft_codebook(ue_array) if ue_array.num_ant > 1 else None
        self.scorer = CsiBeamformingScorer(h_true, budget.snr_scale, dft_codebook(bs_array, oversampling),
                                           ue_codebook, precision=precision)

    @classmethod
    def from_beam_selection(cls, scorer: BeamSelectionScorer, ue_array: AntennaArray, carrier_hz: float,
                            oversampling=1, pilot_overhead: float = 0.0,
                            precision: str | None = "single") -> "MapCsiBeamformingScorer":
        """The CSI-beamforming scorer of the same UEs, BS array and budget as a beam-selection scorer.

        For a single-antenna UE the true CSI is the beam-selection scorer's channel vectors (the downlink
        row equals the uplink vector by reciprocity, :func:`~ckmsim.link.channels.mimo_ofdm_channels`), so
        nothing is recomputed; a multi-antenna UE needs the full MIMO CSI of every ray-traced path.
        """
        # [num_ue, num_subcarriers, num_bs_ant] -> [num_ue, num_subcarriers, 1, num_bs_ant]
        h_true = scorer.channels[:, :, None, :] if ue_array.num_ant == 1 else None
        return cls(scorer.paths, scorer.array, ue_array, scorer.budget, carrier_hz, oversampling, pilot_overhead,
                   precision, h_true)

    @property
    def ue_cells(self) -> tuple[np.ndarray, np.ndarray]:
        """Row and column of each scored UE's cell, ``([num_ue], [num_ue])`` int."""
        return self.paths["ue_row"].values, self.paths["ue_col"].values

    def can_score(self, ckm: xr.Dataset) -> bool:
        """Whether ``ckm`` has the layers a predicted CSI needs (:func:`required_layers`)."""
        return not missing_layers(ckm, self.ue_array)

    def predicted_csi(self, ckm: xr.Dataset) -> np.ndarray:
        """:func:`map_csi` at the scored UEs' cells: ``[num_ue, num_subcarriers, num_ue_ant, num_bs_ant]`` complex64."""
        return map_csi(ckm, self.ue_cells, self.bs_array, self.ue_array, self.budget, self.carrier_hz)

    def rates(self, ckm: xr.Dataset, pilot_overhead: float | None = None) -> CsiBeamformingScore:
        """Eq. (11) on the true CSI for the pairs the CKM's CSI selects, paying :math:`\\rho` =
        ``pilot_overhead`` (the downlink pilot overhead the method declares; None: the scorer's default)."""
        rho = self.pilot_overhead if pilot_overhead is None else check_fraction(pilot_overhead, "pilot_overhead")
        return self.scorer.rates(self.predicted_csi(ckm), rho)

    def perfect_csi_rates(self) -> np.ndarray:
        """Bound: eq. (10) on the true CSI, no pilot paid (:meth:`CsiBeamformingScorer.perfect_csi_rates`)."""
        return self.scorer.perfect_csi_rates()
