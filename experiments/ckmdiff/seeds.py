"""Mean and spread over training seeds of CKMDiff studies (issue 15), as Markdown.

Each argument is a folder of ``run_study.py`` (its ``results.json``), one per training seed, on the same maps.
Per task: every method's gain MSE and mean rate (classical methods do not depend on the seed), CKMDiff's ratio
to the best classical method of the task, and the 10-90 % coverage of its samples.

    python experiments/ckmdiff/seeds.py runs/ckmdiff-study-s0 runs/ckmdiff-study-s1 runs/ckmdiff-study-s2
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

CLASSICAL = ("bicubic", "bilinear", "knn")


def _spread(values, digits: int = 1) -> str:
    values = np.asarray(values, dtype=np.float64)
    std = values.std(ddof=1) if values.size > 1 else 0.0
    return f"{values.mean():.{digits}f} ± {std:.{digits}f}"


def summarize(folders) -> str:
    results = [json.loads((Path(f) / "results.json").read_text()) for f in folders]
    maps = {(r["dataset"], r["split"], r["num_maps"]) for r in results}
    if len(maps) != 1:
        raise SystemExit(f"The studies are on different maps: {sorted(map(str, maps))}")
    lines = [f"{len(results)} seeds, {results[0]['num_maps']} maps of split '{results[0]['split']}' "
             f"(`{results[0]['dataset']}`)", ""]
    for task in results[0]["summary"]:
        tables = [r["summary"][task] for r in results]
        classical = {n: tables[0][n] for n in CLASSICAL if n in tables[0]}
        best = min(classical, key=lambda n: classical[n]["gain_mse_db2"])
        best_rate = max(classical, key=lambda n: classical[n]["mean_rate"])
        lines += [f"### {task}", "", "| method | gain MSE [dB^2] | / best classical | mean rate [bit/s/Hz] | outage | "
                  "truth in 10-90 % |", "|---|---:|---:|---:|---:|---:|"]
        for name, row in classical.items():
            lines.append(f"| {name} | {row['gain_mse_db2']:.1f} | {row['gain_mse_db2'] / classical[best]['gain_mse_db2']:.3f} "
                         f"| {row['mean_rate']:.3f} | {row['outage']:.3f} | |")
        for name in [n for n in tables[0] if n.startswith("ckmdiff")]:
            mse = [t[name]["gain_mse_db2"] for t in tables]
            ratio = [m / classical[best]["gain_mse_db2"] for m in mse]
            rate = [t[name]["mean_rate"] for t in tables]
            outage = [t[name]["outage"] for t in tables]
            coverage = [t[name].get("coverage_80", np.nan) for t in tables]
            lines.append(f"| {name} | {_spread(mse)} | {_spread(ratio, 3)} | {_spread(rate, 3)} | "
                         f"{_spread(outage, 3)} | {_spread(coverage, 2)} |")
        lines += ["", f"Best classical: {best} by gain MSE, {best_rate} by rate "
                      f"({classical[best_rate]['mean_rate']:.3f} bit/s/Hz); perfect CSI "
                      f"{tables[0]['perfect']['mean_rate']:.3f} bit/s/Hz.", ""]
    return "\n".join(lines)


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("folders", nargs="+")
    print(summarize(parser.parse_args(argv).folders))


if __name__ == "__main__":
    main()
