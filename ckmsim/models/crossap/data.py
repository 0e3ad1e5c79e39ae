r"""Multi-AP areas and the cross-AP UNet's input tensors (Dai et al., Sec. III-A, eqs. (3)-(5)).

An *area* is one tile of one scene with the channel gain maps of its APs (RadioMapSeer: one city map with 80
AP maps; ckmsim: the samples of a dataset store that share ``scene`` and ``tile_index``, one per
transmitter). Splits are by tile in the builder, so the samples of an area always share one split and no
test area is seen in training.

For a *target* AP of an area, the network input stacks (:class:`CrossApEncoding`):

- channel 0: :math:`\mathbf{M}^*_{AP,target}`, the target's one-hot location map (eq. (3)) convolved with
  a 3 x 3 kernel of ones (eq. (5));
- channels 1..K: :math:`\mathbf{M}_n = (1-\omega)\mathbf{G}_n + \omega\mathbf{M}_{AP,n}` (eq. (4)) of
  ``K`` known APs of the same area, with :math:`\mathbf{G}_n` the gain map as pixels over ``gain_range_db``
  (building cells 0, gains below the range at 0 as RadioMapSeer truncates at its -147 dB threshold);
- channels K+1..num_known_aps: zeros when fewer APs are known than the network has channels for.

With ``physics=True`` (issue 14) six channels follow the known APs (:mod:`ckmsim.models.crossap.physics`),
channels K+1..K+6 with K = ``num_known_aps``: the distance-weighted inference of eq. (7) from the same known
APs, the target's free-space gain, the target's free-space gain plus eq. (7) on the known APs' excess loss
(all three as gain pixels), the building map (1 open, 0 building), the target's 2-D line of sight (1 where
the straight line from the target crosses no building cell) and the length of that line inside buildings
over ``BLOCKAGE_SCALE_M`` (capped at 1). The network then learns a correction
to channel K+1 (:attr:`CrossApEncoding.residual_channel`, see :class:`~ckmsim.models.crossap.network.CrossApUNet`).

With ``ap_features=True`` (issue 14, needs ``physics``) :data:`NUM_AP_FEATURES` channels per known-AP slot
follow, slot-major (slot ``n`` at channels ``ap_first_channel + n * NUM_AP_FEATURES + f``), for a network that
weighs the known APs *per cell* (:class:`~ckmsim.models.crossap.network.KnownApPooling`) instead of by
their distance to the target alone as eq. (7) does. Each slot, in the order of the known APs' channels (zeros
in unused slots), holds :data:`AP_FEATURES`:

- ``valid``: 1 where the slot holds a known AP (on open cells);
- ``transferred``: the target's free-space gain plus AP ``n``'s excess loss :math:`G_n - FS_n` at the cell,
  as gain pixels -- the target's map if AP ``n``'s shadowing held for it;
- ``gain``: :math:`G_n` as gain pixels;
- ``los`` / ``blockage``: AP ``n``'s 2-D line of sight and blockage length to the cell (as the target's
  physics channels), and ``target_los`` / ``target_blockage`` the target's, repeated per slot so that each
  slot's features say whether AP ``n`` and the target see the cell alike;
- ``ap_distance``: the horizontal distance from AP ``n`` to the target over ``DISTANCE_SCALE_M`` (the same
  at every cell), ``cell_distance``: from AP ``n`` to the cell over ``DISTANCE_SCALE_M``.

Building cells are 0 in every feature. All features are per-cell maps or constants, so the 8 dihedral
symmetries of the area act on them as on the other channels.

With ``visibility=True`` (issue 14, needs ``physics``) two channels follow the six physics channels, and two
features (:data:`VISIBILITY_AP_FEATURES`) each known-AP slot's nine: the AP's visibility order over
``VISIBILITY_MAX_ORDER + 1`` (0 where the AP is seen in 2-D, k where a path through open cells must turn k
corners, 1 beyond the ray tracer's depth) and its detour, the shortest open-space path minus the straight
line, over ``DETOUR_SCALE_M`` (capped at 1; :func:`~ckmsim.models.crossap.physics.visibility_order_map`,
:func:`~ckmsim.models.crossap.physics.detour_map`). Line of sight and blockage say whether and how much a
building is in the way; the order says how many interactions a path needs, and whether the target and a known
AP reach a cell alike.

The paper always uses all :math:`N = 79` other APs of an area. ckmsim can also draw ``K`` at random in
``[min_known_aps, num_known_aps]`` during training (zero-padded), which lets one network infer a candidate
site's map from however many APs are deployed (the deployment study). The variant ``inputs="radiounet"``
is the paper's reference point, RadioUNet: channel 0 as above and channel 1 the building map (1 on open
cells, 0 on buildings), no other AP.

During training "each AP randomly takes turns to play the role of target AP": one epoch visits every
(area, target) pair in a seeded random order, and the pair ``i`` of epoch ``e`` draws its known APs, their
order and (optionally) one of the 8 rotations / reflections of the square area from
``default_rng([seed, e, i])``. Areas are read from the store when first needed and kept in a small cache.
"""

