"""Import CKMs from the dataset readers (or any iterable of CKMs) into a ckmsim dataset store.

Once imported, CKMImageNet or RadioMapSeer samples are used exactly like ray-traced ones: the same
:class:`~ckmsim.data.store.DatasetStore`, splits, ``dataset info/show`` and tf.data pipelines. Splits are drawn
by *area* (RadioMapSeer map, CKMImageNet subarea), never by sample, so that an area seen in training never
appears in validation or test. An interrupted import resumes at the first sample not yet committed.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

import numpy as np
import xarray as xr
from tqdm.auto import tqdm

from ckmsim import __version__
from ckmsim.data.store import CKM_LAYERS, DatasetStore
from ckmsim.errors import CkmsimError
from ckmsim.maps.ckm import grid_of, validate_ckm
from ckmsim.validation import is_finite_number


def area_of(ckm: xr.Dataset) -> str:
    """The area a CKM belongs to, for splitting: its scene plus the reader's map/area id when it has one."""
    source = ckm.attrs.get("source", {})
    for key in ("map", "area"):
        if key in source:
            return f"{ckm.attrs.get('scene', '')}/{key}{source[key]}"
    return str(ckm.attrs.get("scene", ""))


def reader_areas(reader) -> list[str]:
    """Area of every sample of a :class:`~ckmsim.data.readers.RadioMapSeerReader` (its city map) or
    :class:`~ckmsim.data.readers.CkmImageNetReader` (its subarea, when the layout names one), from the
    sample keys alone, without reading an image."""
    areas = []
    for sample in reader.samples:
        if isinstance(sample, tuple):
            areas.append(f"RadioMapSeer/map{sample[0]}")
        else:
            area = sample.get("area", "")
            areas.append(f"CKMImageNet/{reader.city}" + (f"/area{area}" if area else ""))
    return areas


def split_areas(areas: list[str], val_fraction: float, test_fraction: float, seed: int) -> dict[str, str]:
    """Assign each distinct area to ``train``/``val``/``test`` by shuffling them with ``seed`` and cutting
    the shuffled list at the fractions (rounded down, at least one area when the fraction is > 0 and there
    are enough areas)."""
    for name, value in (("val_fraction", val_fraction), ("test_fraction", test_fraction)):
        if not (is_finite_number(value) and 0.0 <= value <= 1.0):
            raise CkmsimError(f"{name} must be in [0, 1]. Received: {name}={value!r}")
    if val_fraction + test_fraction >= 1.0 and areas:
        raise CkmsimError(f"val_fraction + test_fraction must leave areas for training. Received: "
                          f"val_fraction={val_fraction}, test_fraction={test_fraction}")
    unique = sorted(set(areas))
    order = np.random.default_rng(seed).permutation(len(unique))

    def count(fraction: float) -> int:
        return 0 if fraction == 0 or len(unique) < 3 else max(1, int(fraction * len(unique)))

    num_val, num_test = count(val_fraction), count(test_fraction)
    splits = {}
    for rank, index in enumerate(order):
        splits[unique[index]] = "val" if rank < num_val else ("test" if rank < num_val + num_test else "train")
    return splits


def import_ckms(ckms: Iterable[xr.Dataset], out: str | Path, name: str, areas: list[str],
                val_fraction: float = 0.1, test_fraction: float = 0.1, seed: int = 0,
                source: dict | None = None, progress: bool = True,
                total: int | None = None) -> DatasetStore:
    """Write CKMs into a new (or partly written) store.

    Input
    -----
    ckms : iterable of CKMs, all on grids of the same shape, in a fixed order
    out : store folder
    name : dataset name
    areas : area of each CKM, in the same order (e.g. ``[area_of(c) for c in ...]`` or from a reader's keys)
    val_fraction, test_fraction, seed : split by area (see :func:`split_areas`)
    source : dict, optional, recorded in the manifest (e.g. the reader and its root)
    progress : bool
    total : int, optional, number of CKMs (for the progress bar)

    Output
    ------
    store : DatasetStore
    """
    splits = split_areas(list(areas), val_fraction, test_fraction, seed)
    config = {"imported": True, "name": name, "source": source or {}, "seed": int(seed),
              "val_fraction": float(val_fraction), "test_fraction": float(test_fraction), "num_samples": len(areas)}
    store = _open_or_create(Path(out), name, config, len(areas))
    done = len(store)
    bar = tqdm(total=len(areas), initial=done, desc="import", unit="sample", disable=not progress)
    try:
        for index, ckm in enumerate(ckms):
            if index < done:
                continue
            if index >= len(areas):
                raise CkmsimError(f"More CKMs than areas ({len(areas)}): pass one area per CKM")
            arrays, record = _sample(ckm, index, areas[index], splits[areas[index]], store)
            store.append(arrays, record)
            bar.update(1)
    finally:
        bar.close()
    return store


def _open_or_create(out: Path, name: str, config: dict, num_samples: int) -> DatasetStore:
    if (out / "manifest.json").exists():
        store = DatasetStore.open(out, writable=True)
        if store.manifest.get("config") != config:
            raise CkmsimError(f"'{out}' holds a dataset made from other inputs; choose a new folder")
        return store
    return DatasetStore.create(out, {"name": name, "ckmsim_version": __version__, "config": config,
                                     "versions": {}, "num_planned": num_samples})


def _sample(ckm: xr.Dataset, index: int, area: str, split: str, store: DatasetStore) -> tuple[dict, dict]:
    validate_ckm(ckm, where=f"CKM {index}")
    grid = grid_of(ckm)
    if len(store):
        first = store.records[0]["grid"]
        if (first["num_y"], first["num_x"]) != grid.shape:
            raise CkmsimError(f"CKM {index} has a {grid.shape} grid; the dataset's samples are "
                              f"{(first['num_y'], first['num_x'])}")
    arrays = {layer: (tuple(ckm[layer].dims), ckm[layer].values) for layer in CKM_LAYERS if layer in ckm}
    arrays["x_m"] = (("x",), grid.x_m.astype(np.float64))
    arrays["y_m"] = (("y",), grid.y_m.astype(np.float64))
    tx = ckm.attrs.get("bs_position_m")
    arrays["tx_position_m"] = (("xyz",), np.asarray(tx if tx is not None else [np.nan] * 3, dtype=np.float64))
    record = {"id": f"{area}/{index:06d}", "scene": ckm.attrs.get("scene", ""), "area": area, "split": split,
              "grid": grid.to_dict(), "frequency_hz": ckm.attrs.get("frequency_hz"),
              "gain_floor_db": ckm.attrs.get("gain_floor_db"), "source": ckm.attrs.get("source", {})}
    return arrays, {key: value for key, value in record.items() if value is not None}
