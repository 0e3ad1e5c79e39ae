"""Rate summaries and the empirical CDF against hand-worked values."""

import numpy as np
import pytest

from ckmsim.errors import CkmsimError
from ckmsim.metrics.rate_metrics import empirical_cdf, rate_summary


def test_rate_summary_by_hand():
    summary = rate_summary(np.array([5.0, 1.0, 3.0, 2.0, 4.0]), np.array([2.0, 4.0, 6.0, 8.0, 10.0]))
    assert summary["mean_bps_hz"] == pytest.approx(3.0)
    assert summary["median_bps_hz"] == pytest.approx(3.0)
    # linear percentile: position 0.05 * (5 - 1) = 0.2 between 1 and 2
    assert summary["p5_bps_hz"] == pytest.approx(1.2)
    assert summary["fraction_of_perfect_csi"] == pytest.approx(3.0 / 6.0)
    assert all(type(value) is float for value in summary.values())


def test_rate_summary_without_perfect_csi():
    summary = rate_summary([0.0, 2.0])
    assert set(summary) == {"mean_bps_hz", "p5_bps_hz", "median_bps_hz"}
    assert summary["p5_bps_hz"] == pytest.approx(0.1)


@pytest.mark.parametrize("rates, perfect, message", [
    (np.ones((2, 2)), None, "rates_bps_hz must be a 1-D"),
    (np.array([]), None, "rates_bps_hz is empty"),
    (np.array([1.0, np.nan, np.nan]), None, "rates_bps_hz has 2 NaN"),
    (np.array([1.0, -0.5]), None, "rates_bps_hz has 1 negative"),
    (np.array([1.0, 2.0]), np.array([1.0, 2.0, 3.0]), "perfect_rates_bps_hz has 3 UEs"),
    (np.array([1.0, 2.0]), np.array([0.0, 0.0]), "all 0"),
    (np.array([1.0, 2.0]), np.array([np.nan, 1.0]), "perfect_rates_bps_hz has 1 NaN"),
])
def test_rate_summary_errors(rates, perfect, message):
    with pytest.raises(CkmsimError, match=message):
        rate_summary(rates, perfect)


def test_empirical_cdf():
    values, probabilities = empirical_cdf(np.array([3.0, 1.0, 2.0]))
    np.testing.assert_allclose(values, [1.0, 2.0, 3.0])
    np.testing.assert_allclose(probabilities, [1 / 3, 2 / 3, 1.0])
    with pytest.raises(CkmsimError, match="NaN"):
        empirical_cdf(np.array([1.0, np.nan]))
    with pytest.raises(CkmsimError, match="1-D"):
        empirical_cdf(np.zeros((2, 2)))
