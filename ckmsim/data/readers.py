r"""Readers for the PNG folders of CKMImageNet and RadioMapSeer, into ckmsim CKMs.

Both readers list the samples of a dataset folder when they are made (file names only) and read the images of a
sample only when it is asked for, so iterating over a reader is lazy. Each sample becomes one CKM
(:func:`~ckmsim.maps.ckm.make_ckm`) with ``gain_db`` [dB] (NaN on buildings), ``building`` (bool) and, where
the dataset has them, angle layers; the transmitter position goes into the ``bs_position_m`` attribute and the
files read into ``source``.

**Image -> grid.** Image row ``i`` is :class:`~ckmsim.maps.grid.Grid` row ``i`` and image column ``j`` is grid
column ``j``, so a pixel and its cell have the same index and nothing is flipped (plotting a CKM with
``origin="lower"`` therefore shows the dataset's picture upside down). The grid's lower-left corner is the
origin: pixel ``(i, j)`` has its centre at ``x = (j + 1/2) d``, ``y = (i + 1/2) d`` for cell size ``d``.

**Images.** 8-bit grayscale PNGs (PIL mode ``"L"``); a bilevel (``"1"``) image or a gray image saved as
RGB/RGBA/LA (all colour channels equal) is accepted too. Anything else, a missing file or folder, or an image of
the wrong size raises :class:`~ckmsim.errors.CkmsimError` naming the file.

RadioMapSeer layout
-------------------
As used by RadioUNet's loader (github.com/RonLevie/RadioUNet, ``lib/loaders.py``) and later RadioMapSeer
loaders; root-relative folders are fields of :class:`RadioMapSeerLayout`::

    <root>/png/buildings_complete/<map>.png     building map of city map <map>, 256 x 256, 1 m per pixel
    <root>/png/antennas/<map>_<tx>.png          transmitter image (its brightest pixel is the transmitter)
    <root>/antenna/<map>.json                   [[x, y], ...]: the 80 transmitter pixel positions of <map>
    <root>/gain/<simulation>/<map>_<tx>.png     gain map; <simulation> in DPM, IRT2, IRT4, carsDPM, ...

Gain pixels map to dB by CKMDiff eq. (28) (:func:`~ckmsim.maps.pixels.radiomapseer_pixel_to_gain_db`,
[-147, -47] dB). Assumed and checked: building pixels are white (gray 255, ``building_value``) — a sample whose
building cells are on average brighter in the gain map than the open cells fails with a message pointing at
this setting, since WinProp computes no gain inside buildings; the JSON holds ``[column, row]``
(``antenna_json_order="xy"``), checked against the transmitter PNG when that folder exists. Scene facts
(CKMDiff Sec. V-A-2): 5.9 GHz, transmitters 1.5 m high; the receiver height (1.5 m) is assumed.

CKMImageNet layout
------------------
CKMImageNet (github.com/Darwen9/CKMImagenet; Wu et al., IEEE TCOM 2025) is organised per city, and its
cities do not share one layout. Confirmed in the repository for Beijing::

    <city folder>/<city>_ch_gain/<city>_ch_gain_BS<bs>/graph_<area>.png    gain map of subarea <area> (1..81)

Each BS's coverage is cut into 81 partially overlapping subareas; subareas out of range are deleted, so
numbering has gaps. Other cities use flat folders (e.g. ``Paris_3_image_128_AoA/<tile>_AoA.png``). The reader
therefore takes path *templates* (:class:`CkmImageNetLayout`): ``{name}`` fields are matched in file names when
listing samples and filled in to find a sample's other images; ``{city}`` is replaced by the ``city`` argument.
Not confirmed, hence opt-in: the angle folders' names (no default template) and any building image (none by
default). Without a building image the building mask is taken from the angle image's building code
(-200 deg) if an angle template is given, else from gain pixel 0 (E-SRResNet's thresholding of the PGM;
it cannot tell a building from a cell with no received energy, both being -250 dB). Without a position
file the BS cell is the brightest gain pixel (E-SRResNet Sec. IV-A), which is right only when the BS lies
inside the subarea; pass ``bs_cell_rule=None`` to leave ``bs_position_m`` out. Scene facts (CKMDiff
Sec. V-A-1): 28 GHz, BS 10 m and UE 1 m high, UEs every 2 m.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator, Mapping

import numpy as np
import xarray as xr
from PIL import Image, UnidentifiedImageError

from ckmsim.errors import CkmsimError
from ckmsim.maps.ckm import make_ckm
from ckmsim.maps.grid import Grid
from ckmsim.maps.pixels import (
    RADIOMAPSEER_GAIN_RANGE_DB,
    angle_pixel_is_building,
    pixel_to_angle_deg,
    pixel_to_gain_db,
    radiomapseer_pixel_to_gain_db,
    uint8_to_pixel,
)
from ckmsim.validation import is_finite_number, is_whole_number

#: Variables a CKMImageNet angle image may fill (one path: the strongest).
ANGLE_VARIABLES = ("aoa_az_deg", "aoa_el_deg")


# ----------------------------------------------------------------------------------------------------------
# Shared pieces
# ----------------------------------------------------------------------------------------------------------

def read_gray_png(path: Path, expected_shape: tuple[int, int] | None = None) -> np.ndarray:
    """The 8-bit gray levels of a PNG file: ``[height, width]`` uint8.

    Accepts mode ``"L"``, bilevel ``"1"`` (as 0/255) and gray stored as ``"LA"``/``"RGB"``/``"RGBA"`` (equal
    colour channels; alpha ignored). Raises :class:`CkmsimError` naming the file if it is missing, unreadable,
    in another mode, pseudo-coloured or not ``expected_shape`` = ``(height, width)``.
    """
    path = Path(path)
    if not path.is_file():
        raise CkmsimError(f"Missing image file '{path}'")
    try:
        with Image.open(path) as image:
            image.load()
            mode = image.mode
            if mode == "1":
                gray = np.asarray(image.convert("L"))
            elif mode in ("L", "LA", "RGB", "RGBA"):
                bands = np.asarray(image)
                gray = bands if mode == "L" else _gray_of_colour(bands, mode, path)
            else:
                raise CkmsimError(f"Image '{path}' has PIL mode '{mode}'; expected 8-bit grayscale ('L'). "
                                  f"Received: mode={mode!r}")
    except (UnidentifiedImageError, OSError) as err:
        raise CkmsimError(f"'{path}' is not a readable image: {err}") from None
    if expected_shape is not None and gray.shape != tuple(expected_shape):
        raise CkmsimError(f"Image '{path}' is {gray.shape[1]} x {gray.shape[0]} (width x height) pixels; expected "
                          f"{expected_shape[1]} x {expected_shape[0]}. Received: shape={gray.shape}")
    return gray.astype(np.uint8)


def _gray_of_colour(bands: np.ndarray, mode: str, path: Path) -> np.ndarray:
    """The gray channel of an ``[h, w, c]`` LA/RGB/RGBA image whose colour channels are equal."""
    colour = bands[..., :1] if mode == "LA" else bands[..., :3]
    if np.any(colour != colour[..., :1]):
        raise CkmsimError(f"Image '{path}' is a colour image (mode '{mode}' with unequal channels); expected "
                          f"8-bit grayscale. Received: mode={mode!r}")
    return colour[..., 0]


def image_grid(shape: tuple[int, int], cell_size_m: float, height_m: float) -> Grid:
    """The :class:`Grid` of an image of ``shape = (height, width)`` pixels: pixel (i, j) is cell (i, j).

    The lower-left grid corner is the origin, so cell centres are at ``((j + 1/2) d, (i + 1/2) d)`` [m].
    """
    num_y, num_x = shape
    return Grid(center_x_m=0.5 * num_x * cell_size_m, center_y_m=0.5 * num_y * cell_size_m, num_x=num_x,
                num_y=num_y, cell_size_m=cell_size_m, height_m=height_m)


def _pixel_position_m(row: float, col: float, cell_size_m: float, height_m: float) -> list[float]:
    """``[x, y, z]`` [m] of the centre of pixel (row, col) on :func:`image_grid`, at height ``height_m``."""
    return [float((col + 0.5) * cell_size_m), float((row + 0.5) * cell_size_m), float(height_m)]


def _check_positive(name: str, value) -> float:
    """``value`` as float; raise unless it is a finite number > 0."""
    if not (is_finite_number(value) and value > 0):
        raise CkmsimError(f"{name} must be a finite number > 0. Received: {name}={value!r}")
    return float(value)


def _check_folder(path: Path, what: str) -> Path:
    """``path`` if it is a directory, else raise naming it."""
    if not path.is_dir():
        raise CkmsimError(f"Missing {what} folder '{path}'")
    return path


def _check_building_polarity(gain_gray: np.ndarray, building: np.ndarray, path: Path, setting: str) -> None:
    """Raise if building cells are on average brighter than open cells in the gain image.

    The simulators of both datasets store no gain inside buildings (the lowest gray level), so brighter
    buildings mean the building image was read with the wrong polarity.
    """
    if building.all() or not building.any():
        return
    if gain_gray[building].mean() > gain_gray[~building].mean():
        raise CkmsimError(f"Building cells of '{path}' are brighter in the gain map than open cells: the building "
                          f"image's polarity is probably inverted (check {setting})")


# ----------------------------------------------------------------------------------------------------------
# RadioMapSeer
# ----------------------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class RadioMapSeerLayout:
    """Root-relative folders and conventions of a RadioMapSeer copy (defaults: the published layout).

    Parameters
    ----------
    buildings_dir : str
        Building images ``<map>.png``.
    gain_dir : str
        Gain images ``<map>_<tx>.png``; ``{simulation}`` is replaced by the reader's ``simulation``.
    antenna_json_dir : str or None
        Transmitter positions ``<map>.json``; None to take them from the transmitter PNGs instead.
    antenna_png_dir : str or None
        Transmitter images ``<map>_<tx>.png``, used to check the JSON positions when the folder exists.
    antenna_json_order : "xy" or "yx"
        Whether a JSON entry is ``[column, row]`` ("xy") or ``[row, column]`` ("yx").
    building_value : 0 or 255
        Gray level of building pixels in the building image (the other level is open ground).
    image_size : int
        Side of every image [pixels].
    """

    buildings_dir: str = "png/buildings_complete"
    gain_dir: str = "gain/{simulation}"
    antenna_json_dir: str | None = "antenna"
    antenna_png_dir: str | None = "png/antennas"
    antenna_json_order: str = "xy"
    building_value: int = 255
    image_size: int = 256

    def __post_init__(self):
        if self.antenna_json_order not in ("xy", "yx"):
            raise CkmsimError(f"RadioMapSeerLayout.antenna_json_order must be 'xy' or 'yx'. "
                              f"Received: antenna_json_order={self.antenna_json_order!r}")
        if self.building_value not in (0, 255):
            raise CkmsimError(f"RadioMapSeerLayout.building_value must be 0 or 255. "
                              f"Received: building_value={self.building_value!r}")
        if not is_whole_number(self.image_size, minimum=1):
            raise CkmsimError(f"RadioMapSeerLayout.image_size must be a positive integer. "
                              f"Received: image_size={self.image_size!r}")
        if self.antenna_json_dir is None and self.antenna_png_dir is None:
            raise CkmsimError("RadioMapSeerLayout needs antenna_json_dir or antenna_png_dir for transmitter "
                              "positions. Received: both None")


_RADIOMAPSEER_SAMPLE = re.compile(r"^(\d+)_(\d+)\.png$")


class RadioMapSeerReader:
    """Lazy reader of a RadioMapSeer folder: one CKM per (map, transmitter) pair.

    Parameters
    ----------
    root : path
        The dataset folder (the one holding ``png/``, ``gain/`` and ``antenna/``).
    simulation : str
        Name of the gain folder under ``gain/``: "DPM", "IRT2", "IRT4", "carsDPM", ...
    maps, transmitters : sequence of int, optional
        Keep only these map / transmitter indices (default: every gain file found).
    layout : RadioMapSeerLayout
    cell_size_m : float
        Side of one pixel [m] (1 m in RadioMapSeer).
    tx_height_m, ue_height_m : float
        Transmitter and receiver heights [m] (1.5 m; see the module docstring).
    frequency_hz : float
        Carrier frequency [Hz] (5.9 GHz).

    ``len(reader)`` is the number of samples, ``reader.samples`` their ``(map, tx)`` keys, ``reader.read(map, tx)``
    one CKM and ``iter(reader)`` yields the CKMs in ``samples`` order, reading each when it is reached.
    """

    def __init__(self, root, simulation: str = "DPM", maps=None, transmitters=None,
                 layout: RadioMapSeerLayout = RadioMapSeerLayout(), cell_size_m: float = 1.0,
                 tx_height_m: float = 1.5, ue_height_m: float = 1.5, frequency_hz: float = 5.9e9):
        self.root = _check_folder(Path(root), "RadioMapSeer dataset")
        self.simulation = str(simulation)
        self.layout = layout
        self.cell_size_m = _check_positive("cell_size_m", cell_size_m)
        self.tx_height_m = _check_positive("tx_height_m", tx_height_m)
        self.ue_height_m = _check_positive("ue_height_m", ue_height_m)
        self.frequency_hz = _check_positive("frequency_hz", frequency_hz)
        self.gain_dir = _check_folder(self.root / layout.gain_dir.format(simulation=self.simulation),
                                      f"RadioMapSeer gain ({self.simulation})")
        self.buildings_dir = _check_folder(self.root / layout.buildings_dir, "RadioMapSeer buildings")
        self.json_dir = (None if layout.antenna_json_dir is None
                         else _check_folder(self.root / layout.antenna_json_dir, "RadioMapSeer antenna JSON"))
        png_dir = None if layout.antenna_png_dir is None else self.root / layout.antenna_png_dir
        if self.json_dir is None:
            png_dir = _check_folder(png_dir, "RadioMapSeer antenna PNG")
        self.antenna_png_dir = png_dir if png_dir is not None and png_dir.is_dir() else None
        self.samples = self._list_samples(maps, transmitters)

    def _list_samples(self, maps, transmitters) -> list[tuple[int, int]]:
        """Sorted ``(map, tx)`` keys of the gain files, filtered by ``maps`` and ``transmitters``."""
        found = sorted((int(m.group(1)), int(m.group(2))) for m in map(_RADIOMAPSEER_SAMPLE.match,
                                                                      (p.name for p in self.gain_dir.iterdir()))
                       if m is not None)
        keep_maps = None if maps is None else {int(m) for m in maps}
        keep_tx = None if transmitters is None else {int(t) for t in transmitters}
        samples = [(m, t) for m, t in found
                   if (keep_maps is None or m in keep_maps) and (keep_tx is None or t in keep_tx)]
        if not samples:
            raise CkmsimError(f"No RadioMapSeer gain file '<map>_<tx>.png' in '{self.gain_dir}' matches. "
                              f"Received: maps={maps!r}, transmitters={transmitters!r}")
        return samples

    def __len__(self) -> int:
        return len(self.samples)

    def __iter__(self) -> Iterator[xr.Dataset]:
        for map_id, tx_id in self.samples:
            yield self.read(map_id, tx_id)

    def read(self, map_id: int, tx_id: int) -> xr.Dataset:
        """The CKM of transmitter ``tx_id`` on city map ``map_id`` (see the module docstring)."""
        size = (self.layout.image_size, self.layout.image_size)
        gain_path = self.gain_dir / f"{map_id}_{tx_id}.png"
        buildings_path = self.buildings_dir / f"{map_id}.png"
        gain_gray = read_gray_png(gain_path, size)
        building = self._building_mask(read_gray_png(buildings_path, size))
        _check_building_polarity(gain_gray, building, gain_path, "RadioMapSeerLayout.building_value")
        gain_db = np.where(building, np.nan, radiomapseer_pixel_to_gain_db(uint8_to_pixel(gain_gray)))
        row, col, position_file = self._transmitter_pixel(map_id, tx_id)
        grid = image_grid(size, self.cell_size_m, self.ue_height_m)
        attrs = {
            "scene": f"RadioMapSeer/{map_id}",
            "frequency_hz": self.frequency_hz,
            "bs_position_m": _pixel_position_m(row, col, self.cell_size_m, self.tx_height_m),
            # RadioMapSeer truncates gains below its -147 dB threshold: that is the floor of this CKM
            "gain_floor_db": RADIOMAPSEER_GAIN_RANGE_DB[0],
            "source": {"dataset": "RadioMapSeer", "simulation": self.simulation, "map": int(map_id),
                       "transmitter": int(tx_id), "gain_file": str(gain_path), "building_file": str(buildings_path),
                       "position_file": str(position_file)},
        }
        return make_ckm(grid, {"gain_db": gain_db, "building": building}, attrs)

    def _building_mask(self, gray: np.ndarray) -> np.ndarray:
        """``[y, x]`` bool: True where the building image holds ``building_value`` (split at mid-gray)."""
        return gray >= 128 if self.layout.building_value == 255 else gray < 128

    def _transmitter_pixel(self, map_id: int, tx_id: int) -> tuple[float, float, Path]:
        """(row, col) of the transmitter and the file it came from; JSON checked against the PNG if present."""
        png_cell = None
        if self.antenna_png_dir is not None:
            png_path = self.antenna_png_dir / f"{map_id}_{tx_id}.png"
            if png_path.is_file() or self.json_dir is None:
                gray = read_gray_png(png_path, (self.layout.image_size,) * 2)
                png_cell = np.unravel_index(int(np.argmax(gray)), gray.shape)
        if self.json_dir is None:
            return float(png_cell[0]), float(png_cell[1]), png_path
        json_path = self.json_dir / f"{map_id}.json"
        row, col = self._json_pixel(json_path, tx_id)
        if png_cell is not None and (abs(row - png_cell[0]) > 1 or abs(col - png_cell[1]) > 1):
            raise CkmsimError(f"Transmitter {tx_id} of map {map_id}: '{json_path}' gives (row, col) = ({row:g}, "
                              f"{col:g}) with antenna_json_order='{self.layout.antenna_json_order}', but the "
                              f"brightest pixel of '{png_path}' is {tuple(int(v) for v in png_cell)}; check "
                              f"RadioMapSeerLayout.antenna_json_order")
        return row, col, json_path

    def _json_pixel(self, json_path: Path, tx_id: int) -> tuple[float, float]:
        """(row, col) of transmitter ``tx_id`` from a map's antenna JSON."""
        if not json_path.is_file():
            raise CkmsimError(f"Missing transmitter position file '{json_path}'")
        try:
            positions = json.loads(json_path.read_text())
        except (OSError, ValueError) as err:
            raise CkmsimError(f"'{json_path}' is not readable JSON: {err}") from None
        if not isinstance(positions, list) or not 0 <= tx_id < len(positions):
            count = len(positions) if isinstance(positions, list) else type(positions).__name__
            raise CkmsimError(f"'{json_path}' must be a list with an [x, y] entry for transmitter {tx_id}. "
                              f"Received: {count} entries")
        entry = positions[tx_id]
        if (not isinstance(entry, list) or len(entry) != 2 or not all(is_finite_number(v) for v in entry)):
            raise CkmsimError(f"Entry {tx_id} of '{json_path}' must be two pixel coordinates. Received: {entry!r}")
        first, second = (float(v) for v in entry)
        row, col = (second, first) if self.layout.antenna_json_order == "xy" else (first, second)
        size = self.layout.image_size
        if not (0 <= row < size and 0 <= col < size):
            raise CkmsimError(f"Entry {tx_id} of '{json_path}' lies outside the {size} x {size} image. "
                              f"Received: {entry!r}")
        return row, col


