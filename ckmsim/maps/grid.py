"""The raster every CKM lives on.

``Grid`` is the one geometric type shared by ray tracing, maps, methods and the link: a horizontal,
axis-aligned lattice of square cells whose UEs stand a fixed height above the local ground (the ground
height of each cell is the scene's business: :mod:`ckmsim.scene.geometry`; without one it is z = 0). Row index ``y`` grows with
the scene's y coordinate and column index ``x`` with its x coordinate, the same order in which Sionna RT's
``RadioMap.cell_centers`` lists its cells, so no flip is ever needed between the two.

This module imports nothing from ckmsim: it is the data model the ray-tracing layer already needs.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np

from ckmsim.errors import CkmsimError
from ckmsim.validation import is_finite_number, is_whole_number


@dataclass(frozen=True)
class Grid:
    """A ``num_y x num_x`` lattice of square cells centred on ``(center_x_m, center_y_m)``.

    Parameters
    ----------
    center_x_m, center_y_m : float
        Centre of the lattice in scene coordinates [m].
    num_x, num_y : int
        Number of cells along x (columns) and y (rows).
    cell_size_m : float
        Side of one square cell [m].
    height_m : float
        UE height above the local ground of each cell [m] (above z = 0 when no ground is given; see
        :meth:`cell_centers_m`).
    """

    center_x_m: float
    center_y_m: float
    num_x: int
    num_y: int
    cell_size_m: float
    height_m: float = 1.5

    def __post_init__(self):
        for name in ("num_x", "num_y"):
            value = getattr(self, name)
            if not is_whole_number(value, minimum=1):
                raise CkmsimError(f"Grid.{name} must be a positive integer. Received: {name}={value!r}")
            # frozen dataclass: store 3.0 as 3 so that shapes are ints
            object.__setattr__(self, name, int(value))
        for name in ("center_x_m", "center_y_m", "cell_size_m", "height_m"):
            value = getattr(self, name)
            if not is_finite_number(value) or (name == "cell_size_m" and not float(value) > 0):
                requirement = "a finite number > 0" if name == "cell_size_m" else "a finite number"
                raise CkmsimError(f"Grid.{name} must be {requirement}. Received: {name}={value!r}")

    @property
    def shape(self) -> tuple[int, int]:
        """``(num_y, num_x)``: the array shape of one map on this grid."""
        return (self.num_y, self.num_x)

    @property
    def size_m(self) -> tuple[float, float]:
        """``(width_x_m, width_y_m)``: the extent of the lattice [m]."""
        return (self.num_x * self.cell_size_m, self.num_y * self.cell_size_m)

    @property
    def x_m(self) -> np.ndarray:
        """``[num_x]``, float64: x coordinate of each column's cell centres [m]."""
        x0 = self.center_x_m - 0.5 * self.num_x * self.cell_size_m
        return x0 + (np.arange(self.num_x) + 0.5) * self.cell_size_m

    @property
    def y_m(self) -> np.ndarray:
        """``[num_y]``, float64: y coordinate of each row's cell centres [m]."""
        y0 = self.center_y_m - 0.5 * self.num_y * self.cell_size_m
        return y0 + (np.arange(self.num_y) + 0.5) * self.cell_size_m

    @property
    def bounds_m(self) -> tuple[float, float, float, float]:
        """``(x_min, x_max, y_min, y_max)`` of the lattice's outer edges [m]."""
        width_x, width_y = self.size_m
        return (self.center_x_m - width_x / 2, self.center_x_m + width_x / 2,
                self.center_y_m - width_y / 2, self.center_y_m + width_y / 2)

    def cell_centers_m(self, ground_m: np.ndarray | None = None) -> np.ndarray:
        """(x, y, z) of every cell centre at UE height [m]: z = ``ground_m + height_m``.

        Input
        -----
        ground_m : [num_y, num_x] or scalar, float, optional
            Local ground height of each cell [m] (:func:`ckmsim.scene.geometry.cell_geometry`); default 0.

        Output
        ------
        centers_m : [num_y, num_x, 3], float64
        """
        xx, yy = np.meshgrid(self.x_m, self.y_m)
        ground = np.zeros(self.shape) if ground_m is None else np.asarray(ground_m, dtype=np.float64)
        if ground.shape not in ((), self.shape) or not np.all(np.isfinite(ground)):
            raise CkmsimError(f"ground_m must be finite, a scalar or of the grid's shape {self.shape}. "
                              f"Received: shape {ground.shape}")
        zz = np.broadcast_to(ground, self.shape) + self.height_m
        return np.stack([xx, yy, zz], axis=-1)

    def downsampled_indices(self, factor: int) -> tuple[np.ndarray, np.ndarray]:
        """Row and column indices kept by uniform sub-sampling with step ``factor``.

        Output
        ------
        rows : [ceil(num_y / factor)], int
        cols : [ceil(num_x / factor)], int
        """
        if int(factor) != factor or factor < 1:
            raise CkmsimError(f"Down-sampling factor must be a positive integer. Received: factor={factor}")
        return np.arange(0, self.num_y, factor), np.arange(0, self.num_x, factor)

    def to_dict(self) -> dict:
        """Plain-dict form, for attrs and JSON."""
        return asdict(self)

    @classmethod
    def from_dict(cls, values: dict) -> "Grid":
        """Inverse of :meth:`to_dict`; unknown or missing keys fail with their names."""
        expected = set(cls.__dataclass_fields__)
        unknown = set(values) - expected
        if unknown:
            raise CkmsimError(f"Unknown Grid field(s) {sorted(unknown)}; expected a subset of {sorted(expected)}")
        try:
            return cls(**values)
        except TypeError as err:
            raise CkmsimError(f"Incomplete Grid description {values}: {err}") from None

