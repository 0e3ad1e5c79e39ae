"""`ckmsim train esrresnet CONFIG`: train E-SRResNet path networks (and their ablations) from a TOML file.

One config trains one or more *runs* on one dataset store; each run is one network (a path, an input
variant, a model) in its own folder ``OUT/<run name>/`` with the trainer's files (``best.keras``,
``last.keras``, ``history.csv``, ``tensorboard/``, resumable ``backup/``) plus ``summary.json`` (throughput,
best validation loss). Re-running the command resumes unfinished runs and skips finished ones.

Example (``experiments/esrresnet/train-cpu.toml``)::

    [data]
    dataset = "../../datasets/esrresnet-cpu"   # a store built by `ckmsim dataset build`; relative to this file
    factor = 2                                 # x2 super-resolution (eq. (7))
    augment = true                             # the 8 dihedral copies of every training sample
    los_source = "friis"                       # LoS prior from the paper's Friis test on the observed PGM_1

    [loss]
    exists_weight = 0.1                        # weight of the path-exists cross-entropy (PathSRLoss)

    [train]                                    # ckmsim.train.TrainSettings, plus batch_size, mixed_precision
    epochs = 30
    batch_size = 32
    learning_rate = 2e-4                       # Adam; halved after 5 epochs without validation improvement
    lr_factor = 0.5
    lr_patience = 5

    [out]
    dir = "../../runs/esrresnet-cpu"

    [model]                                    # defaults of every run: a preset of ckmsim.models.esrresnet.network
    preset = "tiny"                            # and keyword overrides (num_blocks, filters, attention, ...)

    [[runs]]
    name = "esrresnet-primary"
    path = 0
    priors = "primary"                         # a name of PRIOR_SETS or a list of priors
    [runs.model]                               # per-run overrides of [model]
    num_blocks = 4

The network's input, skip, guide and output channels always follow the run's encoding
(:meth:`~ckmsim.models.esrresnet.data.PathSREncoder.model_arguments`); its loss is
:class:`~ckmsim.models.esrresnet.network.PathSRLoss`. Before training, each run scores its untrained network --
which is ckmsim's bicubic interpolation exactly (zero-initialised correction over the bicubic skip) -- on the
validation split (``summary.json``: ``untrained_val_loss``), so that the run says whether training beat bicubic.
"""

from __future__ import annotations

import json
import time
from dataclasses import asdict, fields, replace
from pathlib import Path

from ckmsim.errors import CkmsimError
from ckmsim.validation import check_table_keys, read_toml
from ckmsim.train.trainer import TrainSettings, read_history

_SECTIONS = {"data", "train", "out", "model", "runs", "loss"}
_DATA_KEYS = {"dataset", "factor", "augment", "los_source"}
_LOSS_KEYS = {"exists_weight"}
_TRAIN_EXTRA_KEYS = {"batch_size", "mixed_precision"}
_RUN_KEYS = {"name", "path", "priors", "model"}


