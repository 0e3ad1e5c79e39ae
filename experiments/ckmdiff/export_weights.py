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

The weights are stored in half precision by default (``--precision float16``: 5.3 MB instead of 11.5 MiB for
the CPU model); Keras loads them into the model's float32 variables, so inference runs in float32 as before.
The exported model is then checked against the checkpoint to a tolerance (``HALF_TOLERANCE``) instead of
exactly. ``--halve NAME`` converts an already shipped set in place (its run need not exist any more) and
records the conversion in its provenance.
"""

from __future__ import annotations

import ckmsim  # noqa: F401  (Mitsuba before TensorFlow)

import argparse
import json
import shutil
import tempfile
import time
import zipfile
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


def export_model(checkpoint: Path, target: Path, precision: str = "float16") -> int:
    """Save the checkpoint's model without optimizer state (weights stored in ``precision``); returns its
    parameter count."""
    import keras

    from ckmsim.models.ckmdiff.network import LatentDiffusion  # noqa: F401  (registers the layers)

    trained = keras.saving.load_model(checkpoint, compile=False)
    trained.save(target)
    reloaded = keras.saving.load_model(target, compile=False)
    check_outputs(trained, reloaded, 0.0, f"exported {target}")
    if precision == "float16":
        halve_keras_file(target, target)
        check_outputs(trained, keras.saving.load_model(target, compile=False), HALF_TOLERANCE, f"exported {target}")
    return int(trained.count_params())


#: Largest change of any network output (pixels, features, c and eps; all of order 1) that storing the
#: weights in float16 may cause: float16 keeps 11 significant bits (relative rounding <= 4.9e-4 per weight).
HALF_TOLERANCE = 2e-2
#: The member of a ``.keras`` archive that holds the weights.
WEIGHTS_MEMBER = "model.weights.h5"


def halve_keras_file(source: Path, target: Path) -> None:
    """Copy the ``.keras`` archive ``source`` to ``target`` with every float32 weight stored as float16
    (groups, attributes and the architecture unchanged); ``source`` may be ``target``."""
    import h5py

    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        with zipfile.ZipFile(source) as archive:
            members = {name: archive.read(name) for name in archive.namelist()}
        (tmp / "full.h5").write_bytes(members.pop(WEIGHTS_MEMBER))
        with h5py.File(tmp / "full.h5", "r") as full, h5py.File(tmp / "half.h5", "w") as half:
            half.attrs.update(dict(full.attrs))

            def copy(name, item):
                if isinstance(item, h5py.Group):
                    half.require_group(name).attrs.update(dict(item.attrs))
                    return
                data = item[()]
                if data.dtype == np.float32:
                    data = data.astype(np.float16)
                half.create_dataset(name, data=data).attrs.update(dict(item.attrs))

            full.visititems(copy)
        with zipfile.ZipFile(target, "w", zipfile.ZIP_DEFLATED) as archive:
            for name, data in members.items():
                archive.writestr(name, data)
            archive.write(tmp / "half.h5", WEIGHTS_MEMBER)


def check_outputs(reference, model, tolerance: float, label: str) -> float:
    """The largest difference of :func:`network_outputs` between two models; exit if above ``tolerance``."""
    worst = max(float(np.max(np.abs(a - b))) for a, b in zip(network_outputs(reference), network_outputs(model)))
    if worst > tolerance:
        raise SystemExit(f"{label}: network outputs differ by {worst:.3g} (> {tolerance:g})")
    return worst


def halve_shipped(name: str) -> None:
    """Store the weights of the shipped set ``name`` in float16 in place, check them, note it in provenance."""
    import keras

    from ckmsim.models.ckmdiff.network import LatentDiffusion  # noqa: F401  (registers the layers)

    folder = weights_dir("ckmdiff") / name
    path, info_path = folder / SHIPPED_MODEL_FILE, folder / "provenance.json"
    info = json.loads(info_path.read_text())
    if info.get("stored_precision") == "float16":
        raise SystemExit(f"{folder} is already stored in float16")
    before = path.stat().st_size
    full = keras.saving.load_model(path, compile=False)
    halve_keras_file(path, path)
    worst = check_outputs(full, keras.saving.load_model(path, compile=False), HALF_TOLERANCE, str(path))
    info["stored_precision"] = "float16"
    info["precision_note"] = (f"weights stored in float16 on {time.strftime('%F')} ({before / 2**20:.1f} MiB -> "
                              f"{path.stat().st_size / 2**20:.1f} MiB), loaded into float32 variables; network "
                              f"outputs moved by at most {worst:.2g}. held_out_scores were measured before, in "
                              f"float32; tests/models/test_pretrained.py holds the float16 model's scores.")
    info_path.write_text(json.dumps(info, indent=1))
    print(info["precision_note"])


def stage_record(run: Path, stage: str, folder: str, timing: dict) -> dict:
    history = read_history(run / folder)
    losses = [row["val_loss"] for row in history if "val_loss" in row]
    return {"epochs": len(history), "best_val_loss": min(losses) if losses else None,
            "final_loss": history[-1]["loss"] if history else None,
            "examples_per_s_cpu": timing.get(stage, {}).get("examples_per_s"),
            "wall_s_cpu": timing.get(stage, {}).get("wall_s")}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--run", type=Path)
    parser.add_argument("--train-config", type=Path)
    parser.add_argument("--dataset-config", type=Path)
    parser.add_argument("--precision", choices=("float16", "float32"), default="float16",
                        help="storage precision of the exported weights (inference runs in float32)")
    parser.add_argument("--halve", metavar="NAME", help="store the shipped set NAME's weights in float16, in place")
    parser.add_argument("--study", type=Path)
    parser.add_argument("--name", default="ckmdiff-cpu")
    parser.add_argument("--note", help="what a reader of the provenance must know (e.g. a run stopped early)")
    args = parser.parse_args()
    if args.halve:
        halve_shipped(args.halve)
        return
    if not (args.run and args.train_config and args.dataset_config):
        parser.error("--run, --train-config and --dataset-config are required (unless --halve)")

    target = weights_dir("ckmdiff") / args.name
    shutil.rmtree(target, ignore_errors=True)
    target.mkdir(parents=True)
    params = export_model(args.run / RUN_MODEL_FILE, target / SHIPPED_MODEL_FILE, args.precision)
    run_info = json.loads((args.run / RUN_INFO).read_text())
    # the shipped description names the dataset by its folder, not by this machine's path
    (target / RUN_INFO).write_text(json.dumps({**run_info, "dataset": Path(run_info["dataset"]).name}, indent=1))
    timing = json.loads((args.run / TIMING).read_text()) if (args.run / TIMING).is_file() else {}
    store = DatasetStore.open(run_info["dataset"])
    manifest = store.manifest
    info = {
        "name": args.name, "exported": time.strftime("%F"), "file": SHIPPED_MODEL_FILE, "params": params,
        "stored_precision": args.precision,
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
