"""Write a scene folder (Mitsuba XML + PLY meshes) that Sionna RT loads, from building footprints.

Every way into ckmsim that starts from footprints (OpenStreetMap, GeoJSON, procedural cities) ends here, so
all of them produce the same folder layout::

    DIR/scene.xml        Mitsuba 3 scene with ITU radio materials (Sionna RT's format)
    DIR/meshes/*.ply     one mesh per material (buildings merged) and the ground plane
    DIR/scene.json       provenance: source, counts, materials, bounds, heights, origin of the local frame

Coordinates are local metres: x east, y north, z up, ground at z = 0.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from xml.sax.saxutils import quoteattr

import numpy as np

from ckmsim.errors import CkmsimError

#: Wall/roof thickness written to each ITU radio material [m]: Sionna RT uses it for transmission.
MATERIAL_THICKNESS_M = 0.2
SCENE_XML = "scene.xml"
SCENE_JSON = "scene.json"


@dataclass(frozen=True)
class Building:
    """One extruded building.

    Attributes
    ----------
    footprint : shapely.geometry.Polygon
        Footprint in local metres (holes allowed), valid and of positive area.
    height_m : float
        Height of the flat roof above the ground [m].
    material : str
        ITU material name of walls and roof (e.g. ``"concrete"``, ``"brick"``, ``"glass"``).
    """

    footprint: object
    height_m: float
    material: str = "concrete"


def itu_material_names() -> list[str]:
    """ITU-R P.2040 material names Sionna RT knows."""
    from sionna.rt.radio_materials.itu import ITU_MATERIALS_PROPERTIES

    return sorted(ITU_MATERIALS_PROPERTIES)


def itu_material_covers(name: str, frequency_hz: float) -> bool:
    """Whether Sionna's ITU table defines material ``name`` at ``frequency_hz``."""
    from sionna.rt.radio_materials.itu import ITU_MATERIALS_PROPERTIES

    f_ghz = frequency_hz / 1e9
    return any(low <= f_ghz <= high for low, high in ITU_MATERIALS_PROPERTIES.get(name, {}))


def _check_material(name: str, role: str) -> None:
    known = itu_material_names()
    if name not in known:
        raise CkmsimError(f"Unknown ITU material '{name}' for {role}; expected one of {', '.join(known)}")


def _building_mesh(building: Building):
    """Closed triangle mesh of one extruded footprint (trimesh, earcut triangulation)."""
    import trimesh

    return trimesh.creation.extrude_polygon(building.footprint, float(building.height_m))


def _ground_mesh(bounds_xy: tuple[float, float, float, float]):
    """Two triangles covering ``(x_min, y_min, x_max, y_max)`` at z = 0, facing up."""
    import trimesh

    x0, y0, x1, y1 = bounds_xy
    vertices = np.array([[x0, y0, 0.0], [x1, y0, 0.0], [x1, y1, 0.0], [x0, y1, 0.0]])
    faces = np.array([[0, 1, 2], [0, 2, 3]])
    return trimesh.Trimesh(vertices=vertices, faces=faces, process=False)


def _scene_xml(shapes: list[tuple[str, str, str]], materials: list[str]) -> str:
    """Mitsuba XML text: ITU materials, then ``(shape id, ply path, material)`` shapes."""
    lines = ['<scene version="2.1.0">', ""]
    for material in materials:
        lines += [f'\t<bsdf type="itu-radio-material" id={quoteattr("mat-" + material)}>',
                  f'\t\t<string name="type" value={quoteattr(material)}/>',
                  f'\t\t<float name="thickness" value="{MATERIAL_THICKNESS_M}"/>',
                  "\t</bsdf>"]
    lines.append("")
    for shape_id, ply, material in shapes:
        lines += [f'\t<shape type="ply" id={quoteattr(shape_id)}>',
                  f'\t\t<string name="filename" value={quoteattr(ply)}/>',
                  '\t\t<boolean name="face_normals" value="true"/>',
                  f'\t\t<ref id={quoteattr("mat-" + material)} name="bsdf"/>',
                  "\t</shape>"]
    lines += ["</scene>", ""]
    return "\n".join(lines)


def write_scene_folder(buildings: list[Building], out_dir: str | Path, ground_material: str = "concrete",
                       ground_margin_m: float = 20.0, ground_bounds_m: tuple[float, float, float, float] | None = None,
                       metadata: dict | None = None) -> Path:
    """Write buildings and a ground plane as a Sionna RT scene folder; returns the XML path.

    Input
    -----
    buildings : list of Building
    out_dir : folder to create (existing files of the same names are overwritten)
    ground_material : ITU material of the ground plane
    ground_margin_m : how far the ground extends past the buildings' bounding box [m]
    ground_bounds_m : explicit ground extent ``(x_min, y_min, x_max, y_max)`` [m], overriding the margin
    metadata : extra provenance for ``scene.json``

    Output
    ------
    xml_path : Path of ``out_dir/scene.xml``
    """
    _check_material(ground_material, "the ground")
    for building in buildings:
        _check_material(building.material, "a building")
    if not buildings and ground_bounds_m is None:
        raise CkmsimError("A scene with no building needs ground_bounds_m to size its ground plane")
    out_dir = Path(out_dir)
    mesh_dir = out_dir / "meshes"
    try:
        mesh_dir.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise CkmsimError(f"Cannot create scene folder '{out_dir}': {err.strerror or err}") from None

    if ground_bounds_m is None:
        x0, y0, x1, y1 = np.array([b.footprint.bounds for b in buildings]).T
        ground_bounds_m = (x0.min() - ground_margin_m, y0.min() - ground_margin_m,
                           x1.max() + ground_margin_m, y1.max() + ground_margin_m)
    ground_bounds_m = tuple(float(v) for v in ground_bounds_m)

    import trimesh

    shapes = []
    by_material: dict[str, list] = {}
    for building in buildings:
        by_material.setdefault(building.material, []).append(_building_mesh(building))
    for material, meshes in sorted(by_material.items()):
        ply = f"meshes/buildings-{material}.ply"
        trimesh.util.concatenate(meshes).export(out_dir / ply)
        shapes.append((f"buildings-{material}", ply, material))
    _ground_mesh(ground_bounds_m).export(out_dir / "meshes/ground.ply")
    shapes.append(("ground", "meshes/ground.ply", ground_material))

    materials = sorted({m for _, _, m in shapes})
    xml_path = out_dir / SCENE_XML
    xml_path.write_text(_scene_xml(shapes, materials))
    heights = [float(b.height_m) for b in buildings]
    info = {
        "num_buildings": len(buildings),
        "materials": {"buildings": sorted(by_material), "ground": ground_material},
        "ground_bounds_m": list(ground_bounds_m),
        "height_m": {"min": min(heights), "max": max(heights), "mean": float(np.mean(heights))} if heights else None,
        "frame": "local metres: x east, y north, z up, ground at z = 0",
        **(metadata or {}),
    }
    (out_dir / SCENE_JSON).write_text(json.dumps(info, indent=2))
    return xml_path
