"""AP deployment from channel-gain maps: the predicted map of each candidate site chooses, the true map scores.

Where should the next AP go? For each candidate site the network has a *predicted* channel-gain map (from
sparse measurements, a propagation model or cross-AP inference) and the *true* maps of the APs already
deployed. Every user cell is served by the AP with the highest gain (max-gain association); a site is
judged by the coverage and the mean rate it yields together with the existing APs. The candidate whose
predicted map scores best is chosen, and the choice is scored with that site's true map, next to the
oracle choice made with every site's true map (cross-AP paper, Sec. V: environment-aware deployment).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ckmsim.errors import CkmsimError
from ckmsim.link.budget import LinkBudget


@dataclass(frozen=True)
class DeploymentObjective:
    """How a set of APs serves a map.

    Parameters
    ----------
    budget : LinkBudget
        Transmit power, bandwidth and noise figure of each AP's downlink.
    array_gain : float
        Beamforming gain of each AP's array towards a user (linear; ``num_ant`` for an ideal matched beam).
    coverage_snr_db : float
        A cell is covered when its SNR (or SINR) reaches this [dB].
    interference : bool
        True: every AP transmits on the same band at full load and the other APs' power is interference
        (SINR); False: APs use orthogonal resources (SNR).
    metric : "mean_rate" | "coverage"
        What the choice maximises: the mean Shannon rate over the user cells [bit/s/Hz] or the covered share.
    """

    budget: LinkBudget = LinkBudget()
    array_gain: float = 1.0
    coverage_snr_db: float = 0.0
    interference: bool = False
    metric: str = "mean_rate"

    def __post_init__(self):
        if self.metric not in ("mean_rate", "coverage"):
            raise CkmsimError(f"metric must be 'mean_rate' or 'coverage'. Received: metric={self.metric!r}")
        if not self.array_gain > 0:
            raise CkmsimError(f"array_gain must be > 0. Received: array_gain={self.array_gain!r}")

    def scores(self, gain_maps_db: np.ndarray, users: np.ndarray) -> dict[str, float]:
        """Coverage and mean rate of the APs of ``gain_maps_db`` over the user cells.

        Input
        -----
        gain_maps_db : [num_ap, num_y, num_x], float — each AP's channel gain [dB] (NaN counts as no signal)
        users : [num_y, num_x], bool — the cells where users stand (e.g. non-building cells)

        Output
        ------
        dict with ``coverage`` (share of user cells at or above ``coverage_snr_db``), ``mean_rate_bps_hz``
        and ``serving_ap`` ([num_y, num_x] int, the max-gain AP of each cell)
        """
        maps = np.asarray(gain_maps_db, dtype=np.float64)
        if maps.ndim != 3 or maps.shape[1:] != users.shape:
            raise CkmsimError(f"gain_maps_db must be [num_ap, num_y, num_x] with the users' shape {users.shape}. "
                              f"Received: gain_maps_db.shape={maps.shape}")
        if not users.any():
            raise CkmsimError("No user cell to serve: the users mask is empty")
        # [num_ap, num_y, num_x] received power per unit noise
        power = self.budget.snr_scale * self.array_gain * np.where(np.isfinite(maps), 10.0 ** (maps / 10.0), 0.0)
        serving = np.argmax(power, axis=0)
        best = np.max(power, axis=0)
        sinr = best / (1.0 + power.sum(axis=0) - best) if self.interference else best
        sinr_users = sinr[users]
        return {"coverage": float(np.mean(10.0 * np.log10(np.maximum(sinr_users, 1e-300)) >= self.coverage_snr_db)),
                "mean_rate_bps_hz": float(np.mean(np.log2(1.0 + sinr_users))), "serving_ap": serving}

    def value(self, gain_maps_db: np.ndarray, users: np.ndarray) -> float:
        """The number the choice maximises (see ``metric``)."""
        scores = self.scores(gain_maps_db, users)
        return scores["coverage"] if self.metric == "coverage" else scores["mean_rate_bps_hz"]


def site_values(existing_db: np.ndarray, candidates_db: np.ndarray, users: np.ndarray,
                objective: DeploymentObjective) -> np.ndarray:
    """Objective value of adding each candidate to the existing APs.

    Input
    -----
    existing_db : [num_existing, num_y, num_x] (may be empty: ``[0, num_y, num_x]``)
    candidates_db : [num_candidates, num_y, num_x]
    users : [num_y, num_x], bool

    Output
    ------
    values : [num_candidates], float64
    """
    existing = np.asarray(existing_db, dtype=np.float64).reshape((-1,) + users.shape)
    candidates = np.asarray(candidates_db, dtype=np.float64)
    if candidates.ndim != 3 or candidates.shape[0] == 0:
        raise CkmsimError(f"candidates_db must be [num_candidates >= 1, num_y, num_x]. "
                          f"Received: candidates_db.shape={candidates.shape}")
    return np.array([objective.value(np.concatenate([existing, candidate[None]]), users) for candidate in candidates])


@dataclass(frozen=True)
class DeploymentOutcome:
    """A site choice and what it earns on the true maps.

    Attributes
    ----------
    chosen : int — the candidate the predicted maps chose
    oracle : int — the candidate the true maps choose
    chosen_true_value, oracle_true_value : float — the objective of both choices on the true maps
    predicted_values, true_values : [num_candidates] — every candidate's objective, predicted and true
    """

    chosen: int
    oracle: int
    chosen_true_value: float
    oracle_true_value: float
    predicted_values: np.ndarray
    true_values: np.ndarray

    @property
    def fraction_of_oracle(self) -> float:
        """``chosen_true_value / oracle_true_value`` (1 when the predicted maps pick as well as the truth)."""
        return self.chosen_true_value / self.oracle_true_value if self.oracle_true_value > 0 else float("nan")

    def to_dict(self) -> dict:
        return {"chosen": self.chosen, "oracle": self.oracle, "chosen_true_value": self.chosen_true_value,
                "oracle_true_value": self.oracle_true_value, "fraction_of_oracle": self.fraction_of_oracle,
                "predicted_values": self.predicted_values.tolist(), "true_values": self.true_values.tolist()}


def choose_site(existing_true_db: np.ndarray, candidates_predicted_db: np.ndarray, candidates_true_db: np.ndarray,
                users: np.ndarray, objective: DeploymentObjective) -> DeploymentOutcome:
    """Choose the candidate site from predicted maps and score it with the true ones.

    Input
    -----
    existing_true_db : [num_existing, num_y, num_x] — true maps of the deployed APs (known to the network)
    candidates_predicted_db, candidates_true_db : [num_candidates, num_y, num_x]
    users : [num_y, num_x], bool
    objective : DeploymentObjective
    """
    predicted = site_values(existing_true_db, candidates_predicted_db, users, objective)
    true = site_values(existing_true_db, candidates_true_db, users, objective)
    chosen, oracle = int(np.argmax(predicted)), int(np.argmax(true))
    return DeploymentOutcome(chosen=chosen, oracle=oracle, chosen_true_value=float(true[chosen]),
                             oracle_true_value=float(true[oracle]), predicted_values=predicted, true_values=true)
