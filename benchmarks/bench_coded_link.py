"""Simulated information bits per second of the coded link (5G LDPC + QAM), eager vs graph vs XLA.

Usage::

    python benchmarks/bench_coded_link.py [--mcs 4 10 17 27] [--num-codewords 512] [--batch-size 256]
                                          [--repeats 3] [--modes eager graph xla] [--quick]

For each device (the CPU, and the first GPU when TensorFlow sees one) and each MCS of 38.214 Table
5.1.3.1-1, a :class:`ckmsim.link.coded.CodedLink` is built in each execution mode and fed ``--num-codewords``
codewords in batches of ``--batch-size`` on a flat channel 1 dB above the MCS's calibrated 10 %-BLER SNR
(the decoder runs a fixed number of iterations, so the SNR changes the BLER, not the time). The bits and noise
are drawn once beforehand, so the columns time the TensorFlow chain alone (encoder, mapper, channel, APP
demapper, BP decoder); the last column times the library call :func:`ckmsim.link.coded.simulate_coded_link`
in XLA mode, host-side random draws included. Throughput is information bits per second, best of
``--repeats``; the first call of each mode (tracing, and for XLA compiling) is reported apart. All modes and
MCS are measured side by side in this one run, so the ratios compare; absolute numbers depend on the machine.
"""

from __future__ import annotations

import argparse
import time

import numpy as np

import ckmsim  # noqa: F401  (Mitsuba before TensorFlow)
import tensorflow as tf
from ckmsim.link.coded import CodedLink, CodedLinkSettings, load_thresholds, simulate_coded_link


def _batches(link: CodedLink, snr_db: float, num_codewords: int, batch_size: int, seed: int):
    """Pre-drawn ``(bits, gain, noise)`` batches covering ``num_codewords`` codewords."""
    rng = np.random.default_rng(seed)
    gain = np.full((batch_size, link.num_symbols), np.sqrt(10 ** (snr_db / 10)), dtype=np.complex64)
    batches = []
    for _ in range(-(-num_codewords // batch_size)):
        bits = rng.integers(0, 2, (batch_size, link.k)).astype(np.float32)
        noise = ((rng.standard_normal((batch_size, link.num_symbols))
                  + 1j * rng.standard_normal((batch_size, link.num_symbols))) / np.sqrt(2)).astype(np.complex64)
        batches.append((tf.constant(bits), tf.constant(gain), tf.constant(noise)))
    return batches


def _time_mode(link: CodedLink, batches, repeats: int) -> tuple[float, float, float]:
    """(first-call seconds, best seconds for all batches, BLER) of one link."""
    start = time.perf_counter()
    link.block_errors(*batches[0])
    first_s = time.perf_counter() - start
    best_s, errors = np.inf, 0
    for _ in range(repeats):
        start = time.perf_counter()
        errors = sum(int(link.block_errors(*batch).sum()) for batch in batches)
        best_s = min(best_s, time.perf_counter() - start)
    return first_s, best_s, errors / (len(batches) * batches[0][0].shape[0])


def run(mcs_list, modes, num_codewords: int, batch_size: int, repeats: int, seed: int = 0) -> None:
    settings = CodedLinkSettings()
    thresholds = load_thresholds()
    devices = ["/CPU:0"] + (["/GPU:0"] if tf.config.list_physical_devices("GPU") else [])
    num_codewords = -(-num_codewords // batch_size) * batch_size
    print(f"coded link: {settings.num_symbols} QAM symbols per codeword, {settings.num_iter} BP iterations, "
          f"{num_codewords} codewords in batches of {batch_size}, best of {repeats}; TensorFlow {tf.__version__}, "
          f"devices {devices}")
    for device in devices:
        print(f"\n{device}: information bits per second (first call = trace/compile seconds)")
        header = f"{'MCS':>3} {'Qm':>2} {'k':>5} {'n':>5}" + "".join(f" {m + ' Mbit/s':>13} {m + ' 1st s':>9}"
                                                                  for m in modes)
        ratios = [f"{a}/{b}" for a, b in (("xla", "eager"), ("xla", "graph"), ("graph", "eager"))
                  if a in modes and b in modes]
        header += "".join(f" {r:>11}" for r in ratios) + f" {'lib xla Mbit/s':>15} {'BLER':>6}"
        print(header)
        for mcs in mcs_list:
            with tf.device(device):
                rate, first, bler = {}, {}, 0.0
                for mode in modes:
                    link = CodedLink(mcs, settings, mode=mode)
                    batches = _batches(link, thresholds.snr_db[mcs] + 1.0, num_codewords, batch_size, seed)
                    first[mode], best_s, bler = _time_mode(link, batches, repeats)
                    rate[mode] = link.k * num_codewords / best_s
                # the library call, numpy draws included (its XLA link is compiled on the first call)
                snr = 10 ** ((thresholds.snr_db[mcs] + 1.0) / 10)
                h = np.ones((num_codewords // 64, 64))
                simulate_coded_link(h, snr, mcs, num_codewords=64, batch_size=batch_size, seed=seed)
                start = time.perf_counter()
                simulate_coded_link(h, snr, mcs, num_codewords=64, batch_size=batch_size, seed=seed + 1)
                library = link.k * num_codewords / (time.perf_counter() - start)
            row = f"{mcs:>3} {link.modulation_order:>2} {link.k:>5} {link.n:>5}"
            row += "".join(f" {rate[m] / 1e6:>13.3f} {first[m]:>9.2f}" for m in modes)
            row += "".join(f" {rate[r.split('/')[0]] / rate[r.split('/')[1]]:>11.2f}" for r in ratios)
            print(row + f" {library / 1e6:>15.3f} {bler:>6.3f}", flush=True)


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--mcs", type=int, nargs="+", default=[4, 10, 17, 27])
    parser.add_argument("--modes", nargs="+", default=["eager", "graph", "xla"], choices=["eager", "graph", "xla"])
    parser.add_argument("--num-codewords", type=int, default=512)
    parser.add_argument("--batch-size", type=int, default=256)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--quick", action="store_true", help="MCS 10 only, 256 codewords, 1 repeat")
    args = parser.parse_args(argv)
    if args.quick:
        args.mcs, args.num_codewords, args.repeats = [10], 256, 1
    run(args.mcs, args.modes, args.num_codewords, args.batch_size, args.repeats)


if __name__ == "__main__":
    main()
