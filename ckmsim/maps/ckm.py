"""The CKM contract: a channel knowledge map is an ``xarray.Dataset`` on a :class:`~ckmsim.maps.grid.Grid`.

Dimensions are ``y`` and ``x`` (coordinates in metres, cell centres) and ``path`` for per-path layers
(``path = 0`` is the strongest path of the cell, ``path = 1`` the second strongest, ...). Variables carry
physical units in their names:

============== ===================== ======= ===========================================================
variable       dims                  dtype   meaning
============== ===================== ======= ===========================================================
``gain_db``    (y, x)                float32 channel gain of the cell [dB]; NaN on building cells
``path_gain_db`` (path, y, x)        float32 power gain of one path [dB]; ``gain_floor_db`` where absent
``aoa_az_deg`` (path, y, x)          float32 azimuth of arrival at the BS, (-180, 180] [deg]; NaN if absent
``aoa_el_deg`` (path, y, x)          float32 elevation of arrival at the BS, [-90, 90] [deg]; NaN if absent
``aod_az_deg`` (path, y, x)          float32 azimuth of departure at the UE, (-180, 180] [deg]; NaN if absent
``aod_el_deg`` (path, y, x)          float32 elevation of departure at the UE, [-90, 90] [deg]; NaN if absent
``toa_s``      (path, y, x)          float32 propagation delay of the path [s]; NaN if absent
``los``        (y, x)                bool    the strongest path is line-of-sight
``building``   (y, x)                bool    the cell centre lies inside or on top of a building
``ground_m``   (y, x)                float32 local ground height under the cell centre [m]: the UE of the
                                             cell stands at ``ground_m + grid.height_m`` (scene geometry, a
                                             prior like ``building``, never a measured layer); absent = z 0
============== ===================== ======= ===========================================================

Angles follow the uplink (the UE at the cell transmits): "of arrival" is at the BS, "of departure" at the
UE. By reciprocity they equal the downlink trace's departure angles at the BS and arrival angles at the UE. Azimuth is measured in the scene's x-y plane from +x towards +y,
elevation from that plane towards +z (see :mod:`ckmsim.maps.angles`).

Attributes: ``scene``, ``frequency_hz``, ``bs_position_m`` (x, y, z), ``grid`` (dict of
:class:`Grid` fields), ``ray_tracing`` (dict of solver settings), ``gain_floor_db``.
Only ``gain_db`` and ``building`` are required; a predicted CKM carries whatever its method predicts.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import xarray as xr

from ckmsim.errors import CkmsimError
from ckmsim.maps.angles import wrap_deg
from ckmsim.maps.grid import Grid

#: Lowest gain a CKM stores [dB]; cells or paths with no ray-traced energy are clipped here. It is the lower
#: end of CKMImageNet's gain-to-pixel mapping, so such cells map to pixel 0 as in that dataset.
GAIN_FLOOR_DB = -250.0

MAP_VARIABLES = {"gain_db": ("y", "x"), "los": ("y", "x"), "building": ("y", "x"), "ground_m": ("y", "x")}
#: Map variables that describe the scene's geometry, not the channel: priors, never degraded or predicted.
GEOMETRY_VARIABLES = ("building", "ground_m")
PATH_VARIABLES = {name: ("path", "y", "x") for name in ("path_gain_db", "aoa_az_deg", "aoa_el_deg", "aod_az_deg",
                                                         "aod_el_deg", "toa_s")}
KNOWN_VARIABLES = {**MAP_VARIABLES, **PATH_VARIABLES}
REQUIRED_VARIABLES = ("gain_db", "building")


def make_ckm(grid: Grid, variables: dict[str, np.ndarray], attrs: dict | None = None) -> xr.Dataset:
    """Assemble a CKM from arrays.

    Input
    -----
    grid : Grid
    variables : dict
        Name -> array; map layers ``[num_y, num_x]``, path layers ``[num_paths, num_y, num_x]``.
        Names must be among the table of this module.
    attrs : dict, optional
        Provenance attributes; ``grid`` and ``gain_floor_db`` are filled in.

    Output
    ------
    ckm : xarray.Dataset
    """
    data_vars = {}
    for name, values in variables.items():
        if name not in KNOWN_VARIABLES:
            raise CkmsimError(f"Unknown CKM variable '{name}'; expected one of {sorted(KNOWN_VARIABLES)}")
        dims = KNOWN_VARIABLES[name]
        values = np.asarray(values)
        expected = grid.shape if len(dims) == 2 else (values.shape[0],) + grid.shape
        if values.shape != expected:
            raise CkmsimError(f"CKM variable '{name}' has shape {values.shape}; the grid needs {expected} "
                              f"for dims {dims}")
        dtype = bool if name in ("los", "building") else np.float32
        data_vars[name] = (dims, values.astype(dtype))
    coords = {"y": ("y", grid.y_m, {"units": "m"}), "x": ("x", grid.x_m, {"units": "m"})}
    if any(len(dims) == 3 for dims, _ in data_vars.values()):
        num_paths = next(v.shape[0] for dims, v in data_vars.values() if len(dims) == 3)
        coords["path"] = ("path", np.arange(num_paths))
    all_attrs = {"gain_floor_db": GAIN_FLOOR_DB, **(attrs or {}), "grid": grid.to_dict()}
    ckm = xr.Dataset(data_vars, coords=coords, attrs=all_attrs)
    validate_ckm(ckm)
    return ckm


def grid_of(ckm: xr.Dataset) -> Grid:
    """The :class:`Grid` a CKM was made on (from its ``grid`` attribute)."""
    if "grid" not in ckm.attrs:
        raise CkmsimError("CKM has no 'grid' attribute; build it with ckmsim.maps.ckm.make_ckm")
    return Grid.from_dict(dict(ckm.attrs["grid"]))


def validate_ckm(ckm: xr.Dataset, where: str = "CKM") -> None:
    """Check the CKM contract; raise :class:`CkmsimError` naming the first violation.

    Checks: required variables present, known dims, no NaN gain outside buildings, angles in range.
    """
    for name in REQUIRED_VARIABLES:
        if name not in ckm:
            raise CkmsimError(f"{where} lacks the required variable '{name}'")
    for name, var in ckm.data_vars.items():
        if name in KNOWN_VARIABLES and tuple(var.dims) != KNOWN_VARIABLES[name]:
            raise CkmsimError(f"{where} variable '{name}' has dims {var.dims}; expected {KNOWN_VARIABLES[name]}")
    building = ckm["building"].values
    gain = ckm["gain_db"].values
    bad = ~np.isfinite(gain) & ~building
    if bad.any():
        row, col = np.argwhere(bad)[0]
        raise CkmsimError(f"{where} 'gain_db' has {int(bad.sum())} non-finite value(s) outside buildings, "
                          f"first at (y={row}, x={col})")
    for name, limit_deg in (("aoa_az_deg", 180.0), ("aod_az_deg", 180.0), ("aoa_el_deg", 90.0),
                            ("aod_el_deg", 90.0)):
        if name in ckm:
            angle = ckm[name].values
            if np.any(np.abs(angle[np.isfinite(angle)]) > limit_deg + 1e-3):
                raise CkmsimError(f"{where} '{name}' has values outside [-{limit_deg:g}, {limit_deg:g}] deg")


def dihedral_ckm(ckm: xr.Dataset, transform: int) -> xr.Dataset:
    """One of the 8 symmetries of a square grid applied to a CKM (layers, azimuths and the BS position).

    ``transform`` in 0..7 sets three bits: 1 mirrors x (columns), 2 mirrors y (rows), 4 swaps x and y (first).
    0 is the identity. Mirrors act about the grid centre; the grid and its coordinates are unchanged.

    Input
    -----
    ckm : CKM on a square grid (for transforms with bit 4)
    transform : int in 0..7

    Output
    ------
    ckm : CKM on the same grid, every ``[..., y, x]`` layer transformed, ``*_az_deg`` remapped, the
        ``bs_position_m`` attribute moved accordingly
    """
    if isinstance(transform, bool) or not isinstance(transform, (int, np.integer)) or not 0 <= transform <= 7:
        raise CkmsimError(f"transform must be an integer in 0..7. Received: transform={transform!r}")
    if transform == 0:
        return ckm
    grid = grid_of(ckm)
    swap, flip_y, flip_x = bool(transform & 4), bool(transform & 2), bool(transform & 1)
    if swap and grid.num_x != grid.num_y:
        raise CkmsimError(f"Swapping x and y needs a square grid. Received: shape={grid.shape}")
    variables = {}
    for name, var in ckm.data_vars.items():
        # [..., y, x]
        values = var.transpose(..., "y", "x").values
        is_azimuth = name.endswith("_az_deg")
        if swap:
            values = np.swapaxes(values, -1, -2)
            values = 90.0 - values if is_azimuth else values
        if flip_y:
            values = values[..., ::-1, :]
            values = -values if is_azimuth else values
        if flip_x:
            values = values[..., :, ::-1]
            values = 180.0 - values if is_azimuth else values
        variables[name] = wrap_deg(values) if is_azimuth else np.ascontiguousarray(values)
    attrs = {key: value for key, value in ckm.attrs.items() if key != "grid"}
    if "bs_position_m" in attrs:
        x, y, *rest = (float(v) for v in attrs["bs_position_m"])
        dx, dy = x - grid.center_x_m, y - grid.center_y_m
        if swap:
            dx, dy = dy, dx
        if flip_y:
            dy = -dy
        if flip_x:
            dx = -dx
        attrs["bs_position_m"] = [grid.center_x_m + dx, grid.center_y_m + dy, *rest]
    return make_ckm(grid, variables, attrs)


def write_ckm(ckm: xr.Dataset, path: str | Path) -> Path:
    """Write a CKM to a zarr store (overwriting), after validating it. Returns the store path."""
    validate_ckm(ckm)
    path = Path(path)
    try:
        ckm.to_zarr(path, mode="w", consolidated=False)
    except OSError as err:
        raise CkmsimError(f"Cannot write CKM store '{path}': {err.strerror or err}") from None
    return path


def read_ckm(path: str | Path) -> xr.Dataset:
    """Read a CKM written by :func:`write_ckm` into memory and validate it."""
    path = Path(path)
    if not path.exists():
        raise CkmsimError(f"CKM store '{path}' does not exist")
    try:
        ckm = xr.open_zarr(path, consolidated=False).load()
    except Exception as err:  # zarr raises several unrelated types for a broken store
        raise CkmsimError(f"'{path}' is not a readable CKM zarr store: {err}") from None
    validate_ckm(ckm, where=f"CKM store '{path}'")
    return ckm
