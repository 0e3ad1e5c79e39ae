"""Mean and spread over training seeds of CKMDiff studies (issue 15), as Markdown.

Each argument is a folder of ``run_study.py`` (its ``results.json``), one per training seed, on the same maps.
Per task: every method's gain MSE and mean rate (classical methods do not depend on the seed), CKMDiff's ratio
to the best classical method of the task, and the 10-90 % coverage of its samples.

    python experiments/ckmdiff/seeds.py runs/ckmdiff-study-s0 runs/ckmdiff-study-s1 runs/ckmdiff-study-s2

``--within FOLDER``: one study whose learned methods carry their seed in their name (``pix2pix_s0``,
``pix2pix_s1``, ... from ``run_study.py --baseline``): mean and spread per method over its seeds, beside the
single-map methods, with the AP-decision columns.

    python experiments/ckmdiff/seeds.py --within runs/ckmdiff-baselines-study
"""

from __future__ import annotations

import argparse
import json
import re
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


#: Columns of the ``--within`` table: key, header, digits.
WITHIN_COLUMNS = (("gain_mse_db2", "gain MSE [dB^2]", 1), ("ssim", "SSIM", 3), ("mean_rate", "mean rate [bit/s/Hz]", 3),
                  ("outage", "outage", 3), ("coded_goodput", "coded goodput [bit/s/Hz]", 3),
                  ("association_share", "association / oracle", 3), ("deployment_share", "site / oracle", 3))


def summarize_within(folder) -> str:
    result = json.loads((Path(folder) / "results.json").read_text())
    lines = [f"{result['num_maps']} maps of split '{result['split']}' (`{result['dataset']}`, "
             f"{result.get('num_areas', '?')} areas); learned rows: mean ± spread over the seeds in their names", ""]
    for task, table in result["summary"].items():
        groups: dict[str, list[dict]] = {}
        for name, row in table.items():
            if "gain_mse_db2" in row and not name.endswith("_risk"):
                groups.setdefault(re.sub(r"_s\d+$", "", name), []).append(row)
        columns = [c for c in WITHIN_COLUMNS if any(c[0] in rows[0] for rows in groups.values())]
        lines += [f"### {task}", "", "| method | seeds | " + " | ".join(c[1] for c in columns) + " |",
                  "|---|---:|" + "---:|" * len(columns)]
        for name, rows in groups.items():
            cells = [_spread([r.get(key, np.nan) for r in rows], digits) if len(rows) > 1
                     else f"{rows[0].get(key, np.nan):.{digits}f}" for key, _, digits in columns]
            lines.append(f"| {name} | {len(rows)} | " + " | ".join(cells) + " |")
        random_share = table.get("perfect", {}).get("random_deployment_share")
        if random_share is not None:
            lines += ["", f"A random site earns {random_share:.3f} of the best site's mean rate."]
        lines.append("")
    return "\n".join(lines)


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("folders", nargs="*")
    parser.add_argument("--within", help="one study with seed-named learned methods")
    args = parser.parse_args(argv)
    if args.within:
        print(summarize_within(args.within))
    if args.folders:
        print(summarize(args.folders))


if __name__ == "__main__":
    main()