from __future__ import annotations

import math
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ckmsim.data.store import DatasetStore
from ckmsim.errors import CkmsimError
from ckmsim.maps.grid import Grid
from ckmsim.maps.pixels import GainRangeCoding
from ckmsim.maps.priors import (ap_location_map, building_map, cell_of_position,
                                preconvolved_location_map)
from ckmsim.models.crossap.physics import (PAPER_BETA_PER_M, PHYSICS_MAPS, blockage_map, detour_map,
                                          free_space_map_db, physics_maps, visibility_order_map)
from ckmsim.validation import is_finite_number, is_whole_number

#: Input encodings: the paper's cross-AP input, and RadioUNet's (building map + target location).
INPUT_KINDS = ("cross_ap", "radiounet")
#: Default pixel range [dB]: 100 dB like RadioMapSeer's (-147..-47 dB), placed on ckmsim's 28 GHz, 64 m tiles
#: with APs at 10 m, whose strongest cells lie near -78 dB and whose deep shadow falls to the -250 dB floor.
DEFAULT_GAIN_RANGE_DB = (-170.0, -70.0)
#: Channels ``physics=True`` adds: eq. (7), free space, free space + eq. (7) on excess loss, building map,
#: line of sight, blockage.
NUM_PHYSICS_CHANNELS = len(PHYSICS_MAPS) + 3
#: Length inside buildings [m] that makes the blockage channel 1.
BLOCKAGE_SCALE_M = 20.0
#: Per-slot features ``ap_features=True`` adds for every known-AP slot (module docstring).
AP_FEATURES = ("valid", "transferred", "gain", "los", "blockage", "target_los", "target_blockage",
               "ap_distance", "cell_distance")
NUM_AP_FEATURES = len(AP_FEATURES)
#: Per-slot features ``visibility=True`` appends: the known AP's visibility order and detour (module docstring).
VISIBILITY_AP_FEATURES = ("order", "detour")
#: Highest visibility order told apart: the datasets' ray-tracing depth (``max_depth = 3``); higher orders
#: share the value ``VISIBILITY_MAX_ORDER + 1``.
VISIBILITY_MAX_ORDER = 3
#: Detour [m] that makes the detour channels 1 (half a 32 x 32 tile of 2 m cells).
DETOUR_SCALE_M = 32.0
#: Distance [m] that makes the distance features 1 (about a 32 x 32 tile of 2 m cells).
DISTANCE_SCALE_M = 64.0
#: Cells the training loss runs over: all, the open (non-building) ones, or the open ones a ray reached
#: (true gain above the low end of the range: the RadioMapSolver floor sits below it).
LOSS_CELLS = ("all", "open", "reached")
#: Orders of the known APs' channels (:class:`CrossApEncoding`).
KNOWN_ORDERS = ("given", "nearest")


# ----------------------------------------------------------------------------------------------------------
# Areas
# ----------------------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class AreaRef:
    """Where an area's samples are in a store: ``sample_indices`` [N] in store order (one per AP)."""

    scene: str
    tile_index: int
    split: str
    sample_indices: tuple[int, ...]

    @property
    def label(self) -> str:
        """``<scene folder or name>/tile<index>``, as in the sample ids."""
        scene = Path(self.scene).parent.name if self.scene.lower().endswith(".xml") else self.scene
        return f"{scene}/tile{self.tile_index:03d}"


