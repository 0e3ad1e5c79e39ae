"""How a CKM is drawn, in every figure of the package: the colours of cell classes, the physical title of
each layer, and one colour per method and one line style per task.

Every plot (``ckmsim.eval.figures``, ``scene preview``, ``dataset show``) reads these constants, so that a
building is the same grey in each PNG and a method keeps its colour from a map figure to a rate CDF.
Colours are matplotlib colour strings; nothing here imports matplotlib.
"""

from __future__ import annotations

import zlib

#: Building cells (no UE stands there), in every map of the package.
BUILDING_COLOR = "0.55"
#: Open cells that no ray reaches (gain at the -250 dB floor, no path): a colour in none of the colour maps
#: used for values (viridis, magma, twilight).
NO_PATH_COLOR = "#40e0f0"
#: Cells a sparse observation does not hold.
NOT_OBSERVED_COLOR = "white"
#: The two colours of a boolean layer, (False, True).
BOOLEAN_COLORS = ("#3b4cc0", "#f2c14e")
#: The building layer as a map of its own: open cells light, buildings in the building colour.
BUILDING_LAYER_COLORS = ("#f3efe0", BUILDING_COLOR)

#: Physical title of each CKM variable, with its unit (``ckmsim.maps.ckm``).
LAYER_TITLES = {
    "gain_db": "Channel gain [dB]",
    "path_gain_db": "Path gain [dB]",
    "aoa_az_deg": "AoA azimuth [deg]",
    "aoa_el_deg": "AoA elevation [deg]",
    "aod_az_deg": "AoD azimuth [deg]",
    "aod_el_deg": "AoD elevation [deg]",
    "toa_s": "Time of arrival",
    "los": "Line of sight",
    "building": "Building",
}
#: Labels of the two values of each boolean layer, (False, True).
BOOLEAN_LABELS = {"los": ("NLoS", "LoS"), "building": ("open", "building"), "exists": ("no path", "path")}

#: The methods the package ships, in the order their colours are handed out: the first ten get the
#: saturated tab10 hues (grey left out: references are grey), the rest tab20's light ones.
KNOWN_METHODS = ("bilinear", "bicubic", "knn", "idw", "rbf", "kriging", "ls", "pathloss_kriging", "umi_3gpp",
                 "esrresnet", "ckmdiff", "srresnet", "radiounet_style", "pix2pix", "crossap_unet", "ladckm", "fire",
                 "nerf2", "cross_ap_weighted")
_METHOD_PALETTE = ("#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#bcbd22",
                   "#17becf", "#000080", "#b8860b", "#aec7e8", "#ffbb78", "#98df8a", "#ff9896", "#c5b0d5",
                   "#c49c94", "#f7b6d2", "#9edae5")
#: Colours of methods the package does not know (a user's own), chosen by a stable hash of the name.
_EXTRA_PALETTE = ("#393b79", "#637939", "#8c6d31", "#843c39", "#7b4173", "#5254a3", "#8ca252", "#bd9e39",
                  "#ad494a", "#a55194")
#: Line style of the common tasks; other tasks get one from ``_EXTRA_STYLES`` by a stable hash.
TASK_LINESTYLES = {"sr_x2": "-", "sr_x4": "--", "sr_x8": "-.", "sr_x16": ":"}
_EXTRA_STYLES = ((0, (5, 1, 1, 1, 1, 1)), (0, (1, 1)), (0, (8, 2)), (0, (3, 1, 1, 1)), (0, (6, 2, 2, 2)))
#: Marker of each task in scatter plots, same idea as the line styles.
TASK_MARKERS = {"sr_x2": "o", "sr_x4": "s", "sr_x8": "^", "sr_x16": "v"}
_EXTRA_MARKERS = ("D", "P", "X", "p", "h", "*", "<", ">")


def _stable_index(name: str, size: int) -> int:
    """An index in ``range(size)`` that depends on ``name`` only (not on Python's salted ``hash``)."""
    return zlib.crc32(name.encode()) % size


def method_color(name: str) -> str:
    """The colour of method ``name`` in every figure: fixed for the shipped methods, a stable hash for others."""
    base = str(name).split(" ")[0]
    if base in KNOWN_METHODS:
        return _METHOD_PALETTE[KNOWN_METHODS.index(base)]
    return _EXTRA_PALETTE[_stable_index(base, len(_EXTRA_PALETTE))]


def task_linestyle(task: str):
    """The line style of task ``task`` in every rate plot (a matplotlib ``linestyle``)."""
    return TASK_LINESTYLES.get(task, _EXTRA_STYLES[_stable_index(str(task), len(_EXTRA_STYLES))])


def task_marker(task: str) -> str:
    """The scatter marker of task ``task``."""
    return TASK_MARKERS.get(task, _EXTRA_MARKERS[_stable_index(str(task), len(_EXTRA_MARKERS))])
