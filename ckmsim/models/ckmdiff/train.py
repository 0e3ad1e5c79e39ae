"""Train CKMDiff from a TOML config: ``train_ckmdiff(CONFIG)`` (``ckmsim train ckmdiff CONFIG``).

Two stages, as in the paper (Sec. V-C): the VAE first (``OUT/vae/``), then, with the VAE frozen, the
conditional decoupled diffusion model (``OUT/ddm/``). Both run in the shared resumable trainer, so re-running
the command continues where it stopped. The config (see ``experiments/ckmdiff/train-cpu.toml``)::

    [ckmdiff]
    dataset = "../../datasets/crossap-dense"   # a dataset store with gain maps, relative to this file
    out = "runs/ckmdiff-cpu"                   # run folder, relative to the working directory

    [encoding]                                 # ckmsim.models.ckmdiff.data.CKMDiffEncoding
    gain_range_db = [-170.0, -70.0]
    fill = "baseline"

    [[degradation]]                            # Alg. 1's random A: each example draws one of these
    steps = [{kind = "block_average", factor = 4}, {kind = "noise", std_px = 0.11764705882352941}]
    [[degradation]]
    generation = true                          # A = 0: the unconditional task (condition image of zeros)

    [vae]                                      # ckmsim.models.ckmdiff.network.VAE + its own optimisation
    channels = [32, 64]
    epochs = 20
    [unet]                                     # DecoupledUNet
    base_channels = 32
    channel_mults = [1, 2, 4]
    [condition]                                # SwinEncoder (omit the table for an unconditional model)
    embed_dim = 32
    depths = [2, 2, 2]
    [train]                                    # TrainSettings of the diffusion stage, and:
    weighting = "paper"                        # eq. (22) as printed, or "radiodiff"
    batch_size = 8
    augment = true

The run folder holds ``ckmdiff.json`` (encoding, degradations, latent scale, dataset, configs), which
:class:`~ckmsim.models.ckmdiff.method.CKMDiffMethod` reads.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field, fields, replace
from pathlib import Path

from ckmsim.errors import CkmsimError
from ckmsim.maps.degrade import Degradation
from ckmsim.models.ckmdiff.data import CKMDiffEncoding
from ckmsim.train.trainer import TrainSettings, read_run_config, tuples
from ckmsim.validation import is_whole_number

#: The run's description, read by CKMDiffMethod.
RUN_INFO = "ckmdiff.json"
#: Wall time and throughput of each stage's last invocation (a resumed run times only what it ran).
TIMING = "timing.json"
VAE_KEYS = ("channels", "latent_channels", "kl_weight")
VAE_TRAIN_KEYS = ("epochs", "learning_rate", "batch_size", "steps_per_epoch", "lr_patience")
UNET_KEYS = ("base_channels", "channel_mults", "num_blocks")
CONDITION_KEYS = ("embed_dim", "depths", "num_heads", "window_size", "patch_size", "mlp_ratio")
DATA_KEYS = ("weighting", "batch_size", "augment")
_SECTIONS = {"ckmdiff": {"dataset", "out"}, "encoding": {f.name for f in fields(CKMDiffEncoding)},
             "degradation": None, "vae": set(VAE_KEYS) | set(VAE_TRAIN_KEYS), "unet": set(UNET_KEYS),
             "condition": set(CONDITION_KEYS), "train": {f.name for f in fields(TrainSettings)} | set(DATA_KEYS)}


@dataclass(frozen=True)
class CKMDiffTrainConfig:
    """A CKMDiff training run (module docstring for the TOML layout). ``degradations`` holds
    :class:`~ckmsim.maps.degrade.Degradation` objects and ``None`` for generation."""

    dataset: str
    out: str
    encoding: CKMDiffEncoding = field(default_factory=CKMDiffEncoding)
    degradations: tuple = (None,)
    vae: dict = field(default_factory=dict)
    vae_settings: TrainSettings = TrainSettings(epochs=20, learning_rate=1e-3, lr_patience=0)
    vae_batch_size: int = 16
    unet: dict = field(default_factory=dict)
    condition: dict | None = field(default_factory=dict)
    settings: TrainSettings = TrainSettings(epochs=20, learning_rate=2e-4, lr_patience=0)
    weighting: str = "paper"
    batch_size: int = 8
    augment: bool = True

    def __post_init__(self):
        for name in ("batch_size", "vae_batch_size"):
            if not is_whole_number(getattr(self, name), minimum=1):
                raise CkmsimError(f"{name} must be a positive integer. Received: {name}={getattr(self, name)!r}")
        if not self.degradations:
            raise CkmsimError("[[degradation]]: at least one table is needed (steps = [...] or generation = true)")
        if self.condition is None and any(d is not None for d in self.degradations):
            raise CkmsimError("Degradations with an observation need a [condition] encoder; only generation "
                              "(generation = true) trains without one")

    def degradation_records(self) -> list:
        return [{"generation": True} if d is None else {**d.to_config(), "task": d.task} for d in self.degradations]

    def run_record(self) -> dict:
        return {"dataset": self.dataset, "encoding": self.encoding.to_dict(),
                "degradations": self.degradation_records(), "vae": self.vae, "unet": self.unet,
                "condition": self.condition, "weighting": self.weighting, "batch_size": self.batch_size,
                "augment": self.augment}


def _degradation(entry, where: str):
    if not isinstance(entry, dict):
        raise CkmsimError(f"{where} must be a table with 'steps' (and optional 'seed') or 'generation = true'. "
                          f"Received: {entry!r}")
    if entry.get("generation", False) is True:
        if set(entry) != {"generation"}:
            raise CkmsimError(f"{where}: a generation entry has no other keys. Received: {sorted(entry)}")
        return None
    try:
        return Degradation.from_config(entry)
    except CkmsimError as err:
        raise CkmsimError(f"{where}: {err}") from None


def load_ckmdiff_train_config(path: str | Path, dataset: str | None = None, out: str | None = None) -> CKMDiffTrainConfig:
    """Read and validate a CKMDiff training TOML; ``dataset`` and ``out`` override the file's values."""
    raw, where, dataset, out = read_run_config(path, "CKMDiff training config", _SECTIONS, "ckmdiff", dataset, out)
    entries = raw.get("degradation", [{"generation": True}])
    if not isinstance(entries, list):
        raise CkmsimError(f"{where}: degradations are an array of tables, [[degradation]]")
    try:
        degradations = tuple(_degradation(e, f"[[degradation]] {i}") for i, e in enumerate(entries))
        vae_raw = raw.get("vae", {})
        train_raw = dict(raw.get("train", {}))
        data = {key: train_raw.pop(key) for key in DATA_KEYS if key in train_raw}
        vae_train = {key: vae_raw[key] for key in VAE_TRAIN_KEYS if key in vae_raw}
        vae_batch = vae_train.pop("batch_size", 16)
        base = CKMDiffTrainConfig.__dataclass_fields__
        return CKMDiffTrainConfig(
            dataset=str(dataset), out=str(out), encoding=CKMDiffEncoding.from_dict(raw.get("encoding", {})),
            degradations=degradations, vae=tuples({k: v for k, v in vae_raw.items() if k in VAE_KEYS}),
            vae_settings=replace(base["vae_settings"].default, **vae_train), vae_batch_size=vae_batch,
            unet=tuples(raw.get("unet", {})),
            condition=tuples(raw["condition"]) if "condition" in raw else None,
            settings=replace(base["settings"].default, **train_raw), **data)
    except (CkmsimError, TypeError) as err:
        raise CkmsimError(f"{where}: {err}") from None


