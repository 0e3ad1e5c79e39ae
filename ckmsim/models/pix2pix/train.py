"""Train the conditional baselines of CKMDiff from a TOML config: ``train_pix2pix(CONFIG)``
(``ckmsim train pix2pix CONFIG``).

Both learn the map ``condition image -> gain pixels`` on CKMDiff's examples (:mod:`ckmsim.models.ckmdiff.data`:
the same encoding, the same random degradation per example, the same augmentation), so that they differ from
CKMDiff only in the network and the loss:

- ``model = "pix2pix"``: :class:`~ckmsim.models.pix2pix.network.Pix2Pix`, the U-Net generator with L1 and the
  PatchGAN's adversarial term (``adversarial_weight = 0`` trains the generator alone, with no discriminator);
- ``model = "radiounet"``: :class:`~ckmsim.models.crossap.network.CrossApUNet` (RadioUNet's layout) on the
  3-channel condition image, MSE, no discriminator.

The config (see ``experiments/ckmdiff/pix2pix-cpu.toml`` and ``radiounet-cpu.toml``)::

    [pix2pix]
    model = "pix2pix"                          # or "radiounet"
    dataset = "../../datasets/crossap-dense11" # a dataset store with gain maps, relative to this file
    out = "runs/pix2pix-cpu"                   # run folder, relative to the working directory

    [encoding]                                 # ckmsim.models.ckmdiff.data.CKMDiffEncoding
    gain_range_db = [-170.0, -70.0]

    [[degradation]]                            # each example draws one of these (no generation entry)
    steps = [{kind = "block_average", factor = 4}, {kind = "noise", std_px = 0.11764705882352941}]

    [generator]                                # UNetGenerator (pix2pix) or CrossApUNet (radiounet) arguments;
    filters = [64, 128, 256, 512, 512]         # the channel counts are derived

    [discriminator]                            # pix2pix only: PatchDiscriminator
    filters = [64, 128]
    [loss]                                     # pix2pix only: Pix2Pix's objective
    reconstruction_weight = 100.0              # lambda
    adversarial_weight = 1.0

    [train]                                    # TrainSettings, and:
    batch_size = 8
    augment = true

The run folder holds the trainer's files (``best.keras``, chosen on the validation reconstruction loss,
``history.csv``, ...), ``timing.json`` and ``pix2pix.json`` (the model kind, encoding, degradations, dataset and
network settings), which :class:`~ckmsim.models.pix2pix.method.Pix2PixMethod` reads.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field, fields, replace
from pathlib import Path

from ckmsim.errors import CkmsimError
from ckmsim.maps.degrade import Degradation
from ckmsim.models.ckmdiff.data import NUM_CONDITION_CHANNELS, CKMDiffEncoding
from ckmsim.models.crossap.train import MODEL_KEYS as CROSSAP_MODEL_KEYS
from ckmsim.train.trainer import TrainSettings, read_run_config, tuples
from ckmsim.validation import check_table_keys, is_finite_number, is_whole_number

#: The run's description, read by Pix2PixMethod.
RUN_INFO = "pix2pix.json"
#: The model kinds of ``[pix2pix] model``.
MODELS = ("pix2pix", "radiounet")
#: ``[generator]`` keys per model: the network's arguments other than the derived channel counts.
GENERATOR_KEYS = {"pix2pix": ("filters", "num_dropout", "dropout_rate", "norm"),
                  "radiounet": CROSSAP_MODEL_KEYS}
DISCRIMINATOR_KEYS = ("filters", "strides", "norm")
LOSS_KEYS = ("reconstruction", "reconstruction_weight", "adversarial_weight")
DATA_KEYS = ("batch_size", "augment")
#: Tables only pix2pix has (RadioUNet trains with MSE and no discriminator).
PIX2PIX_ONLY = ("discriminator", "loss")
_SECTIONS = {"pix2pix": {"model", "dataset", "out"}, "encoding": {f.name for f in fields(CKMDiffEncoding)},
             "degradation": None, "generator": None, "discriminator": set(DISCRIMINATOR_KEYS),
             "loss": set(LOSS_KEYS), "train": {f.name for f in fields(TrainSettings)} | set(DATA_KEYS)}


@dataclass(frozen=True)
class Pix2PixTrainConfig:
    """A pix2pix or RadioUNet training run (module docstring for the TOML layout). ``degradations`` holds
    :class:`~ckmsim.maps.degrade.Degradation` objects."""

    dataset: str
    out: str
    degradations: tuple
    model: str = "pix2pix"
    encoding: CKMDiffEncoding = field(default_factory=CKMDiffEncoding)
    generator: dict = field(default_factory=dict)
    discriminator: dict = field(default_factory=dict)
    loss: dict = field(default_factory=dict)
    settings: TrainSettings = TrainSettings(epochs=20, learning_rate=2e-4, lr_patience=0)
    batch_size: int = 8
    augment: bool = True

    def __post_init__(self):
        if self.model not in MODELS:
            raise CkmsimError(f"[pix2pix] model must be one of {list(MODELS)}. Received: model={self.model!r}")
        if not self.degradations or any(not isinstance(d, Degradation) for d in self.degradations):
            raise CkmsimError("[[degradation]]: at least one table with steps = [...] is needed (the baselines are "
                              "conditional: no generation entry)")
        if not is_whole_number(self.batch_size, minimum=1):
            raise CkmsimError(f"batch_size must be a positive integer. Received: batch_size={self.batch_size!r}")
        if not isinstance(self.augment, bool):
            raise CkmsimError(f"augment must be true or false. Received: augment={self.augment!r}")
        check_table_keys(self.generator, GENERATOR_KEYS[self.model], "[generator]", f"model {self.model!r}")
        if self.model == "radiounet":
            for section in PIX2PIX_ONLY:
                if getattr(self, section):
                    raise CkmsimError(f"[{section}] has no use with model = 'radiounet' (RadioUNet trains with "
                                      f"MSE and no discriminator). Received: {getattr(self, section)!r}")
        weight = self.loss.get("adversarial_weight", 1.0)
        if not (is_finite_number(weight) and weight >= 0):
            raise CkmsimError(f"[loss] adversarial_weight must be a number >= 0. Received: adversarial_weight={weight!r}")

    @property
    def has_discriminator(self) -> bool:
        return self.model == "pix2pix" and self.loss.get("adversarial_weight", 1.0) > 0

    def build_model(self):
        """``(model, generator)``: the model the trainer fits and the network that maps a condition image to
        pixels (the same CrossApUNet for RadioUNet; a :class:`Pix2Pix` and its generator otherwise)."""
        if self.model == "radiounet":
            from ckmsim.models.crossap.network import CrossApUNet

            network = CrossApUNet(NUM_CONDITION_CHANNELS, **self.generator)
            return network, network
        from ckmsim.models.pix2pix.network import PatchDiscriminator, Pix2Pix, UNetGenerator

        generator = UNetGenerator(NUM_CONDITION_CHANNELS, 1, **self.generator)
        discriminator = (PatchDiscriminator(NUM_CONDITION_CHANNELS, 1, **self.discriminator)
                         if self.has_discriminator else None)
        return Pix2Pix(generator, discriminator, **self.loss), generator

    def run_record(self) -> dict:
        return {"model": self.model, "dataset": self.dataset, "encoding": self.encoding.to_dict(),
                "degradations": [{**d.to_config(), "task": d.task} for d in self.degradations],
                "generator": self.generator, "discriminator": self.discriminator if self.has_discriminator else None,
                "loss": self.loss, "batch_size": self.batch_size, "augment": self.augment}


def _degradation(entry, where: str) -> Degradation:
    if not isinstance(entry, dict):
        raise CkmsimError(f"{where} must be a table with 'steps' (and optional 'seed'). Received: {entry!r}")
    if "generation" in entry:
        raise CkmsimError(f"{where}: the baselines are conditional (an observation in, a map out); a generation "
                          f"entry has nothing to condition on")
    try:
        return Degradation.from_config(entry)
    except CkmsimError as err:
        raise CkmsimError(f"{where}: {err}") from None


def load_pix2pix_train_config(path: str | Path, dataset: str | None = None, out: str | None = None) -> Pix2PixTrainConfig:
    """Read and validate a pix2pix / RadioUNet training TOML; ``dataset`` and ``out`` override the file's."""
    raw, where, dataset, out = read_run_config(path, "Pix2pix training config", _SECTIONS, "pix2pix", dataset, out)
    top = raw.get("pix2pix", {})
    model = top.get("model", "pix2pix")
    if model not in MODELS:
        raise CkmsimError(f"{where}: [pix2pix] model must be one of {list(MODELS)}. Received: model={model!r}")
    check_table_keys(raw.get("generator", {}), GENERATOR_KEYS[model], f"[generator] of model {model!r}", where)
    entries = raw.get("degradation", [])
    if not isinstance(entries, list):
        raise CkmsimError(f"{where}: degradations are an array of tables, [[degradation]]")
    try:
        degradations = tuple(_degradation(e, f"[[degradation]] {i}") for i, e in enumerate(entries))
        train_raw = dict(raw.get("train", {}))
        data = {key: train_raw.pop(key) for key in DATA_KEYS if key in train_raw}
        base = Pix2PixTrainConfig.__dataclass_fields__["settings"].default
        return Pix2PixTrainConfig(
            dataset=str(dataset), out=str(out), degradations=degradations, model=model,
            encoding=CKMDiffEncoding.from_dict(raw.get("encoding", {})),
            generator=tuples(raw.get("generator", {})),
            discriminator=tuples(raw.get("discriminator", {})), loss=dict(raw.get("loss", {})),
            settings=replace(base, **train_raw), **data)
    except (CkmsimError, TypeError) as err:
        raise CkmsimError(f"{where}: {err}") from None


