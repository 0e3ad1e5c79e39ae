"""SCM precoding: principal eigenvector of the predicted SCM, against the matched filter and DFT beam selection."""

import numpy as np
import pytest

from ckmsim.link.beams import precoder_rates
from ckmsim.link.budget import LinkBudget
from ckmsim.link.channels import path_set, random_path_set
from ckmsim.link.precoding import SCMPrecodingScorer, principal_eigenvectors, sample_covariance
from ckmsim.link.score import BeamSelectionScorer
from ckmsim.maps.antenna_array import AntennaArray
from test_beams import loop_channel, truth_ckm  # the perfect CKM and the loop-by-loop channel of the beam tests


@pytest.mark.parametrize("rows, cols", [(1, 16), (4, 4), (2, 8)])
def test_single_path_eigen_precoder_is_the_matched_filter(rows, cols, rng):
    """True SCM of one path: f = a / sqrt(N) up to a phase, gain N |alpha|^2 at any (off-grid) angle."""
    array = AntennaArray(num_cols=cols, num_rows=rows)
    num_ue, gain_db = 12, -95.0
    az = rng.uniform(-80, 80, size=(num_ue, 1))
    el = rng.uniform(-40, 20, size=(num_ue, 1))
    paths = path_set(np.full((num_ue, 1), 10 ** (gain_db / 20)) * np.exp(2j * np.pi * rng.random((num_ue, 1))),
                     rng.uniform(1e-7, 1e-6, (num_ue, 1)), az, el,
                     ue_row=np.arange(num_ue) // 4, ue_col=np.arange(num_ue) % 4)
    budget = LinkBudget(num_subcarriers=8)
    beam_scorer = BeamSelectionScorer(paths, array, budget)
    score = SCMPrecodingScorer(beam_scorer).rates(truth_ckm(paths, 1))
    matched = array.steering_vectors(az[:, 0], el[:, 0]) / np.sqrt(array.num_ant)
    np.testing.assert_allclose(np.abs(np.einsum("un,un->u", score.precoder.conj(), matched)), 1.0, rtol=1e-9)
    closed_form = np.log2(1 + budget.snr_scale * array.num_ant * 10 ** (gain_db / 10))
    np.testing.assert_allclose(score.rate_bps_hz, closed_form, rtol=1e-5)
    # A single path has a rank-one sample covariance too: the reference is the same matched filter
    np.testing.assert_allclose(SCMPrecodingScorer(beam_scorer).perfect_statistics_rates(), closed_form, rtol=1e-5)
    # ... and the eigen bound is N |g|^2 on every subcarrier: the true map reaches 100 % of it
    np.testing.assert_allclose(SCMPrecodingScorer(beam_scorer).perfect_csi_rates(), closed_form, rtol=1e-5)
    # Off the DFT grid, codebook beams lose (scalloping); the eigen-precoder does not
    dft = beam_scorer.rates(truth_ckm(paths, 1)).rate_bps_hz
    assert np.all(dft <= score.rate_bps_hz + 1e-9) and dft.mean() < score.rate_bps_hz.mean() - 0.1


@pytest.mark.parametrize("rows, cols", [(1, 16), (4, 4)])
def test_true_scm_precoding_beats_dft_selection_on_average(rows, cols):
    """Same true SCM (4 paths), two decisions: eigenvector vs best DFT beam; and the perfect-statistics
    reference (true sample covariance over subcarriers) above both on average."""
    paths = random_path_set(120, 4, seed=7)
    beam_scorer = BeamSelectionScorer(paths, AntennaArray(num_cols=cols, num_rows=rows), LinkBudget(num_subcarriers=16))
    precoding = SCMPrecodingScorer(beam_scorer)
    ckm = truth_ckm(paths, 4)
    eigen = precoding.rates(ckm).rate_bps_hz
    dft = beam_scorer.rates(ckm).rate_bps_hz
    reference = precoding.perfect_statistics_rates()
    assert eigen.mean() > dft.mean() + 0.05
    assert reference.mean() >= eigen.mean()
    # A map that knows less (only the strongest path) precodes worse than the full true SCM
    assert precoding.rates(truth_ckm(paths, 1)).rate_bps_hz.mean() < eigen.mean()


def test_principal_eigenvectors_and_sample_covariance(rng):
    h = rng.normal(size=(9, 6, 5)) + 1j * rng.normal(size=(9, 6, 5))
    covariance = sample_covariance(h)
    np.testing.assert_allclose(covariance[2], sum(np.outer(x, x.conj()) for x in h[2]) / 6, rtol=1e-12)
    vectors = principal_eigenvectors(covariance, ues_per_batch=2)
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, rtol=1e-12)
    quadratic = np.einsum("um,umn,un->u", vectors.conj(), covariance, vectors).real
    np.testing.assert_allclose(quadratic, np.linalg.eigvalsh(covariance)[:, -1], rtol=1e-10)
    # The map knows nothing: broadside (DFT beam 0)
    np.testing.assert_allclose(principal_eigenvectors(np.zeros((2, 4, 4), complex)), np.full((2, 4), 0.5))


def test_eigen_bound_is_mrt_on_every_subcarrier_and_bounds_every_precoder(rng):
    """The bound of SCM precoding: mean_k log2(1 + SNR ||h_k||^2), recomputed here from a loop-by-loop channel;
    no unit-norm precoder (random, every DFT beam, the maps' eigenvectors) earns more on any UE."""
    num_ant = 8
    paths = random_path_set(20, 4, seed=12)
    budget = LinkBudget(num_subcarriers=8)
    beam_scorer = BeamSelectionScorer(paths, AntennaArray(num_cols=num_ant), budget)
    precoding = SCMPrecodingScorer(beam_scorer)
    bound = precoding.perfect_csi_rates()
    h = loop_channel(paths, num_ant, budget)
    expected = np.array([np.mean([np.log2(1 + budget.snr_scale * np.vdot(h[u, k], h[u, k]).real)
                                  for k in range(h.shape[1])]) for u in range(h.shape[0])])
    np.testing.assert_allclose(bound, expected, rtol=1e-5)
    candidates = rng.normal(size=(200, num_ant)) + 1j * rng.normal(size=(200, num_ant))
    candidates /= np.linalg.norm(candidates, axis=1, keepdims=True)
    random_rates = np.stack([precoder_rates(beam_scorer.channels, np.tile(f, (20, 1)), budget.snr_scale)
                             for f in candidates])
    assert np.all(random_rates <= bound + 1e-9)
    assert np.all(beam_scorer.beam_rates <= bound[:, None] + 1e-9)
    for ckm in (truth_ckm(paths, 4), truth_ckm(paths, 1)):
        assert np.all(precoding.rates(ckm).rate_bps_hz <= bound + 1e-9)
    assert np.all(precoding.perfect_statistics_rates() <= bound + 1e-9)
    # With 4 paths the channel is frequency selective: a wideband precoder falls short of the bound
    assert precoding.perfect_statistics_rates().mean() < bound.mean() - 0.05
