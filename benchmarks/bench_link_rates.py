"""Seconds to score every UE of a map with the link kernels, next to one matrix product of the same FLOP count.

Usage::

    python benchmarks/bench_link_rates.py [--map-size 128] [--bs-rows 8] [--bs-cols 8] [--subcarriers 64]
                                          [--paths 6] [--repeats 5] [--quick]

Every cell of a ``map_size x map_size`` map holds one UE (16384 UEs for 128), with a single-antenna UE and a
``bs_rows x bs_cols`` BS UPA (64 antennas), ``subcarriers`` subcarriers and the array's DFT codebook
(64 beams). Channels are random multipath (:func:`ckmsim.link.channels.random_path_set`), complex64.
Timed, best of ``--repeats`` interleaved rounds:

- ``csi_beamforming``: :meth:`CsiBeamformingScorer.rates` on a predicted CSI — the pair search of LAD-CKM
  eq. (10) on the prediction and the rate of eq. (11) on the truth (the scorer's perfect-CSI set-up is not timed);
- ``rates_all_beams``: every beam's rate on the true channel, :func:`ckmsim.link.beams.rates_all_beams` (the
  table a :class:`BeamSelectionScorer` builds once, then each map's choice is a lookup), single precision;
- ``scm_beam_selection``: the DFT beam maximising :math:`\\mathbf{f}^\\mathsf{H}\\hat{\\mathbf{R}}\\mathbf{f}` for
  every UE's SCM, :func:`ckmsim.link.beams.select_beams_from_scm`, complex64 SCMs.

Each costs one complex product of ``8 * num_ue * K * N * B`` real FLOPs (``N * N * B`` per UE for the SCM
selection, the same count when ``K == N``), plus elementwise work. The bound is one ``numpy.matmul`` of
``[num_ue * K, N] @ [N, B]`` complex64 with that FLOP count, timed in the same run (a
``tf.linalg.matmul`` of the same shapes is printed beside it, and the same numpy product cut into the
kernels' UE batches, which shows what the batching alone costs or saves); the ratio kernel / bound is the
figure of merit (goal: <= 2). Absolute seconds depend on the machine and on its load.
"""

from __future__ import annotations

import argparse
import time

import numpy as np

import ckmsim  # noqa: F401  (Mitsuba before TensorFlow)
from ckmsim.link.beams import rates_all_beams, select_beams_from_scm, ue_batches
from ckmsim.link.budget import LinkBudget
from ckmsim.link.channels import mimo_ofdm_channels, random_path_set
from ckmsim.link.codebook import dft_codebook
from ckmsim.link.csi_beamforming import CsiBeamformingScorer
from ckmsim.maps.antenna_array import AntennaArray
from ckmsim.maps.scm import scm_from_paths

UES_PER_CHANNEL_CHUNK = 1024


def interleaved_best(kernels: dict, repeats: int) -> dict[str, float]:
    """Smallest wall time [s] of each kernel over ``repeats`` rounds, each round running every kernel once.

    Interleaving exposes the bound and the kernels to the same load (the machine may be shared); the minimum
    is the run least disturbed by it.
    """
    best = {name: float("inf") for name in kernels}
    for _ in range(repeats):
        for name, work in kernels.items():
            start = time.perf_counter()
            work()
            best[name] = min(best[name], time.perf_counter() - start)
    return best


