"""The link score contract: a predicted CKM chooses the beam, the true channel decides what it earns.

:class:`BeamSelectionScorer` is built once from the *true* path set of the UEs; it holds their true
MIMO-OFDM channels. ``rates(predicted_ckm)`` reads the predicted strongest paths (gain and angle) at each
UE's cell, synthesises the predicted SCM (E-SRResNet eq. (6)), picks the DFT beam that maximises the
predicted gain and returns the rate that beam achieves on the true channel. ``perfect_csi_rates()`` is the
upper bound: the best codebook beam chosen with the true channel.

The BS array may be a ULA or a UPA: the SCM, the channels and the DFT codebook (the Kronecker grid of
:func:`~ckmsim.link.codebook.dft_codebook` for a UPA) all follow the array's element layout. A codebook-free
alternative, the SCM's principal eigenvector as precoder, is :class:`ckmsim.link.precoding.SCMPrecodingScorer`.

Every scorer of :mod:`ckmsim.link` has the face :class:`RateScorer`: ``rates(prediction)`` returns a score
with per-UE ``rate_bps_hz`` (:class:`RateScore`), ``perfect_csi_rates()`` the scorer's *own* upper bound on
the same UEs (the best codebook beam here, the unconstrained eigen-beamformer for precoding, the best
codebook pair for CSI beamforming), so that a share of "perfect CSI" is always a share of the bound of
the decision that was made.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol, runtime_checkable

import numpy as np
import xarray as xr

from ckmsim.errors import CkmsimError
from ckmsim.link.beams import rates_all_beams, select_beams_from_scm
from ckmsim.link.budget import LinkBudget
from ckmsim.link.channels import ofdm_channels
from ckmsim.link.codebook import dft_codebook
from ckmsim.maps.antenna_array import AntennaArray
from ckmsim.maps.scm import scm_from_paths


@runtime_checkable
class RateScore(Protocol):
    """What every scorer's ``rates`` returns: at least the per-UE rate.

    Attributes
    ----------
    rate_bps_hz : [num_ue], float64 — rate earned on the true channel [bit/s/Hz]
    """

    rate_bps_hz: np.ndarray


@runtime_checkable
class RateScorer(Protocol):
    """The face of every link scorer (DESIGN.md, "Link score"): built once from the true channels of its UEs.

    ``rates(prediction)`` scores one prediction (a CKM, or predicted CSI for
    :class:`~ckmsim.link.csi_beamforming.CsiBeamformingScorer`) by what its decision earns on the true
    channels, ``[num_ue]`` in :attr:`RateScore.rate_bps_hz`; ``perfect_csi_rates()`` is the scorer's own
    bound, ``[num_ue]`` float64 [bit/s/Hz], the same decision made with the true channel.
    """

    def rates(self, prediction) -> RateScore:
        ...

    def perfect_csi_rates(self) -> np.ndarray:
        ...


@dataclass(frozen=True)
class LinkScore:
    """Per-UE outcome of one map's decisions.

    Attributes
    ----------
    rate_bps_hz : [num_ue], float64 — achievable rate on the true channel [bit/s/Hz]
    beam : [num_ue], int — chosen codebook beam
    scm : [num_ue, num_ant, num_ant], complex128 — the predicted SCM that chose it
    """

    rate_bps_hz: np.ndarray
    beam: np.ndarray
    scm: np.ndarray


class BeamSelectionScorer:
    """Scores CKMs by the rate of the DFT beam they select, on the true channels of the UEs; a :class:`RateScorer`.

    Parameters
    ----------
    true_paths : path set with ``ue_row``/``ue_col`` (from :func:`ckmsim.raytrace.ground_truth.trace_ground_truth`)
    array : AntennaArray at the BS (ULA or UPA)
    budget : LinkBudget
    oversampling : int or (int, int)
        DFT codebook oversampling, one factor or ``(rows, cols)`` (see :func:`~ckmsim.link.codebook.dft_codebook`).
    precision : "double" | "single"
        Precision of the beam-rate computation (``"single"`` is about twice as fast on many UEs).

    Only UEs with at least one ray-traced path are scored: with no path every choice earns zero.
    """

    def __init__(self, true_paths: xr.Dataset, array: AntennaArray, budget: LinkBudget, oversampling=1,
                 precision: str = "double"):
        served = true_paths["valid"].values.any(axis=1)
        self.paths = true_paths.isel(ue=np.nonzero(served)[0])
        if self.paths.sizes["ue"] == 0:
            raise CkmsimError("No UE has a ray-traced path to the BS: nothing to score (check the BS position)")
        self.array = array
        self.budget = budget
        self.codebook = dft_codebook(array, oversampling)
        # [num_ue, num_subcarriers, num_ant]
        self.channels = ofdm_channels(self.paths, array, budget)
        # [num_ue, num_beams]: every beam's true rate, so that each map's choice is a lookup
        self.beam_rates = rates_all_beams(self.channels, self.codebook, budget.snr_scale, precision=precision)

    @property
    def ue_cells(self) -> tuple[np.ndarray, np.ndarray]:
        """Row and column of each scored UE's cell, ``([num_ue], [num_ue])`` int."""
        return self.paths["ue_row"].values, self.paths["ue_col"].values

    def predicted_scm(self, ckm: xr.Dataset) -> np.ndarray:
        """SCM of each scored UE from the CKM's per-path layers: ``[num_ue, num_ant, num_ant]`` complex128."""
        missing = [n for n in ("path_gain_db", "aoa_az_deg", "aoa_el_deg") if n not in ckm]
        if missing:
            raise CkmsimError(f"CKM lacks {missing}: beam selection needs per-path gains and angles")
        rows, cols = self.ue_cells
        # [path, y, x] -> [num_ue, path]
        at_ues = {name: ckm[name].values[:, rows, cols].T for name in ("path_gain_db", "aoa_az_deg", "aoa_el_deg")}
        return scm_from_paths(at_ues["path_gain_db"], at_ues["aoa_az_deg"], at_ues["aoa_el_deg"], self.array)

    def rates(self, ckm: xr.Dataset) -> LinkScore:
        """Rates earned on the true channels by the beams the CKM selects."""
        scm = self.predicted_scm(ckm)
        beam = select_beams_from_scm(scm, self.codebook)
        rate = np.take_along_axis(self.beam_rates, beam[:, None], axis=1)[:, 0]
        return LinkScore(rate_bps_hz=rate, beam=beam, scm=scm)

    def perfect_csi_rates(self) -> np.ndarray:
        """Upper bound: best codebook beam chosen on the true channel, ``[num_ue]`` [bit/s/Hz]."""
        return self.beam_rates.max(axis=1)
