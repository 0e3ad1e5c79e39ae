"""A resumable Keras training loop shared by every ckmsim network.

Keras does the work; this module fixes the conventions every model follows so that runs are comparable and
never lost:

- ``OUT/backup/``: :class:`keras.callbacks.BackupAndRestore` state after every epoch. Re-running the same
  command after an interruption continues from the last finished epoch (weights, optimizer, epoch counter).
- ``OUT/best.keras``: the model with the lowest validation loss so far (or training loss without validation).
- ``OUT/last.keras``: the model after the last epoch.
- ``OUT/history.csv`` (appended across resumes) and ``OUT/tensorboard/`` (TensorBoard logs).
- The learning rate is multiplied by ``lr_factor`` when the monitored loss has not improved for
  ``lr_patience`` epochs (E-SRResNet: halved after 5 epochs).
- ``OUT/train_config.json``: the settings, checked on resume so that a run is not silently continued with
  other settings.
"""

from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass
from pathlib import Path

from ckmsim.errors import CkmsimError
from ckmsim.validation import check_table_keys, is_finite_number, is_whole_number, read_toml


@dataclass(frozen=True)
class TrainSettings:
    """Optimisation settings of one run.

    Parameters
    ----------
    epochs : int
        Total epochs of the run (a resumed run trains only the remaining ones).
    learning_rate : float
        Adam's initial learning rate.
    lr_factor, lr_patience : float, int
        Plateau schedule (see the module docstring); ``lr_patience = 0`` disables it.
    steps_per_epoch : int or None
        Batches per epoch (None: one pass over a finite training dataset).
    seed : int
        Keras / TensorFlow / numpy seed set before the model is trained.
    jit_compile : bool
        XLA-compile the train step.
    """

    epochs: int = 10
    learning_rate: float = 2e-4
    lr_factor: float = 0.5
    lr_patience: int = 5
    steps_per_epoch: int | None = None
    seed: int = 0
    jit_compile: bool = False

    def __post_init__(self):
        if not is_whole_number(self.epochs, minimum=1):
            raise CkmsimError(f"epochs must be a positive integer. Received: epochs={self.epochs!r}")
        if not (is_finite_number(self.learning_rate) and self.learning_rate > 0):
            raise CkmsimError(f"learning_rate must be > 0. Received: learning_rate={self.learning_rate!r}")
        if not (is_finite_number(self.lr_factor) and 0 < self.lr_factor < 1):
            raise CkmsimError(f"lr_factor must be in (0, 1). Received: lr_factor={self.lr_factor!r}")
        if not is_whole_number(self.lr_patience, minimum=0):
            raise CkmsimError(f"lr_patience must be an integer >= 0. Received: lr_patience={self.lr_patience!r}")
        if not is_whole_number(self.seed, minimum=0):
            raise CkmsimError(f"seed must be an integer >= 0. Received: seed={self.seed!r}")
        if self.steps_per_epoch is not None and not is_whole_number(self.steps_per_epoch, minimum=1):
            raise CkmsimError(f"steps_per_epoch must be a positive integer or None. "
                              f"Received: steps_per_epoch={self.steps_per_epoch!r}")


@dataclass(frozen=True)
class TrainResult:
    """Where a run left its files, and its history (all epochs, across resumes)."""

    out: Path
    best_model: Path
    last_model: Path
    history: list[dict]
    wall_s: float


