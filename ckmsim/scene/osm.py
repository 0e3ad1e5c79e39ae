"""Offline import of building footprints from OpenStreetMap XML (``.osm``) or GeoJSON into a scene folder.

Nothing is downloaded: the file is read as it is (``xml.etree.ElementTree`` for OSM, ``json`` for GeoJSON),
footprints are projected from WGS84 lon/lat to local metres, repaired where invalid, extruded to their height
and written by :func:`ckmsim.scene.writer.write_scene_folder`, so the result loads like any other ckmsim scene.

Local frame: a transverse Mercator projection centred on the centre of the footprints' lon/lat bounding box,
scale 1 at that centre, so x points east and y north in metres with distortion below 1e-5 over a few km.

Heights, per building: the ``height`` tag/property (``"12"``, ``"12 m"``, ``"12.5m"``), else
``building:levels`` x ``level_height_m``, else ``default_height_m``.
"""

from __future__ import annotations

import json
import re
import warnings
from dataclasses import dataclass
from pathlib import Path

from ckmsim.errors import CkmsimError
from ckmsim.scene.writer import Building, itu_material_covers, write_scene_folder

#: Smallest footprint kept [m^2]: anything smaller is a mapping slip, not a building a ray can hit.
MIN_FOOTPRINT_AREA_M2 = 1.0
#: Ground material of ``ground_material="auto"`` where Sionna's ITU table covers the frequency (1-10 GHz).
AUTO_GROUND = "medium_dry_ground"
#: Fallback of ``ground_material="auto"`` elsewhere (concrete is defined from 1 to 100 GHz): a paved city.
AUTO_GROUND_FALLBACK = "concrete"

_HEIGHT_RE = re.compile(r"^\s*([0-9]*\.?[0-9]+)\s*(m|metres?|meters?)?\s*$", re.IGNORECASE)


@dataclass(frozen=True)
class ImportReport:
    """What :func:`import_footprints` wrote.

    Attributes
    ----------
    xml_path : Path of the written ``scene.xml``
    num_buildings : buildings written (a footprint repaired into several polygons counts each polygon)
    num_repaired : invalid footprints repaired with ``shapely.make_valid``
    num_skipped : footprints dropped (unclosed or fewer than 3 distinct points, area below 1 m^2, no polygon)
    origin_lon_lat : (lon, lat) of the local frame's origin [deg, WGS84]
    """

    xml_path: Path
    num_buildings: int
    num_repaired: int
    num_skipped: int
    origin_lon_lat: tuple[float, float]


@dataclass
class _Footprint:
    """One footprint as read: lon/lat geometry (or None when unusable), tags and a label for messages."""

    geometry: object
    tags: dict
    label: str


def import_footprints(path, out_dir, default_height_m: float = 20.0, level_height_m: float = 3.0,
                      building_material: str = "concrete", ground_material: str = "auto",
                      frequency_hz: float = 28e9) -> ImportReport:
    """Import building footprints from a ``.osm`` or ``.geojson``/``.json`` file into a scene folder.

    OSM: closed ways tagged ``building=*`` and ``type=multipolygon`` relations tagged ``building=*`` (outer
    and inner member ways joined into rings; inner rings become holes). GeoJSON: a FeatureCollection of
    Polygon/MultiPolygon features in WGS84 lon/lat (RFC 7946), with ``height``/``building:levels`` properties.

    Input
    -----
    path : str or Path, the footprint file
    out_dir : str or Path, scene folder to write (see :func:`ckmsim.scene.writer.write_scene_folder`)
    default_height_m : height of a building without height or level tags [m]
    level_height_m : height of one storey, for ``building:levels`` [m]
    building_material : ITU material of walls and roofs
    ground_material : ITU material of the ground, or ``"auto"``: ``"medium_dry_ground"`` where Sionna's ITU
        table defines it at ``frequency_hz`` (only 1-10 GHz), else ``"concrete"`` (defined up to 100 GHz)
    frequency_hz : carrier frequency the scene is meant for [Hz]; only used by ``ground_material="auto"``

    Output
    ------
    report : ImportReport

    Raises :class:`CkmsimError` naming the file for a missing, unknown or malformed input, and warns once
    (``UserWarning``) with the counts when footprints were repaired or skipped.
    """
    path = Path(path)
    if not path.is_file():
        raise CkmsimError(f"Footprint file '{path}' does not exist")
    suffix = path.suffix.lower()
    if suffix == ".osm":
        footprints = _read_osm(path)
    elif suffix in (".geojson", ".json"):
        footprints = _read_geojson(path)
    else:
        raise CkmsimError(f"Footprint file '{path}': unknown extension '{path.suffix}'; "
                          f"expected .osm, .geojson or .json")

    usable = [f for f in footprints if f.geometry is not None]
    if not usable:
        raise CkmsimError(f"Footprint file '{path}' has no usable building footprint")
    origin = _origin_lon_lat(usable, path)
    project = _local_projection(origin)
    height_rule = (f"height tag, else building:levels x {level_height_m} m, else {default_height_m} m")

    buildings, num_repaired = [], 0
    num_skipped = len(footprints) - len(usable)
    for footprint in usable:
        polygons, repaired = _clean_polygons(_project(footprint.geometry, project))
        num_repaired += repaired
        if not polygons:
            num_skipped += 1
            continue
        height_m = _height_m(footprint.tags, default_height_m, level_height_m)
        buildings += [Building(polygon, height_m, building_material) for polygon in polygons]
    if not buildings:
        raise CkmsimError(f"Footprint file '{path}': every footprint was degenerate; nothing to write")
    if num_repaired or num_skipped:
        warnings.warn(f"Importing '{path}': repaired {num_repaired} invalid footprint(s), skipped {num_skipped} "
                      f"degenerate or unusable one(s)", UserWarning, stacklevel=2)

    ground = _ground_material(ground_material, frequency_hz)
    xml_path = write_scene_folder(buildings, out_dir, ground_material=ground, metadata={
        "source": str(path), "origin_lon_lat": list(origin), "num_repaired": num_repaired,
        "num_skipped": num_skipped, "height_rule": height_rule, "frequency_hz": float(frequency_hz)})
    return ImportReport(xml_path, len(buildings), num_repaired, num_skipped, origin)