def train_pix2pix(config_path: str | Path, dataset: str | None = None, out: str | None = None, verbose: int = 0,
                  log=print, seed: int | None = None) -> Path:
    """Train (or resume) the model of a TOML config; returns the run folder. ``seed`` overrides
    ``[train] seed`` (the networks' initialisation and every example draw)."""
    config = load_pix2pix_train_config(config_path, dataset, out)
    if seed is not None:
        config = replace(config, settings=replace(config.settings, seed=seed))
    return train_pix2pix_config(config, verbose=verbose, log=log)


def pair_dataset(truths, degradations, encoding: CKMDiffEncoding, batch_size: int, seed: int = 0,
                 augment: bool = False, epochs: int | None = None, shuffle: bool = True):
    """``tf.data`` of ``(condition [B, H, W, 3], target [B, H, W, 1])`` batches: CKMDiff's example stream
    (:func:`~ckmsim.models.ckmdiff.data.diffusion_dataset`, the same draws for the same seed) as the ``(x, y)``
    pairs of a conditional regressor."""
    from ckmsim.models.ckmdiff.data import diffusion_dataset

    data = diffusion_dataset(truths, degradations, encoding, batch_size, seed, augment, epochs, shuffle)
    return data.map(lambda inputs, _: (inputs["cond"], inputs["x"]))