# ----------------------------------------------------------------------------------------------------------
# CKMImageNet
# ----------------------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class CkmImageNetLayout:
    """Path templates of a CKMImageNet city folder (defaults: the Beijing layout of the repository).

    Templates are relative to the reader's root; ``{city}`` is replaced by the reader's ``city`` and every other
    ``{name}`` is a sample field matched in file names (``[^/]+``), e.g. ``{bs}`` and ``{area}``.

    Parameters
    ----------
    gain : str
        Template of the gain images; it defines the samples.
    angles : mapping str -> str
        CKM variable (``"aoa_az_deg"``, ``"aoa_el_deg"``) -> template of the angle images that fill it, using
        the fields of ``gain``. ckmsim's AoA is at the BS, so map the dataset's BS-side angle here (its AoD
        when the BS transmits). Empty by default: the angle folders' names were not confirmed.
    building : str or None
        Template of a building image, if the copy has one.
    building_value : 0 or 255
        Gray level of building pixels in that image.
    """

    gain: str = "{city}_ch_gain/{city}_ch_gain_BS{bs}/graph_{area}.png"
    angles: Mapping[str, str] = field(default_factory=dict)
    building: str | None = None
    building_value: int = 0

    def __post_init__(self):
        unknown = sorted(set(self.angles) - set(ANGLE_VARIABLES))
        if unknown:
            raise CkmsimError(f"CkmImageNetLayout.angles keys must be among {list(ANGLE_VARIABLES)}. "
                              f"Received: {unknown}")
        if self.building_value not in (0, 255):
            raise CkmsimError(f"CkmImageNetLayout.building_value must be 0 or 255. "
                              f"Received: building_value={self.building_value!r}")


