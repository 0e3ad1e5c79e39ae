"""Degradations that turn a ground-truth CKM into what a method observes (CKMDiff eq. (1): y = A x + n).

This first operator is uniform sparse sampling, E-SRResNet eq. (7): the cells ``(i * m, j * m)`` of the
full grid are measured, every other cell is unknown. Building cells are never measured (no UE stands
inside a building), and the building mask is a prior every method may use.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import xarray as xr

from ckmsim.maps.ckm import grid_of, validate_ckm
from ckmsim.maps.grid import Grid


@dataclass
class Observation:
    """What a method is given for one task.

    Attributes
    ----------
    task : str
        Task name, e.g. ``"sr_x4"``.
    grid : Grid
        The full-resolution grid the prediction must cover.
    values : xarray.Dataset
        The CKM's measured layers on the full grid, NaN at unmeasured cells.
    observed : [num_y, num_x], bool
        Cells that were measured.
    building : [num_y, num_x], bool
        Building mask prior.
    factor : int or None
        Sub-sampling step for uniform sampling (lets grid-based methods see the low-resolution lattice).
    attrs : dict
        Provenance copied from the ground truth (scene, frequency, BS position).
    """

    task: str
    grid: Grid
    values: xr.Dataset
    observed: np.ndarray
    building: np.ndarray
    factor: int | None = None
    attrs: dict = field(default_factory=dict)


def uniform_subsample(truth: xr.Dataset, factor: int) -> Observation:
    """Keep every ``factor``-th cell along x and y (x ``factor`` super-resolution task).

    Input
    -----
    truth : CKM on a ``[num_y, num_x]`` grid
    factor : int, >= 1

    Output
    ------
    Observation with ``observed`` true on the lattice's non-building cells.
    """
    validate_ckm(truth)
    grid = grid_of(truth)
    rows, cols = grid.downsampled_indices(factor)
    lattice = np.zeros(grid.shape, dtype=bool)
    lattice[np.ix_(rows, cols)] = True
    building = truth["building"].values
    observed = lattice & ~building
    # Boolean layers (LoS, building) are priors, not measurements: a method that may use them gets them
    # through its own argument, so they are left out here rather than leaked at unmeasured cells.
    measured = [name for name in truth.data_vars if truth[name].dtype != bool]
    values = truth[measured].copy(deep=True)
    keep = xr.DataArray(observed, dims=("y", "x"))
    for name in measured:
        values[name] = values[name].where(keep)
    return Observation(task=f"sr_x{factor}", grid=grid, values=values, observed=observed,
                       building=building.copy(), factor=int(factor), attrs=dict(truth.attrs))
