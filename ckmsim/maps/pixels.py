r"""Pixel encodings of CKM layers, used only at a network's boundary, for image metrics and in the interop readers.

Three linear mappings onto pixels :math:`x \in [0, 1]`, each with its inverse, plus 8-bit quantisation:

=============================== ======================= ===================================================
mapping                         physical range          source
=============================== ======================= ===================================================
CKMImageNet gain                [-250, -50] dB -> [0,1] E-SRResNet Sec. IV-A; CKMDiff Sec. V-A-1 and eq. (27)
CKMImageNet angle               [-200, 180] deg -> [0,1] E-SRResNet Sec. IV-A (buildings coded as -200 deg)
RadioMapSeer gain (path loss)   [-147, -47] dB -> [0,1] CKMDiff Sec. V-A-2 and eq. (28)
=============================== ======================= ===================================================

A pixel of an 8-bit PNG is ``round(255 x)`` (:func:`pixel_to_uint8`); reading one back is ``u / 255``
(:func:`uint8_to_pixel`). One 8-bit step is 200/255 = 0.78 dB of CKMImageNet gain, 100/255 = 0.39 dB of
RadioMapSeer gain and 380/255 = 1.49 deg of CKMImageNet angle, so a round trip through a PNG is exact to half
of that.

**CKMImageNet gain.** "Gain values range from -250 dB to -50 dB and are linearly mapped to the pixel range
[0, 1]" (E-SRResNet); building cells "are set to the minimum value of -250 dB" and so map to 0 (CKMDiff).
Values outside the range are clipped.

**CKMImageNet angle.** "Angle values are handled by assigning building-region pixels a value of -200 deg,
and linearly mapped the angular interval from -200 deg to 180 deg to the pixel range [0, 1]" (E-SRResNet).
Real angles lie in (-180, 180] deg, i.e. pixels in [20/380, 1]; the building code -200 deg is pixel 0. The
interval (-200, -180) deg holds no angle, so :func:`pixel_to_angle_deg` reads everything below the middle of that
gap (-190 deg, pixel 10/380 = 6.7 on the 0..255 scale) as building, which survives 8-bit quantisation.
A cell without a path (NaN angle) is coded like a building: the dataset description has no other code for it.

**RadioMapSeer gain.** CKMDiff (Sec. V-A-2): "simulated path loss values ranging from -186 dB to -47 dB, with a
reliability threshold set at -147 dB ... areas corresponding to buildings are assigned the minimum path loss
value of -147 dB. The path loss values are then mapped to grayscale, where 0 represents the threshold
(-147 dB) and 255 corresponds to the maximum path loss (-47 dB)", and eq. (28): :math:`g = 100 x - 147`.
So the PNG gray level is :math:`255 \max(g + 147, 0) / 100`: gains below the -147 dB threshold (down to
the -186 dB simulation floor) are truncated to 0; -186 dB is *not* a pixel end point. RadioUNet's own loader
(github.com/RonLevie/RadioUNet, ``lib/loaders.py``) reads these PNGs as ``gray / 255`` and applies its further
noise-floor threshold (0.2) on that linear scale, which agrees with a linear gray scale. (A third-party note,
TrajectoryDiff ``docs/dataset_notes.md``, maps 0..255 to -186..-47 dB instead; that contradicts eq. (28) and is
not followed here.)

Every function takes any array shape ``[...]`` and returns float64 (or uint8) of the same shape.
"""

from __future__ import annotations

import numpy as np

from ckmsim.errors import CkmsimError
from ckmsim.maps.angles import wrap_deg

#: CKMImageNet gain range [dB] mapped linearly onto pixels [0, 1] (E-SRResNet Sec. IV-A, CKMDiff eq. (27)).
CKMIMAGENET_GAIN_RANGE_DB = (-250.0, -50.0)
#: CKMImageNet angle range [deg] mapped linearly onto pixels [0, 1]; its lower end is the building code.
CKMIMAGENET_ANGLE_RANGE_DEG = (-200.0, 180.0)
#: The angle CKMImageNet writes into building cells [deg] (E-SRResNet Sec. IV-A).
CKMIMAGENET_BUILDING_ANGLE_DEG = -200.0
#: RadioMapSeer gain range [dB] mapped onto pixels [0, 1]: threshold -147 dB to maximum -47 dB (CKMDiff eq. (28)).
RADIOMAPSEER_GAIN_RANGE_DB = (-147.0, -47.0)
#: Lowest path gain the RadioMapSeer simulations produce [dB]; everything below -147 dB is truncated to pixel 0.
RADIOMAPSEER_SIMULATED_MIN_DB = -186.0

_UINT8_MAX = 255.0


def _check_range(value_range: tuple[float, float], name: str) -> tuple[float, float]:
    """The ``(low, high)`` pair as floats; raise unless both are finite and ``low < high``."""
    try:
        low, high = (float(v) for v in value_range)
    except (TypeError, ValueError):
        raise CkmsimError(f"{name} must be a pair (low, high). Received: {name}={value_range!r}") from None
    if not (np.isfinite(low) and np.isfinite(high) and low < high):
        raise CkmsimError(f"{name} must be finite with low < high. Received: {name}={value_range!r}")
    return low, high


