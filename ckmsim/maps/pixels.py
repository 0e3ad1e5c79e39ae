"""Pixel encodings of CKM layers, used only at a network's boundary and for image metrics.

CKMImageNet convention (as stated for that dataset): channel gain in [-250, -50] dB maps linearly to
[0, 1]; values outside are clipped. Building cells map to 0 like cells with no received energy.
"""

from __future__ import annotations

import numpy as np

CKMIMAGENET_GAIN_RANGE_DB = (-250.0, -50.0)


def gain_db_to_pixel(gain_db: np.ndarray, building: np.ndarray | None = None,
                     gain_range_db: tuple[float, float] = CKMIMAGENET_GAIN_RANGE_DB) -> np.ndarray:
    """Gain [dB] -> pixel in [0, 1] (CKMImageNet mapping). NaN and building cells -> 0.

    Input: gain_db ``[...]``; building ``[...]`` bool or None. Output: ``[...]`` float64.
    """
    low, high = gain_range_db
    pixel = np.clip((np.asarray(gain_db, dtype=np.float64) - low) / (high - low), 0.0, 1.0)
    pixel = np.where(np.isfinite(pixel), pixel, 0.0)
    if building is not None:
        pixel = np.where(building, 0.0, pixel)
    return pixel


def pixel_to_gain_db(pixel: np.ndarray,
                     gain_range_db: tuple[float, float] = CKMIMAGENET_GAIN_RANGE_DB) -> np.ndarray:
    """Inverse of :func:`gain_db_to_pixel` on [0, 1]. Input/output ``[...]`` float."""
    low, high = gain_range_db
    return low + np.asarray(pixel, dtype=np.float64) * (high - low)