@dataclass(frozen=True)
class Area:
    """The APs of one area and their true maps.

    Attributes
    ----------
    ref : AreaRef
    grid : Grid, the tile's grid (``[num_y, num_x]`` cells)
    gain_db : ``[N, num_y, num_x]``, float32 — each AP's channel gain [dB], NaN on buildings
    building : ``[num_y, num_x]``, bool
    ap_positions_m : ``[N, 3]``, float64 — AP positions (x, y, z) [m]
    ap_cells : ``[N, 2]``, int — (row, col) of the cell under each AP
    frequency_hz : float or None
    """

    ref: AreaRef
    grid: Grid
    gain_db: np.ndarray
    building: np.ndarray
    ap_positions_m: np.ndarray
    ap_cells: np.ndarray
    frequency_hz: float | None = None

    @property
    def num_aps(self) -> int:
        return int(self.gain_db.shape[0])


def group_areas(store: DatasetStore, split: str | None = None, min_aps: int = 2) -> list[AreaRef]:
    """The areas of a store (samples grouped by ``(scene, tile_index)``), in order of first appearance.

    Input
    -----
    store : DatasetStore
    split : "train" | "val" | "test" | None (all)
    min_aps : int — areas with fewer APs (a partial build's last tile) are left out

    Output
    ------
    areas : list of AreaRef
    """
    wanted = set(int(i) for i in store.indices(split))
    groups: dict[tuple[str, int], list[int]] = {}
    splits: dict[tuple[str, int], set] = {}
    for index, record in enumerate(store.records):
        key = (record["scene"], int(record["tile_index"]))
        splits.setdefault(key, set()).add(record["split"])
        if index in wanted:
            groups.setdefault(key, []).append(index)
    mixed = [key for key in groups if len(splits[key]) > 1]
    if mixed:
        raise CkmsimError(f"Dataset '{store.path}': the samples of area {mixed[0]} lie in several splits "
                          f"{sorted(splits[mixed[0]])}; cross-AP areas must be split by tile")
    return [AreaRef(scene, tile, store.records[indices[0]]["split"], tuple(indices))
            for (scene, tile), indices in groups.items() if len(indices) >= min_aps]


def load_area(store: DatasetStore, ref: AreaRef) -> Area:
    """Read one area's gain maps, building mask and AP positions from ``store``."""
    indices = list(ref.sample_indices)
    grids = {str(store.records[i]["grid"]) for i in indices}
    if len(grids) != 1:
        raise CkmsimError(f"The samples of area {ref.label} lie on different grids; expected one tile grid")
    grid = Grid.from_dict(store.records[indices[0]]["grid"])
    samples = store.samples.isel(sample=indices)
    # [N, y, x]
    gain_db = samples["gain_db"].values.astype(np.float32)
    building = samples["building"].values[0].astype(bool)
    positions = samples["tx_position_m"].values.astype(np.float64)
    cells = np.array([cell_of_position(grid, p) for p in positions], dtype=np.int64)
    frequency_hz = store.manifest.get("config", {}).get("ray_tracing", {}).get("frequency_hz")
    return Area(ref=ref, grid=grid, gain_db=gain_db, building=building, ap_positions_m=positions, ap_cells=cells,
                frequency_hz=None if frequency_hz is None else float(frequency_hz))


class AreaCache:
    """Areas of one list of refs, loaded on first use and kept (least recently used first out)."""

    def __init__(self, store: DatasetStore, refs: list[AreaRef], max_areas: int = 256):
        self.store = store
        self.refs = list(refs)
        self.max_areas = int(max_areas)
        self._areas: OrderedDict[int, Area] = OrderedDict()

    def __len__(self) -> int:
        return len(self.refs)

    def __getitem__(self, index: int) -> Area:
        if index in self._areas:
            self._areas.move_to_end(index)
            return self._areas[index]
        area = load_area(self.store, self.refs[index])
        self._areas[index] = area
        if len(self._areas) > self.max_areas:
            self._areas.popitem(last=False)
        return area


