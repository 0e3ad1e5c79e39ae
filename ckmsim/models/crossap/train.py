"""Train the cross-AP UNet from a TOML config: ``train_crossap(CONFIG)`` (``ckmsim train crossap CONFIG``).

The config (see ``experiments/crossap/train-tiny.toml``)::

    [crossap]
    dataset = "../../datasets/crossap"   # a multi-AP dataset store, relative to this file
    out = "runs/crossap-tiny"            # run folder, relative to the working directory

    [encoding]                           # ckmsim.models.crossap.data.CrossApEncoding
    inputs = "cross_ap"                  # or "radiounet" (the paper's reference point)
    num_known_aps = 7
    weight = 0.2
    gain_range_db = [-170.0, -70.0]

    [data]
    batch_size = 15                      # the paper's
    augment = true                       # the 8 rotations / reflections of an area
    min_known_aps = 4                    # draw 4..7 known APs per example; omit for always 7 (the paper)
    loss_cells = "all"                   # or "open", "reached" (leave out the cells no ray reached)

    [model]                              # ckmsim.models.crossap.network.CrossApUNet (num_input_channels is derived)
    encoder_channels = [16, 32, 48, 64]

    [train]                              # ckmsim.train.trainer.TrainSettings
    epochs = 15                          # the paper: 15 epochs, Adam 1e-3, best on validation
    learning_rate = 1e-3
    lr_patience = 0

One epoch is one pass over the (area, target AP) pairs of the training split unless ``steps_per_epoch`` is
given. The run folder holds the trainer's files (``best.keras``, ``last.keras``, ``history.csv``, ...) and
``crossap.json`` (encoding, data settings, dataset), which :meth:`CrossApUNetMethod.from_run` reads.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field, fields, replace
from pathlib import Path

from ckmsim.errors import CkmsimError
from ckmsim.models.crossap.data import LOSS_CELLS, CrossApEncoding
from ckmsim.models.crossap.method import RUN_INFO
from ckmsim.train.trainer import TrainResult, TrainSettings
from ckmsim.validation import check_table_keys, is_whole_number, read_toml

#: The paper's optimisation (Sec. IV-A): Adam at 1e-3, 15 epochs, no schedule, the best validation model kept.
PAPER_SETTINGS = TrainSettings(epochs=15, learning_rate=1e-3, lr_patience=0)

#: Keys of ``[model]``: the CrossApUNet arguments other than the derived ``num_input_channels``.
MODEL_KEYS = ("reduce_channels", "reduce_kernel_size", "encoder_channels", "extra_conv_levels", "kernel_size",
              "top_channels", "output_activation", "ap_hidden_channels", "ap_pooled_channels")


@dataclass(frozen=True)
class CrossApTrainConfig:
    """A cross-AP training run (see the module docstring for the TOML layout)."""

    dataset: str
    out: str
    encoding: CrossApEncoding = field(default_factory=CrossApEncoding)
    model: dict = field(default_factory=dict)
    settings: TrainSettings = PAPER_SETTINGS
    batch_size: int = 15
    augment: bool = True
    min_known_aps: int | None = None
    loss_cells: str = "all"

    def __post_init__(self):
        if not is_whole_number(self.batch_size, minimum=1):
            raise CkmsimError(f"[data] batch_size must be a positive integer. Received: batch_size={self.batch_size!r}")
        if self.min_known_aps is not None and not is_whole_number(self.min_known_aps, minimum=1):
            raise CkmsimError(f"[data] min_known_aps must be a positive integer. "
                              f"Received: min_known_aps={self.min_known_aps!r}")
        unknown = sorted(set(self.model) - set(MODEL_KEYS))
        if unknown:
            raise CkmsimError(f"[model] unknown key(s) {unknown}; expected a subset of {sorted(MODEL_KEYS)}")
        if self.loss_cells not in LOSS_CELLS:
            raise CkmsimError(f"[data] loss_cells must be one of {list(LOSS_CELLS)}. "
                              f"Received: loss_cells={self.loss_cells!r}")
        if not isinstance(self.augment, bool):
            raise CkmsimError(f"[data] augment must be true or false. Received: augment={self.augment!r}")

    def build_model(self):
        """A fresh :class:`~ckmsim.models.crossap.network.CrossApUNet` for this encoding."""
        from ckmsim.models.crossap.network import CrossApUNet

        slots = {}
        if self.encoding.ap_features:
            slots = {"ap_slots": self.encoding.num_known_aps, "ap_features": self.encoding.num_ap_features,
                     "ap_first_channel": self.encoding.ap_first_channel}
        return CrossApUNet(self.encoding.num_input_channels, residual_channel=self.encoding.residual_channel,
                           **slots, **self.model)

    def run_record(self) -> dict:
        """Model and data settings, stored with the run and checked on resume."""
        return {"dataset": str(self.dataset), "encoding": self.encoding.to_dict(), "model": dict(self.model),
                "batch_size": self.batch_size, "augment": self.augment, "min_known_aps": self.min_known_aps,
                "loss_cells": self.loss_cells}


_SECTIONS = {"crossap": {"dataset", "out"}, "encoding": {f.name for f in fields(CrossApEncoding)},
             "data": {"batch_size", "augment", "min_known_aps", "loss_cells"}, "model": set(MODEL_KEYS),
             "train": {f.name for f in fields(TrainSettings)}}


def load_crossap_train_config(path: str | Path, dataset: str | None = None,
                              out: str | None = None) -> CrossApTrainConfig:
    """Read and validate a cross-AP training TOML; ``dataset`` and ``out`` override the file's values."""
    path = Path(path)
    raw = read_toml(path, "Cross-AP training config")
    unknown = sorted(set(raw) - set(_SECTIONS))
    if unknown:
        raise CkmsimError(f"Cross-AP training config '{path}': unknown section(s) {unknown}; expected "
                          f"{sorted(_SECTIONS)}")
    for section, keys in _SECTIONS.items():
        check_table_keys(raw.get(section, {}), keys, f"[{section}]", f"Cross-AP training config '{path}'")
    top = raw.get("crossap", {})
    if dataset is None:
        if "dataset" not in top:
            raise CkmsimError(f"Cross-AP training config '{path}': [crossap] dataset is missing (a dataset store)")
        dataset = str((path.parent / top["dataset"]).resolve())
    out = out if out is not None else top.get("out", f"runs/{path.stem}")
    try:
        settings = replace(PAPER_SETTINGS, **raw.get("train", {}))
        data = raw.get("data", {})
        model = {key: (tuple(value) if isinstance(value, list) else value)
                 for key, value in raw.get("model", {}).items()}
        return CrossApTrainConfig(dataset=str(dataset), out=str(out),
                                  encoding=CrossApEncoding.from_dict(raw.get("encoding", {})), model=model,
                                  settings=settings, **data)
    except (CkmsimError, TypeError) as err:
        raise CkmsimError(f"Cross-AP training config '{path}': {err}") from None