def train(model, train_data, val_data, out: str | Path, settings: TrainSettings, loss="mse",
          metrics=(), run_config: dict | None = None, verbose: int = 0, extra_callbacks=()) -> TrainResult:
    """Compile ``model`` with Adam and ``loss`` and fit it, resumably, writing into ``out``.

    The data is used in the order it comes (shuffle it in the tf.data pipeline, which is seeded).

    Input
    -----
    model : keras.Model (built or buildable from the data)
    train_data, val_data : tf.data.Dataset of ``(x, y)`` batches (``val_data`` may be None)
    out : run folder
    settings : TrainSettings
    loss, metrics : Keras loss and metrics
    run_config : dict, optional
        The model and data settings; stored with ``settings`` and checked on resume.
    verbose : int, Keras' verbosity
    extra_callbacks : Keras callbacks run after ckmsim's own (e.g. a progress printer)

    Output
    ------
    TrainResult
    """
    import keras

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    _check_or_store_config(out, {"train": asdict(settings), "run": run_config or {}})
    keras.utils.set_random_seed(int(settings.seed))
    model.compile(optimizer=keras.optimizers.Adam(settings.learning_rate), loss=loss, metrics=list(metrics),
                  jit_compile=settings.jit_compile)
    monitor = "val_loss" if val_data is not None else "loss"
    callbacks = [
        keras.callbacks.BackupAndRestore(str(out / "backup"), delete_checkpoint=False),
        keras.callbacks.ModelCheckpoint(str(out / "best.keras"), monitor=monitor, save_best_only=True),
        keras.callbacks.ModelCheckpoint(str(out / "last.keras")),
        keras.callbacks.CSVLogger(str(out / "history.csv"), append=True),
        keras.callbacks.TensorBoard(str(out / "tensorboard"), write_graph=False),
    ]
    if settings.lr_patience:
        callbacks.append(keras.callbacks.ReduceLROnPlateau(monitor=monitor, factor=settings.lr_factor,
                                                           patience=settings.lr_patience))
    started = time.perf_counter()
    model.fit(train_data, validation_data=val_data, epochs=settings.epochs, steps_per_epoch=settings.steps_per_epoch,
              callbacks=callbacks + list(extra_callbacks), verbose=verbose, shuffle=False)
    return TrainResult(out=out, best_model=out / "best.keras", last_model=out / "last.keras",
                       history=read_history(out), wall_s=time.perf_counter() - started)


def read_history(out: str | Path) -> list[dict]:
    """Rows of ``history.csv`` as dicts of floats (one per finished epoch, across resumes). Columns Keras' CSV
    logger left empty or wrote as ``NA`` (``val_*`` of a run without validation data) are left out."""
    import csv

    path = Path(out) / "history.csv"
    if not path.is_file():
        return []
    with path.open() as handle:
        return [{key: float(value) for key, value in row.items() if value not in ("", "NA")}
                for row in csv.DictReader(handle)]


def _check_or_store_config(out: Path, config: dict) -> None:
    path = out / "train_config.json"
    text = json.dumps(config, indent=1, sort_keys=True, default=str)
    if path.is_file():
        stored = path.read_text()
        if json.loads(stored) != json.loads(text):
            raise CkmsimError(f"'{out}' holds a run with other settings ({path}); use a new folder to train "
                              f"with these, or the stored settings to resume")
        return
    path.write_text(text)


def read_run_config(path: str | Path, label: str, sections: dict, top: str, dataset: str | None = None,
                    out: str | None = None) -> tuple[dict, str, str, str]:
    """A network's training TOML, its sections checked against ``sections`` (name -> allowed keys, None: not
    checked), and the run's dataset (``[top] dataset`` relative to the file, unless given) and out folder.

    Returns ``(raw, where, dataset, out)``; ``where`` names the file in error messages.
    """
    path = Path(path)
    raw = read_toml(path, label)
    where = f"{label} '{path}'"
    check_table_keys(raw, sections, "the top level", where)
    for section, keys in sections.items():
        if keys is not None:
            check_table_keys(raw.get(section, {}), keys, f"[{section}]", where)
    head = raw.get(top, {})
    if dataset is None:
        if "dataset" not in head:
            raise CkmsimError(f"{where}: [{top}] dataset is missing (a dataset store with gain maps)")
        dataset = str((path.parent / head["dataset"]).resolve())
    out = out if out is not None else head.get("out", f"runs/{path.stem}")
    return raw, where, str(dataset), str(out)


def tuples(table: dict) -> dict:
    """A TOML table with its lists as tuples (hashable, comparable with dataclass defaults)."""
    return {key: (tuple(value) if isinstance(value, list) else value) for key, value in table.items()}
