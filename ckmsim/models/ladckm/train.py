"""Train LAD-CKM from a TOML config on a dynamic-CSI dataset: ``train_ladckm(CONFIG)`` (``ckmsim train ladckm``).

The config (see ``experiments/ladckm/train-cpu.toml``)::

    [ladckm]
    model = "ladckm"                         # or "fire" (ckmsim.models.fire) or "nerf2" (ckmsim.models.nerf2),
                                             # both uplink only
    dataset = "../../datasets/ladckm-cpu"   # a store built with [dynamic], relative to this file
    out = "runs/ladckm-cpu"

    [arrays]
    num_bs_antennas = 16                     # N_t (a UPA, ckmsim.data.dynamic.upa_shape) ...
    num_ue_antennas = 1                      # ... and N_r

    [encoding]                               # ckmsim.models.ladckm.data.LadCkmEncoding
    subcarrier_step = 4                      # the rho = 0.125 pilots (0: uplink only, rho = 0)

    [split]
    by = "block"                             # "block": the last blocks test (the paper), "area": by tile
    test_blocks = 4
    val_blocks = 2

    [model]                                  # LadCkm arguments (the subcarriers and frequencies are derived),
    num_directions = 16                      # or Fire's (latent_dim, width, kl_weight; the arrays derived)
    num_samples = 4

    [train]                                  # TrainSettings, and:
    batch_size = 2                           # the paper's
    max_train_ues = 4000                     # at most this many training UEs (a seeded subset; 0: all)

The paper trains with Adam at 5e-5 and ReduceLROnPlateau (patience 10, factor 0.9): ``[train]
learning_rate``, ``lr_patience``, ``lr_factor``. Every training example draws new stratified radial intervals
(:func:`~ckmsim.models.ladckm.radiators.radial_intervals`); validation uses the midpoints. UEs without any
path on either carrier (all-zero CSI) are left out: their NMSE is undefined. The run folder holds the
trainer's files and ``ladckm.json`` (arrays, encoding, split, model settings, dataset), which
:class:`~ckmsim.models.ladckm.method.LadCkmMethod` reads.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field, fields, replace
from pathlib import Path

import numpy as np

from ckmsim.errors import CkmsimError
from ckmsim.models.ladckm.data import LadCkmEncoding
from ckmsim.models.ladckm.radiators import radial_intervals
from ckmsim.train.trainer import TrainSettings, read_run_config, tuples
from ckmsim.validation import check_positive_int, check_table_keys, is_whole_number

#: The run's description, read by LadCkmMethod.
RUN_INFO = "ladckm.json"
#: ``[model]`` keys per model: the network's arguments but the derived subcarrier count, frequencies and arrays.
MODEL_KEYS = {"ladckm": ("num_directions", "num_samples", "max_distance_m", "width", "adm_hidden", "radial_hidden"),
              "fire": ("latent_dim", "width", "kl_weight"),
              "nerf2": ("num_azimuth", "num_elevation", "num_samples", "max_distance_m", "depth", "width",
                        "skip_layer", "pe_levels")}
#: Models that predict from the uplink alone (no downlink pilot may be configured for them).
UPLINK_ONLY = ("fire", "nerf2")
#: What ``[ladckm] model`` may name.
MODELS = tuple(MODEL_KEYS)
SPLITS = ("block", "area")
DATA_KEYS = ("batch_size", "max_train_ues")
_SECTIONS = {"ladckm": {"model", "dataset", "out"}, "arrays": {"num_bs_antennas", "num_ue_antennas"},
             "encoding": {f.name for f in fields(LadCkmEncoding)}, "split": {"by", "test_blocks", "val_blocks"},
             "model": None, "train": {f.name for f in fields(TrainSettings)} | set(DATA_KEYS)}


@dataclass(frozen=True)
class LadCkmTrainConfig:
    """A LAD-CKM training run (module docstring for the TOML layout)."""

    dataset: str
    out: str
    model_kind: str = "ladckm"
    num_bs_antennas: int = 16
    num_ue_antennas: int = 1
    encoding: LadCkmEncoding = field(default_factory=LadCkmEncoding)
    split_by: str = "block"
    test_blocks: int = 4
    val_blocks: int = 2
    model: dict = field(default_factory=dict)
    settings: TrainSettings = TrainSettings(epochs=20, learning_rate=5e-5, lr_factor=0.9, lr_patience=10)
    batch_size: int = 2
    max_train_ues: int = 0

    def __post_init__(self):
        for name in ("num_bs_antennas", "num_ue_antennas", "batch_size"):
            check_positive_int(getattr(self, name), name)
        for name in ("test_blocks", "val_blocks", "max_train_ues"):
            if not is_whole_number(getattr(self, name), minimum=0):
                raise CkmsimError(f"{name} must be an integer >= 0. Received: {name}={getattr(self, name)!r}")
        if self.split_by not in SPLITS:
            raise CkmsimError(f"[split] by must be one of {list(SPLITS)}. Received: by={self.split_by!r}")
        if self.model_kind not in MODELS:
            raise CkmsimError(f"[ladckm] model must be one of {list(MODELS)}. Received: model={self.model_kind!r}")
        check_table_keys(self.model, MODEL_KEYS[self.model_kind], "[model]", f"model {self.model_kind!r}")
        if self.model_kind in UPLINK_ONLY and self.encoding.subcarrier_step:
            raise CkmsimError(f"{self.model_kind} predicts the downlink from the uplink alone: set [encoding] "
                              f"subcarrier_step = 0 (no downlink pilot, rho = 0)")

    def run_record(self) -> dict:
        return {"model_kind": self.model_kind, "dataset": self.dataset, "num_bs_antennas": self.num_bs_antennas,
                "num_ue_antennas": self.num_ue_antennas, "encoding": self.encoding.to_dict(),
                "split": {"by": self.split_by, "test_blocks": self.test_blocks, "val_blocks": self.val_blocks},
                "model": dict(self.model), "batch_size": self.batch_size, "max_train_ues": self.max_train_ues}


def load_ladckm_train_config(path: str | Path, dataset: str | None = None, out: str | None = None) -> LadCkmTrainConfig:
    """Read and validate a LAD-CKM training TOML; ``dataset`` and ``out`` override the file's."""
    raw, where, dataset, out = read_run_config(path, "LAD-CKM training config", _SECTIONS, "ladckm", dataset, out)
    try:
        train_raw = dict(raw.get("train", {}))
        data = {key: train_raw.pop(key) for key in DATA_KEYS if key in train_raw}
        split = raw.get("split", {})
        base = LadCkmTrainConfig.__dataclass_fields__["settings"].default
        return LadCkmTrainConfig(dataset=str(dataset), out=str(out),
                                 model_kind=raw.get("ladckm", {}).get("model", "ladckm"), **raw.get("arrays", {}),
                                 encoding=LadCkmEncoding(**raw.get("encoding", {})),
                                 split_by=split.get("by", "block"), test_blocks=split.get("test_blocks", 4),
                                 val_blocks=split.get("val_blocks", 2), model=tuples(raw.get("model", {})),
                                 settings=replace(base, **train_raw), **data)
    except (CkmsimError, TypeError) as err:
        raise CkmsimError(f"{where}: {err}") from None


