"""Table I over training seeds: mean and spread of each method's RMSE and cosine score across study results.

    python experiments/esrresnet/seeds.py runs/esrresnet-cpu/study/results.json \
        runs/esrresnet-cpu-s1/study/results.json runs/esrresnet-cpu-s2/study/results.json

Each ``results.json`` is one ``run_study.py`` run on the same held-out split (one training seed each). The
classical baselines do not depend on the seed and come out with zero spread; a method missing from some runs
is summarised over the runs that have it (the count is printed).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

METRICS = ("PGM1", "PAM1", "PGM2", "PAM2")


def summarise(results: list[dict]) -> dict:
    """``{scope: {method: {metric: (mean, std, count)}}}``, scope ``"all"`` or a held-out scene."""
    scopes = {"all": [r["table1"] for r in results]}
    for r in results:
        for scene, table in r.get("table1_by_scene", {}).items():
            scopes.setdefault(scene, []).append(table)
    summary = {}
    for scope, tables in scopes.items():
        methods = sorted({m for t in tables for m in t}, key=lambda m: (m not in tables[0], m))
        summary[scope] = {}
        for method in methods:
            values = {k: [t[method][k] for t in tables if method in t] for k in METRICS}
            summary[scope][method] = {k: (float(np.mean(v)), float(np.std(v)), len(v)) for k, v in values.items()}
    cosine = {}
    for r in results:
        for method, score in r.get("cosine", {}).items():
            cosine.setdefault(method, []).append(100.0 * score["share_above"])
    summary["cosine_share_above_%"] = {m: (float(np.mean(v)), float(np.std(v)), len(v)) for m, v in cosine.items()}
    return summary


def markdown(summary: dict) -> str:
    lines = []
    for scope, table in summary.items():
        if scope == "cosine_share_above_%":
            continue
        lines += ["", f"### {scope}", "", "| method | runs | " + " | ".join(METRICS) + " |",
                  "|---|---:|" + "---:|" * len(METRICS)]
        for method, scores in table.items():
            count = scores[METRICS[0]][2]
            lines.append(f"| {method} | {count} | " + " | ".join(
                f"{scores[k][0]:.2f} ± {scores[k][1]:.2f}" for k in METRICS) + " |")
    lines += ["", "### SCM cosine > threshold, share of scored cells [%]", "", "| method | runs | share |",
              "|---|---:|---:|"]
    for method, (mean, std, count) in summary["cosine_share_above_%"].items():
        lines.append(f"| {method} | {count} | {mean:.1f} ± {std:.1f} |")
    return "\n".join(lines)


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("results", type=Path, nargs="+")
    args = parser.parse_args(argv)
    print(markdown(summarise([json.loads(path.read_text()) for path in args.results])))


if __name__ == "__main__":
    main()