def _template_regex(template: str) -> tuple[str, re.Pattern]:
    """``(glob, regex)`` of a path template: each ``{name}`` -> ``*`` and a named group (back-reference if repeated)."""
    pattern, seen, position = "", set(), 0
    for match in re.finditer(r"\{(\w+)\}", template):
        pattern += re.escape(template[position:match.start()])
        name = match.group(1)
        pattern += f"(?P={name})" if name in seen else f"(?P<{name}>[^/]+?)"
        seen.add(name)
        position = match.end()
    pattern += re.escape(template[position:])
    return re.sub(r"\{\w+\}", "*", template), re.compile(f"^{pattern}$")


def _sort_key(sample: dict[str, str]) -> tuple:
    """Numeric-aware order of sample fields, in the template's order: ``BS2`` before ``BS10``."""
    return tuple((0, int(v), "") if v.isdigit() else (1, 0, v) for v in sample.values())


class CkmImageNetReader:
    """Lazy reader of one CKMImageNet city folder: one CKM per gain image (BS x subarea).

    Parameters
    ----------
    root : path
        The city folder (e.g. ``.../Beijing``).
    city : str
        Replaces ``{city}`` in the layout's templates (e.g. "Beijing").
    layout : CkmImageNetLayout
    image_size : int, optional
        Expected side of every image [pixels] (32, 64 or 128 in CKMImageNet); default: that of each sample's
        gain image, with the sample's other images required to match it.
    cell_size_m : float
        Side of one pixel [m] (UEs are 2 m apart).
    bs_height_m, ue_height_m : float
        Heights [m] (10 m and 1 m).
    frequency_hz : float
        Carrier frequency [Hz] (28 GHz).
    bs_cell_rule : "brightest" or None
        "brightest": the BS is at the brightest gain pixel (E-SRResNet Sec. IV-A); None: no ``bs_position_m``.

    ``reader.samples`` lists the field dicts of the samples (e.g. ``{"bs": "10", "area": "28"}``),
    ``reader.read(sample)`` gives one CKM and ``iter(reader)`` yields the CKMs lazily.
    """

    def __init__(self, root, city: str, layout: CkmImageNetLayout = CkmImageNetLayout(),
                 image_size: int | None = None, cell_size_m: float = 2.0, bs_height_m: float = 10.0,
                 ue_height_m: float = 1.0, frequency_hz: float = 28e9, bs_cell_rule: str | None = "brightest"):
        self.root = _check_folder(Path(root), "CKMImageNet city")
        self.city = str(city)
        self.layout = layout
        if image_size is not None and not is_whole_number(image_size, minimum=1):
            raise CkmsimError(f"image_size must be a positive integer or None. Received: image_size={image_size!r}")
        self.image_size = None if image_size is None else int(image_size)
        self.cell_size_m = _check_positive("cell_size_m", cell_size_m)
        self.bs_height_m = _check_positive("bs_height_m", bs_height_m)
        self.ue_height_m = _check_positive("ue_height_m", ue_height_m)
        self.frequency_hz = _check_positive("frequency_hz", frequency_hz)
        if bs_cell_rule not in ("brightest", None):
            raise CkmsimError(f"bs_cell_rule must be 'brightest' or None. Received: bs_cell_rule={bs_cell_rule!r}")
        self.bs_cell_rule = bs_cell_rule
        self._gain_template = self._with_city(layout.gain)
        self.samples = self._list_samples()

    def _with_city(self, template: str) -> str:
        return template.replace("{city}", self.city)

    def _list_samples(self) -> list[dict[str, str]]:
        """Field dicts of every file matching the gain template, in numeric-aware order."""
        glob, regex = _template_regex(self._gain_template)
        first_folder = self.root / Path(glob.split("*", 1)[0]).parent
        _check_folder(first_folder if "*" in glob else (self.root / glob).parent, "CKMImageNet gain")
        samples = []
        for path in self.root.glob(glob):
            match = regex.match(path.relative_to(self.root).as_posix())
            if match is not None:
                samples.append(match.groupdict())
        if not samples:
            raise CkmsimError(f"No CKMImageNet gain image under '{self.root}' matches the template "
                              f"'{self._gain_template}'")
        return sorted(samples, key=_sort_key)

    def __len__(self) -> int:
        return len(self.samples)

    def __iter__(self) -> Iterator[xr.Dataset]:
        for sample in self.samples:
            yield self.read(sample)

    def _path(self, template: str, sample: Mapping[str, str]) -> Path:
        try:
            return self.root / self._with_city(template).format(**sample)
        except KeyError as err:
            raise CkmsimError(f"Template '{template}' uses the field {err} that the gain template "
                              f"'{self.layout.gain}' does not define. Received: sample={dict(sample)}") from None

    def read(self, sample: Mapping[str, str]) -> xr.Dataset:
        """The CKM of one sample (a field dict from :attr:`samples`); see the module docstring."""
        gain_path = self._path(self.layout.gain, sample)
        expected = None if self.image_size is None else (self.image_size, self.image_size)
        gain_gray = read_gray_png(gain_path, expected)
        shape = gain_gray.shape
        files = {"gain_file": str(gain_path)}
        # [path = 1, y, x] angle layers, each decoded with the CKMImageNet angle mapping
        angles, angle_building = {}, None
        for variable, template in self.layout.angles.items():
            angle_path = self._path(template, sample)
            pixel = uint8_to_pixel(read_gray_png(angle_path, shape))
            angles[variable] = pixel_to_angle_deg(pixel)[None]
            angle_building = angle_pixel_is_building(pixel) if angle_building is None else angle_building
            files[f"{variable}_file"] = str(angle_path)
        if self.layout.building is not None:
            building_path = self._path(self.layout.building, sample)
            building_gray = read_gray_png(building_path, shape)
            building = building_gray >= 128 if self.layout.building_value == 255 else building_gray < 128
            _check_building_polarity(gain_gray, building, gain_path, "CkmImageNetLayout.building_value")
            files["building_file"] = str(building_path)
        elif angle_building is not None:
            building = angle_building
        else:
            building = gain_gray == 0
        gain_db = np.where(building, np.nan, pixel_to_gain_db(uint8_to_pixel(gain_gray)))
        for layer in angles.values():
            layer[:, building] = np.nan
        attrs = {"scene": f"CKMImageNet/{self.city}", "frequency_hz": self.frequency_hz,
                 "source": {"dataset": "CKMImageNet", "city": self.city, **dict(sample), **files}}
        if self.bs_cell_rule == "brightest":
            row, col = np.unravel_index(int(np.argmax(gain_gray)), shape)
            attrs["bs_position_m"] = _pixel_position_m(row, col, self.cell_size_m, self.bs_height_m)
            attrs["source"]["bs_position_rule"] = "brightest gain pixel (E-SRResNet Sec. IV-A)"
        grid = image_grid(shape, self.cell_size_m, self.ue_height_m)
        return make_ckm(grid, {"gain_db": gain_db, "building": building, **angles}, attrs)