# ----------------------------------------------------------------------------------------------------------
# Examples
# ----------------------------------------------------------------------------------------------------------

def split_csi(store, split: str, split_by: str, test_blocks: int, val_blocks: int, num_bs_antennas: int,
              num_ue_antennas: int) -> dict[str, np.ndarray]:
    """The CSI of every UE of ``split`` (``train``, ``val``, ``test``) for one array pair.

    ``split_by = "block"``: every sample, the blocks :func:`~ckmsim.data.dynamic.block_split` gives ``split``;
    ``"area"``: the samples (tiles) of the builder's ``split``, every block.

    Output: ``h_ul`` ``[U, K, N_t, N_r]``, ``h_dl`` ``[U, K, N_r, N_t]`` complex64, ``ue_position_m`` ``[U, 3]``,
    ``sample`` and ``block`` ``[U]`` int, with the UEs that have no path on a carrier left out.
    """
    from ckmsim.data.dynamic import block_split, dynamic_settings, read_dynamic_csi

    dynamic, _ = dynamic_settings(store)
    if split_by == "block":
        samples = list(range(len(store)))
        blocks = block_split(dynamic.num_blocks, test_blocks, val_blocks)[split]
    else:
        samples = [int(i) for i in store.indices(split)]
        blocks = list(range(dynamic.num_blocks))
    if not samples or not blocks:
        raise CkmsimError(f"Dataset '{store.path}' has no UE in split {split!r} (split by {split_by})")
    parts = {key: [] for key in ("h_ul", "h_dl", "ue_position_m", "sample", "block")}
    for index in samples:
        read = read_dynamic_csi(store, index, num_bs_antennas, num_ue_antennas, blocks)
        num_block, num_ue = read["h_dl"].shape[:2]
        parts["h_ul"].append(read["h_ul"].reshape((-1,) + read["h_ul"].shape[2:]))
        parts["h_dl"].append(read["h_dl"].reshape((-1,) + read["h_dl"].shape[2:]))
        parts["ue_position_m"].append(read["ue_position_m"].reshape(-1, 3))
        parts["sample"].append(np.full(num_block * num_ue, index))
        parts["block"].append(np.repeat(read["blocks"], num_ue))
    out = {key: np.concatenate(values) for key, values in parts.items()}
    reached = (np.abs(out["h_ul"]).max(axis=(1, 2, 3)) > 0) & (np.abs(out["h_dl"]).max(axis=(1, 2, 3)) > 0)
    return {key: values[reached] for key, values in out.items()}