def _ground_material(ground_material: str, frequency_hz: float) -> str:
    """Resolve ``"auto"``; any other name goes to the writer, which validates it."""
    if ground_material != "auto":
        return ground_material
    return AUTO_GROUND if itu_material_covers(AUTO_GROUND, frequency_hz) else AUTO_GROUND_FALLBACK


def parse_height_m(value) -> float | None:
    """A positive height in metres from a tag value (``12``, ``"12"``, ``"12 m"``, ``"12.5m"``), else None."""
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        height = float(value)
    else:
        match = _HEIGHT_RE.match(str(value)) if value is not None else None
        if match is None:
            return None
        height = float(match.group(1))
    return height if height > 0 else None


def _height_m(tags: dict, default_height_m: float, level_height_m: float) -> float:
    height = parse_height_m(tags.get("height"))
    if height is not None:
        return height
    levels = parse_height_m(tags.get("building:levels"))
    if levels is not None:
        return levels * level_height_m
    return float(default_height_m)


# ----------------------------------------------------------------------------------------------- readers
def _read_osm(path: Path) -> list[_Footprint]:
    """Building ways and multipolygon relations of an OSM XML file, as lon/lat geometries."""
    import xml.etree.ElementTree as ElementTree

    try:
        root = ElementTree.parse(path).getroot()
    except ElementTree.ParseError as err:
        raise CkmsimError(f"Cannot read OSM file '{path}': not well-formed XML ({err})") from None
    except OSError as err:
        raise CkmsimError(f"Cannot read OSM file '{path}': {err.strerror or err}") from None
    if root.tag != "osm":
        raise CkmsimError(f"OSM file '{path}': root element is <{root.tag}>, expected <osm>")

    nodes = {}
    for node in root.iter("node"):
        try:
            nodes[node.get("id")] = (float(node.get("lon")), float(node.get("lat")))
        except (TypeError, ValueError):
            raise CkmsimError(f"OSM file '{path}': node {node.get('id')} has no valid lon/lat") from None
    ways = {}
    for way in root.iter("way"):
        refs = [nd.get("ref") for nd in way.findall("nd")]
        missing = [ref for ref in refs if ref not in nodes]
        if missing:
            raise CkmsimError(f"OSM file '{path}': way {way.get('id')} references missing node {missing[0]}")
        ways[way.get("id")] = ([nodes[ref] for ref in refs], _tags(way))

    footprints = [_way_footprint(way_id, coords, tags) for way_id, (coords, tags) in ways.items()
                  if "building" in tags]
    for relation in root.iter("relation"):
        tags = _tags(relation)
        if tags.get("type") == "multipolygon" and "building" in tags:
            footprints.append(_relation_footprint(path, relation, tags, ways))
    return footprints


def _tags(element) -> dict:
    return {tag.get("k"): tag.get("v") for tag in element.findall("tag")}


def _way_footprint(way_id: str, coords: list, tags: dict) -> _Footprint:
    from shapely.geometry import Polygon

    label = f"way {way_id}"
    # An unclosed or too short way outlines no area: skipped and counted, as OSM data has such slips.
    if len(coords) < 4 or coords[0] != coords[-1] or len(set(coords)) < 3:
        return _Footprint(None, tags, label)
    return _Footprint(Polygon(coords), tags, label)


def _relation_footprint(path: Path, relation, tags: dict, ways: dict) -> _Footprint:
    """Join a multipolygon relation's member ways into rings: outer areas minus inner areas (holes)."""
    from shapely.geometry import LineString
    from shapely.ops import linemerge, polygonize, unary_union

    label = f"relation {relation.get('id')}"
    lines = {"outer": [], "inner": []}
    for member in relation.findall("member"):
        if member.get("type") != "way":
            continue
        role = member.get("role") or "outer"  # OSM treats an empty role as outer
        if role not in lines:
            continue
        if member.get("ref") not in ways:
            raise CkmsimError(f"OSM file '{path}': {label} references missing way {member.get('ref')}")
        coords = ways[member.get("ref")][0]
        if len(coords) >= 2:
            lines[role].append(LineString(coords))
    # Rings may be split over several member ways: merge the pieces end to end, then close them into faces.
    areas = {role: unary_union(list(polygonize(linemerge(parts)))) if parts else None
             for role, parts in lines.items()}
    if areas["outer"] is None or areas["outer"].is_empty:
        return _Footprint(None, tags, label)
    geometry = areas["outer"] if areas["inner"] is None else areas["outer"].difference(areas["inner"])
    return _Footprint(geometry, tags, label)


