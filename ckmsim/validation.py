"""Checks on user-supplied numbers and config files, shared by every config and geometry type (one rule, one
place)."""

from __future__ import annotations

import math

import numpy as np

from ckmsim.errors import CkmsimError


def is_finite_number(value) -> bool:
    """True for a finite real number: Python or numpy int/float, not bool, not a string."""
    return (isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(value, (bool, np.bool_))
            and math.isfinite(float(value)))


def is_whole_number(value, minimum: int = 0) -> bool:
    """True for a finite number with an integer value >= ``minimum`` (3 and 3.0, not 3.5)."""
    return is_finite_number(value) and float(value).is_integer() and float(value) >= minimum


def read_toml(path, what: str) -> dict:
    """The parsed TOML file ``path``; a :class:`CkmsimError` that names ``what`` (e.g. "Dataset config") and
    the path if the file is missing or not valid TOML."""
    import tomllib
    from pathlib import Path

    path = Path(path)
    if not path.is_file():
        raise CkmsimError(f"{what} '{path}' does not exist")
    try:
        return tomllib.loads(path.read_text())
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as err:
        raise CkmsimError(f"{what} '{path}' is not valid TOML: {err}") from None


def check_positive_int(value, name: str) -> int:
    """``value`` as an int if it is a whole number >= 1 (3 and 3.0); otherwise a :class:`CkmsimError` naming
    ``name``."""
    if not is_whole_number(value, minimum=1):
        raise CkmsimError(f"{name} must be a positive integer. Received: {name}={value!r}")
    return int(value)


def check_fraction(value, name: str) -> float:
    """``value`` as a float if it is a number in [0, 1]; otherwise a :class:`CkmsimError` naming ``name``."""
    if not (is_finite_number(value) and 0.0 <= value <= 1.0):
        raise CkmsimError(f"{name} must be a number in [0, 1]. Received: {name}={value!r}")
    return float(value)


def check_table_keys(table, allowed, section: str, context: str) -> dict:
    """A config table (a parsed TOML table) with only ``allowed`` keys, returned as is; otherwise a
    :class:`CkmsimError` that starts with ``context`` (e.g. the file) and names ``section`` and the key."""
    if not isinstance(table, dict):
        raise CkmsimError(f"{context}: {section} must be a table. Received: {table!r}")
    unknown = sorted(set(table) - set(allowed))
    if unknown:
        raise CkmsimError(f"{context}: unknown key(s) {unknown} in {section}; expected a subset of "
                          f"{sorted(allowed)}. Received: {unknown[0]}={table[unknown[0]]!r}")
    return table