# ----------------------------------------------------------------------------------------------------------
# Encoding, eqs. (3)-(5)
# ----------------------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class CrossApEncoding(GainRangeCoding):
    r"""How maps become network pixels and inputs, and back.

    Parameters
    ----------
    inputs : "cross_ap" | "radiounet"
        The paper's input (target + K known APs' feature maps), or RadioUNet's (target + building map).
    num_known_aps : int
        Feature-map channels of the network (:math:`N` of the paper, 79 on RadioMapSeer); ignored by
        ``"radiounet"``.
    weight : float
        :math:`\omega` of eq. (4), in [0, 1]. The paper gives no value; 0.2 lifts an AP's cell 0.2 above what
        its gain alone would give while keeping 80 % of the map's contrast.
    gain_range_db : (low, high)
        Gains mapped linearly onto pixels [0, 1]; gains outside are clipped (:mod:`ckmsim.maps.pixels`).
    physics : bool
        Cross-AP only: add the six physics channels of the module docstring after the known APs.
    frequency_hz : float or None
        Carrier of the free-space channels [Hz]; required with ``physics``.
    beta_per_m : float
        :math:`\beta` of eq. (7) for the distance-weighted channels [1/m] (the paper's 0.1).
    ap_features : bool
        Cross-AP with ``physics`` only: add :data:`NUM_AP_FEATURES` channels per known-AP slot (module
        docstring), for the network's per-cell pooling of the known APs.
    known_order : "given" | "nearest"
        Order of the known APs' channels. ``"given"`` (the paper: it is silent, and its APs' channels carry
        no fixed meaning either, RadioMapSeer's 80 sites differing per map) keeps the caller's order, which
        training draws at random. ``"nearest"`` (issue 14) sorts them by distance from the target's cell,
        nearest first, ties by the given order: channel 1 is then always the map most like the target's, a
        meaning each convolution can learn instead of having to treat every channel alike.
    """

    inputs: str = "cross_ap"
    num_known_aps: int = 7
    weight: float = 0.2
    gain_range_db: tuple[float, float] = DEFAULT_GAIN_RANGE_DB
    physics: bool = False
    frequency_hz: float | None = None
    beta_per_m: float = PAPER_BETA_PER_M
    known_order: str = "given"
    ap_features: bool = False
    visibility: bool = False

    CODING_LABEL = "cross-AP encoding"

    def __post_init__(self):
        if self.inputs not in INPUT_KINDS:
            raise CkmsimError(f"inputs must be one of {list(INPUT_KINDS)}. Received: inputs={self.inputs!r}")
        if not is_whole_number(self.num_known_aps, minimum=1):
            raise CkmsimError(f"num_known_aps must be a positive integer. "
                              f"Received: num_known_aps={self.num_known_aps!r}")
        if not (is_finite_number(self.weight) and 0.0 <= self.weight <= 1.0):
            raise CkmsimError(f"weight (omega of eq. (4)) must lie in [0, 1]. Received: weight={self.weight!r}")
        self._check_gain_range()
        object.__setattr__(self, "num_known_aps", int(self.num_known_aps))
        if not isinstance(self.physics, bool):
            raise CkmsimError(f"physics must be true or false. Received: physics={self.physics!r}")
        if self.physics and self.inputs != "cross_ap":
            raise CkmsimError(f"The physics channels need the other APs' maps (inputs='cross_ap'). "
                              f"Received: inputs={self.inputs!r}, physics=True")
        if self.physics and not (is_finite_number(self.frequency_hz) and float(self.frequency_hz) > 0):
            raise CkmsimError(f"physics=True needs the carrier frequency_hz (> 0) of the free-space channels. "
                              f"Received: frequency_hz={self.frequency_hz!r}")
        if not (is_finite_number(self.beta_per_m) and self.beta_per_m >= 0):
            raise CkmsimError(f"beta_per_m (eq. (7)) must be a finite number >= 0. Received: beta_per_m={self.beta_per_m!r}")
        if self.frequency_hz is not None:
            object.__setattr__(self, "frequency_hz", float(self.frequency_hz))
        if self.known_order not in KNOWN_ORDERS:
            raise CkmsimError(f"known_order must be one of {list(KNOWN_ORDERS)}. "
                              f"Received: known_order={self.known_order!r}")
        if not isinstance(self.ap_features, bool):
            raise CkmsimError(f"ap_features must be true or false. Received: ap_features={self.ap_features!r}")
        if self.ap_features and not self.physics:
            raise CkmsimError("ap_features=True needs physics=True (the free-space gains and blockage of the "
                              "known APs). Received: physics=False")
        if not isinstance(self.visibility, bool):
            raise CkmsimError(f"visibility must be true or false. Received: visibility={self.visibility!r}")
        if self.visibility and not self.physics:
            raise CkmsimError("visibility=True adds to the physics channels and needs physics=True. "
                              "Received: physics=False")

    @property
    def num_input_channels(self) -> int:
        """Channels of the network input: ``num_known_aps + 1`` (+ ``NUM_PHYSICS_CHANNELS`` with ``physics``,
        + ``num_known_aps * NUM_AP_FEATURES`` with ``ap_features``) for cross-AP, 2 for RadioUNet."""
        if self.inputs != "cross_ap":
            return 2
        return self.ap_first_channel + (self.num_known_aps * self.num_ap_features if self.ap_features else 0)

    @property
    def num_physics_channels(self) -> int:
        """Channels after the known APs' maps: ``NUM_PHYSICS_CHANNELS`` (+ 2 with ``visibility``), 0 without
        ``physics``."""
        if not self.physics:
            return 0
        return NUM_PHYSICS_CHANNELS + (2 if self.visibility else 0)

    @property
    def num_ap_features(self) -> int:
        """Features per known-AP slot: ``NUM_AP_FEATURES`` (+ ``len(VISIBILITY_AP_FEATURES)`` with ``visibility``)."""
        return NUM_AP_FEATURES + (len(VISIBILITY_AP_FEATURES) if self.visibility else 0)

    @property
    def ap_feature_names(self) -> tuple[str, ...]:
        """Names of the per-slot features, in channel order within a slot."""
        return AP_FEATURES + (VISIBILITY_AP_FEATURES if self.visibility else ())

    @property
    def ap_first_channel(self) -> int:
        """First channel of the per-slot known-AP features (the channel count without them)."""
        return self.num_known_aps + 1 + self.num_physics_channels

    @property
    def residual_channel(self) -> int | None:
        """Input channel of eq. (7)'s inference, which the network's output is added to (None without physics)."""
        return self.num_known_aps + 1 if self.physics else None

    def encode(self, target_cell, building: np.ndarray, known_gain_db: np.ndarray | None = None,
               known_cells: np.ndarray | None = None, grid: Grid | None = None, target_position_m=None,
               known_positions_m: np.ndarray | None = None) -> np.ndarray:
        r"""The network input for one target AP.

        Input
        -----
        target_cell : (row, col) of the target AP
        building : ``[num_y, num_x]``, bool
        known_gain_db : ``[K, num_y, num_x]``, float [dB], K <= ``num_known_aps`` (cross-AP only)
        known_cells : ``[K, 2]``, int, (row, col) of each known AP (cross-AP only)
        grid, target_position_m ``[3]``, known_positions_m ``[K, 3]`` : the area's grid and the APs' (x, y, z)
            positions [m] (``physics`` only)

        Output
        ------
        inputs : ``[num_y, num_x, num_input_channels]``, float32 — see the module docstring for the layout
        """
        building = np.asarray(building, dtype=bool)
        if building.ndim != 2:
            raise CkmsimError(f"building must be [num_y, num_x] bool. Received: shape={building.shape}")
        target = preconvolved_location_map(ap_location_map(building.shape, target_cell))
        if self.inputs == "radiounet":
            # [y, x, 2]
            return np.stack([target, building_map(building)], axis=-1)
        if known_gain_db is None or known_cells is None:
            raise CkmsimError("The cross-AP input needs the known APs' maps and cells. Received: known_gain_db=None")
        known_gain_db = np.asarray(known_gain_db)
        known_cells = np.asarray(known_cells).reshape(-1, 2)
        if known_gain_db.ndim != 3 or known_gain_db.shape[1:] != building.shape:
            raise CkmsimError(f"known_gain_db must be [K, num_y, num_x] on the building map's {building.shape} grid. "
                              f"Received: shape={known_gain_db.shape}")
        num_known = known_gain_db.shape[0]
        if not 1 <= num_known <= self.num_known_aps or known_cells.shape[0] != num_known:
            raise CkmsimError(f"Between 1 and num_known_aps={self.num_known_aps} known APs, one cell each, are "
                              f"needed. Received: {num_known} map(s), {known_cells.shape[0]} cell(s)")
        if self.known_order == "nearest":
            # stable: APs at one distance keep the caller's order
            order = np.argsort(np.hypot(*(known_cells - np.asarray(target_cell)).T), kind="stable")
            known_gain_db, known_cells = known_gain_db[order], known_cells[order]
            if known_positions_m is not None:
                known_positions_m = np.asarray(known_positions_m)[order]
        channels = np.zeros(building.shape + (self.num_input_channels,), dtype=np.float32)
        channels[..., 0] = target
        # eq. (4) for all K maps at once (ap_feature_map, vectorised): (1 - w) G_n + w at the AP's cell
        features = (1.0 - self.weight) * self.gain_pixels(known_gain_db, building)
        rows, cols = (np.asarray(v, dtype=np.int64) for v in known_cells.T)
        if np.any((rows < 0) | (rows >= building.shape[0]) | (cols < 0) | (cols >= building.shape[1])):
            raise CkmsimError(f"known_cells must lie in the {building.shape} grid. Received: {known_cells.tolist()}")
        features[np.arange(num_known), rows, cols] += self.weight
        channels[..., 1:num_known + 1] = np.moveaxis(features, 0, -1)
        if self.physics:
            if grid is None or target_position_m is None or known_positions_m is None:
                raise CkmsimError("physics=True needs the grid and the target's and known APs' (x, y, z) positions. "
                                  "Received: None")
            maps = physics_maps(grid, building, target_position_m, known_gain_db, known_positions_m,
                                self.frequency_hz, self.gain_range_db, self.beta_per_m)
            first = self.residual_channel
            for offset, name in enumerate(PHYSICS_MAPS):
                channels[..., first + offset] = self.gain_pixels(maps[name], building)
            blocked = blockage_map(building, target_cell, grid.cell_size_m)
            rest = first + len(PHYSICS_MAPS)
            channels[..., rest] = building_map(building)
            channels[..., rest + 1] = blocked == 0
            channels[..., rest + 2] = np.minimum(blocked / BLOCKAGE_SCALE_M, 1.0)
            if self.visibility:
                channels[..., rest + 3:rest + 5] = self.visibility_channels(building, target_cell,
                                                                             grid.cell_size_m)
            if self.ap_features:
                features = self.known_ap_features(grid, building, target_cell, target_position_m, blocked,
                                                  known_gain_db, known_cells, known_positions_m)
                first = self.ap_first_channel
                channels[..., first:first + features.shape[-1]] = features
        return channels

    @staticmethod
    def visibility_channels(building: np.ndarray, cell, cell_size_m: float) -> np.ndarray:
        """The AP's visibility order over ``VISIBILITY_MAX_ORDER + 1`` and its detour over ``DETOUR_SCALE_M``
        (capped at 1), 0 on building cells: ``[num_y, num_x, 2]`` float32."""
        order = visibility_order_map(building, cell, VISIBILITY_MAX_ORDER) / (VISIBILITY_MAX_ORDER + 1.0)
        detour = np.minimum(detour_map(building, cell, cell_size_m) / DETOUR_SCALE_M, 1.0)
        return np.where(building[..., None], 0.0, np.stack([order, detour], axis=-1)).astype(np.float32)

    def known_ap_features(self, grid: Grid, building: np.ndarray, target_cell, target_position_m,
                          target_blockage_m: np.ndarray, known_gain_db: np.ndarray, known_cells: np.ndarray,
                          known_positions_m: np.ndarray) -> np.ndarray:
        """The per-slot features of the module docstring for the ``K`` known APs given, in their order.

        Output: ``[num_y, num_x, K * num_ap_features]``, float32, slot-major, 0 on building cells.
        """
        known_positions_m = np.asarray(known_positions_m, dtype=np.float64).reshape(-1, 3)
        target = np.asarray(target_position_m, dtype=np.float64).ravel()
        low, high = self.gain_range_db
        open_cells = (~building).astype(np.float32)
        # [K, y, x] free-space gains of the known APs and [y, x] the target's [dB]
        known_free_space = free_space_map_db(grid, known_positions_m, self.frequency_hz)
        target_free_space = free_space_map_db(grid, target, self.frequency_hz)
        with np.errstate(invalid="ignore"):
            transferred = target_free_space + np.clip(known_gain_db, low, high) - known_free_space
        # [y, x, 2] cell centres; distances in the horizontal plane, as eq. (7)'s
        centers = grid.cell_centers_m()[..., :2]
        features = np.zeros((known_gain_db.shape[0], self.num_ap_features) + building.shape, dtype=np.float32)
        target_blocked = np.minimum(target_blockage_m / BLOCKAGE_SCALE_M, 1.0)
        for n, (cell, position) in enumerate(zip(known_cells, known_positions_m)):
            blocked = blockage_map(building, cell, grid.cell_size_m)
            features[n, :NUM_AP_FEATURES] = (open_cells,
                           self.gain_pixels(transferred[n], building),
                           self.gain_pixels(known_gain_db[n], building),
                           blocked == 0,
                           np.minimum(blocked / BLOCKAGE_SCALE_M, 1.0),
                           target_blockage_m == 0,
                           target_blocked,
                           np.full(building.shape, np.hypot(*(position[:2] - target[:2])) / DISTANCE_SCALE_M),
                           np.linalg.norm(centers - position[:2], axis=-1) / DISTANCE_SCALE_M)
            if self.visibility:
                features[n, NUM_AP_FEATURES:] = np.moveaxis(
                    self.visibility_channels(building, cell, grid.cell_size_m), -1, 0)
        features *= open_cells
        # [K, F, y, x] -> [y, x, K * F]
        return np.moveaxis(features.reshape((-1,) + building.shape), 0, -1)


