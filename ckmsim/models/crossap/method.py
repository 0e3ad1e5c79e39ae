r"""Inference with a trained cross-AP UNet: other APs' maps + a new AP's position -> its gain map [dB].

This is the paper's inference phase (Dai et al., Fig. 2 and eq. (2)),
:math:`f: \{\mathcal{M}_n\}_{n=1}^N; \mathbf{c}_0 \to \mathbf{G}_0`: the known APs' gain maps and positions
and the target position are encoded as in eqs. (3)-(5) (:class:`~ckmsim.models.crossap.data.CrossApEncoding`),
the UNet infers the target's gain pixels, and these are mapped back to dB over the encoding's
``gain_range_db``. :class:`RadioUNetStyleMethod` is the paper's reference point: the same network given the
building map and the target position instead of other APs' maps (RadioUNet, ref. [5]).

A trained run folder (:func:`ckmsim.models.crossap.train.train_crossap`) holds ``best.keras``,
``last.keras`` and ``crossap.json`` (the encoding); :meth:`CrossApUNetMethod.from_run` loads them.

The faces follow scikit-learn's: hyper-parameters (the model, the encoding) in ``__init__``, learning is
done by the trainer (``fit`` is a no-op that returns ``self``), and ``predict*`` have no side effects.
(The evaluator's :class:`~ckmsim.baselines.base.Method` takes one degraded map per observation; the cross-AP
observation, other APs' maps and a position, does not fit that face, as for the distance-weighted scheme.)
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Sequence

import numpy as np
import xarray as xr

from ckmsim.errors import CkmsimError
from ckmsim.maps.ckm import grid_of, make_ckm
from ckmsim.maps.grid import Grid
from ckmsim.maps.priors import cell_of_position
from ckmsim.models.crossap.data import CrossApEncoding

#: File of a run folder that holds the encoding a model was trained with.
RUN_INFO = "crossap.json"
#: A known AP within this distance of the target is the target itself [m].
TARGET_TOL_M = 1e-3


class CrossApUNetMethod:
    """Cross-AP CKM inference with a trained :class:`~ckmsim.models.crossap.network.CrossApUNet`.

    Parameters
    ----------
    model : keras.Model
        Takes ``[batch, num_y, num_x, encoding.num_input_channels]`` and returns ``[batch, num_y, num_x, 1]``
        gain pixels.
    encoding : CrossApEncoding
        The encoding the model was trained with (``inputs="cross_ap"``).
    batch_size : int
        Maps inferred per network call.
    symmetries : int
        1: the network's output as it is. 8: the mean of its outputs over the 8 rotations / reflections of the
        area, each mapped back (test-time augmentation; the networks are trained with them, ``augment``, and
        every input channel is a per-cell map that the symmetries act on, so each is an equally valid view).
        Square grids only.
    extra_models : sequence of keras.Model
        Further networks trained on the same encoding (other training seeds): the pixels are averaged over
        ``model`` and these (a seed ensemble; each network's errors are partly its own).
    """

    name = "crossap_unet"
    #: Reads its predicted map at the UE's position: no downlink pilot (see ``Method.downlink_pilot_overhead``)
    downlink_pilot_overhead = 0.0
    _inputs = "cross_ap"

    def __init__(self, model, encoding: CrossApEncoding, batch_size: int = 32, symmetries: int = 1,
                 extra_models: Sequence = ()):
        if symmetries not in (1, 8):
            raise CkmsimError(f"symmetries must be 1 (none) or 8 (every rotation and reflection). "
                              f"Received: symmetries={symmetries!r}")
        if encoding.inputs != self._inputs:
            raise CkmsimError(f"{type(self).__name__} needs an encoding with inputs={self._inputs!r}. "
                              f"Received: inputs={encoding.inputs!r}")
        channels = model.inputs[0].shape[-1] if getattr(model, "inputs", None) else None
        if channels is not None and channels != encoding.num_input_channels:
            raise CkmsimError(f"The model takes {channels} input channels but the encoding makes "
                              f"{encoding.num_input_channels}. Received: encoding={encoding}")
        self.model = model
        self.encoding = encoding
        self.batch_size = int(batch_size)
        self.symmetries = int(symmetries)
        self.extra_models = list(extra_models)

    @classmethod
    def from_run(cls, run: str | Path | Sequence[str | Path], which: str = "best", batch_size: int = 32,
                 symmetries: int = 1):
        """Load ``RUN/<which>.keras`` (``"best"`` or ``"last"``) and the encoding of ``RUN/crossap.json``.

        Several runs (a list) give a seed ensemble: they must share one encoding.
        """
        runs = [Path(run)] if isinstance(run, (str, Path)) else [Path(r) for r in run]
        if not runs:
            raise CkmsimError("from_run needs at least one run folder. Received: []")
        loaded = [_load_run(r, which) for r in runs]
        encoding = loaded[0][1]
        for r, (_, other) in zip(runs[1:], loaded[1:]):
            if other != encoding:
                raise CkmsimError(f"The runs of an ensemble must share one encoding: '{r}' differs from "
                                  f"'{runs[0]}'. Received: {other} vs {encoding}")
        return cls(loaded[0][0], encoding, batch_size, symmetries, [model for model, _ in loaded[1:]])

    def fit(self, train=None, val=None):
        """Nothing to learn here: the network is trained by :func:`~ckmsim.models.crossap.train.train_crossap`."""
        return self

    # ------------------------------------------------------------------------------------------------
    # Arrays
    # ------------------------------------------------------------------------------------------------
    def predict_pixels(self, inputs: np.ndarray) -> np.ndarray:
        """Run the network: ``[batch, num_y, num_x, C]`` float32 -> ``[batch, num_y, num_x]`` float32 pixels."""
        inputs = np.asarray(inputs, dtype=np.float32)
        if inputs.ndim != 4 or inputs.shape[-1] != self.encoding.num_input_channels:
            raise CkmsimError(f"inputs must be [batch, num_y, num_x, {self.encoding.num_input_channels}]. "
                              f"Received: shape={inputs.shape}")
        if self.symmetries == 8 and inputs.shape[1] != inputs.shape[2]:
            raise CkmsimError(f"symmetries=8 needs square maps. Received: shape={inputs.shape}")
        out = [self._predict_batch(inputs[i:i + self.batch_size]) for i in range(0, len(inputs), self.batch_size)]
        return np.concatenate(out) if out else np.zeros(inputs.shape[:3], np.float32)

    def _predict_batch(self, inputs: np.ndarray) -> np.ndarray:
        """``[b, y, x, C]`` -> ``[b, y, x]``: the mean over the networks and the symmetries of their pixels."""
        total = np.zeros(inputs.shape[:3], np.float64)
        for model in [self.model] + self.extra_models:
            for k in range(self.symmetries):
                view = np.asarray(model(_dihedral_batch(inputs, k), training=False))[..., 0]
                total += _undo_dihedral_batch(view, k)
        return (total / ((1 + len(self.extra_models)) * self.symmetries)).astype(np.float32)

    def encode(self, grid: Grid, building: np.ndarray, target_position_m: Sequence[float],
               known_gain_db: np.ndarray | None = None, known_positions_m: np.ndarray | None = None) -> np.ndarray:
        """The network input ``[num_y, num_x, C]`` for one target (see :meth:`predict_gain_db`)."""
        target_cell = cell_of_position(grid, target_position_m)
        known_gain_db, known_positions_m = self._known(grid, building, target_position_m, known_gain_db,
                                                       known_positions_m)
        cells = np.array([cell_of_position(grid, p) for p in known_positions_m], dtype=np.int64).reshape(-1, 2)
        # the physics channels (encoding.physics) need the positions themselves, not only their cells
        return self.encoding.encode(target_cell, building, known_gain_db, cells, grid, target_position_m,
                                    known_positions_m)

    def _known(self, grid, building, target_position_m, known_gain_db, known_positions_m):
        """The known APs the input holds: the ``num_known_aps`` nearest to the target when more are given
        (the network has that many channels; the nearest maps tell most about the target's surroundings)."""
        if known_gain_db is None or known_positions_m is None:
            raise CkmsimError("Cross-AP inference needs the known APs' maps and positions. Received: None")
        maps = np.asarray(known_gain_db, dtype=np.float64)
        positions = np.asarray(known_positions_m, dtype=np.float64)
        if maps.ndim != 3 or maps.shape[1:] != grid.shape:
            raise CkmsimError(f"known_gain_db must be [K, {grid.num_y}, {grid.num_x}]. Received: shape={maps.shape}")
        if positions.ndim != 2 or positions.shape[0] != maps.shape[0] or positions.shape[1] not in (2, 3):
            raise CkmsimError(f"known_positions_m must be [K, 2] or [K, 3] with K = {maps.shape[0]}. "
                              f"Received: shape={positions.shape}")
        self._refuse_target_among_known(positions, target_position_m)
        if maps.shape[0] > self.encoding.num_known_aps:
            target = np.asarray(target_position_m, dtype=np.float64)[:2]
            nearest = np.argsort(np.linalg.norm(positions[:, :2] - target, axis=1), kind="stable")
            keep = np.sort(nearest[:self.encoding.num_known_aps])
            maps, positions = maps[keep], positions[keep]
        return maps, positions

    @staticmethod
    def _refuse_target_among_known(positions_m: np.ndarray, target_position_m) -> None:
        """A known AP standing where the target stands is the target itself: its map would hand the network
        the answer (the paper infers an AP whose map nobody has). Positions are compared in the coordinates
        both give (x, y, and z where both have it), to 1 mm."""
        target = np.asarray(target_position_m, dtype=np.float64).ravel()
        dims = min(target.size, positions_m.shape[1])
        same = np.flatnonzero(np.linalg.norm(positions_m[:, :dims] - target[:dims], axis=1) < TARGET_TOL_M)
        if same.size:
            raise CkmsimError(f"Known AP {int(same[0])} stands at the target position {target.tolist()}: its map is "
                              f"the target's own. Pass the other APs' maps only.")

    def predict_gain_db(self, grid: Grid, building: np.ndarray, target_positions_m,
                        known_gain_db: np.ndarray | None = None,
                        known_positions_m: np.ndarray | None = None) -> np.ndarray:
        """Infer the gain maps of one or several target APs from the same known APs.

        Input
        -----
        grid : Grid of the area
        building : ``[num_y, num_x]``, bool
        target_positions_m : ``[2]`` / ``[3]`` (one target) or ``[T, 2]`` / ``[T, 3]`` [m]
        known_gain_db : ``[K, num_y, num_x]``, float [dB] — the known APs' maps (NaN / floor values allowed)
        known_positions_m : ``[K, 2]`` or ``[K, 3]`` [m] (3-D positions, target's too, with
            ``encoding.physics``: the free-space channels need the heights)

        Output
        ------
        gain_db : ``[num_y, num_x]`` (or ``[T, num_y, num_x]``), float64 [dB] within ``gain_range_db``,
        NaN on building cells
        """
        building = np.asarray(building, dtype=bool)
        targets = np.asarray(target_positions_m, dtype=np.float64)
        single = targets.ndim == 1
        targets = targets.reshape(-1, targets.shape[-1])
        # [T, y, x, C]
        inputs = np.stack([self.encode(grid, building, t, known_gain_db, known_positions_m) for t in targets])
        gain_db = np.where(building, np.nan, self.encoding.gain_db(self.predict_pixels(inputs)))
        return gain_db[0] if single else gain_db

    # ------------------------------------------------------------------------------------------------
    # CKMs
    # ------------------------------------------------------------------------------------------------
    def predict(self, known_ckms: Sequence[xr.Dataset], target_position_m: Sequence[float]) -> xr.Dataset:
        """The CKM face: the inferred CKM (``gain_db``, ``building``) of an AP at ``target_position_m`` from the
        CKMs of the known APs of the same area (each with its ``bs_position_m``; one grid)."""
        if not known_ckms:
            raise CkmsimError("Cross-AP inference needs at least one known AP's CKM. Received: 0 CKMs")
        grid = grid_of(known_ckms[0])
        if any(grid_of(ckm) != grid for ckm in known_ckms[1:]):
            raise CkmsimError("The known CKMs must share one grid")
        building = known_ckms[0]["building"].values
        maps = np.stack([ckm["gain_db"].values for ckm in known_ckms])
        positions = np.array([ckm.attrs["bs_position_m"] for ckm in known_ckms], dtype=np.float64)
        gain_db = self.predict_gain_db(grid, building, target_position_m, maps, positions)
        return self._ckm(grid, gain_db, building, known_ckms[0].attrs, target_position_m)

    def _ckm(self, grid: Grid, gain_db: np.ndarray, building: np.ndarray, source_attrs: dict,
             target_position_m) -> xr.Dataset:
        attrs = {key: source_attrs[key] for key in ("scene", "frequency_hz") if key in source_attrs}
        attrs.update(bs_position_m=[float(v) for v in target_position_m], method=self.name, task="cross_ap")
        return make_ckm(grid, {"gain_db": gain_db, "building": building}, attrs)


def _load_run(run: Path, which: str):
    """(keras model, encoding) of one finished training run folder."""
    import keras

    import ckmsim.models.crossap.network  # noqa: F401  (registers the custom layers for loading)

    model_path, info_path = run / f"{which}.keras", run / RUN_INFO
    for path in (model_path, info_path):
        if not path.is_file():
            raise CkmsimError(f"'{run}' is not a finished cross-AP run: {path.name} is missing")
    encoding = CrossApEncoding.from_dict(json.loads(info_path.read_text())["encoding"])
    return keras.saving.load_model(model_path, compile=False), encoding


def _dihedral_batch(maps: np.ndarray, k: int) -> np.ndarray:
    """:func:`~ckmsim.models.crossap.data.dihedral` on every map of a batch: ``[b, y, x, ...]``."""
    out = np.rot90(maps, k % 4, axes=(1, 2))
    return np.ascontiguousarray(out[:, :, ::-1] if k >= 4 else out)


def _undo_dihedral_batch(maps: np.ndarray, k: int) -> np.ndarray:
    """The inverse of :func:`_dihedral_batch`: undo the flip first, then turn back."""
    out = maps[:, :, ::-1] if k >= 4 else maps
    return np.ascontiguousarray(np.rot90(out, -(k % 4), axes=(1, 2)))


class RadioUNetStyleMethod(CrossApUNetMethod):
    """The paper's reference point (RadioUNet, ref. [5]): the UNet given the building map and the target AP's
    location, no other AP's map. Trained with ``inputs="radiounet"``; known maps are not used."""

    name = "radiounet_style"
    _inputs = "radiounet"

    def _known(self, grid, building, target_position_m, known_gain_db, known_positions_m):
        return None, np.zeros((0, 2))

    def predict(self, known_ckms: Sequence[xr.Dataset], target_position_m: Sequence[float]) -> xr.Dataset:
        """Only the first CKM's grid, building map and attributes are read."""
        if not known_ckms:
            raise CkmsimError("Pass one CKM of the area (for its grid and building map). Received: 0 CKMs")
        grid, building = grid_of(known_ckms[0]), known_ckms[0]["building"].values
        gain_db = self.predict_gain_db(grid, building, target_position_m)
        return self._ckm(grid, gain_db, building, known_ckms[0].attrs, target_position_m)