def load_train_config(path: str | Path, dataset: str | Path | None = None, out: str | Path | None = None) -> dict:
    """Read and validate a training TOML; paths are made absolute (relative to the file).

    ``dataset`` and ``out`` override ``[data] dataset`` and ``[out] dir``. Returns a plain dict with keys
    ``data``, ``train`` (TrainSettings), ``batch_size``, ``mixed_precision``, ``out``, ``runs`` (list of dicts
    with ``name``, ``path``, ``priors`` (tuple), ``model`` (preset name or None and overrides)).
    """
    from ckmsim.models.esrresnet.network import PRESETS
    from ckmsim.models.esrresnet.data import PRIOR_SETS, PRIORS

    path = Path(path)
    raw = read_toml(path, "Training config")
    where = f"Training config '{path}'"
    check_table_keys(raw, _SECTIONS, "top level", where)
    data = dict(raw.get("data", {}))
    check_table_keys(data, _DATA_KEYS, "[data]", where)
    if dataset is None and "dataset" not in data:
        raise CkmsimError(f"{where}: [data] dataset is missing (the store built by `ckmsim dataset build`)")
    data["dataset"] = str(Path(dataset) if dataset is not None else path.parent / data["dataset"])
    data.setdefault("factor", 2)
    data.setdefault("augment", False)
    data.setdefault("los_source", "friis")
    loss = dict(raw.get("loss", {}))
    check_table_keys(loss, _LOSS_KEYS, "[loss]", where)
    loss.setdefault("exists_weight", 0.1)

    train_table = dict(raw.get("train", {}))
    known = {f.name for f in fields(TrainSettings)} | _TRAIN_EXTRA_KEYS
    check_table_keys(train_table, known, "[train]", where)
    batch_size = train_table.pop("batch_size", 32)
    mixed_precision = bool(train_table.pop("mixed_precision", False))
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
        raise CkmsimError(f"{where}: [train] batch_size must be an integer >= 1. Received: batch_size={batch_size!r}")
    try:
        settings = TrainSettings(**train_table)
    except CkmsimError as err:
        raise CkmsimError(f"{where}: [train] {err}") from None

    out_table = dict(raw.get("out", {}))
    check_table_keys(out_table, {"dir"}, "[out]", where)
    if out is None and "dir" not in out_table:
        raise CkmsimError(f"{where}: [out] dir is missing")
    out_dir = Path(out) if out is not None else path.parent / out_table["dir"]

    defaults = dict(raw.get("model", {}))
    runs = []
    entries = raw.get("runs", [])
    if not isinstance(entries, list) or not entries:
        raise CkmsimError(f"{where}: no [[runs]] table; each run names a network to train")
    for index, entry in enumerate(entries):
        check_table_keys(entry, _RUN_KEYS, f"[[runs]] #{index}", where)
        if "name" not in entry:
            raise CkmsimError(f"{where}: [[runs]] #{index} lacks 'name'")
        priors = entry.get("priors", "primary")
        if isinstance(priors, str):
            if priors not in PRIOR_SETS:
                raise CkmsimError(f"{where}: run '{entry['name']}': unknown prior set; expected one of "
                                  f"{sorted(PRIOR_SETS)} or a list of {list(PRIORS)}. Received: priors={priors!r}")
            priors = PRIOR_SETS[priors]
        model = {**defaults, **dict(entry.get("model", {}))}
        preset = model.pop("preset", None)
        if preset is not None and preset not in PRESETS:
            raise CkmsimError(f"{where}: run '{entry['name']}': unknown preset; expected one of {sorted(PRESETS)}. "
                              f"Received: preset={preset!r}")
        runs.append({"name": str(entry["name"]), "path": int(entry.get("path", 0)), "priors": tuple(priors),
                     "preset": preset, "model": model})
    names = [run["name"] for run in runs]
    if len(set(names)) != len(names):
        raise CkmsimError(f"{where}: run names must be distinct. Received: {names}")
    return {"data": data, "train": settings, "batch_size": batch_size, "mixed_precision": mixed_precision,
            "out": out_dir, "runs": runs, "loss": loss}


def train_esrresnet(config_path: str | Path, dataset: str | Path | None = None, out: str | Path | None = None,
                    only: list[str] | None = None, seed: int | None = None, log=print) -> dict:
    """Train every run of a config (or the runs named in ``only``); resumable, finished runs are skipped.

    Input
    -----
    config_path : the training TOML (see the module docstring)
    dataset, out : optional overrides of ``[data] dataset`` and ``[out] dir``
    only : run names to train (default: all)
    seed : training seed replacing ``[train] seed`` (initialisation and batch order); give each seed its own ``out``
    log : callable for progress messages

    Output
    ------
    summaries : dict run name -> summary dict (also in ``OUT/<run>/summary.json``): ``samples_per_s``,
        ``epochs``, ``best_val_loss``, ``wall_s``, ``num_train_pairs``, ``params``
    """
    from ckmsim.data.store import DatasetStore

    config = load_train_config(config_path, dataset, out)
    if seed is not None:
        config["train"] = replace(config["train"], seed=seed)  # TrainSettings checks it
    runs = config["runs"]
    if only:
        unknown = sorted(set(only) - {run["name"] for run in runs})
        if unknown:
            raise CkmsimError(f"Unknown run(s) {unknown}; the config has {[run['name'] for run in runs]}")
        runs = [run for run in runs if run["name"] in only]
    store = DatasetStore.open(config["data"]["dataset"])
    encoded: dict = {}
    summaries = {}
    for run in runs:
        summaries[run["name"]] = _train_run(run, config, store, encoded, log)
    return summaries