# ----------------------------------------------------------------------------------------------------------
# Examples
# ----------------------------------------------------------------------------------------------------------

def dihedral(array: np.ndarray, k: int) -> np.ndarray:
    """One of the 8 symmetries of a square map: ``k % 4`` quarter turns, then a left-right flip if ``k >= 4``.

    ``[num_y, num_x, ...]`` -> same shape (square maps only for odd turns). Eqs. (3)-(5) commute with it (the
    3 x 3 kernel is symmetric), so transforming an encoded example equals encoding the transformed area.
    """
    out = np.rot90(array, k % 4, axes=(0, 1))
    return np.ascontiguousarray(out[:, ::-1] if k >= 4 else out)


def other_aps(area: Area, target: int, tol_m: float = 1e-3) -> list[int]:
    """The APs of ``area`` that may be known when ``target`` is inferred: all but the target and any AP that
    stands at the target's position (within ``tol_m`` [m]; sites are drawn independently, so two APs of a
    dense area can share a cell, and the other's map would be the target's up to ray-sampling noise --
    :class:`~ckmsim.models.crossap.method.CrossApUNetMethod` refuses it)."""
    distance_m = np.linalg.norm(area.ap_positions_m - area.ap_positions_m[target], axis=1)
    return [n for n in range(area.num_aps) if n != target and distance_m[n] >= tol_m]


