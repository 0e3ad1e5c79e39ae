"""share_below: the share of UEs under each rate threshold, by hand."""

import pytest

from ckmsim.errors import CkmsimError
from ckmsim.metrics.rate_metrics import NEAR_ZERO_BPS_HZ, share_below


def test_share_below_by_hand():
    rates = [0.0, 0.05, 0.1, 0.3, 0.5, 2.0, 7.0, 9.0]
    # strictly below: 0.1 itself is not under 0.1
    assert share_below(rates) == {"0.1": 2 / 8, "0.5": 4 / 8}
    assert share_below(rates, (1.0,)) == {"1": 5 / 8}
    assert tuple(float(k) for k in share_below(rates)) == NEAR_ZERO_BPS_HZ


def test_share_below_rejects_bad_rates():
    with pytest.raises(CkmsimError, match="negative"):
        share_below([1.0, -0.5])