def train_crossap(config_path: str | Path, dataset: str | None = None, out: str | None = None, verbose: int = 0,
                  log=print, seed: int | None = None) -> TrainResult:
    """Train (or resume) the cross-AP UNet of a TOML config; return the trainer's :class:`TrainResult`.

    Input
    -----
    config_path : the TOML file (module docstring)
    dataset, out : optional overrides of ``[crossap] dataset`` and ``out``
    verbose : Keras' verbosity
    log : where progress lines go
    seed : optional override of ``[train] seed`` (the network's initialisation and the example draws)
    """
    config = load_crossap_train_config(config_path, dataset, out)
    if seed is not None:
        config = replace(config, settings=replace(config.settings, seed=seed))
    return train_crossap_config(config, verbose=verbose, log=log)


def train_crossap_config(config: CrossApTrainConfig, verbose: int = 0, log=print) -> TrainResult:
    """:func:`train_crossap` for a config already in memory."""
    from ckmsim.data.store import DatasetStore
    from ckmsim.models.crossap.data import crossap_dataset, num_examples
    from ckmsim.models.crossap.network import masked_mse
    from ckmsim.train.trainer import train

    store = DatasetStore.open(config.dataset)
    if config.encoding.physics:
        stored = store.manifest.get("config", {}).get("ray_tracing", {}).get("frequency_hz")
        if stored is not None and abs(float(stored) - config.encoding.frequency_hz) > 1e-6 * float(stored):
            raise CkmsimError(f"[encoding] frequency_hz={config.encoding.frequency_hz:g} Hz, but dataset "
                              f"'{config.dataset}' was traced at {float(stored):g} Hz")
    num_train, num_val = num_examples(store, "train"), num_examples(store, "val")
    if not num_train:
        raise CkmsimError(f"Dataset '{config.dataset}' has no multi-AP area in its train split")
    settings = config.settings
    if settings.steps_per_epoch is None:
        # One epoch = every (area, target AP) pair once, as the paper's "each AP acts as the target in turn".
        settings = replace(settings, steps_per_epoch=math.ceil(num_train / config.batch_size))
    train_ds = crossap_dataset(store, config.encoding, "train", config.batch_size, shuffle=True,
                               augment=config.augment, min_known_aps=config.min_known_aps, seed=settings.seed,
                               epochs=None, loss_cells=config.loss_cells)
    val_ds = (crossap_dataset(store, config.encoding, "val", config.batch_size, shuffle=False, randomize=False,
                              epochs=1, loss_cells=config.loss_cells) if num_val else None)
    out = Path(config.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / RUN_INFO).write_text(json.dumps({**config.run_record(), "num_train_examples": num_train,
                                            "num_val_examples": num_val}, indent=1))
    model = config.build_model()
    log(f"cross-AP UNet ({config.encoding.inputs}): {model.count_params()} parameters, {num_train} train / "
        f"{num_val} val (area, AP) pairs, {settings.epochs} epochs x {settings.steps_per_epoch} steps of "
        f"{config.batch_size} -> {out}")
    loss = "mse" if config.loss_cells == "all" else masked_mse
    result = train(model, train_ds, val_ds, out, settings, loss=loss, run_config=config.run_record(),
                   verbose=verbose)
    if result.history:
        last = result.history[-1]
        log(f"done in {result.wall_s:.0f} s: loss {last.get('loss', float('nan')):.5f}, "
            f"val_loss {last.get('val_loss', float('nan')):.5f} (pixels^2)")
    return result