def area_example(area: Area, target: int, encoding: CrossApEncoding, rng: np.random.Generator | None = None,
                 min_known_aps: int | None = None, augment: bool = False,
                 loss_cells: str = "all") -> tuple[np.ndarray, np.ndarray]:
    """``(x, y)`` for AP ``target`` of ``area``: the encoded input and the target's true gain pixels.

    Without ``rng`` the known APs are the others in store order (the first ``num_known_aps`` of them), as at
    test time. With ``rng`` their number is drawn in ``[min_known_aps, min(num_known_aps, N - 1)]``
    (``min_known_aps=None``: always the maximum, as in the paper), then which ones and their channel order,
    and with ``augment`` one of the 8 dihedral symmetries.

    Output
    ------
    x : ``[num_y, num_x, num_input_channels]``, float32
    y : ``[num_y, num_x, 1]``, float32 (gain pixels, buildings 0); with ``loss_cells`` "open" or "reached"
        ``[num_y, num_x, 2]``: the pixels and the 0/1 weight of each cell in the loss (:func:`~ckmsim.models.crossap.network.masked_mse`)
    """
    if loss_cells not in LOSS_CELLS:
        raise CkmsimError(f"loss_cells must be one of {list(LOSS_CELLS)}. Received: loss_cells={loss_cells!r}")
    if not 0 <= target < area.num_aps:
        raise CkmsimError(f"target must index one of the {area.num_aps} APs of {area.ref.label}. "
                          f"Received: target={target!r}")
    others = np.array(other_aps(area, target), dtype=np.int64)
    most = min(encoding.num_known_aps, len(others))
    if encoding.inputs == "cross_ap" and most < 1:
        raise CkmsimError(f"Area {area.ref.label} has no AP besides the target: the cross-AP input needs one")
    if rng is None:
        known = others[:most]
    else:
        fewest = most if min_known_aps is None else int(np.clip(min_known_aps, 1, most))
        count = int(rng.integers(fewest, most + 1))
        known = rng.permutation(others)[:count]
    x = encoding.encode(area.ap_cells[target], area.building, area.gain_db[known], area.ap_cells[known],
                        area.grid, area.ap_positions_m[target], area.ap_positions_m[known])
    y = encoding.gain_pixels(area.gain_db[target], area.building)[..., None]
    if loss_cells != "all":
        cells = ~area.building
        if loss_cells == "reached":
            with np.errstate(invalid="ignore"):
                cells &= area.gain_db[target] > encoding.gain_range_db[0]
        y = np.concatenate([y, cells[..., None].astype(np.float32)], axis=-1)
    if augment and rng is not None and area.grid.num_x == area.grid.num_y:
        k = int(rng.integers(8))
        x, y = dihedral(x, k), dihedral(y, k)
    return x, y