# ----------------------------------------------------------------------------------------------------------
# Gain
# ----------------------------------------------------------------------------------------------------------

def gain_db_to_pixel(gain_db: np.ndarray, building: np.ndarray | None = None,
                     gain_range_db: tuple[float, float] = CKMIMAGENET_GAIN_RANGE_DB) -> np.ndarray:
    r"""Gain [dB] -> pixel in [0, 1]: :math:`x = \mathrm{clip}((g - g_{lo}) / (g_{hi} - g_{lo}), 0, 1)`.

    The default range is CKMImageNet's; pass :data:`RADIOMAPSEER_GAIN_RANGE_DB` (or use
    :func:`radiomapseer_gain_db_to_pixel`) for RadioMapSeer. NaN/inf and building cells map to 0, as the
    datasets store buildings at the lower end of the range.

    Input
    -----
    gain_db : [...], float
        Channel gain [dB].
    building : [...], bool, optional
        True on building cells.
    gain_range_db : (low, high)
        Gains mapped to pixels 0 and 1 [dB].

    Output
    ------
    pixel : [...], float64 in [0, 1]
    """
    low, high = _check_range(gain_range_db, "gain_range_db")
    with np.errstate(invalid="ignore"):
        pixel = np.clip((np.asarray(gain_db, dtype=np.float64) - low) / (high - low), 0.0, 1.0)
    pixel = np.where(np.isfinite(pixel), pixel, 0.0)
    if building is not None:
        pixel = np.where(building, 0.0, pixel)
    return pixel


def pixel_to_gain_db(pixel: np.ndarray,
                     gain_range_db: tuple[float, float] = CKMIMAGENET_GAIN_RANGE_DB) -> np.ndarray:
    r"""Inverse of :func:`gain_db_to_pixel` on [0, 1]: :math:`g = g_{lo} + x (g_{hi} - g_{lo})` (CKMDiff eq. (27)).

    Input/output ``[...]`` float; pixels outside [0, 1] are extrapolated linearly, not clipped.
    """
    low, high = _check_range(gain_range_db, "gain_range_db")
    return low + np.asarray(pixel, dtype=np.float64) * (high - low)


def radiomapseer_gain_db_to_pixel(gain_db: np.ndarray, building: np.ndarray | None = None) -> np.ndarray:
    """Gain [dB] -> RadioMapSeer pixel in [0, 1]; gains below the -147 dB threshold (and buildings) -> 0.

    ``[...]`` -> ``[...]`` float64. The inverse of CKMDiff eq. (28); see the module docstring for the source.
    """
    return gain_db_to_pixel(gain_db, building, RADIOMAPSEER_GAIN_RANGE_DB)


def radiomapseer_pixel_to_gain_db(pixel: np.ndarray) -> np.ndarray:
    """RadioMapSeer pixel in [0, 1] -> gain [dB], CKMDiff eq. (28): ``g = 100 x - 147``. ``[...]`` float64.

    Pixel 0 means "at or below the -147 dB threshold" (or a building); the true gain there is unknown.
    """
    return pixel_to_gain_db(pixel, RADIOMAPSEER_GAIN_RANGE_DB)


# ----------------------------------------------------------------------------------------------------------
# Angle
# ----------------------------------------------------------------------------------------------------------

def angle_deg_to_pixel(angle_deg: np.ndarray, building: np.ndarray | None = None,
                       angle_range_deg: tuple[float, float] = CKMIMAGENET_ANGLE_RANGE_DEG) -> np.ndarray:
    r"""Angle [deg] -> CKMImageNet pixel in [0, 1]: :math:`x = (\phi + 200) / 380` (E-SRResNet Sec. IV-A).

    Angles are first wrapped to (-180, 180] deg. Building cells and cells without a path (NaN) get the
    building code (the lower end of ``angle_range_deg``, -200 deg), i.e. pixel 0.

    Input
    -----
    angle_deg : [...], float
        Azimuth (or any angle in (-180, 180]) [deg]; NaN where the cell has no path.
    building : [...], bool, optional
    angle_range_deg : (low, high)
        Angles mapped to pixels 0 and 1 [deg]; ``low`` is the building code.

    Output
    ------
    pixel : [...], float64 in [0, 1]
    """
    low, high = _check_range(angle_range_deg, "angle_range_deg")
    angle = wrap_deg(angle_deg)
    if building is not None:
        angle = np.where(building, np.nan, angle)
    with np.errstate(invalid="ignore"):
        pixel = np.clip((angle - low) / (high - low), 0.0, 1.0)
    return np.where(np.isfinite(pixel), pixel, 0.0)


def angle_pixel_is_building(pixel: np.ndarray,
                            angle_range_deg: tuple[float, float] = CKMIMAGENET_ANGLE_RANGE_DEG) -> np.ndarray:
    """True where a CKMImageNet angle pixel holds the building code rather than an angle. ``[...]`` -> bool.

    The threshold is the middle of the empty gap between the code (``low``) and -180 deg, so that a pixel
    quantised to 8 bits is still classified correctly.
    """
    low, high = _check_range(angle_range_deg, "angle_range_deg")
    if low >= -180.0:
        raise CkmsimError(f"angle_range_deg must start below -180 deg to leave room for a building code. "
                          f"Received: angle_range_deg={angle_range_deg!r}")
    threshold = (0.5 * (low + -180.0) - low) / (high - low)
    return np.asarray(pixel, dtype=np.float64) < threshold