def _read_geojson(path: Path) -> list[_Footprint]:
    """Polygon and MultiPolygon features of a GeoJSON FeatureCollection; other geometries are skipped."""
    from shapely.geometry import shape

    try:
        data = json.loads(path.read_text())
    except (OSError, UnicodeDecodeError) as err:
        raise CkmsimError(f"Cannot read GeoJSON file '{path}': {err}") from None
    except json.JSONDecodeError as err:
        raise CkmsimError(f"Cannot read GeoJSON file '{path}': not valid JSON ({err})") from None
    if not isinstance(data, dict) or data.get("type") != "FeatureCollection" \
            or not isinstance(data.get("features"), list):
        raise CkmsimError(f"GeoJSON file '{path}' is not a FeatureCollection with a 'features' list")
    footprints = []
    for index, feature in enumerate(data["features"]):
        label = f"feature {index}"
        if not isinstance(feature, dict) or not isinstance(feature.get("geometry"), dict):
            raise CkmsimError(f"GeoJSON file '{path}': {label} has no geometry object")
        properties = feature.get("properties") or {}
        if feature["geometry"].get("type") not in ("Polygon", "MultiPolygon"):
            footprints.append(_Footprint(None, properties, label))
            continue
        try:
            geometry = shape(feature["geometry"])
        except Exception as err:  # shapely raises several types for bad coordinate arrays
            raise CkmsimError(f"GeoJSON file '{path}': {label} has malformed coordinates ({err})") from None
        footprints.append(_Footprint(geometry, properties, label))
    return footprints


# ------------------------------------------------------------------------------------ projection, repair
def _origin_lon_lat(footprints: list[_Footprint], path: Path) -> tuple[float, float]:
    """Centre of the footprints' lon/lat bounding box [deg]; checks that coordinates are WGS84 degrees."""
    import numpy as np

    # [num_footprints, 4]: (lon_min, lat_min, lon_max, lat_max)
    bounds = np.array([f.geometry.bounds for f in footprints], dtype=np.float64)
    lon0, lat0 = bounds[:, 0].min(), bounds[:, 1].min()
    lon1, lat1 = bounds[:, 2].max(), bounds[:, 3].max()
    if not (np.all(np.isfinite(bounds)) and -180 <= lon0 <= lon1 <= 180 and -90 <= lat0 <= lat1 <= 90):
        raise CkmsimError(f"Footprint file '{path}': coordinates span lon [{lon0}, {lon1}], lat [{lat0}, {lat1}]; "
                          f"expected WGS84 degrees")
    return (float(0.5 * (lon0 + lon1)), float(0.5 * (lat0 + lat1)))


def _local_projection(origin_lon_lat: tuple[float, float]):
    """``(lon, lat) [deg] -> (x east, y north) [m]`` in a transverse Mercator centred on the origin."""
    from pyproj import Transformer

    lon0, lat0 = origin_lon_lat
    local = f"+proj=tmerc +lat_0={lat0!r} +lon_0={lon0!r} +k=1 +x_0=0 +y_0=0 +datum=WGS84 +units=m"
    return Transformer.from_crs("EPSG:4326", local, always_xy=True).transform


def _project(geometry, transform):
    from shapely.ops import transform as shapely_transform

    return shapely_transform(transform, geometry)


def _clean_polygons(geometry) -> tuple[list, int]:
    """Valid polygons of at least ``MIN_FOOTPRINT_AREA_M2``, and 1 if the footprint needed repair else 0.

    ``make_valid`` splits a bow-tie into its two triangles: both are kept, as separate buildings.
    """
    import shapely
    from shapely.geometry.polygon import orient

    repaired = 0
    if not geometry.is_valid:
        geometry = shapely.make_valid(geometry)
        repaired = 1
    polygons = [part for part in _polygonal_parts(geometry)
                if len(set(part.exterior.coords)) >= 3 and part.area >= MIN_FOOTPRINT_AREA_M2]
    # Counter-clockwise exteriors, so that the extruded walls of every building face outwards alike.
    return [orient(p) for p in polygons], (repaired if polygons else 0)


def _polygonal_parts(geometry) -> list:
    """Polygons inside any geometry (a repair may return lines and points next to the polygons)."""
    if geometry.is_empty:
        return []
    if geometry.geom_type == "Polygon":
        return [geometry]
    if geometry.geom_type in ("MultiPolygon", "GeometryCollection"):
        return [p for part in geometry.geoms for p in _polygonal_parts(part)]
    return []