def _train_run(run: dict, config: dict, store, encoded: dict, log) -> dict:
    """Train one run (resuming if its folder holds an unfinished one); returns its summary."""
    import keras

    from ckmsim.models.esrresnet.network import PathSRLoss, build_esrresnet
    from ckmsim.models.esrresnet.data import PathSREncoder, encode_store, pairs_dataset
    from ckmsim.train.trainer import train

    settings: TrainSettings = config["train"]
    data = config["data"]
    run_dir = Path(config["out"]) / run["name"]
    summary_path = run_dir / "summary.json"
    if summary_path.is_file() and len(read_history(run_dir)) >= settings.epochs:
        log(f"run '{run['name']}': finished earlier ({run_dir}), skipped")
        return json.loads(summary_path.read_text())
    encoder = PathSREncoder(path=run["path"], priors=run["priors"], factor=int(data["factor"]),
                            los_source=data["los_source"])
    # Runs with the same input encoding share the encoded pairs
    key = (encoder, bool(data["augment"]))
    if key not in encoded:
        encoded[key] = (encode_store(store, encoder, "train", augment=bool(data["augment"]), log=log),
                        encode_store(store, encoder, "val", augment=False, log=log))
    (x_train, y_train), (x_val, y_val) = encoded[key]
    train_ds = pairs_dataset(x_train, y_train, config["batch_size"], shuffle=True, seed=settings.seed,
                             repeat=settings.steps_per_epoch is not None)
    val_ds = pairs_dataset(x_val, y_val, config["batch_size"], shuffle=False)
    loss = PathSRLoss(exists_weight=float(config["loss"]["exists_weight"]))

    previous_policy = keras.mixed_precision.global_policy().name
    if config["mixed_precision"]:
        keras.mixed_precision.set_global_policy("mixed_float16")
    try:
        keras.utils.set_random_seed(int(settings.seed))
        model_args = {**run["model"], **encoder.model_arguments()}
        model = build_esrresnet(run["preset"], **model_args)
        run_config = {"dataset": data["dataset"], "num_samples": len(store), "encoder": encoder.to_dict(),
                      "augment": bool(data["augment"]), "loss": loss.get_config(),
                      "batch_size": config["batch_size"],
                      "mixed_precision": config["mixed_precision"], "model": model.get_config()}
        log(f"run '{run['name']}': path {run['path']}, priors {list(run['priors'])}, {model.count_params()} "
            f"parameters, {len(y_train)} training / {len(y_val)} validation pairs, lattice "
            f"{x_train['lowres_maps'].shape[1:]} -> {y_train.shape[1:3]}")
        untrained_val_loss = _untrained_val_loss(run_dir, model, val_ds, loss)
        timer = _epoch_timer()
        result = train(model, train_ds, val_ds, run_dir, settings, loss=loss, run_config=run_config, verbose=2,
                       extra_callbacks=[timer])
    finally:
        keras.mixed_precision.set_global_policy(previous_policy)
    epochs_now = len(result.history)
    summary = {"run": run["name"], "epochs": epochs_now, "num_train_pairs": int(len(y_train)),
               "num_val_pairs": int(len(y_val)), "params": int(model.count_params()),
               "encoder": encoder.to_dict(), "untrained_val_loss": untrained_val_loss,
               "wall_s_last_session": result.wall_s,
               "train_epoch_s": timer.train_s,
               "samples_per_s": _throughput(timer.train_s, len(y_train), settings, config["batch_size"]),
               "best_val_loss": min((row.get("val_loss", float("inf")) for row in result.history), default=None),
               "last_loss": result.history[-1].get("loss") if result.history else None,
               "best_model": str(result.best_model), "settings": asdict(settings), "time": time.strftime("%F %T")}
    summary_path.write_text(json.dumps(summary, indent=1))
    log(f"run '{run['name']}': {epochs_now} epochs, best val loss {summary['best_val_loss']:.4g} (untrained, i.e. "
        f"bicubic: {untrained_val_loss:.4g}), {summary['samples_per_s']:.1f} training samples/s")
    return summary


def _untrained_val_loss(run_dir: Path, model, val_ds, loss) -> float:
    """Validation loss of the freshly built network (bicubic exactly), measured once per run and kept in
    ``untrained_val_loss.json`` so that a resumed run reports the same number."""
    import numpy as np

    path = run_dir / "untrained_val_loss.json"
    if path.is_file():
        return float(json.loads(path.read_text())["val_loss"])
    # Keras' val_loss is the batch losses' mean weighted by batch size: the same here
    values, sizes = zip(*[(float(loss(y, model(x, training=False))), int(y.shape[0])) for x, y in val_ds])
    value = float(np.average(values, weights=sizes))
    run_dir.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"val_loss": value}))
    return value


def _epoch_timer():
    """A Keras callback recording the training time of each epoch of this session (validation excluded)."""
    import keras

    class EpochTimer(keras.callbacks.Callback):
        def __init__(self):
            super().__init__()
            self.train_s: list[float] = []
            self._started = None

        def on_epoch_begin(self, epoch, logs=None):
            self._started = time.perf_counter()

        def _stop(self):
            if self._started is not None:
                self.train_s.append(time.perf_counter() - self._started)
                self._started = None

        def on_test_begin(self, logs=None):
            self._stop()

        def on_epoch_end(self, epoch, logs=None):
            self._stop()

    return EpochTimer()


def _throughput(train_s: list[float], num_pairs: int, settings: TrainSettings, batch_size: int) -> float:
    """Training samples per second: median over this session's epochs after the first (which traces the graph).

    An epoch is ``steps_per_epoch`` batches, or one pass over the ``num_pairs`` training pairs.
    """
    import numpy as np

    if not train_s:
        return float("nan")
    per_epoch = num_pairs if settings.steps_per_epoch is None else settings.steps_per_epoch * batch_size
    steady = train_s[1:] or train_s
    return float(per_epoch / np.median(steady))
