"""AP deployment: hand-made coverage and rate, max-gain association, the oracle choice, a misled choice."""

import numpy as np
import pytest

from ckmsim.errors import CkmsimError
from ckmsim.link.budget import LinkBudget
from ckmsim.link.deployment import DeploymentObjective, choose_site, site_values

BUDGET = LinkBudget()
#: Gain [dB] at which the SNR is exactly 0 dB with this budget (snr_scale * g = 1).
UNIT_SNR_DB = -10 * np.log10(BUDGET.snr_scale)


def _maps(*values_db):
    return np.array([np.full((2, 2), v, dtype=float) if np.isscalar(v) else np.asarray(v, float) for v in values_db])


def test_scores_by_hand_with_and_without_interference():
    users = np.array([[True, True], [True, False]])
    a = np.array([[10.0, 0.0], [-10.0, 99.0]]) + UNIT_SNR_DB   # SNR 10, 0, -10 dB at the user cells
    b = np.full((2, 2), UNIT_SNR_DB)                            # SNR 0 dB everywhere
    scores = DeploymentObjective(budget=BUDGET).scores(_maps(a, b), users)
    # max-gain association: a, then tie (argmax keeps the first: a), then b
    np.testing.assert_array_equal(scores["serving_ap"][users], [0, 0, 1])
    assert scores["coverage"] == pytest.approx(1.0)
    assert scores["mean_rate_bps_hz"] == pytest.approx((np.log2(11) + 1 + 1) / 3)
    with_interference = DeploymentObjective(budget=BUDGET, interference=True).scores(_maps(a, b), users)
    expected = [10 / (1 + 1), 1 / (1 + 1), 1 / (1 + 0.1)]
    assert with_interference["mean_rate_bps_hz"] == pytest.approx(np.mean(np.log2(1 + np.array(expected))))
    assert with_interference["coverage"] == pytest.approx(1 / 3)  # only 5 (7 dB) reaches 0 dB


def test_oracle_picks_the_best_true_site_and_a_wrong_map_can_mislead():
    rng = np.random.default_rng(3)
    users = rng.uniform(size=(8, 8)) > 0.2
    existing = _maps(rng.uniform(-130, -90, (8, 8)))
    true = np.stack([rng.uniform(-130, -90, (8, 8)) for _ in range(5)])
    objective = DeploymentObjective(budget=BUDGET, array_gain=16)
    perfect = choose_site(existing, true, true, users, objective)
    values = site_values(existing, true, users, objective)
    assert perfect.chosen == perfect.oracle == int(np.argmax(values))
    assert perfect.fraction_of_oracle == pytest.approx(1.0)
    # A map that flatters the worst site by 30 dB makes the choice worse than the oracle.
    worst = int(np.argmin(values))
    misled = true.copy()
    misled[worst] += 30.0
    outcome = choose_site(existing, misled, true, users, objective)
    assert outcome.chosen == worst and outcome.fraction_of_oracle < 1.0
    assert outcome.chosen_true_value == pytest.approx(values[worst])


def test_coverage_objective_and_bad_inputs():
    users = np.ones((2, 2), bool)
    objective = DeploymentObjective(budget=BUDGET, metric="coverage", coverage_snr_db=5.0)
    values = site_values(np.zeros((0, 2, 2)), _maps(UNIT_SNR_DB + 10, UNIT_SNR_DB), users, objective)
    np.testing.assert_allclose(values, [1.0, 0.0])
    with pytest.raises(CkmsimError, match="metric"):
        DeploymentObjective(metric="sum")
    with pytest.raises(CkmsimError, match="shape"):
        objective.scores(np.zeros((1, 3, 3)), users)
    with pytest.raises(CkmsimError, match="empty"):
        objective.scores(np.zeros((1, 2, 2)), np.zeros((2, 2), bool))
