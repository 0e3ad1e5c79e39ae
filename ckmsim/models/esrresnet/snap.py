"""Snap decoding of the networks' azimuths: a beam needs the angle to a degree, not its mean error.

Trained on a mean-square loss, a small network lowers the azimuth RMSE by fixing the cells where bicubic
interpolation blends two propagation regimes (tens of degrees off), and pays with a degree or two of noise on
the cells bicubic already gets right; a 64-element ULA's beam is under 2 deg wide, so the noise costs more beam
gain than the fixes bring (measured on the validation city, experiments/esrresnet/RESULTS.md). Arrival angles
are piecewise smooth: a cell shares its propagation mechanism, and nearly its azimuth, with some observed
neighbour. Snap decoding therefore keeps bicubic where the network's correction is small and, where it is
large, takes the observed azimuth nearest to the network's (any path of the observed lattice cells within
``radius_cells``), if one lies within ``tolerance_deg`` of it; otherwise the network's own azimuth:

.. math::
    \\hat\\phi = \\begin{cases} \\phi_{\\rm bic} & |\\phi_{\\rm net} - \\phi_{\\rm bic}| \\le \\tau \\\\
    \\arg\\min_{c \\in C} |c - \\phi_{\\rm net}| & \\text{else, if that distance} < \\delta \\\\
    \\phi_{\\rm net} & \\text{else} \\end{cases}

``tau`` (``threshold_deg``) and ``delta`` (``tolerance_deg``) are chosen per network on the validation city by
:func:`tune_snap`: the largest mean beam gain subject to an azimuth RMSE below bicubic's.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ckmsim.errors import CkmsimError
from ckmsim.maps.angles import angle_difference_deg

#: Candidate settings searched by :func:`tune_snap` [deg]; an infinite tolerance always snaps.
THRESHOLDS_DEG = (2.0, 5.0, 10.0, 20.0)
TOLERANCES_DEG = (3.0, 8.0, float("inf"))


@dataclass(frozen=True)
class Snap:
    """Snap-decoding settings of one network (see the module docstring).

    threshold_deg : corrections up to this size [deg] are dropped (bicubic kept)
    tolerance_deg : the nearest observed azimuth is taken if within this distance [deg] of the network's
    radius_cells : observed cells within this Chebyshev distance [cells] are the candidates
    """

    threshold_deg: float
    tolerance_deg: float = float("inf")
    radius_cells: int = 2

    def __post_init__(self):
        if not self.threshold_deg >= 0 or not self.tolerance_deg > 0:
            raise CkmsimError(f"Snap needs threshold_deg >= 0 and tolerance_deg > 0. Received: "
                              f"threshold_deg={self.threshold_deg}, tolerance_deg={self.tolerance_deg}")
        if isinstance(self.radius_cells, bool) or not isinstance(self.radius_cells, int) or self.radius_cells < 1:
            raise CkmsimError(f"Snap radius_cells must be an integer >= 1. Received: {self.radius_cells!r}")

    def to_dict(self) -> dict:
        # JSON has no infinity: an unbounded tolerance is written as null
        tolerance = None if np.isinf(self.tolerance_deg) else float(self.tolerance_deg)
        return {"threshold_deg": float(self.threshold_deg), "tolerance_deg": tolerance,
                "radius_cells": self.radius_cells}

    @classmethod
    def from_dict(cls, values: dict | None) -> "Snap | None":
        if values is None:
            return None
        unknown = sorted(set(values) - {"threshold_deg", "tolerance_deg", "radius_cells"})
        if unknown:
            raise CkmsimError(f"Unknown snap setting(s) {unknown}; expected threshold_deg, tolerance_deg, "
                              f"radius_cells")
        tolerance = values.get("tolerance_deg")
        return cls(float(values["threshold_deg"]), float("inf") if tolerance is None else float(tolerance),
                   int(values.get("radius_cells", 2)))


def neighbour_azimuths(observed_az_deg: np.ndarray, observed: np.ndarray, radius_cells: int) -> np.ndarray:
    """The observed azimuths of every path at the observed cells within ``radius_cells`` of each cell.

    Input
    -----
    observed_az_deg : [num_paths, num_y, num_x], float [deg]; NaN where a path is absent
    observed : [num_y, num_x], bool
    radius_cells : int

    Output
    ------
    candidates : [num_paths * (2 radius + 1)^2, num_y, num_x], float64 [deg]; NaN where there is none
    """
    az = np.where(observed[None], np.asarray(observed_az_deg, dtype=np.float64), np.nan)
    num_y, num_x = observed.shape
    padded = np.pad(az, ((0, 0), (radius_cells, radius_cells), (radius_cells, radius_cells)),
                    constant_values=np.nan)
    span = 2 * radius_cells + 1
    shifted = [padded[:, dy:dy + num_y, dx:dx + num_x] for dy in range(span) for dx in range(span)]
    return np.concatenate(shifted, axis=0)


def snap_azimuth(net_az_deg: np.ndarray, bicubic_az_deg: np.ndarray, candidates_deg: np.ndarray,
                 snap: Snap) -> np.ndarray:
    """Snap-decoded azimuth [deg] of one path (see the module docstring).

    Input
    -----
    net_az_deg, bicubic_az_deg : [num_y, num_x], float [deg]
    candidates_deg : [num_candidates, num_y, num_x], float [deg] (:func:`neighbour_azimuths`)
    snap : Snap

    Output
    ------
    az_deg : [num_y, num_x], float64 [deg]; NaN where the network's azimuth is NaN
    """
    distance = np.abs(angle_difference_deg(candidates_deg, np.asarray(net_az_deg)[None]))
    distance = np.where(np.isfinite(distance), distance, np.inf)
    nearest = np.argmin(distance, axis=0)
    best = np.take_along_axis(candidates_deg, nearest[None], axis=0)[0]
    best_distance = np.take_along_axis(distance, nearest[None], axis=0)[0]
    moved = np.abs(angle_difference_deg(net_az_deg, bicubic_az_deg)) > snap.threshold_deg
    # a NaN bicubic angle (no neighbour had the path) is not "small": the network's value stands
    moved |= ~np.isfinite(bicubic_az_deg)
    snapped = np.where(best_distance < snap.tolerance_deg, best, net_az_deg)
    return np.where(moved, snapped, bicubic_az_deg).astype(np.float64)


def broadside_beam_gain(error_deg: np.ndarray, num_ant: int) -> np.ndarray:
    r"""Normalised gain of a half-wavelength ULA's beam steered :math:`\Delta` off the true broadside direction.

    :math:`G(\Delta) = \left|\frac{\sin(N \pi \sin\Delta / 2)}{N \sin(\pi \sin\Delta / 2)}\right|^2` (the Fejér
    kernel), 1 at :math:`\Delta = 0`, first null at :math:`\sin\Delta = 2 / N`.
    """
    x = np.pi * np.sin(np.radians(np.asarray(error_deg, dtype=np.float64))) / 2.0
    safe = np.where(np.abs(x) < 1e-12, 1.0, x)
    return np.where(np.abs(x) < 1e-12, 1.0, (np.sin(num_ant * safe) / (num_ant * np.sin(safe))) ** 2)


def tune_snap(net_az_deg: np.ndarray, bicubic_az_deg: np.ndarray, candidates_deg: np.ndarray,
              true_az_deg: np.ndarray, num_ant: int = 64, rmse_ratio: float = 0.98,
              thresholds_deg=THRESHOLDS_DEG, tolerances_deg=TOLERANCES_DEG) -> tuple[Snap | None, list[dict]]:
    """Choose the snap settings of one network on validation cells.

    The setting with the largest mean :func:`broadside_beam_gain` among those whose azimuth RMSE is at most
    ``rmse_ratio`` times bicubic's; None (no snapping) when none qualifies or none beats the plain network.

    Input
    -----
    net_az_deg, bicubic_az_deg, true_az_deg : [num_cells], float [deg] (the scored validation cells)
    candidates_deg : [num_candidates, num_cells], float [deg]

    Output
    ------
    (Snap or None, table): table lists every setting tried with its ``rmse_deg`` and ``beam_gain``, plus
    the rows ``bicubic`` and ``network``.
    """
    def score(az):
        error = angle_difference_deg(az, true_az_deg)
        return float(np.sqrt(np.mean(np.square(error)))), float(np.mean(broadside_beam_gain(error, num_ant)))

    if np.size(true_az_deg) == 0:
        raise CkmsimError("tune_snap needs at least one validation cell")
    bicubic_rmse, bicubic_gain = score(bicubic_az_deg)
    net_rmse, net_gain = score(net_az_deg)
    table = [{"setting": "bicubic", "rmse_deg": bicubic_rmse, "beam_gain": bicubic_gain},
             {"setting": "network", "rmse_deg": net_rmse, "beam_gain": net_gain}]
    best, best_gain = None, net_gain if net_rmse <= rmse_ratio * bicubic_rmse else -np.inf
    for threshold in thresholds_deg:
        for tolerance in tolerances_deg:
            snap = Snap(float(threshold), float(tolerance))
            rmse, gain = score(snap_azimuth(net_az_deg[None], bicubic_az_deg[None], candidates_deg[:, None], snap)[0])
            table.append({"setting": snap.to_dict(), "rmse_deg": rmse, "beam_gain": gain})
            if rmse <= rmse_ratio * bicubic_rmse and gain > best_gain:
                best, best_gain = snap, gain
    return best, table
