"""Checks on user-supplied numbers, shared by every config and geometry type (one rule, one place)."""

from __future__ import annotations

import math

import numpy as np


def is_finite_number(value) -> bool:
    """True for a finite real number: Python or numpy int/float, not bool, not a string."""
    return (isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(value, (bool, np.bool_))
            and math.isfinite(float(value)))


def is_whole_number(value, minimum: int = 0) -> bool:
    """True for a finite number with an integer value >= ``minimum`` (3 and 3.0, not 3.5)."""
    return is_finite_number(value) and float(value).is_integer() and float(value) >= minimum
