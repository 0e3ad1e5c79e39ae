"""Moving scatterers (cars, pedestrians) as boxes in a Sionna RT scene, redrawn once per coherence block.

Each object is one Sionna ``SceneObject`` made from Mitsuba's built-in cube mesh (``[-1, 1]^3``), created and
added once; :meth:`DynamicScene.redraw` only moves the boxes (position/orientation setters), so the scene is
never rebuilt. Positions of block ``b`` come from ``np.random.default_rng([seed, b])``: any block can be
reproduced on its own, in any order.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from ckmsim.errors import CkmsimError
from ckmsim.validation import is_finite_number, is_whole_number
from ckmsim.maps.grid import Grid

# Rejection-sampling budget per object before giving up with "streets too small".
MAX_TRIES_PER_OBJECT = 2000


@dataclass(frozen=True)
class MovingObjects:
    """How many moving boxes to place, their sizes [m] and ITU materials.

    ``car_size_m`` / ``pedestrian_size_m`` are ``(length, width, height)``; ``min_gap_m`` is the least
    clearance between the bounding circles of any two objects' footprints.
    """

    num_cars: int = 10
    num_pedestrians: int = 20
    car_size_m: tuple = (4.0, 2.0, 1.6)
    pedestrian_size_m: tuple = (0.5, 0.5, 1.8)
    car_material: str = "metal"
    # Human-body permittivity is not in the ITU-R P.2040 table Sionna uses; "wood" stands in as a lossy,
    # non-metallic dielectric whose table entry covers 0.001-100 GHz, so it is valid at 28 GHz.
    pedestrian_material: str = "wood"
    min_gap_m: float = 1.0

    def __post_init__(self):
        from sionna.rt.radio_materials.itu import ITU_MATERIALS_PROPERTIES

        for name in ("num_cars", "num_pedestrians"):
            value = getattr(self, name)
            if not is_whole_number(value, minimum=0):
                raise CkmsimError(f"MovingObjects.{name} must be an integer >= 0. Received: {name}={value!r}")
            object.__setattr__(self, name, int(value))
        for name in ("car_size_m", "pedestrian_size_m"):
            value = getattr(self, name)
            try:
                size = tuple(float(v) for v in value)
            except (TypeError, ValueError):
                size = ()
            if len(size) != 3 or not all(math.isfinite(v) and v > 0 for v in size):
                raise CkmsimError(f"MovingObjects.{name} must be three finite numbers > 0 "
                                  f"(length, width, height). Received: {name}={value!r}")
            object.__setattr__(self, name, size)
        for name in ("car_material", "pedestrian_material"):
            value = getattr(self, name)
            if value not in ITU_MATERIALS_PROPERTIES:
                raise CkmsimError(f"MovingObjects.{name} must be an ITU material name, one of "
                                  f"{', '.join(sorted(ITU_MATERIALS_PROPERTIES))}. Received: {name}={value!r}")
        value = self.min_gap_m
        if not is_finite_number(value) or value < 0:
            raise CkmsimError(f"MovingObjects.min_gap_m must be a finite number >= 0. Received: min_gap_m={value!r}")
        object.__setattr__(self, "min_gap_m", float(value))


def _footprint_points(x, y, yaw_rad, length, width) -> np.ndarray:
    """Centre, corners and edge midpoints of a rotated rectangle: [9, 2]."""
    u = np.array([-0.5, 0.0, 0.5])
    du, dv = np.meshgrid(u * length, u * width)
    c, s = math.cos(yaw_rad), math.sin(yaw_rad)
    px = x + c * du.ravel() - s * dv.ravel()
    py = y + s * du.ravel() + c * dv.ravel()
    return np.stack([px, py], axis=-1)


def _on_street(points: np.ndarray, street_mask: np.ndarray, grid: Grid) -> bool:
    """Whether every point lies inside the grid on a street (non-building) cell."""
    x0, _, y0, _ = grid.bounds_m
    col = np.floor((points[:, 0] - x0) / grid.cell_size_m).astype(int)
    row = np.floor((points[:, 1] - y0) / grid.cell_size_m).astype(int)
    inside = (col >= 0) & (col < grid.num_x) & (row >= 0) & (row < grid.num_y)
    if not inside.all():
        return False
    return bool(street_mask[row, col].all())


def draw_positions(street_mask: np.ndarray, grid: Grid, config: MovingObjects, rng: np.random.Generator,
                   ground_z_m: float = 0.0) -> tuple[np.ndarray, np.ndarray]:
    """Random object positions on the streets.

    Each object's centre is a uniformly chosen street cell plus uniform jitter inside it; cars get a
    uniform yaw, pedestrians none. A draw is rejected if any footprint point (centre, corners, edge
    midpoints) leaves the street cells, or if its bounding circle comes closer than ``min_gap_m`` to an
    already placed one's.

    Input
    -----
    street_mask : [num_y, num_x], bool
        ``~building_mask(scene, grid)``.
    ground_z_m : float
        Ground height; the boxes stand on it.

    Output
    ------
    cars : [num_cars, 4], float64
        ``x, y, z, yaw_deg`` of each car's centre.
    pedestrians : [num_pedestrians, 3], float64
        ``x, y, z`` of each pedestrian's centre.
    """
    street_mask = np.asarray(street_mask, dtype=bool)
    if street_mask.shape != grid.shape:
        raise CkmsimError(f"street_mask has shape {street_mask.shape}, expected the grid's {grid.shape}")
    rows, cols = np.nonzero(street_mask)
    if len(rows) == 0 and config.num_cars + config.num_pedestrians > 0:
        raise CkmsimError("No street cell on the grid: cannot place moving objects")
    x_m, y_m, cell = grid.x_m, grid.y_m, grid.cell_size_m

    placed_xy, placed_r = [], []

    def place_one(kind: str, index: int, size, random_yaw: bool):
        length, width, height = size
        radius = 0.5 * math.hypot(length, width)
        for _ in range(MAX_TRIES_PER_OBJECT):
            k = rng.integers(len(rows))
            x = x_m[cols[k]] + rng.uniform(-0.5, 0.5) * cell
            y = y_m[rows[k]] + rng.uniform(-0.5, 0.5) * cell
            yaw = rng.uniform(0.0, 360.0) if random_yaw else 0.0
            if not _on_street(_footprint_points(x, y, math.radians(yaw), length, width), street_mask, grid):
                continue
            if placed_xy:
                dist = np.hypot(*(np.asarray(placed_xy) - (x, y)).T)
                if np.any(dist < np.asarray(placed_r) + radius + config.min_gap_m):
                    continue
            placed_xy.append((x, y))
            placed_r.append(radius)
            return x, y, ground_z_m + 0.5 * height, yaw
        raise CkmsimError(f"Cannot place {kind} {index} after {MAX_TRIES_PER_OBJECT} tries: the streets "
                          f"({len(rows)} cells of {cell} m) are too small for {config.num_cars} cars and "
                          f"{config.num_pedestrians} pedestrians with min_gap_m={config.min_gap_m}")

    cars = np.array([place_one("car", i, config.car_size_m, True) for i in range(config.num_cars)],
                    dtype=np.float64).reshape(-1, 4)
    peds = np.array([place_one("pedestrian", i, config.pedestrian_size_m, False)[:3]
                     for i in range(config.num_pedestrians)], dtype=np.float64).reshape(-1, 3)
    return cars, peds


class DynamicScene:
    """Cars and pedestrians as boxes in a loaded Sionna RT scene.

    The building mask is computed once, before the boxes are added; the boxes (``car-i``, ``ped-i``) are
    added once and only moved afterwards. Materials are named ``ckmsim-car-<itu>`` and ``ckmsim-ped-<itu>``
    so they never clash with the scene's own. The boxes sit at the origin until the first :meth:`redraw` or
    :meth:`place`; call ``redraw(block)`` before tracing each coherence block.
    """

    def __init__(self, scene, grid: Grid, config: MovingObjects = MovingObjects(), seed: int = 0):
        import mitsuba as mi
        import sionna.rt as rt
        from sionna.rt.radio_materials import RadioMaterialBase

        from ckmsim.scene.geometry import building_mask
        from ckmsim.scene.load import scene_bounds

        self.scene, self.grid, self.config, self.seed = scene, grid, config, int(seed)
        self.ground_z_m = scene_bounds(scene).z_min
        self.street_mask = ~building_mask(scene, grid)

        def material(kind, itu_type):
            name = f"ckmsim-{kind}-{itu_type}"
            existing = scene.get(name)
            if isinstance(existing, RadioMaterialBase):
                return existing
            return rt.ITURadioMaterial(name, itu_type, thickness=0.01)

        car_mat = material("car", config.car_material)
        ped_mat = material("ped", config.pedestrian_material)
        self.car_names = [f"car-{i}" for i in range(config.num_cars)]
        self.ped_names = [f"ped-{i}" for i in range(config.num_pedestrians)]
        objects = ([rt.SceneObject(mi_mesh=mi.load_dict({"type": "cube"}), name=n, radio_material=car_mat)
                    for n in self.car_names]
                   + [rt.SceneObject(mi_mesh=mi.load_dict({"type": "cube"}), name=n, radio_material=ped_mat)
                      for n in self.ped_names])
        if objects:
            scene.edit(add=objects)
        # The cube spans [-1, 1]^3: scale once by half the box size (at zero yaw).
        for names, size in ((self.car_names, config.car_size_m), (self.ped_names, config.pedestrian_size_m)):
            for n in names:
                scene.objects[n].scaling = mi.Vector3f(*(0.5 * s for s in size))
        self.cars = np.zeros((config.num_cars, 4))
        self.pedestrians = np.zeros((config.num_pedestrians, 3))

    def draw(self, block: int) -> tuple[np.ndarray, np.ndarray]:
        """Positions of coherence block ``block`` (does not move anything)."""
        rng = np.random.default_rng([self.seed, int(block)])
        return draw_positions(self.street_mask, self.grid, self.config, rng, ground_z_m=self.ground_z_m)

    def redraw(self, block: int) -> tuple[np.ndarray, np.ndarray]:
        """Move the objects to block ``block``'s positions and return them (cars [N, 4], pedestrians [M, 3])."""
        cars, peds = self.draw(block)
        self.place(cars, peds)
        return cars, peds

    def place(self, cars, pedestrians) -> None:
        """Move the objects to explicit positions: cars [num_cars, 4] (x, y, z, yaw_deg), pedestrians [M, 3]."""
        import mitsuba as mi

        cars = np.asarray(cars, dtype=np.float64).reshape(-1, 4)
        peds = np.asarray(pedestrians, dtype=np.float64).reshape(-1, 3)
        if len(cars) != len(self.car_names) or len(peds) != len(self.ped_names):
            raise CkmsimError(f"place() needs {len(self.car_names)} cars and {len(self.ped_names)} pedestrians, "
                              f"got {len(cars)} and {len(peds)}")
        for name, (x, y, z, yaw) in zip(self.car_names, cars):
            obj = self.scene.objects[name]
            obj.orientation = mi.Point3f(float(math.radians(yaw)), 0.0, 0.0)
            obj.position = mi.Point3f(float(x), float(y), float(z))
        for name, (x, y, z) in zip(self.ped_names, peds):
            self.scene.objects[name].position = mi.Point3f(float(x), float(y), float(z))
        self.cars, self.pedestrians = cars.copy(), peds.copy()

    def remove(self) -> None:
        """Take the objects out of the scene."""
        names = [n for n in self.car_names + self.ped_names if n in self.scene.objects]
        if names:
            self.scene.edit(remove=names)