def train_pix2pix_config(config: Pix2PixTrainConfig, verbose: int = 0, log=print) -> Path:
    """:func:`train_pix2pix` for a config already in memory."""
    import keras
    import numpy as np

    from ckmsim.data.store import DatasetStore
    from ckmsim.models.ckmdiff.data import load_truths
    from ckmsim.models.ckmdiff.train import _epoch_logger, record_timing
    from ckmsim.train.trainer import read_history, train

    store = DatasetStore.open(config.dataset)
    store.require_layers(("gain_db",), config.model)
    started = time.perf_counter()
    train_truths = load_truths(store, "train")
    val_truths = load_truths(store, "val") if len(store.indices("val")) else None
    num_y, num_x = train_truths[0].sizes["y"], train_truths[0].sizes["x"]
    settings = config.settings
    if settings.steps_per_epoch is None:
        settings = replace(settings, steps_per_epoch=-(-len(train_truths) // config.batch_size))
    seed = int(settings.seed)

    keras.utils.set_random_seed(seed)
    try:
        model, generator = config.build_model()
    except CkmsimError as err:
        raise CkmsimError(f"{config.model} networks ([generator] / [discriminator]): {err}") from None
    multiple = generator.size_multiple
    if num_y % multiple or num_x % multiple:
        raise CkmsimError(f"[generator]: the {config.model} generator down-samples by {multiple}; the maps of "
                          f"'{config.dataset}' are {num_y} x {num_x} cells. Use fewer levels")
    model(np.zeros((1, num_y, num_x, NUM_CONDITION_CHANNELS), np.float32))   # built, for the trainer's backups
    out = Path(config.out)
    out.mkdir(parents=True, exist_ok=True)
    record = {**config.run_record(), "num_train_maps": len(train_truths), "num_val_maps": len(val_truths or [])}
    (out / RUN_INFO).write_text(json.dumps(record, indent=1))
    log(f"{config.model}: {generator.count_params()} generator parameters, tasks "
        f"{[d.task for d in config.degradations]}, {len(train_truths)} train maps, {settings.epochs} epochs x "
        f"{settings.steps_per_epoch} steps of {config.batch_size} -> {out}")
    epochs_before = len(read_history(out))
    degradations = list(config.degradations)
    result = train(model, pair_dataset(train_truths, degradations, config.encoding, config.batch_size, seed,
                                       config.augment),
                   (pair_dataset(val_truths, degradations, config.encoding, config.batch_size, seed=10_000 + seed,
                                 epochs=1, shuffle=False) if val_truths else None),
                   out, settings, loss="mse" if config.model == "radiounet" else None, run_config=record,
                   verbose=verbose, extra_callbacks=[_epoch_logger(config.model, settings.epochs, log)])
    record_timing(out, config.model, epochs_before, result, settings.steps_per_epoch, config.batch_size)
    if result.history:
        last = result.history[-1]
        log(f"  {config.model} done: loss {last.get('loss', float('nan')):.5f}, val_loss "
            f"{last.get('val_loss', float('nan')):.5f}; {time.perf_counter() - started:.0f} s in all")
    return out
