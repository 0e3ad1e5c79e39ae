"""Load a Sionna RT scene by built-in name or from a Mitsuba XML file, with errors a user can act on."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ckmsim.errors import CkmsimError
from ckmsim.maps.grid import Grid


def builtin_scene_names() -> list[str]:
    """Names of the scenes shipped with Sionna RT (``sionna.rt.scene.<name>`` XML paths)."""
    import sionna.rt as rt

    return sorted(name for name in dir(rt.scene)
                  if not name.startswith("_") and isinstance(getattr(rt.scene, name), str)
                  and str(getattr(rt.scene, name)).endswith(".xml"))


def load_scene(name_or_xml: str):
    """Load a scene.

    Input
    -----
    name_or_xml : str
        A built-in Sionna RT scene name (``munich``, ``etoile``, ...) or the path of a Mitsuba XML file
        (e.g. written by Blender's Mitsuba exporter).

    Output
    ------
    scene : sionna.rt.Scene
    """
    import sionna.rt as rt

    builtins = builtin_scene_names()
    if name_or_xml in builtins:
        return rt.load_scene(getattr(rt.scene, name_or_xml))
    path = Path(name_or_xml)
    if path.suffix.lower() != ".xml":
        raise CkmsimError(f"Unknown scene '{name_or_xml}': not a built-in scene ({', '.join(builtins)}) "
                          f"and not a Mitsuba .xml file")
    if not path.is_file():
        raise CkmsimError(f"Scene file '{path}' does not exist")
    check_scene_xml(path)
    try:
        scene = rt.load_scene(str(path))
    except Exception as err:  # Mitsuba raises RuntimeError, ValueError, ... with a long C++ trace
        last_line = str(err).strip().splitlines()[-1] if str(err).strip() else type(err).__name__
        raise CkmsimError(f"Cannot load scene XML '{path}': {last_line}") from None
    if not scene.objects:
        raise CkmsimError(f"Scene XML '{path}' has no geometry (no shape with a radio material)")
    return scene


def check_scene_xml(path: Path) -> None:
    """Check a Mitsuba scene XML before Mitsuba sees it, so that errors name the file and the element.

    Checks: well-formed XML; every ``<shape>``'s mesh file exists (relative to the XML's folder); every
    shape's ``bsdf`` reference names a material defined in the file; every ``itu-radio-material`` names an
    ITU material Sionna RT knows; at least one shape.
    """
    import xml.etree.ElementTree as ElementTree

    from sionna.rt.radio_materials.itu import ITU_MATERIALS_PROPERTIES

    try:
        root = ElementTree.parse(path).getroot()
    except ElementTree.ParseError as err:
        raise CkmsimError(f"Cannot load scene XML '{path}': not well-formed XML ({err})") from None
    materials = {}
    for bsdf in root.iter("bsdf"):
        materials[bsdf.get("id")] = bsdf
        if bsdf.get("type") == "itu-radio-material":
            kind = next((e.get("value") for e in bsdf.findall("string") if e.get("name") == "type"), None)
            if kind not in ITU_MATERIALS_PROPERTIES:
                raise CkmsimError(f"Scene XML '{path}': material <bsdf id=\"{bsdf.get('id')}\"> has unknown ITU "
                                  f"type '{kind}'; expected one of {', '.join(sorted(ITU_MATERIALS_PROPERTIES))}")
    shapes = list(root.iter("shape"))
    if not shapes:
        raise CkmsimError(f"Scene XML '{path}' has no geometry (no <shape> element)")
    for shape in shapes:
        label = f"<shape id=\"{shape.get('id')}\">"
        for string in shape.findall("string"):
            if string.get("name") == "filename" and not (path.parent / string.get("value", "")).is_file():
                raise CkmsimError(f"Scene XML '{path}': {label} refers to missing mesh file "
                                  f"'{path.parent / string.get('value', '')}'")
        for ref in shape.findall("ref"):
            if ref.get("id") not in materials:
                raise CkmsimError(f"Scene XML '{path}': {label} refers to undefined material '{ref.get('id')}'")


@dataclass(frozen=True)
class SceneBounds:
    """Axis-aligned bounding box of a scene's geometry [m]."""

    x_min: float
    x_max: float
    y_min: float
    y_max: float
    z_min: float
    z_max: float

    def contains_grid(self, grid: Grid) -> bool:
        """Whether the grid's footprint lies inside the scene's x-y extent."""
        x0, x1, y0, y1 = grid.bounds_m
        return self.x_min <= x0 and x1 <= self.x_max and self.y_min <= y0 and y1 <= self.y_max


def scene_bounds(scene) -> SceneBounds:
    """Bounding box of a loaded Sionna RT scene."""
    bbox = scene.mi_scene.bbox()
    lo = np.array(bbox.min, dtype=np.float64).ravel()
    hi = np.array(bbox.max, dtype=np.float64).ravel()
    return SceneBounds(float(lo[0]), float(hi[0]), float(lo[1]), float(hi[1]), float(lo[2]), float(hi[2]))


def check_grid_in_scene(scene, grid: Grid, scene_name: str) -> None:
    """Raise :class:`CkmsimError` if the grid's footprint leaves the scene's extent."""
    bounds = scene_bounds(scene)
    if not bounds.contains_grid(grid):
        x0, x1, y0, y1 = grid.bounds_m
        raise CkmsimError(
            f"Grid x in [{x0:.1f}, {x1:.1f}] m, y in [{y0:.1f}, {y1:.1f}] m falls outside scene '{scene_name}', "
            f"whose geometry spans x in [{bounds.x_min:.1f}, {bounds.x_max:.1f}] m, "
            f"y in [{bounds.y_min:.1f}, {bounds.y_max:.1f}] m")
