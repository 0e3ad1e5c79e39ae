"""Regions of a CKM and map scores per region: where does a method err -- in LoS, in shadow, at the edge?

A map-wide RMSE hides where the error sits. Interpolators are good in the smooth LoS street and poor behind
corners; the cells that decide a link (the LoS/NLoS transition, where gain drops by tens of dB within a few
metres) are few and drown in the average. :func:`region_scores` runs
:func:`~ckmsim.metrics.map_metrics.map_scores` on each region of :func:`region_masks`, all taken from the
**truth** CKM, so every method is scored on the same cells.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import xarray as xr
from scipy import ndimage

from ckmsim.errors import CkmsimError
from ckmsim.metrics.map_metrics import map_scores
from ckmsim.validation import is_finite_number

#: Region names, in the order :func:`region_masks` returns them.
REGIONS = ("non_building", "los", "nlos", "transition")
#: Default half-width of the LoS/NLoS transition band [cells].
TRANSITION_WIDTH_CELLS = 2.0


def region_masks(truth_ckm: xr.Dataset,
                 transition_width_cells: float = TRANSITION_WIDTH_CELLS) -> dict[str, np.ndarray]:
    """Boolean masks of the scoring regions of a ground-truth CKM.

    - ``non_building``: every cell outside buildings (the default region of ``map_scores``);
    - ``los``: non-building cells whose strongest path is line-of-sight (``los`` layer);
    - ``nlos``: the other non-building cells, so ``los`` and ``nlos`` partition ``non_building``;
    - ``transition``: the LoS/NLoS transition band -- the non-building cells whose Euclidean distance
      (centre to centre, in cells, straight through buildings) to the nearest non-building cell of the
      *other* LoS state is at most ``transition_width_cells``. The band straddles the boundary: with width
      ``w`` it holds the cells up to ``w`` cells deep on the LoS side and on the NLoS side (``w = 1``: the
      pairs of edge-adjacent cells that differ; diagonal neighbours are ``sqrt(2)`` apart). A street cell
      next to a wall is not in it (a building is neither state), and a map with no LoS cell (or no NLoS
      cell) has an empty band.

    Input
    -----
    truth_ckm : xarray.Dataset
        CKM with ``building`` and ``los`` layers, both ``[num_y, num_x]`` bool (:mod:`ckmsim.maps.ckm`).
    transition_width_cells : float
        Half-width ``w`` of the transition band [cells], > 0.

    Output
    ------
    masks : dict[str, [num_y, num_x] bool]
        Keyed by :data:`REGIONS`, in that order; a mask may be all False.
    """
    if not is_finite_number(transition_width_cells) or transition_width_cells <= 0:
        raise CkmsimError(f"transition_width_cells must be a finite number > 0 [cells]. "
                          f"Received: transition_width_cells={transition_width_cells!r}")
    for name in ("building", "los"):
        if name not in truth_ckm:
            raise CkmsimError(f"truth_ckm lacks the '{name}' layer that region masks are made from; it has "
                              f"{sorted(truth_ckm.data_vars)}")
    non_building = ~truth_ckm["building"].transpose("y", "x").values.astype(bool)
    los = truth_ckm["los"].transpose("y", "x").values.astype(bool) & non_building
    nlos = ~los & non_building
    transition = np.zeros_like(los)
    if los.any() and nlos.any():
        # distance_transform_edt(~S): distance of every cell to the nearest cell of S [cells]
        to_nlos = ndimage.distance_transform_edt(~nlos)
        to_los = ndimage.distance_transform_edt(~los)
        transition = (los & (to_nlos <= transition_width_cells)) | (nlos & (to_los <= transition_width_cells))
    return {"non_building": non_building, "los": los, "nlos": nlos, "transition": transition}


def region_scores(pred_ckm: xr.Dataset, truth_ckm: xr.Dataset,
                  regions: Sequence[str] | Mapping[str, np.ndarray] | None = None,
                  transition_width_cells: float = TRANSITION_WIDTH_CELLS) -> dict[str, dict[str, float]]:
    """:func:`~ckmsim.metrics.map_metrics.map_scores` of a predicted CKM on each region of the truth.

    Every region's record also has ``num_cells`` (the number of cells scored, a float so the record stays
    ``dict[str, float]``). An **empty** region (e.g. ``los`` of an all-NLoS map) is not an error: its record
    holds ``num_cells = 0.0`` and ``nan`` for every score key that the non-empty regions carry, so a results
    table keeps the same columns for every map.

    Input
    -----
    pred_ckm, truth_ckm : xarray.Dataset
        CKMs on the same grid; the truth needs ``building`` and, unless ready masks are given, ``los``.
    regions : sequence of str, or mapping of str to [num_y, num_x] bool, optional
        Names among :data:`REGIONS` (default: all of them), or ready masks by name (e.g. from
        :func:`region_masks`, computed once and reused for every method scored on the same truth).
    transition_width_cells : float
        Passed to :func:`region_masks` when masks are made here.

    Output
    ------
    scores : dict[str, dict[str, float]]
        Region name -> score record, in the order of ``regions``.
    """
    masks = _masks(truth_ckm, regions, transition_width_cells)
    scores = {name: _scores_or_none(pred_ckm, truth_ckm, mask) for name, mask in masks.items()}
    keys = [key for record in scores.values() if record is not None for key in record]
    if not keys:
        raise CkmsimError(f"every region ({', '.join(masks)}) is empty: truth_ckm has no cell to score")
    empty = dict.fromkeys(keys, float("nan")) | {"num_cells": 0.0}
    return {name: dict(empty) if record is None else record for name, record in scores.items()}


def _masks(truth_ckm: xr.Dataset, regions, transition_width_cells: float) -> dict[str, np.ndarray]:
    """The masks ``{name: [num_y, num_x] bool}`` that :func:`region_scores` is asked for."""
    if isinstance(regions, Mapping):
        return {str(name): np.asarray(getattr(mask, "values", mask)) for name, mask in regions.items()}
    names = REGIONS if regions is None else tuple(regions)
    unknown = [name for name in names if name not in REGIONS]
    if unknown or not names:
        raise CkmsimError(f"regions must name some of {REGIONS}. Received: regions={regions!r}")
    masks = region_masks(truth_ckm, transition_width_cells)
    return {name: masks[name] for name in names}


def _scores_or_none(pred_ckm: xr.Dataset, truth_ckm: xr.Dataset, mask: np.ndarray) -> dict[str, float] | None:
    """``map_scores`` on ``mask`` plus ``num_cells``, or None for an all-False mask of the right shape."""
    # A mis-shaped or non-boolean mask goes on to map_scores, whose message names it
    if mask.dtype == bool and mask.shape == truth_ckm["gain_db"].shape and not mask.any():
        return None
    record = map_scores(pred_ckm, truth_ckm, region=mask)
    record["num_cells"] = float(np.count_nonzero(mask))
    return record