def pixel_to_angle_deg(pixel: np.ndarray,
                       angle_range_deg: tuple[float, float] = CKMIMAGENET_ANGLE_RANGE_DEG,
                       building_as_nan: bool = True) -> np.ndarray:
    r"""Inverse of :func:`angle_deg_to_pixel`: :math:`\phi = -200 + 380 x` [deg], NaN on building-coded pixels.

    Decoded angles are clipped to [-180, 180] deg, since 8-bit quantisation can put an angle of -180 deg a
    fraction of a degree below it. With ``building_as_nan=False`` a building-coded pixel decodes like any other
    (to -180 deg): how an image method's output reads at a cell known to be open.

    Input/output ``[...]``, float64.
    """
    low, high = _check_range(angle_range_deg, "angle_range_deg")
    angle = np.clip(low + np.asarray(pixel, dtype=np.float64) * (high - low), -180.0, 180.0)
    if not building_as_nan:
        return angle
    return np.where(angle_pixel_is_building(pixel, angle_range_deg), np.nan, angle)


# ----------------------------------------------------------------------------------------------------------
# 8-bit quantisation (PNG)
# ----------------------------------------------------------------------------------------------------------

def pixel_to_uint8(pixel: np.ndarray) -> np.ndarray:
    """Pixel in [0, 1] -> 8-bit gray level ``round(255 x)``; values outside [0, 1] are clipped first.

    Input ``[...]`` float; output ``[...]`` uint8. NaN has no gray level and raises :class:`CkmsimError`.
    """
    pixel = np.asarray(pixel, dtype=np.float64)
    num_nan = int(np.count_nonzero(np.isnan(pixel)))
    if num_nan:
        raise CkmsimError(f"Cannot quantise NaN pixels to 8 bits: map them first (e.g. gain_db_to_pixel). "
                          f"Received: {num_nan} NaN value(s) in pixel")
    return np.rint(np.clip(pixel, 0.0, 1.0) * _UINT8_MAX).astype(np.uint8)


def uint8_to_pixel(gray: np.ndarray) -> np.ndarray:
    """8-bit gray level -> pixel in [0, 1]: ``u / 255``. Input ``[...]`` uint8 (or integers 0..255); float64 out."""
    gray = np.asarray(gray)
    if gray.dtype != np.uint8:
        if not np.issubdtype(gray.dtype, np.integer) or gray.size and (gray.min() < 0 or gray.max() > 255):
            raise CkmsimError(f"uint8_to_pixel needs 8-bit gray levels (integers 0..255). "
                              f"Received: gray.dtype={gray.dtype}")
    return gray.astype(np.float64) / _UINT8_MAX


class GainRangeCoding:
    """What the networks' encodings (frozen dataclasses with a ``gain_range_db`` field) share: the checked
    range, gain [dB] <-> pixels over it, and a dict form. Subclasses name themselves in ``CODING_LABEL`` and
    call :meth:`_check_gain_range` from ``__post_init__``."""

    CODING_LABEL = "encoding"

    def _check_gain_range(self) -> None:
        low, high = (float(v) for v in self.gain_range_db)
        if not (np.isfinite(low) and np.isfinite(high) and low < high):
            raise CkmsimError(f"gain_range_db must be (low, high) with low < high. "
                              f"Received: gain_range_db={self.gain_range_db!r}")
        object.__setattr__(self, "gain_range_db", (low, high))

    def gain_pixels(self, gain_db: np.ndarray, building: np.ndarray | None = None) -> np.ndarray:
        """Gain [dB] -> pixels in [0, 1] over ``gain_range_db`` (NaN and buildings -> 0, gains outside the
        range clipped). ``[...]`` float32."""
        return gain_db_to_pixel(gain_db, building, self.gain_range_db).astype(np.float32)

    def gain_db(self, pixels: np.ndarray) -> np.ndarray:
        """Pixels -> gain [dB], clipped to ``gain_range_db`` (a network may overshoot [0, 1]). float64."""
        return pixel_to_gain_db(np.clip(np.asarray(pixels, dtype=np.float64), 0.0, 1.0), self.gain_range_db)

    def to_dict(self) -> dict:
        from dataclasses import asdict

        return {**asdict(self), "gain_range_db": list(self.gain_range_db)}

    @classmethod
    def from_dict(cls, values: dict):
        from dataclasses import fields

        keys = sorted(f.name for f in fields(cls))
        unknown = sorted(set(values) - set(keys))
        if unknown:
            raise CkmsimError(f"Unknown {cls.CODING_LABEL} key(s) {unknown}; expected a subset of {keys}")
        values = dict(values)
        if "gain_range_db" in values:
            values["gain_range_db"] = tuple(values["gain_range_db"])
        return cls(**values)
