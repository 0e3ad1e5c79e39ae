"""Ship finished LAD-CKM (and FIRE / NeRF2) runs with the package: ``ckmsim/models/ladckm/weights/<name>/``.

    python experiments/ladckm/export_weights.py --run runs/ladckm-cpu-16x1 --run runs/fire-cpu-16x1 ... \\
        --dataset-config experiments/ladckm/dataset-cpu.toml [--study runs/ladckm-study/results.json] \\
        [--name ladckm-cpu]

Each run's best model is loaded without its optimizer and saved again as ``<label>-<N_t>x<N_r>.keras`` beside its
``ladckm.json``; the exported model is checked to predict exactly what the checkpoint does. ``provenance.json``
records, per network, the training config it was trained with (its run record), its best validation NMSE,
epochs and throughput; the dataset config verbatim, the dataset's package versions and sizes, the commands,
and (with ``--study``) the study's results.
"""

from __future__ import annotations

import ckmsim  # noqa: F401  (Mitsuba before TensorFlow)

import argparse
import json
import shutil
import time
from pathlib import Path

import numpy as np

from ckmsim.data.store import DatasetStore
from ckmsim.models.ladckm.train import RUN_INFO
from ckmsim.models.pretrained import weights_dir
from ckmsim.train.trainer import read_history


def export_run(run: Path, target: Path) -> dict:
    """Save ``run``'s best model without optimizer state into ``target``; returns its provenance entry."""
    import keras

    import ckmsim.models.fire.network  # noqa: F401  (registers the layers)
    import ckmsim.models.ladckm.network  # noqa: F401
    import ckmsim.models.nerf2.network  # noqa: F401

    info = json.loads((run / RUN_INFO).read_text())
    label = f"{info.get('model_kind', 'ladckm')}-{info['num_bs_antennas']}x{info['num_ue_antennas']}"
    if info["encoding"].get("subcarrier_step"):
        label += f"-rho{info['encoding']['subcarrier_step']}"
    trained = keras.saving.load_model(run / "best.keras", compile=False)
    path = target / f"{label}.keras"
    trained.save(path)
    reloaded = keras.saving.load_model(path, compile=False)
    rng = np.random.default_rng(0)
    channels = 2 * len(info["frequencies_ghz"])
    probe = {"uplink": rng.normal(size=(2, info["num_ue_antennas"], info["num_bs_antennas"], channels)).astype(np.float32),
             "partial_downlink": np.zeros((2, info["num_ue_antennas"], info["num_bs_antennas"], channels), np.float32)}
    if not np.array_equal(np.asarray(reloaded(probe)), np.asarray(trained(probe))):
        raise SystemExit(f"exported {path} differs from {run / 'best.keras'}")
    # the shipped record names the dataset by its folder, not by this machine's path
    (target / f"{label}.json").write_text(json.dumps({**info, "dataset": Path(info["dataset"]).name}, indent=1))
    history = read_history(run)
    losses = [row["val_loss"] for row in history if "val_loss" in row]
    return {"file": path.name, "info": f"{label}.json", "params": int(trained.count_params()),
            "epochs": len(history), "best_val_nmse": min(losses) if losses else None,
            "examples_per_s_cpu": info.get("examples_per_s"), "wall_s_cpu": info.get("wall_s"), "run": info}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--run", action="append", required=True, type=Path)
    parser.add_argument("--dataset-config", required=True, type=Path)
    parser.add_argument("--study", type=Path)
    parser.add_argument("--name", default="ladckm-cpu")
    args = parser.parse_args()
    target = weights_dir("ladckm") / args.name
    shutil.rmtree(target, ignore_errors=True)
    target.mkdir(parents=True)
    networks = [export_run(run, target) for run in args.run]
    store = DatasetStore.open(networks[0]["run"]["dataset"])
    info = {"name": args.name, "exported": time.strftime("%F"), "networks": networks,
            "dataset": {"config_toml": args.dataset_config.read_text(), "num_samples": len(store),
                        "versions": store.manifest.get("versions"), "machine": store.manifest.get("machine")},
            "training_machine": "2-core CPU (no GPU), TensorFlow CPU, one intra-op thread",
            "commands": [f"ckmsim dataset build {args.dataset_config} --out datasets/{Path(networks[0]['run']['dataset']).name}",
                         "python experiments/ladckm/train_sweep.py CONFIG --arrays NtxNr (see each network's run record)",
                         "python experiments/ladckm/export_weights.py " + " ".join(
                             f"--run {r}" for r in args.run) + f" --dataset-config {args.dataset_config}"]}
    if args.study:
        info["study"] = json.loads(args.study.read_text())
    for network in networks:
        # the shipped record names the dataset by its folder, not by this machine's path
        network["run"]["dataset"] = Path(network["run"]["dataset"]).name
    (target / "provenance.json").write_text(json.dumps(info, indent=1))
    total = sum(f.stat().st_size for f in target.iterdir())
    print(f"wrote {target}: {len(networks)} networks, {total / 2**20:.2f} MiB")


if __name__ == "__main__":
    main()
