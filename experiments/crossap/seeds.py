"""Mean and spread over training seeds of cross-AP study results (issue 14).

Each argument is a study folder of ``run_study.py`` (its ``results.json``), one per training seed of the same
configuration on the same split. Prints, as Markdown: the UNet's RMSE on all open cells and on ray-reached
cells, its ratio to the distance-weighted benchmark of eq. (7) (which does not depend on the seed), and, when
the study has one, the deployment shares; mean, sample standard deviation and range over the seeds.

    python experiments/crossap/seeds.py runs/study-dense-s0 runs/study-dense-s1 runs/study-dense-s2
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np


def _spread(values) -> str:
    values = np.asarray(values, dtype=np.float64)
    std = values.std(ddof=1) if values.size > 1 else 0.0
    return f"{values.mean():.3f} ± {std:.3f} ({values.min():.3f}-{values.max():.3f})"


def summarize(folders: list[Path]) -> str:
    results = [json.loads((Path(f) / "results.json").read_text()) for f in folders]
    splits = {(r["dataset"], r["split"], r.get("num_aps")) for r in results}
    if len(splits) != 1:
        raise SystemExit(f"The studies are on different data: {sorted(map(str, splits))}")
    rows = [r["table_one"]["rows"] for r in results]
    for name in ("unet", "distance_weighted"):
        if any(name not in row for row in rows):
            raise SystemExit(f"Every study needs the scheme {name!r}")
    dw_all = {row["distance_weighted"]["rmse_db"] for row in rows}
    if max(dw_all) - min(dw_all) > 1e-9:
        raise SystemExit("The distance-weighted RMSE differs between the studies: not the same test data")
    lines = [f"{len(results)} seeds, {results[0]['num_targets']} targets on {results[0]['num_areas']} areas "
             f"(`{results[0]['dataset']}`, first {results[0].get('num_aps') or 'all'} APs)", "",
             "| quantity | mean ± std (range) over seeds |", "|---|---:|"]
    unet_all = [row["unet"]["rmse_db"] for row in rows]
    unet_reached = [row["unet"]["rmse_reached_db"] for row in rows]
    lines += [f"| UNet RMSE, open cells [dB] | {_spread(unet_all)} |",
              f"| UNet RMSE, ray-reached cells [dB] | {_spread(unet_reached)} |",
              f"| UNet / eq. (7), open cells | {_spread(np.array(unet_all) / rows[0]['distance_weighted']['rmse_db'])} |",
              f"| UNet / eq. (7), ray-reached | "
              f"{_spread(np.array(unet_reached) / rows[0]['distance_weighted']['rmse_reached_db'])} |"]
    for name, row in rows[0].items():
        if name != "unet":
            lines.append(f"| {row['label']} RMSE (open / ray-reached) [dB] | {row['rmse_db']:.2f} / "
                         f"{row['rmse_reached_db']:.2f} |")
    if all(r.get("deployment") for r in results):
        summaries = [r["deployment"]["summary"] for r in results]
        lines += [f"| UNet deployment, mean share of oracle | {_spread([s['unet']['mean_fraction_of_oracle'] for s in summaries])} |",
                  f"| UNet deployment, worst area | {_spread([s['unet']['min_fraction_of_oracle'] for s in summaries])} |",
                  f"| UNet deployment, areas within 5 % | {_spread([s['unet']['areas_within_5pct'] for s in summaries])} |",
                  f"| UNet deployment, oracle site picked | {_spread([s['unet']['oracle_site_chosen'] for s in summaries])} |"]
    return "\n".join(lines)


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("studies", nargs="+", type=Path, help="run_study.py output folders, one per seed")
    print(summarize(parser.parse_args(argv).studies))


if __name__ == "__main__":
    main()