def example_generator(cache: AreaCache, encoding: CrossApEncoding, shuffle: bool = True, augment: bool = False,
                      min_known_aps: int | None = None, seed: int = 0, epochs: int | None = 1,
                      randomize: bool = True, loss_cells: str = "all"):
    """Python generator of ``(x, y)`` over every (area, target AP) pair, ``epochs`` passes (None: forever).

    ``randomize=False`` gives the test-time examples (all other APs known, in order, no augmentation).
    """
    pairs = [(a, t) for a in range(len(cache)) for t in range(len(cache.refs[a].sample_indices))]
    if not pairs:
        raise CkmsimError("No (area, target AP) pair to visit: the split holds no area with two or more APs")
    epoch = 0
    while epochs is None or epoch < epochs:
        order = np.random.default_rng([seed, epoch]).permutation(len(pairs)) if shuffle else range(len(pairs))
        for i in order:
            area_index, target = pairs[int(i)]
            rng = np.random.default_rng([seed, epoch, int(i)]) if randomize else None
            yield area_example(cache[area_index], target, encoding, rng, min_known_aps, augment, loss_cells)
        epoch += 1


def num_examples(store: DatasetStore, split: str | None) -> int:
    """Number of (area, target AP) pairs of ``split``."""
    return sum(len(ref.sample_indices) for ref in group_areas(store, split))


