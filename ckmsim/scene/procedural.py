"""Seeded procedural urban layouts written as Sionna RT scene folders.

A city is a square of side ``size_m`` centred at the origin (local metres, x east, y north, z up). It is
built in four steps, all drawn from one ``np.random.default_rng(seed)`` so that a seed fixes the layout:

1. a lattice of street nodes, jittered by ``irregularity`` so that blocks are irregular quadrilaterals;
2. streets: the polylines through the nodes, buffered by a width drawn per street;
3. blocks: lattice cells minus the streets, clipped to the area; some become open plazas;
4. lots: blocks cut recursively into lots, shrunk by a setback and given a rectangle, L-shape or courtyard
   footprint, a height and a material.

Because every footprint lies inside its own shrunk lot, and lots tile a block that excludes the streets,
buildings overlap neither each other nor the streets.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from ckmsim.errors import CkmsimError
from ckmsim.validation import is_finite_number
from ckmsim.scene.writer import Building, itu_material_names, write_scene_folder

FOOTPRINT_SHAPES = ("rectangle", "l_shape", "courtyard")
HEIGHT_DISTRIBUTIONS = ("lognormal", "uniform")
#: Coordinates are snapped to this grid [m] so that no near-duplicate vertex reaches the triangulator.
_PRECISION_M = 1e-3


@dataclass(frozen=True)
class CityConfig:
    """Parameters of a procedural city; ranges are ``(low, high)`` drawn uniformly unless stated.

    Parameters
    ----------
    size_m : float
        Side of the square area, centred at the origin [m].
    street_width_m : (float, float)
        Range of street widths, one draw per street [m].
    block_size_m : (float, float)
        Range of block sides between street centre lines minus the street width [m].
    irregularity : float
        In [0, 1]: street nodes move by up to ``irregularity * block_size_m[0] / 4`` along x and y, so 0
        gives a regular grid and 1 clearly irregular blocks.
    plaza_probability : float
        In [0, 1]: chance that a block is an open square without buildings.
    lot_size_m : (float, float)
        A lot is split while its longer side exceeds a side drawn from this range [m].
    setback_m : (float, float)
        Range of the inward offset of a building from its lot boundary [m]; neighbours are at least twice
        the lower bound apart.
    shape_weights : ((str, float), ...)
        Relative weights of footprint shapes among ``"rectangle"``, ``"l_shape"``, ``"courtyard"``.
    courtyard_ring_m : (float, float)
        Range of the depth of a courtyard building's ring of rooms [m].
    height_distribution : str
        ``"lognormal"`` (median ``height_median_m``, log-standard deviation ``height_sigma``, clipped to
        ``height_range_m``) or ``"uniform"`` over ``height_range_m``.
    height_range_m : (float, float)
        Lowest and highest building height [m].
    height_median_m : float
        Median of the lognormal heights [m]; must lie inside ``height_range_m``.
    height_sigma : float
        Standard deviation of the natural log of the lognormal heights (dimensionless).
    materials : ((str, float), ...)
        ITU material names with relative weights.
    min_footprint_area_m2 : float
        Footprints smaller than this are dropped [m^2].
    """

    size_m: float = 256.0
    street_width_m: tuple[float, float] = (10.0, 20.0)
    block_size_m: tuple[float, float] = (40.0, 90.0)
    irregularity: float = 0.3
    plaza_probability: float = 0.1
    lot_size_m: tuple[float, float] = (18.0, 35.0)
    setback_m: tuple[float, float] = (1.0, 3.0)
    shape_weights: tuple = (("rectangle", 0.6), ("l_shape", 0.25), ("courtyard", 0.15))
    courtyard_ring_m: tuple[float, float] = (5.0, 9.0)
    height_distribution: str = "lognormal"
    height_range_m: tuple[float, float] = (8.0, 60.0)
    height_median_m: float = 20.0
    height_sigma: float = 0.5
    materials: tuple = (("concrete", 0.5), ("brick", 0.3), ("glass", 0.2))
    min_footprint_area_m2: float = 20.0

    def __post_init__(self):
        _check_number(self.size_m, "size_m", low=1.0)
        for name in ("street_width_m", "block_size_m", "lot_size_m", "courtyard_ring_m", "height_range_m"):
            _check_range(getattr(self, name), name, positive=True)
        _check_range(self.setback_m, "setback_m", positive=False)
        for name in ("irregularity", "plaza_probability"):
            _check_number(getattr(self, name), name, low=0.0, high=1.0)
        if self.height_distribution not in HEIGHT_DISTRIBUTIONS:
            raise CkmsimError(f"CityConfig.height_distribution must be one of {HEIGHT_DISTRIBUTIONS}. "
                              f"Received: height_distribution={self.height_distribution!r}")
        low, high = self.height_range_m
        _check_number(self.height_median_m, "height_median_m", low=low, high=high)
        _check_number(self.height_sigma, "height_sigma", low=0.0)
        _check_number(self.min_footprint_area_m2, "min_footprint_area_m2", low=0.0)
        _check_weights(self.shape_weights, "shape_weights", FOOTPRINT_SHAPES)
        _check_weights(self.materials, "materials", None)
        known = itu_material_names()
        for name, _ in self.materials:
            if name not in known:
                raise CkmsimError(f"CityConfig.materials names unknown ITU material {name!r}; expected some of "
                                  f"{', '.join(known)}. Received: materials={self.materials!r}")


def _check_number(value, name, low=None, high=None):
    ok = is_finite_number(value) and (low is None or value >= low) and (high is None or value <= high)
    if not ok:
        bounds = f" in [{low}, {high}]" if high is not None else (f" >= {low}" if low is not None else "")
        raise CkmsimError(f"CityConfig.{name} must be a finite number{bounds}. Received: {name}={value!r}")


def _check_range(value, name, positive):
    try:
        low, high = value
        ok = all(is_finite_number(v) for v in (low, high)) and (low > 0 if positive else low >= 0) and low <= high
    except (TypeError, ValueError):
        ok = False
    if not ok:
        sign = "0 < low" if positive else "0 <= low"
        raise CkmsimError(f"CityConfig.{name} must be a pair (low, high) of finite numbers with {sign} <= high. "
                          f"Received: {name}={value!r}")


def _check_weights(value, name, allowed):
    try:
        pairs = [(n, float(w)) for n, w in value]
        ok = bool(pairs) and all(isinstance(n, str) and math.isfinite(w) and w >= 0 for n, w in pairs) \
            and sum(w for _, w in pairs) > 0 and len({n for n, _ in pairs}) == len(pairs) \
            and (allowed is None or all(n in allowed for n, _ in pairs))
    except (TypeError, ValueError):
        ok = False
    if not ok:
        names = f" from {allowed}" if allowed else ""
        raise CkmsimError(f"CityConfig.{name} must be a non-empty sequence of distinct (name{names}, weight >= 0) "
                          f"pairs with a positive total weight. Received: {name}={value!r}")


@dataclass(frozen=True)
class CityLayout:
    """A generated city: streets, blocks, plazas and buildings, all in local metres.

    Attributes
    ----------
    area : shapely Polygon, the square study area
    streets : shapely geometry, union of all street surfaces (clipped to the area)
    blocks : list of shapely Polygon, blocks carrying buildings (plazas excluded)
    plazas : list of shapely Polygon, open blocks without buildings
    buildings : list of Building
    """

    area: object
    streets: object
    blocks: list = field(default_factory=list)
    plazas: list = field(default_factory=list)
    buildings: list = field(default_factory=list)


def _street_positions(rng, config, half):
    """Nominal street centre lines along one axis [m], reaching one spacing past both edges of the area."""
    position = -half - rng.uniform(0.0, config.block_size_m[1])
    positions = [position]
    while position < half:
        position += rng.uniform(*config.block_size_m) + rng.uniform(*config.street_width_m)
        positions.append(position)
    return np.array(positions)


def generate_layout(config: CityConfig, seed: int) -> CityLayout:
    """Generate a city with streets, blocks, plazas and buildings (see the module docstring).

    Input
    -----
    config : CityConfig
    seed : int, seed of ``np.random.default_rng``; the only source of randomness

    Output
    ------
    layout : CityLayout
    """
    import shapely
    from shapely.geometry import LineString, Polygon, box

    rng = np.random.default_rng(seed)
    half = config.size_m / 2
    area = box(-half, -half, half, half)
    cx = _street_positions(rng, config, half)
    cy = _street_positions(rng, config, half)
    # Node jitter stays below a quarter of the smallest block, so quadrilaterals never fold over.
    jitter = config.irregularity * config.block_size_m[0] / 4
    # [num_x, num_y, 2]
    nodes = np.stack(np.meshgrid(cx, cy, indexing="ij"), axis=-1)
    nodes = nodes + rng.uniform(-jitter, jitter, size=nodes.shape)
    widths_x = rng.uniform(*config.street_width_m, size=len(cx))
    widths_y = rng.uniform(*config.street_width_m, size=len(cy))
    # Flat caps: streets run past the area and are clipped, so round ends would only cost vertices.
    streets = [LineString(nodes[i, :]).buffer(widths_x[i] / 2, cap_style="flat", join_style="mitre")
               for i in range(len(cx))]
    streets += [LineString(nodes[:, j]).buffer(widths_y[j] / 2, cap_style="flat", join_style="mitre")
                for j in range(len(cy))]
    street_union = shapely.unary_union(streets)

    blocks, plazas, buildings = [], [], []
    for i in range(len(cx) - 1):
        for j in range(len(cy) - 1):
            quad = Polygon([nodes[i, j], nodes[i + 1, j], nodes[i + 1, j + 1], nodes[i, j + 1]])
            block = quad.difference(street_union).intersection(area)
            for piece in _polygons(block):
                if piece.area < config.min_footprint_area_m2:
                    continue
                if rng.uniform() < config.plaza_probability:
                    plazas.append(piece)
                    continue
                blocks.append(piece)
                for lot in _split_lots(piece, rng, config):
                    building = _building(lot, rng, config)
                    if building is not None:
                        buildings.append(building)
    return CityLayout(area=area, streets=street_union.intersection(area), blocks=blocks, plazas=plazas,
                      buildings=buildings)


def generate_city(config: CityConfig, seed: int) -> list[Building]:
    """Buildings of the city that ``seed`` draws from ``config`` (see :func:`generate_layout`)."""
    return generate_layout(config, seed).buildings


def write_city(config: CityConfig, seed: int, out_dir: str | Path) -> Path:
    """Generate a city and write it as a scene folder; returns the path of ``scene.xml``.

    The concrete ground plane covers exactly the square area ``[-size_m / 2, size_m / 2]^2`` [m].
    """
    half = config.size_m / 2
    return write_scene_folder(generate_city(config, seed), out_dir, ground_material="concrete",
                              ground_bounds_m=(-half, -half, half, half),
                              metadata={"generator": "ckmsim.scene.procedural", "seed": int(seed),
                                        "config": asdict(config)})


def _polygons(geometry) -> list:
    """The non-empty polygons of any shapely geometry (clipping can yield multipolygons or lines)."""
    if geometry.is_empty:
        return []
    if geometry.geom_type == "Polygon":
        return [geometry]
    if hasattr(geometry, "geoms"):
        return [p for g in geometry.geoms for p in _polygons(g)]
    return []


def _split_lots(polygon, rng, config) -> list:
    """Cut a block recursively across its longer side until every lot is below a drawn lot size."""
    from shapely.geometry import box

    x0, y0, x1, y1 = polygon.bounds
    width, depth = x1 - x0, y1 - y0
    if max(width, depth) <= rng.uniform(*config.lot_size_m):
        return [polygon]
    # Cut between 35 % and 65 % so that no lot becomes a sliver.
    fraction = rng.uniform(0.35, 0.65)
    if width >= depth:
        cut = x0 + fraction * width
        halves = (box(x0 - 1, y0 - 1, cut, y1 + 1), box(cut, y0 - 1, x1 + 1, y1 + 1))
    else:
        cut = y0 + fraction * depth
        halves = (box(x0 - 1, y0 - 1, x1 + 1, cut), box(x0 - 1, cut, x1 + 1, y1 + 1))
    lots = []
    for half in halves:
        for piece in _polygons(polygon.intersection(half)):
            lots += _split_lots(piece, rng, config)
    return lots


def _building(lot, rng, config) -> Building | None:
    """One building inside ``lot`` shrunk by a setback, or None where nothing valid and large enough fits."""
    import shapely
    from shapely.geometry import box

    setback = rng.uniform(*config.setback_m)
    names, weights = zip(*config.shape_weights)
    shape = rng.choice(names, p=np.array(weights) / np.sum(weights))
    height = _height(rng, config)
    materials, material_weights = zip(*config.materials)
    material = str(rng.choice(materials, p=np.array(material_weights) / np.sum(material_weights)))

    parcel = _largest(lot.buffer(-setback, join_style="mitre")) if setback > 0 else lot
    if parcel is None:
        return None
    footprint = parcel
    if shape == "l_shape":
        x0, y0, x1, y1 = parcel.bounds
        fx, fy = rng.uniform(0.35, 0.6, size=2)
        corner_x, corner_y = rng.integers(0, 2, size=2)
        # A box over one corner of the bounding box, reaching past it so that the cut is clean.
        cx0, cx1 = (x0 - 1, x0 + fx * (x1 - x0)) if corner_x == 0 else (x1 - fx * (x1 - x0), x1 + 1)
        cy0, cy1 = (y0 - 1, y0 + fy * (y1 - y0)) if corner_y == 0 else (y1 - fy * (y1 - y0), y1 + 1)
        footprint = _largest(parcel.difference(box(cx0, cy0, cx1, cy1)))
    elif shape == "courtyard":
        ring = rng.uniform(*config.courtyard_ring_m)
        court = _largest(parcel.buffer(-ring, join_style="mitre"))
        # A courtyard narrower than a few metres would be a light well, not a yard: keep the block solid.
        if court is not None and court.area >= 16.0:
            footprint = parcel.difference(court)
    # Snapping to a millimetre grid removes near-duplicate vertices left by buffers and cuts.
    footprint = _largest(shapely.set_precision(footprint, _PRECISION_M)) if footprint is not None else None
    if footprint is None or not footprint.is_valid or footprint.area < config.min_footprint_area_m2:
        return None
    return Building(footprint=footprint, height_m=height, material=material)


def _largest(geometry):
    """Largest polygon of a geometry, or None when it has none."""
    polygons = _polygons(geometry)
    return max(polygons, key=lambda p: p.area) if polygons else None


def _height(rng, config) -> float:
    """One roof height [m] from the configured distribution, inside ``height_range_m``."""
    low, high = config.height_range_m
    if config.height_distribution == "uniform":
        return float(rng.uniform(low, high))
    return float(np.clip(config.height_median_m * np.exp(config.height_sigma * rng.standard_normal()), low, high))
