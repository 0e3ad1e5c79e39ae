"""Ship a finished E-SRResNet training run with the package: ``ckmsim/models/esrresnet/weights/<name>/``.

    python experiments/esrresnet/export_weights.py --runs runs/esrresnet-cpu \
        --train-config experiments/esrresnet/train-cpu.toml \
        --dataset-config experiments/esrresnet/dataset-cpu.toml --dataset datasets/esrresnet-cpu \
        [--study runs/esrresnet-cpu/study/results.json] [--name esrresnet-cpu]

Each network (``<runs>/esrresnet-primary/best.keras`` and ``esrresnet-secondary``) is rebuilt from its
config, given the trained weights and saved without optimizer state (a third of the checkpoint's size).
``provenance.json`` records the dataset and training configs verbatim, the commands, the dataset's package
versions and sample count, each network's best validation loss and throughput, and (with ``--study``) the
held-out scores of the study. The exported networks are checked to predict exactly what the checkpoints do.
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
from ckmsim.models.esrresnet.method import input_shapes
from ckmsim.models.esrresnet.network import ESRResNet, load_esrresnet
from ckmsim.models.pretrained import weights_dir

ROLES = {"primary": "esrresnet-primary", "secondary": "esrresnet-secondary"}


def export_network(checkpoint: Path, target: Path) -> dict:
    """Rebuild, copy the weights, save without optimizer; returns the model config and parameter count."""
    trained = load_esrresnet(checkpoint)
    clean = ESRResNet.from_config(trained.get_config())
    clean.set_weights(trained.get_weights())
    clean.save(target)
    reloaded = load_esrresnet(target)
    rng = np.random.default_rng(0)
    # a random 16 x 16 lattice, its 32 x 32 skip and guide: {name: [1, h, w, c]}
    probe = {name: rng.random((1, 16 * (1 if name == "lowres_maps" else trained.scale), 16 * (
        1 if name == "lowres_maps" else trained.scale), shape[-1]), dtype=np.float32)
        for name, shape in zip(("lowres_maps", "skip_maps", "guide_maps"), input_shapes(trained))}
    difference = float(np.max(np.abs(np.asarray(reloaded(probe)) - np.asarray(trained(probe)))))
    if difference != 0.0:
        raise SystemExit(f"exported {target} differs from {checkpoint} by {difference}")
    return {"file": target.name, "params": int(clean.count_params()), "model": clean.get_config()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", required=True, type=Path)
    parser.add_argument("--train-config", required=True, type=Path)
    parser.add_argument("--dataset-config", required=True, type=Path)
    parser.add_argument("--dataset", required=True, type=Path)
    parser.add_argument("--study", type=Path)
    parser.add_argument("--name", default="esrresnet-cpu")
    parser.add_argument("--model-file", default="best.keras")
    args = parser.parse_args()

    target = weights_dir("esrresnet") / args.name
    shutil.rmtree(target, ignore_errors=True)
    target.mkdir(parents=True)
    store = DatasetStore.open(args.dataset)
    networks, factor = {}, None
    for role, run in ROLES.items():
        run_dir = args.runs / run
        run_config = json.loads((run_dir / "train_config.json").read_text())["run"]
        summary = json.loads((run_dir / "summary.json").read_text())
        encoder = run_config["encoder"]
        factor = int(encoder["factor"])
        networks[role] = {**export_network(run_dir / args.model_file, target / f"{role}.keras"),
                          "run": run, "encoder": encoder, "loss": run_config["loss"],
                          "augment": run_config["augment"], "epochs": summary["epochs"],
                          "best_val_loss": summary["best_val_loss"],
                          "untrained_val_loss": summary["untrained_val_loss"],
                          "train_samples_per_s_cpu": summary["samples_per_s"],
                          "num_train_pairs": summary["num_train_pairs"], "num_val_pairs": summary["num_val_pairs"]}
        print(f"{role}: {networks[role]['params']} parameters -> {target / networks[role]['file']}")
    manifest = store.manifest
    info = {
        "name": args.name, "factor": factor, "exported": time.strftime("%F"),
        "networks": networks,
        "dataset": {"config_toml": args.dataset_config.read_text(), "num_samples": len(store),
                    "splits": {s: int(len(store.indices(s))) for s in ("train", "val", "test")},
                    "versions": manifest.get("versions"), "machine": manifest.get("machine")},
        "training": {"config_toml": args.train_config.read_text(),
                     "machine": "2-core CPU (no GPU), TensorFlow CPU"},
        "commands": [f"ckmsim dataset build {args.dataset_config} --out {args.dataset}",
                     f"ckmsim train esrresnet {args.train_config}",
                     "python experiments/esrresnet/run_study.py experiments/esrresnet/study-cpu.toml",
                     "python experiments/esrresnet/export_weights.py " + " ".join(
                         f"--{k.replace('_', '-')} {v}" for k, v in vars(args).items() if v is not None)],
    }
    if args.study:
        study = json.loads(args.study.read_text())
        # the snap decoding chosen on the validation city by the study (None: the networks' azimuths)
        snaps = study.get("snap_tuning", {}).get("esrresnet", {}).get("snaps", [None, None])
        for role, snap in zip(ROLES, snaps):
            networks[role]["snap"] = snap
        info["held_out_scores"] = {k: study[k] for k in ("split", "num_samples", "table1", "improvement", "cosine",
                                                        "link") if k in study}
    (target / "provenance.json").write_text(json.dumps(info, indent=1))
    total = sum(f.stat().st_size for f in target.iterdir())
    print(f"wrote {target} ({total / 2**20:.1f} MiB)")


if __name__ == "__main__":
    main()