def train_ckmdiff(config_path: str | Path, dataset: str | None = None, out: str | None = None, verbose: int = 0,
                  log=print, seed: int | None = None) -> Path:
    """Train (or resume) both stages of a TOML config; returns the run folder. ``seed`` overrides
    ``[train] seed`` (the VAE's and the diffusion model's initialisation and every example draw)."""
    config = load_ckmdiff_train_config(config_path, dataset, out)
    if seed is not None:
        config = replace(config, settings=replace(config.settings, seed=seed),
                         vae_settings=replace(config.vae_settings, seed=seed))
    return train_ckmdiff_config(config, verbose=verbose, log=log)


def latent_scale(vae, data, max_batches: int = 64) -> float:
    """LDM's scale factor: 1 / the standard deviation of the VAE's posterior means over (part of) ``data``."""
    import numpy as np

    values = [np.asarray(vae.encode(x)).ravel() for (x, _), _ in zip(data, range(max_batches))]
    std = float(np.concatenate(values).std())
    if not np.isfinite(std) or std <= 0:
        raise CkmsimError(f"The VAE's latents have no spread (std={std}); the VAE did not train")
    return 1.0 / std


def record_timing(out: Path, stage: str, epochs_before: int, result, steps_per_epoch: int, batch_size: int) -> dict:
    """Store ``stage``'s wall time and examples per second of this invocation in ``OUT/timing.json``."""
    epochs = len(result.history) - epochs_before
    examples = epochs * int(steps_per_epoch) * int(batch_size)
    entry = {"wall_s": result.wall_s, "epochs": epochs, "examples": examples,
             "examples_per_s": examples / result.wall_s if result.wall_s > 0 and epochs else None}
    path = out / TIMING
    timing = json.loads(path.read_text()) if path.is_file() else {}
    timing[stage] = entry
    path.write_text(json.dumps(timing, indent=1))
    return entry


def _epoch_logger(stage: str, epochs: int, log):
    """A callback printing one line per finished epoch (a long run shows its progress)."""
    import keras

    started = time.perf_counter()

    def on_epoch_end(epoch, logs):
        logs = logs or {}
        log(f"  {stage} epoch {epoch + 1}/{epochs}: loss {logs.get('loss', float('nan')):.5f}, val_loss "
            f"{logs.get('val_loss', float('nan')):.5f} ({time.perf_counter() - started:.0f} s)")

    return keras.callbacks.LambdaCallback(on_epoch_end=on_epoch_end)