def crossap_dataset(store: DatasetStore, encoding: CrossApEncoding, split: str | None = "train",
                    batch_size: int = 15, shuffle: bool = True, augment: bool = False,
                    min_known_aps: int | None = None, seed: int = 0, epochs: int | None = None,
                    randomize: bool = True, prefetch: int = 2, loss_cells: str = "all"):
    """A ``tf.data.Dataset`` of ``(x [batch, y, x, C], y [batch, y, x, 1])`` float32 batches, read lazily
    (``y [batch, y, x, 2]``, pixels and loss weights, with ``loss_cells`` "open" or "reached").

    Training: ``shuffle``, ``augment``, ``randomize`` and ``epochs=None`` (an endless stream; give the trainer
    ``steps_per_epoch``). Validation / test: ``shuffle=False, randomize=False, epochs=1``. The paper's batch
    size is 15.
    """
    import tensorflow as tf

    if not is_whole_number(batch_size, minimum=1):
        raise CkmsimError(f"batch_size must be a positive integer. Received: batch_size={batch_size!r}")
    refs = group_areas(store, split)
    if not refs:
        raise CkmsimError(f"Dataset '{store.path}' has no multi-AP area in split {split!r}")
    grid = store.records[refs[0].sample_indices[0]]["grid"]
    shape = (int(grid["num_y"]), int(grid["num_x"]))
    cache = AreaCache(store, refs)
    if loss_cells not in LOSS_CELLS:
        raise CkmsimError(f"loss_cells must be one of {list(LOSS_CELLS)}. Received: loss_cells={loss_cells!r}")
    signature = (tf.TensorSpec(shape + (encoding.num_input_channels,), tf.float32),
                 tf.TensorSpec(shape + (1 if loss_cells == "all" else 2,), tf.float32))
    dataset = tf.data.Dataset.from_generator(
        lambda: example_generator(cache, encoding, shuffle, augment, min_known_aps, seed, epochs, randomize,
                                  loss_cells),
        output_signature=signature)
    dataset = dataset.batch(int(batch_size))
    if epochs is not None:
        # A generator's length is unknown to tf.data; stating it lets Keras end a validation pass without
        # treating the end of the data as an interruption.
        num_pairs = sum(len(ref.sample_indices) for ref in refs)
        dataset = dataset.apply(tf.data.experimental.assert_cardinality(math.ceil(epochs * num_pairs / batch_size)))
    return dataset.prefetch(prefetch)

