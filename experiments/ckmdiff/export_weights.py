"""Ship a finished CKMDiff training run with the package: ``ckmsim/models/ckmdiff/weights/<name>/``.

    python experiments/ckmdiff/export_weights.py --run runs/ckmdiff-shipped \\
        --train-config experiments/ckmdiff/train-cpu-shipped.toml \\
        --dataset-config experiments/crossap/dataset-dense11.toml \\
        [--study runs/ckmdiff-shipped-study/results.json] [--name ckmdiff-cpu]

The diffusion stage's best model (``RUN/ddm/best.keras``, which holds the frozen VAE and the condition encoder)
is loaded without its optimizer and saved again as ``ckmdiff.keras``, beside the run's ``ckmdiff.json``.
``provenance.json`` records the dataset and training configs verbatim, the commands, the dataset's package
versions and sample counts, each stage's best validation loss, epochs and throughput, the tasks, and (with
``--study``) the held-out scores of ``run_study.py``. The exported model is checked to give exactly the
checkpoint's network outputs.
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
from ckmsim.models.ckmdiff.method import RUN_MODEL_FILE, SHIPPED_MODEL_FILE
from ckmsim.models.ckmdiff.train import RUN_INFO, TIMING
from ckmsim.models.pretrained import weights_dir
from ckmsim.train.trainer import read_history


def network_outputs(model, size: int = 32) -> list[np.ndarray]:
    """The VAE round trip, the condition features and both UNet branches on fixed random inputs."""
    rng = np.random.default_rng(0)
    x = rng.random((2, size, size, 1), dtype=np.float32)
    cond = rng.random((2, size, size, 3), dtype=np.float32)
    z_t = rng.normal(size=(2, size // 4, size // 4, model.vae.latent_channels)).astype(np.float32)
    t = np.array([0.2, 0.8], np.float32)
    features = model.condition_features(cond)
    return [np.asarray(model.vae(x))] + [np.asarray(f) for f in features] + [
        np.asarray(v) for v in model.predict_c_eps(z_t, t, features)]


def export_model(checkpoint: Path, target: Path) -> int:
    """Save the checkpoint's model without optimizer state; returns its parameter count."""
    import keras

    from ckmsim.models.ckmdiff.network import LatentDiffusion  # noqa: F401  (registers the layers)

    trained = keras.saving.load_model(checkpoint, compile=False)
    trained.save(target)
    reloaded = keras.saving.load_model(target, compile=False)
    for before, after in zip(network_outputs(trained), network_outputs(reloaded)):
        if not np.array_equal(before, after):
            raise SystemExit(f"exported {target} differs from {checkpoint} by {np.max(np.abs(before - after))}")
    return int(trained.count_params())


def stage_record(run: Path, stage: str, folder: str, timing: dict) -> dict:
    history = read_history(run / folder)
    losses = [row["val_loss"] for row in history if "val_loss" in row]
    return {"epochs": len(history), "best_val_loss": min(losses) if losses else None,
            "final_loss": history[-1]["loss"] if history else None,
            "examples_per_s_cpu": timing.get(stage, {}).get("examples_per_s"),
            "wall_s_cpu": timing.get(stage, {}).get("wall_s")}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--run", required=True, type=Path)
    parser.add_argument("--train-config", required=True, type=Path)
    parser.add_argument("--dataset-config", required=True, type=Path)
    parser.add_argument("--study", type=Path)
    parser.add_argument("--name", default="ckmdiff-cpu")
    parser.add_argument("--note", help="what a reader of the provenance must know (e.g. a run stopped early)")
    args = parser.parse_args()

    target = weights_dir("ckmdiff") / args.name
    shutil.rmtree(target, ignore_errors=True)
    target.mkdir(parents=True)
    params = export_model(args.run / RUN_MODEL_FILE, target / SHIPPED_MODEL_FILE)
    run_info = json.loads((args.run / RUN_INFO).read_text())
    # the shipped description names the dataset by its folder, not by this machine's path
    (target / RUN_INFO).write_text(json.dumps({**run_info, "dataset": Path(run_info["dataset"]).name}, indent=1))
    timing = json.loads((args.run / TIMING).read_text()) if (args.run / TIMING).is_file() else {}
    store = DatasetStore.open(run_info["dataset"])
    manifest = store.manifest
    info = {
        "name": args.name, "exported": time.strftime("%F"), "file": SHIPPED_MODEL_FILE, "params": params,
        "tasks": [r.get("task", "generation") for r in run_info["degradations"]],
        "stages": {"vae": stage_record(args.run, "vae", "vae", timing),
                   "diffusion": stage_record(args.run, "diffusion", "ddm", timing)},
        "dataset": {"config_toml": args.dataset_config.read_text(), "num_samples": len(store),
                    "splits": {s: int(len(store.indices(s))) for s in ("train", "val", "test")},
                    "versions": manifest.get("versions"), "machine": manifest.get("machine")},
        "training": {"config_toml": args.train_config.read_text(),
                     "machine": "2-core CPU (no GPU), TensorFlow CPU, one intra-op thread"},
        "commands": [f"ckmsim dataset build {args.dataset_config} --out datasets/{Path(run_info['dataset']).name}",
                     f"ckmsim train ckmdiff {args.train_config} --out {args.run}",
                     "python experiments/ckmdiff/export_weights.py " + " ".join(
                         f"--{k.replace('_', '-')} {v}" for k, v in vars(args).items() if v is not None)],
    }
    if args.note:
        info["note"] = args.note
    if args.study:
        study = json.loads(args.study.read_text())
        info["commands"].insert(2, study.get("command", "python experiments/ckmdiff/run_study.py"))
        info["held_out_scores"] = {key: study[key] for key in ("dataset", "split", "num_maps", "samples", "steps",
                                                               "summary", "seconds_per_sample") if key in study}
    (target / "provenance.json").write_text(json.dumps(info, indent=1))
    total = sum(f.stat().st_size for f in target.iterdir())
    print(f"wrote {target}: {params} parameters, {total / 2**20:.1f} MiB")


if __name__ == "__main__":
    main()