def train_ckmdiff_config(config: CKMDiffTrainConfig, verbose: int = 0, log=print) -> Path:
    """:func:`train_ckmdiff` for a config already in memory."""
    import keras
    import numpy as np

    from ckmsim.data.store import DatasetStore
    from ckmsim.models.ckmdiff.data import NUM_CONDITION_CHANNELS, diffusion_dataset, load_truths, vae_dataset
    from ckmsim.models.ckmdiff.network import VAE, DecoupledUNet, LatentDiffusion, per_example_loss
    from ckmsim.models.ckmdiff.swin import SwinEncoder
    from ckmsim.train.trainer import read_history, train

    store = DatasetStore.open(config.dataset)
    store.require_layers(("gain_db",), "CKMDiff")
    started = time.perf_counter()
    train_truths = load_truths(store, "train")
    val_truths = load_truths(store, "val") if len(store.indices("val")) else None
    out = Path(config.out)
    out.mkdir(parents=True, exist_ok=True)
    seed = config.settings.seed

    # Stage 1: the VAE
    vae_settings = config.vae_settings
    if vae_settings.steps_per_epoch is None:
        vae_settings = replace(vae_settings, steps_per_epoch=-(-len(train_truths) // config.vae_batch_size))
    keras.utils.set_random_seed(int(seed))
    num_y, num_x = train_truths[0].sizes["y"], train_truths[0].sizes["x"]
    vae = VAE(**config.vae)
    vae(np.zeros((1, num_y, num_x, 1), np.float32))   # built before fit, for the trainer's backups
    log(f"CKMDiff VAE: {len(train_truths)} train maps, {vae_settings.epochs} epochs x "
        f"{vae_settings.steps_per_epoch} steps of {config.vae_batch_size} -> {out / 'vae'}")
    vae_epochs_before = len(read_history(out / "vae"))
    vae_result = train(vae, vae_dataset(train_truths, config.encoding, config.vae_batch_size, seed, config.augment),
                       (vae_dataset(val_truths, config.encoding, config.vae_batch_size, epochs=1, shuffle=False)
                        if val_truths else None), out / "vae", vae_settings, loss="mse",
                       run_config={"vae": config.vae, "dataset": config.dataset}, verbose=verbose,
                       extra_callbacks=[_epoch_logger("VAE", vae_settings.epochs, log)])
    record_timing(out, "vae", vae_epochs_before, vae_result, vae_settings.steps_per_epoch, config.vae_batch_size)
    vae = keras.saving.load_model(vae_result.best_model, compile=False)
    scale = latent_scale(vae, vae_dataset(train_truths, config.encoding, config.vae_batch_size, epochs=1,
                                          shuffle=False))
    log(f"  VAE done: val_loss {vae_result.history[-1].get('val_loss', float('nan')):.5f} (pixels^2); "
        f"latent scale {scale:.4f}")

    # Stage 2: the conditional decoupled diffusion model, VAE frozen
    settings = config.settings
    if settings.steps_per_epoch is None:
        settings = replace(settings, steps_per_epoch=-(-len(train_truths) // config.batch_size))
    keras.utils.set_random_seed(int(seed))
    condition = SwinEncoder(**config.condition) if config.condition is not None else None
    unet = DecoupledUNet(latent_channels=vae.latent_channels,
                         cond_levels=0 if condition is None else len(condition.depths), **config.unet)
    model = LatentDiffusion(vae, unet, condition, latent_scale=scale, weighting=config.weighting, seed=int(seed))
    model({"x": np.zeros((1, num_y, num_x, 1), np.float32),
           "cond": np.zeros((1, num_y, num_x, NUM_CONDITION_CHANNELS), np.float32)})
    record = {**config.run_record(), "latent_scale": scale, "num_train_maps": len(train_truths),
              "num_val_maps": len(val_truths or [])}
    (out / RUN_INFO).write_text(json.dumps(record, indent=1))
    log(f"CKMDiff diffusion: tasks {[r.get('task', 'generation') for r in config.degradation_records()]}, "
        f"{settings.epochs} epochs x {settings.steps_per_epoch} steps of {config.batch_size} -> {out / 'ddm'}")
    ddm_epochs_before = len(read_history(out / "ddm"))
    result = train(model, diffusion_dataset(train_truths, list(config.degradations), config.encoding,
                                            config.batch_size, seed, config.augment),
                   (diffusion_dataset(val_truths, list(config.degradations), config.encoding, config.batch_size,
                                      seed=10_000 + int(seed), epochs=1, shuffle=False) if val_truths else None),
                   out / "ddm", settings, loss=per_example_loss, run_config=record, verbose=verbose,
                   extra_callbacks=[_epoch_logger("diffusion", settings.epochs, log)])
    record_timing(out, "diffusion", ddm_epochs_before, result, settings.steps_per_epoch, config.batch_size)
    if result.history:
        last = result.history[-1]
        log(f"  diffusion done: loss {last.get('loss', float('nan')):.4f}, val_loss "
            f"{last.get('val_loss', float('nan')):.4f}; {time.perf_counter() - started:.0f} s in all")
    return out