def example_arrays(csi: dict, encoding: LadCkmEncoding) -> tuple[dict, np.ndarray]:
    """``(inputs, target)`` of :func:`split_csi`'s UEs: the encoded inputs and the normalised downlink images."""
    inputs, scale = encoding.encode(csi["h_ul"], csi["h_dl"])
    return inputs, encoding.target(csi["h_dl"], scale)


def example_dataset(inputs: dict, target: np.ndarray, batch_size: int, num_directions: int, num_samples: int,
                    max_distance_m: float, seed: int = 0, training: bool = True):
    """``tf.data`` of ``({uplink, partial_downlink, intervals}, target)`` batches. Training: endless, shuffled
    per epoch from ``default_rng([seed, epoch])``, stratified intervals per example; otherwise one pass in
    order with midpoint intervals."""
    import tensorflow as tf

    count = len(target)
    shapes = {"uplink": inputs["uplink"].shape[1:], "partial_downlink": inputs["partial_downlink"].shape[1:],
              "intervals": (num_directions, num_samples)}

    def examples():
        epoch = 0
        while True:
            rng = np.random.default_rng([seed, epoch])
            order = rng.permutation(count) if training else range(count)
            for i in order:
                intervals = (radial_intervals(num_directions, num_samples, max_distance_m, rng) if training
                             else radial_intervals(num_directions, num_samples, max_distance_m))
                yield ({"uplink": inputs["uplink"][i], "partial_downlink": inputs["partial_downlink"][i],
                        "intervals": intervals}, target[i])
            if not training:
                return
            epoch += 1

    signature = ({name: tf.TensorSpec(shape, tf.float32) for name, shape in shapes.items()},
                 tf.TensorSpec(target.shape[1:], tf.float32))
    data = tf.data.Dataset.from_generator(examples, output_signature=signature).batch(int(batch_size))
    if not training:
        data = data.apply(tf.data.experimental.assert_cardinality(-(-count // int(batch_size))))
    return data.prefetch(2)


def subcarrier_frequencies_ghz(store, encoding: LadCkmEncoding) -> np.ndarray:
    """The downlink frequencies [GHz] of the measured subcarriers of a dynamic store."""
    from ckmsim.data.dynamic import dynamic_settings

    _, csi = dynamic_settings(store)
    offsets = csi.subcarrier_offsets_hz()[encoding.subcarriers(csi.num_subcarriers)]
    return (csi.downlink_hz + offsets) / 1e9


# ----------------------------------------------------------------------------------------------------------
# Training
# ----------------------------------------------------------------------------------------------------------

def train_ladckm(config_path: str | Path, dataset: str | None = None, out: str | None = None, verbose: int = 0,
                 log=print, seed: int | None = None) -> Path:
    """Train (or resume) the LAD-CKM of a TOML config; returns the run folder."""
    config = load_ladckm_train_config(config_path, dataset, out)
    if seed is not None:
        config = replace(config, settings=replace(config.settings, seed=seed))
    return train_ladckm_config(config, verbose=verbose, log=log)


def build_model(config: LadCkmTrainConfig, frequencies_ghz: np.ndarray, spacing_m: float | None = None):
    """A fresh LAD-CKM (or FIRE, NeRF2, by ``model_kind``) for the config's arrays and subcarriers; NeRF2 needs
    the BS element spacing ``spacing_m`` [m] (its rays start at the elements)."""
    if config.model_kind == "nerf2":
        from ckmsim.data.dynamic import upa_shape
        from ckmsim.maps.antenna_array import AntennaArray
        from ckmsim.models.nerf2.network import NeRF2

        rows, cols = upa_shape(config.num_bs_antennas)
        positions = AntennaArray(num_cols=cols, num_rows=rows, spacing_wavelengths=1.0).positions_wavelengths()
        return NeRF2(len(frequencies_ghz), positions * float(spacing_m), config.num_ue_antennas, **config.model)
    if config.model_kind == "fire":
        from ckmsim.models.fire.network import Fire

        return Fire(len(frequencies_ghz), config.num_bs_antennas, config.num_ue_antennas, **config.model)
    from ckmsim.models.ladckm.network import LadCkm

    return LadCkm(len(frequencies_ghz), frequencies_ghz, **config.model)


def train_ladckm_config(config: LadCkmTrainConfig, verbose: int = 0, log=print) -> Path:
    """:func:`train_ladckm` for a config already in memory."""
    from ckmsim.data.store import DatasetStore
    from ckmsim.models.ladckm.network import nmse_loss
    from ckmsim.train.trainer import train

    store = DatasetStore.open(config.dataset)
    from ckmsim.data.dynamic import dynamic_settings

    frequencies = subcarrier_frequencies_ghz(store, config.encoding)
    _, csi = dynamic_settings(store)
    model = build_model(config, frequencies, csi.spacing_wavelengths * 299_792_458.0 / csi.downlink_hz)
    arrays = (config.num_bs_antennas, config.num_ue_antennas)
    splits = {}
    # val_blocks = 0 (split by block): no validation, the best model is chosen on the training loss
    wanted = ("train",) if config.split_by == "block" and config.val_blocks == 0 else ("train", "val")
    for split in wanted:
        csi = split_csi(store, split, config.split_by, config.test_blocks, config.val_blocks, *arrays)
        if split == "train" and config.max_train_ues and len(csi["h_dl"]) > config.max_train_ues:
            keep = np.sort(np.random.default_rng(config.settings.seed).choice(
                len(csi["h_dl"]), config.max_train_ues, replace=False))
            csi = {key: values[keep] for key, values in csi.items()}
        splits[split] = example_arrays(csi, config.encoding)
    # a subclassed model builds on its first call; the trainer's backup needs its weights to exist
    model({name: values[:1] for name, values in splits["train"][0].items()})
    # FIRE and NeRF2 ignore the radial intervals the example stream carries for LAD-CKM
    geometry = ((model.num_directions, model.num_samples, model.max_distance_m) if config.model_kind == "ladckm"
                else (1, 1, 1.0))
    train_data = example_dataset(*splits["train"], config.batch_size, *geometry, seed=config.settings.seed)
    val_data = (example_dataset(*splits["val"], config.batch_size, *geometry, training=False)
                if "val" in splits else None)
    num_train = len(splits["train"][1])
    steps = config.settings.steps_per_epoch or -(-num_train // config.batch_size)
    settings = replace(config.settings, steps_per_epoch=steps)
    log(f"{config.model_kind}: N_t={config.num_bs_antennas}, N_r={config.num_ue_antennas}, rho="
        f"{config.encoding.pilot_overhead(config.num_bs_antennas, config.num_ue_antennas):.3f}, "
        f"{num_train} train / {len(splits['val'][1]) if 'val' in splits else 0} val UEs (split by {config.split_by}), "
        f"{settings.epochs} epochs x {steps} steps of {config.batch_size} -> {config.out}")
    out = Path(config.out)
    started = time.perf_counter()
    result = train(model, train_data, val_data, out, settings, loss=nmse_loss, run_config=config.run_record(),
                   verbose=verbose)
    wall = time.perf_counter() - started
    seen = settings.epochs * steps * config.batch_size
    (out / RUN_INFO).write_text(json.dumps({**config.run_record(), "frequencies_ghz": [float(f) for f in frequencies],
                                            "num_train_ues": num_train, "wall_s": wall,
                                            "examples_per_s": seen / wall if wall > 0 else None}, indent=1))
    monitored = "val_loss" if val_data is not None else "loss"
    log(f"{config.model_kind} trained in {wall:.0f} s; best {monitored} (NMSE) {min(r[monitored] for r in result.history):.4f}")
    return out