def make_channels(num_ue: int, num_paths: int, bs_array: AntennaArray, budget: LinkBudget, seed: int = 0):
    """True and predicted (0 dB estimation SNR) downlink CSI ``[num_ue, K, 1, N]`` complex64, true SCMs
    ``[num_ue, N, N]`` complex64, built chunk by chunk to bound memory."""
    paths = random_path_set(num_ue, num_paths, seed=seed)
    ue_array = AntennaArray(num_cols=1)
    h_true = np.empty((num_ue, budget.num_subcarriers, 1, bs_array.num_ant), dtype=np.complex64)
    scm = np.empty((num_ue, bs_array.num_ant, bs_array.num_ant), dtype=np.complex64)
    for start in range(0, num_ue, UES_PER_CHANNEL_CHUNK):
        part = slice(start, start + UES_PER_CHANNEL_CHUNK)
        chunk = paths.isel(ue=part)
        h_true[part] = mimo_ofdm_channels(chunk, bs_array, ue_array, budget)
        gain_db = 10 * np.log10(np.abs(chunk["a"].values) ** 2)
        scm[part] = scm_from_paths(gain_db, chunk["dep_az_deg"].values, chunk["dep_el_deg"].values, bs_array)
    rng = np.random.default_rng(seed + 1)
    power = np.mean(np.abs(h_true) ** 2, axis=(1, 2, 3), keepdims=True)
    noise = (rng.standard_normal(h_true.shape, dtype=np.float32)
             + 1j * rng.standard_normal(h_true.shape, dtype=np.float32)) * np.sqrt(power / 2)
    return h_true, (h_true + noise).astype(np.complex64), scm


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--map-size", type=int, default=128)
    parser.add_argument("--bs-rows", type=int, default=8)
    parser.add_argument("--bs-cols", type=int, default=8)
    parser.add_argument("--subcarriers", type=int, default=64)
    parser.add_argument("--paths", type=int, default=6)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--quick", action="store_true", help="32 x 32 map, 2 repeats: a smoke run")
    args = parser.parse_args(argv)
    if args.quick:
        args.map_size, args.repeats = 32, 2

    import tensorflow as tf

    bs_array = AntennaArray(num_cols=args.bs_cols, num_rows=args.bs_rows)
    budget = LinkBudget(num_subcarriers=args.subcarriers)
    codebook = dft_codebook(bs_array)
    num_ue, num_ant, num_beams, num_sc = args.map_size ** 2, bs_array.num_ant, len(codebook), args.subcarriers

    start = time.perf_counter()
    h_true, h_pred, scm = make_channels(num_ue, args.paths, bs_array, budget)
    scorer = CsiBeamformingScorer(h_true, budget.snr_scale, codebook, precision="single")
    print(f"{num_ue} UEs ({args.map_size}x{args.map_size} map), {num_ant} BS antennas "
          f"({args.bs_rows}x{args.bs_cols} UPA), {num_sc} subcarriers, {num_beams} beams; "
          f"set-up {time.perf_counter() - start:.1f} s (not timed)")

    # The bound: one complex64 product [num_ue * K, N] @ [N, B]
    lhs = h_true.reshape(-1, num_ant)
    rhs = np.ascontiguousarray(codebook.conj().T, dtype=np.complex64)
    lhs_tf, rhs_tf = tf.constant(lhs), tf.constant(rhs)
    flops = 8.0 * num_ue * num_sc * num_ant * num_beams

    def batched_matmul():
        out = np.empty((lhs.shape[0], num_beams), dtype=np.complex64)
        for part in ue_batches(num_ue, num_sc * num_beams):
            rows = slice(part.start * num_sc, part.stop * num_sc)
            np.matmul(lhs[rows], rhs, out=out[rows])

    kernels = {
        "numpy.matmul (bound)": lambda: np.matmul(lhs, rhs),
        "tf.linalg.matmul": lambda: tf.linalg.matmul(lhs_tf, rhs_tf).numpy(),
        "numpy.matmul, batches": batched_matmul,
        "csi_beamforming": lambda: scorer.rates(h_pred, pilot_overhead=0.125),
        "rates_all_beams": lambda: rates_all_beams(h_true[:, :, 0, :], codebook, budget.snr_scale, precision="single"),
        "scm_beam_selection": lambda: select_beams_from_scm(scm, codebook),
    }
    timings = interleaved_best(kernels, args.repeats)
    bound = timings["numpy.matmul (bound)"]
    scm_flops = 8.0 * num_ue * num_ant * num_ant * num_beams
    print(f"{'kernel':<22} {'seconds':>9} {'GFLOP/s':>9} {'x bound':>8}")
    for name, seconds in timings.items():
        work = scm_flops if name == "scm_beam_selection" else flops
        # The ratio compares equal FLOP counts: scale the bound when the SCM selection's count differs
        ratio = seconds / (bound * work / flops)
        print(f"{name:<22} {seconds:>9.3f} {work / seconds / 1e9:>9.1f} {ratio:>8.2f}")
    score = scorer.rates(h_pred, pilot_overhead=0.125)
    print(f"mean rate [bit/s/Hz]: prediction (rho=0.125) {score.rate_bps_hz.mean():.3f}, perfect CSI "
          f"{scorer.perfect_csi_rates().mean():.3f}, beam sweep {scorer.beam_sweep_rates().mean():.3f}, "
          f"random beam {scorer.random_beam_rates().mean():.3f}")


if __name__ == "__main__":
    main()
