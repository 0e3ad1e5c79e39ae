"""The dataset store: one folder, one zarr store of samples, one manifest that commits them.

Layout::

    STORE/
      manifest.json    config, package versions, plan size, and one record per committed sample
                       (id, scene, tile, split, seeds, solver timings) in store order
      samples.zarr     xarray Dataset, every variable with leading dim ``sample`` (one chunk per sample)

Variables of ``samples.zarr`` (``S`` samples, ``L`` paths per cell, ``U`` UEs of the CSI drop):

=================== ========================================= ========= ===================================
variable            dims                                      dtype     meaning
=================== ========================================= ========= ===================================
``gain_db``         (sample, y, x)                            float32   channel gain [dB] (RadioMapSolver)
``path_gain_db``,   (sample, path, y, x)                      float32   per-path layers of the CKM contract
``aoa_*``, ``aod_*``,                                                   (:mod:`ckmsim.maps.ckm`)
``toa_s``
``los``,            (sample, y, x)                            bool      (no per-path layer and no ``los`` in
``building``                                                            a gain-only store, ``num_map_paths = 0``)
``x_m``, ``y_m``    (sample, x) / (sample, y)                 float64   cell-centre coordinates [m]
``tx_position_m``   (sample, xyz)                             float64   transmitter position [m]
``ue_cell``         (sample, ue, rc)                          int32     (row, col) of each CSI UE
``ue_position_m``   (sample, ue, xyz)                         float64
``h_dl``            (sample, ue, subcarrier, ue_ant, bs_ant)  complex64 downlink CSI
``h_ul``            (sample, ue, subcarrier, bs_ant, ue_ant)  complex64 uplink CSI
=================== ========================================= ========= ===================================

**Commit protocol.** A sample is appended to ``samples.zarr`` first, then its record is added to the
manifest, which is replaced atomically (write + ``os.replace``). The manifest is the only truth: a
build interrupted between the two steps leaves arrays one sample longer than the manifest, and opening the
store for writing cuts them back. Samples are therefore never lost once committed, and never duplicated.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import numpy as np
import xarray as xr

from ckmsim.errors import CkmsimError
from ckmsim.maps.ckm import KNOWN_VARIABLES, make_ckm
from ckmsim.maps.grid import Grid

MANIFEST = "manifest.json"
SAMPLES = "samples.zarr"
#: Version of the store layout; readers refuse other versions.
STORE_FORMAT = 1
#: Variables that hold CKM layers (everything else in a sample is geometry or CSI).
CKM_LAYERS = tuple(KNOWN_VARIABLES)
#: Layers read off the PathSolver's paths: a gain-only store (``num_map_paths = 0``) holds none of them.
PATH_LAYERS = ("path_gain_db", "aoa_az_deg", "aoa_el_deg", "aod_az_deg", "aod_el_deg", "toa_s", "los")


class DatasetStore:
    """A dataset on disk: append samples (builder) or read them (training, evaluation).

    Use :meth:`create` or :meth:`open`; both return a store whose :attr:`manifest` is in memory.
    """

    def __init__(self, path: Path, manifest: dict):
        self.path = Path(path)
        self.manifest = manifest
        self._samples: xr.Dataset | None = None

    # ------------------------------------------------------------------------------------------------
    # Creation, opening, committing
    # ------------------------------------------------------------------------------------------------
    @classmethod
    def create(cls, path: str | Path, header: dict) -> "DatasetStore":
        """Start an empty store at ``path`` (which must not hold a dataset yet) with the manifest ``header``."""
        path = Path(path)
        if (path / MANIFEST).exists():
            raise CkmsimError(f"'{path}' already holds a dataset; open it to resume, or choose another folder")
        try:
            path.mkdir(parents=True, exist_ok=True)
        except OSError as err:
            raise CkmsimError(f"Cannot create dataset folder '{path}': {err.strerror or err}") from None
        shutil.rmtree(path / SAMPLES, ignore_errors=True)
        store = cls(path, {"format": STORE_FORMAT, **header, "samples": []})
        store._write_manifest()
        return store

    @classmethod
    def open(cls, path: str | Path, writable: bool = False) -> "DatasetStore":
        """Open an existing store. With ``writable`` arrays beyond the last committed sample are cut back."""
        path = Path(path)
        manifest_path = path / MANIFEST
        if not manifest_path.is_file():
            raise CkmsimError(f"'{path}' is not a ckmsim dataset: {MANIFEST} is missing")
        try:
            manifest = json.loads(manifest_path.read_text())
        except json.JSONDecodeError as err:
            raise CkmsimError(f"Dataset manifest '{manifest_path}' is not valid JSON: {err}") from None
        if manifest.get("format") != STORE_FORMAT:
            raise CkmsimError(f"Dataset '{path}' has store format {manifest.get('format')!r}; this ckmsim reads "
                              f"format {STORE_FORMAT}")
        store = cls(path, manifest)
        if writable:
            store._truncate_to_manifest()
        return store

    def append(self, arrays: dict[str, tuple[tuple[str, ...], np.ndarray]], record: dict) -> None:
        """Commit one sample: ``arrays`` maps name -> (dims without ``sample``, values); ``record`` is its
        manifest entry (must hold a unique ``id``)."""
        if any(r["id"] == record["id"] for r in self.manifest["samples"]):
            raise CkmsimError(f"Sample '{record['id']}' is already in the dataset '{self.path}'")
        data = {name: (("sample",) + tuple(dims), np.asarray(values)[None]) for name, (dims, values) in arrays.items()}
        dataset = xr.Dataset(data)
        target = self.path / SAMPLES
        if self.manifest["samples"]:
            dataset.to_zarr(target, append_dim="sample", consolidated=False)
        else:
            dataset.to_zarr(target, mode="w", consolidated=False)
        self.manifest["samples"].append(record)
        self._write_manifest()
        self._samples = None

    def update_header(self, **values) -> None:
        """Change manifest fields other than the sample records (e.g. build timings) and write it."""
        self.manifest.update(values)
        self._write_manifest()

    def _write_manifest(self) -> None:
        staging = self.path / (MANIFEST + ".partial")
        staging.write_text(json.dumps(self.manifest, indent=1))
        os.replace(staging, self.path / MANIFEST)

    def _truncate_to_manifest(self) -> None:
        """Cut every array of ``samples.zarr`` back to the committed sample count."""
        import zarr

        committed = len(self.manifest["samples"])
        target = self.path / SAMPLES
        if committed == 0:
            shutil.rmtree(target, ignore_errors=True)
            return
        if not target.exists():
            raise CkmsimError(f"Dataset '{self.path}' commits {committed} samples but {SAMPLES} is missing")
        group = zarr.open_group(str(target), mode="r+")
        for name, array in group.arrays():
            if array.shape[0] < committed:
                raise CkmsimError(f"Dataset '{self.path}': array '{name}' holds {array.shape[0]} samples, fewer "
                                  f"than the {committed} the manifest commits; the store is damaged")
            if array.shape[0] > committed:
                array.resize((committed,) + tuple(array.shape[1:]))

    # ------------------------------------------------------------------------------------------------
    # Reading
    # ------------------------------------------------------------------------------------------------
    def __len__(self) -> int:
        return len(self.manifest["samples"])

    @property
    def records(self) -> list[dict]:
        """Manifest records of the committed samples, in store order."""
        return self.manifest["samples"]

    @property
    def samples(self) -> xr.Dataset:
        """All committed samples, lazily (nothing is read until indexed and loaded)."""
        if self._samples is None:
            if not len(self):
                raise CkmsimError(f"Dataset '{self.path}' holds no sample yet")
            opened = xr.open_zarr(self.path / SAMPLES, consolidated=False, chunks=None)
            self._samples = opened.isel(sample=slice(0, len(self)))
        return self._samples

    def indices(self, split: str | None = None) -> np.ndarray:
        """Store indices of the samples of ``split`` (``train``, ``val``, ``test``), or all for None."""
        splits = [r["split"] for r in self.records]
        if split is None:
            return np.arange(len(splits))
        if split not in ("train", "val", "test"):
            raise CkmsimError(f"split must be 'train', 'val' or 'test'. Received: split={split!r}")
        return np.array([i for i, s in enumerate(splits) if s == split], dtype=int)

    @property
    def layers(self) -> tuple[str, ...]:
        """CKM layers the store holds (e.g. only ``gain_db`` and ``building`` in a gain-only store)."""
        if not len(self):
            return ()
        return tuple(name for name in CKM_LAYERS if name in self.samples.data_vars)

    @property
    def gain_only(self) -> bool:
        """True for a store built with ``num_map_paths = 0`` (no PathSolver run)."""
        return self.manifest.get("config", {}).get("num_map_paths") == 0

    def require_layers(self, names, needed_by: str) -> None:
        """Raise a :class:`CkmsimError` naming the missing layers if the store lacks any of ``names``.

        ``needed_by`` says who asks ("the path pipeline", "the LoS prior"), for the message.
        """
        held = self.layers
        missing = [name for name in names if name not in held]
        if not missing:
            return
        if self.gain_only:
            raise CkmsimError(f"Dataset '{self.path}' is gain-only (built with [dataset] num_map_paths = 0, no "
                              f"PathSolver): it has no {missing} layer(s), which {needed_by} needs. Rebuild it "
                              f"with num_map_paths >= 1 (it holds {list(held)})")
        raise CkmsimError(f"Dataset '{self.path}' has no {missing} layer(s), which {needed_by} needs; it holds "
                          f"{list(held)}")

    def _check_index(self, index: int) -> int:
        if not (isinstance(index, (int, np.integer)) and -len(self) <= index < len(self)):
            raise CkmsimError(f"Sample index out of range: the dataset holds {len(self)} samples. "
                              f"Received: index={index!r}")
        return int(index) % len(self)

    def sample(self, index: int) -> xr.Dataset:
        """One sample's raw variables (without the ``sample`` dim), loaded."""
        return self.samples.isel(sample=self._check_index(index)).load()

    def ckm(self, index: int, layers=None) -> xr.Dataset:
        """Sample ``index`` as a CKM (:mod:`ckmsim.maps.ckm` contract) on its tile's grid.

        ``layers`` (names, optional) are layers the caller needs: a store without one of them (e.g. a
        gain-only store asked for ``path_gain_db``) raises a :class:`CkmsimError` that names it. The CKM
        holds every layer the store has either way.
        """
        index = self._check_index(index)
        if layers is not None:
            self.require_layers(tuple(layers), "the caller")
        raw = self.sample(index)
        record = self.records[index]
        grid = Grid.from_dict(record["grid"])
        variables = {name: raw[name].values for name in CKM_LAYERS if name in raw}
        config = self.manifest["config"]
        attrs = {"scene": record["scene"], "sample_id": record["id"], "split": record["split"]}
        # Ray-traced stores keep the frequency and settings in the config; imported ones per record.
        if "ray_tracing" in config:
            attrs["ray_tracing"] = config["ray_tracing"]
        frequency_hz = record.get("frequency_hz", config.get("ray_tracing", {}).get("frequency_hz"))
        if frequency_hz is not None:
            attrs["frequency_hz"] = float(frequency_hz)
        tx = raw["tx_position_m"].values
        if np.all(np.isfinite(tx)):
            attrs["bs_position_m"] = [float(v) for v in tx]
        for key in ("gain_floor_db", "source"):
            if key in record:
                attrs[key] = record[key]
        return make_ckm(grid, variables, attrs)
