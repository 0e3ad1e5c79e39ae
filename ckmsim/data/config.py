"""Dataset configuration: a TOML file, validated on load, stored verbatim in the dataset's manifest.

Example (``experiments/datasets/small.toml``)::

    [dataset]
    name = "small"
    seed = 7
    scenes = ["../../scenes/city-s0/scene.xml", "munich"]   # paths relative to this file, or built-in names
    tile_cells = 32
    cell_size_m = 2.0
    ue_height_m = 1.5
    tiles_per_scene = 2
    transmitters_per_tile = 2
    num_map_paths = 2          # 0: gain map only (no PathSolver, no per-path or LoS layers)

    [transmitter]
    height_m = 10.0            # above the ground (CKMImageNet: BS at 10 m, UE at 1 m)

    [split]
    test_scenes = ["munich"]   # whole scenes held out for testing
    val_scenes = []            # whole scenes for validation (a city the training never sees)
    val_fraction = 0.25        # share of the remaining tiles for validation

    [ray_tracing]              # any field of ckmsim.raytrace.settings.RayTracingSettings
    path_samples = 30000

    [csi]                      # optional: MIMO-OFDM CSI of a UE drop; fields of CsiSettings
    num_ues = 16

    [convergence]              # optional: a PathSolver convergence check per scene before the build;
    num_probes = 256           # fields of ckmsim.raytrace.convergence.ConvergenceCheck

    [dynamic]                  # optional, needs [csi]: coherence blocks with moving cars and pedestrians;
    num_blocks = 20            # fields of DynamicSettings and of ckmsim.scene.dynamic.MovingObjects
    max_paths = 32
    num_cars = 10

Every section and key is checked: a typo fails with the name of the file, the section and the key.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields
from pathlib import Path

from ckmsim.errors import CkmsimError
from ckmsim.raytrace.convergence import ConvergenceCheck
from ckmsim.raytrace.csi import CsiSettings
from ckmsim.raytrace.settings import RayTracingSettings
from ckmsim.scene.dynamic import MovingObjects
from ckmsim.validation import check_table_keys, is_finite_number, is_whole_number, read_toml


@dataclass(frozen=True)
class DynamicSettings:
    """The coherence blocks of a dynamic-CSI dataset (``[dynamic]``; LAD-CKM's setting).

    Each sample (one tile, one BS) holds ``num_blocks`` coherence blocks. Block ``b`` moves the cars and
    pedestrians of ``objects`` to new street positions (:class:`~ckmsim.scene.dynamic.DynamicScene`, seeded
    by the sample's seed and ``b``), drops ``csi.num_ues`` UEs on open cells that no object covers, and traces
    both carriers' paths; the ``max_paths`` strongest paths per UE and carrier are stored, not the CSI, so one
    trace serves every array size (:mod:`ckmsim.data.dynamic` applies the arrays when the CSI is read). The
    sample's map layers are traced before any object is added: the static map a location-based CKM holds.

    In TOML the fields of :class:`~ckmsim.scene.dynamic.MovingObjects` sit in ``[dynamic]`` beside
    ``num_blocks`` and ``max_paths``.
    """

    num_blocks: int = 20
    max_paths: int = 32
    objects: MovingObjects = field(default_factory=MovingObjects)

    def __post_init__(self):
        for name in ("num_blocks", "max_paths"):
            if not is_whole_number(getattr(self, name), minimum=1):
                raise CkmsimError(f"[dynamic] {name} must be a positive integer. Received: {name}={getattr(self, name)!r}")
        object.__setattr__(self, "num_blocks", int(self.num_blocks))
        object.__setattr__(self, "max_paths", int(self.max_paths))

    def to_dict(self) -> dict:
        """Flat form, as in the TOML section."""
        objects = asdict(self.objects)
        return {"num_blocks": self.num_blocks, "max_paths": self.max_paths,
                **{k: list(v) if isinstance(v, tuple) else v for k, v in objects.items()}}

    @classmethod
    def from_dict(cls, values: dict) -> "DynamicSettings":
        if not isinstance(values, dict):
            raise CkmsimError(f"[dynamic] must be a table. Received: {values!r}")
        own = {"num_blocks", "max_paths"}
        objects = {k: v for k, v in values.items() if k not in own}
        return cls(**{k: v for k, v in values.items() if k in own},
                   objects=_dataclass_from(MovingObjects, objects, "dynamic"))


@dataclass(frozen=True)
class DatasetConfig:
    """Everything a dataset build depends on.

    Parameters
    ----------
    name : str
    seed : int
        Root of every random choice (tiles, transmitter sites, UE drops, solver seeds).
    scenes : tuple of str
        Built-in Sionna scene names or scene XML paths (absolute once loaded from a file).
    tile_cells, cell_size_m, ue_height_m
        Each sample's grid: ``tile_cells x tile_cells`` cells of ``cell_size_m`` at ``ue_height_m`` [m].
    tiles_per_scene : int
        Tiles drawn per scene among those with at least ``min_open_fraction`` open cells; 0 takes all.
    min_open_fraction : float
    transmitters_per_tile : int
        Samples per tile, each with its own transmitter site.
    num_map_paths : int
        Strongest paths per cell kept in the per-path layers (E-SRResNet: 2). ``0`` makes a *gain-only*
        dataset: the PathSolver is not run, and samples hold ``gain_db``, ``building`` and the transmitter
        position but no per-path layer and no ``los`` (the LoS layer is read off the traced paths; ckmsim has
        no separate visibility test). Consumers that need a path layer refuse such a store by name
        (:meth:`ckmsim.data.store.DatasetStore.require_layers`).
    tx_height_m : float
        Transmitter height above the local ground of a random non-building cell of the tile [m].
    test_scenes : tuple of str
        Scenes whose every tile goes to the test split.
    val_scenes : tuple of str
        Scenes whose every tile goes to the validation split, so that early stopping is judged on a city the
        training never saw (a scene may not be in both).
    val_fraction, test_fraction : float
        Shares of the other tiles assigned to validation and test, by tile (never by sample).
    ray_tracing : RayTracingSettings
    csi : CsiSettings or None
    dynamic : DynamicSettings or None
        Coherence blocks with moving objects and a UE drop per block (needs ``csi``); None: one static drop
        per sample (``csi``) or none.
    convergence : ConvergenceCheck or None
        Run once per scene before its first sample (the builder records the match reached at
        ``ray_tracing.path_samples`` in the manifest and warns when fewer rays than the converged count are
        used); None (no ``[convergence]`` section) skips it.
    """

    name: str = "dataset"
    seed: int = 0
    scenes: tuple[str, ...] = ()
    tile_cells: int = 32
    cell_size_m: float = 2.0
    ue_height_m: float = 1.5
    tiles_per_scene: int = 0
    min_open_fraction: float = 0.3
    transmitters_per_tile: int = 1
    num_map_paths: int = 2
    tx_height_m: float = 10.0
    test_scenes: tuple[str, ...] = ()
    val_scenes: tuple[str, ...] = ()
    val_fraction: float = 0.0
    test_fraction: float = 0.0
    ray_tracing: RayTracingSettings = field(default_factory=RayTracingSettings)
    csi: CsiSettings | None = None
    convergence: ConvergenceCheck | None = None
    dynamic: DynamicSettings | None = None

    def __post_init__(self):
        if not self.scenes:
            raise CkmsimError("Dataset config lists no scene: set [dataset] scenes = [...]")
        for name in ("seed", "tile_cells", "transmitters_per_tile"):
            if not is_whole_number(getattr(self, name), minimum=0 if name == "seed" else 1):
                raise CkmsimError(f"Dataset config: {name} must be a positive integer. "
                                  f"Received: {name}={getattr(self, name)!r}")
        if not is_whole_number(self.num_map_paths, minimum=0):
            raise CkmsimError(f"Dataset config: num_map_paths must be an integer >= 0 (0 = gain map only, no "
                              f"PathSolver). Received: num_map_paths={self.num_map_paths!r}")
        if not is_whole_number(self.tiles_per_scene, minimum=0):
            raise CkmsimError(f"Dataset config: tiles_per_scene must be an integer >= 0 (0 = all). "
                              f"Received: tiles_per_scene={self.tiles_per_scene!r}")
        for name in ("cell_size_m", "tx_height_m"):
            if not (is_finite_number(getattr(self, name)) and getattr(self, name) > 0):
                raise CkmsimError(f"Dataset config: {name} must be a number > 0. "
                                  f"Received: {name}={getattr(self, name)!r}")
        for name in ("min_open_fraction", "val_fraction", "test_fraction"):
            if not (is_finite_number(getattr(self, name)) and 0.0 <= getattr(self, name) <= 1.0):
                raise CkmsimError(f"Dataset config: {name} must be in [0, 1]. Received: {name}={getattr(self, name)!r}")
        if self.val_fraction + self.test_fraction > 1.0:
            raise CkmsimError(f"Dataset config: val_fraction + test_fraction exceeds 1. Received: "
                              f"val_fraction={self.val_fraction}, test_fraction={self.test_fraction}")
        for name in ("test_scenes", "val_scenes"):
            unknown = [s for s in getattr(self, name) if s not in self.scenes]
            if unknown:
                raise CkmsimError(f"Dataset config: {name} {unknown} are not among the scenes {list(self.scenes)}")
        if self.dynamic is not None and self.csi is None:
            raise CkmsimError("Dataset config: [dynamic] needs a [csi] section (the carriers, numerology and UE "
                              "count of each block's drop)")
        both = sorted(set(self.test_scenes) & set(self.val_scenes))
        if both:
            raise CkmsimError(f"Dataset config: scenes {both} are in both test_scenes and val_scenes")

    @property
    def gain_only(self) -> bool:
        """True for ``num_map_paths = 0``: no PathSolver run, no per-path or LoS layer stored."""
        return self.num_map_paths == 0

    def to_dict(self) -> dict:
        """Plain-dict form (TOML sections flattened into one dict), for the manifest."""
        out = asdict(self)
        out["scenes"] = list(self.scenes)
        out["test_scenes"] = list(self.test_scenes)
        # absent when empty, so that stores built before whole validation scenes existed still resume
        out["val_scenes"] = list(self.val_scenes)
        if not self.val_scenes:
            out.pop("val_scenes")
        # absent rather than None, so that stores built before the check existed still resume
        out.pop("convergence")
        if self.convergence is not None:
            out["convergence"] = self.convergence.to_dict()
        out.pop("dynamic")
        if self.dynamic is not None:
            out["dynamic"] = self.dynamic.to_dict()
        return out

    @classmethod
    def from_dict(cls, values: dict) -> "DatasetConfig":
        """Inverse of :meth:`to_dict`."""
        values = dict(values)
        values["ray_tracing"] = RayTracingSettings.from_dict(values.get("ray_tracing") or {})
        csi = values.get("csi")
        values["csi"] = None if csi is None else _dataclass_from(CsiSettings, csi, "csi")
        check = values.get("convergence")
        values["convergence"] = None if check is None else _dataclass_from(ConvergenceCheck, check, "convergence")
        dynamic = values.get("dynamic")
        values["dynamic"] = None if dynamic is None else DynamicSettings.from_dict(dynamic)
        values["scenes"] = tuple(values.get("scenes", ()))
        values["test_scenes"] = tuple(values.get("test_scenes", ()))
        values["val_scenes"] = tuple(values.get("val_scenes", ()))
        return _dataclass_from(cls, values, "dataset")


#: TOML layout: section -> {key in the file: field of DatasetConfig}.
_SECTIONS = {
    "dataset": {name: name for name in ("name", "seed", "scenes", "tile_cells", "cell_size_m", "ue_height_m",
                                        "tiles_per_scene", "min_open_fraction", "transmitters_per_tile",
                                        "num_map_paths")},
    "transmitter": {"height_m": "tx_height_m"},
    "split": {"test_scenes": "test_scenes", "val_scenes": "val_scenes", "val_fraction": "val_fraction", "test_fraction": "test_fraction"},
}


def load_dataset_config(path: str | Path) -> DatasetConfig:
    """Read and validate a dataset TOML file; relative scene paths are resolved against its folder."""
    path = Path(path)
    raw = read_toml(path, "Dataset config")
    known_sections = set(_SECTIONS) | {"ray_tracing", "csi", "convergence", "dynamic"}
    unknown = sorted(set(raw) - known_sections)
    if unknown:
        raise CkmsimError(f"Dataset config '{path}': unknown section(s) {unknown}; expected {sorted(known_sections)}")
    values = {}
    for section, keys in _SECTIONS.items():
        table = check_table_keys(raw.get(section, {}), keys, f"[{section}]", f"Dataset config '{path}'")
        values.update({keys[key]: value for key, value in table.items()})
    scenes = [_resolve_scene(s, path.parent) for s in values.get("scenes", [])]
    by_given = dict(zip(values.get("scenes", []), scenes))
    values["scenes"] = scenes
    for name in ("test_scenes", "val_scenes"):
        values[name] = [by_given.get(s, s) for s in values.get(name, [])]
    values["ray_tracing"] = raw.get("ray_tracing", {})
    values["csi"] = raw.get("csi")
    values["convergence"] = raw.get("convergence")
    values["dynamic"] = raw.get("dynamic")
    try:
        return DatasetConfig.from_dict(values)
    except CkmsimError as err:
        raise CkmsimError(f"Dataset config '{path}': {err}") from None


def _resolve_scene(scene: str, base: Path) -> str:
    """A scene XML path relative to the config file made absolute; built-in names are left as they are."""
    if not isinstance(scene, str):
        raise CkmsimError(f"Scene entries must be strings. Received: {scene!r}")
    if not scene.lower().endswith(".xml"):
        return scene
    candidate = Path(scene)
    return str(candidate if candidate.is_absolute() else (base / candidate).resolve())


def _dataclass_from(cls, values: dict, section: str):
    """``cls(**values)`` with unknown keys named instead of a TypeError."""
    if not isinstance(values, dict):
        raise CkmsimError(f"[{section}] must be a table. Received: {values!r}")
    known = {f.name for f in fields(cls)}
    unknown = sorted(set(values) - known)
    if unknown:
        raise CkmsimError(f"unknown key(s) {unknown} in [{section}]; expected a subset of {sorted(known)}")
    return cls(**values)
