"""Offline OSM / GeoJSON import: heights, holes, repairs, materials, errors, and a building's radio shadow."""

import ckmsim  # noqa: F401  (Mitsuba before TensorFlow)

import json

import numpy as np
import pytest
from pyproj import Transformer
from shapely.geometry import Point, Polygon

from ckmsim.errors import CkmsimError
from ckmsim.maps.grid import Grid
from ckmsim.scene.geometry import building_mask, surface_height_m
from ckmsim.scene.load import load_scene
from ckmsim.scene.osm import import_footprints, parse_height_m

#: The test draws footprints in metres around this point and writes them as lon/lat.
LON0, LAT0 = 11.57, 48.14
_TMERC = f"+proj=tmerc +lat_0={LAT0} +lon_0={LON0} +k=1 +x_0=0 +y_0=0 +datum=WGS84 +units=m"
_TO_LONLAT = Transformer.from_crs(_TMERC, "EPSG:4326", always_xy=True)


def _lonlat(x, y):
    return _TO_LONLAT.transform(x, y)


def _square(x0, y0, x1, y1):
    return [(x0, y0), (x1, y0), (x1, y1), (x0, y1), (x0, y0)]


def _offset_m(report):
    """Where the test's (0, 0) lands in the imported scene's frame [m] (frames differ by a shift only)."""
    lon0, lat0 = report.origin_lon_lat
    local = f"+proj=tmerc +lat_0={lat0!r} +lon_0={lon0!r} +k=1 +x_0=0 +y_0=0 +datum=WGS84 +units=m"
    return np.array(Transformer.from_crs("EPSG:4326", local, always_xy=True).transform(LON0, LAT0))


class _OsmWriter:
    """Builds a tiny OSM XML document from rings in test metres."""

    def __init__(self):
        self.nodes, self.elements, self.next_id = [], [], 1

    def _id(self):
        self.next_id += 1
        return self.next_id

    def _way_xml(self, ring, tags, closed=True):
        ids = []
        for x, y in (ring[:-1] if closed else ring):
            ids.append(self._id())
            lon, lat = _lonlat(x, y)
            self.nodes.append(f'<node id="{ids[-1]}" lat="{lat!r}" lon="{lon!r}"/>')
        if closed:
            ids.append(ids[0])
        way_id = self._id()
        body = "".join(f'<nd ref="{i}"/>' for i in ids) + "".join(f'<tag k="{k}" v="{v}"/>' for k, v in tags.items())
        self.elements.append(f'<way id="{way_id}">{body}</way>')
        return way_id

    def way(self, ring, closed=True, **tags):
        return self._way_xml(ring, {"building": "yes", **tags}, closed)

    def relation(self, outer, inner, **tags):
        members = [("outer", self._way_xml(outer, {})), ("inner", self._way_xml(inner, {}))]
        body = "".join(f'<member type="way" ref="{ref}" role="{role}"/>' for role, ref in members)
        body += "".join(f'<tag k="{k}" v="{v}"/>' for k, v in
                        {"type": "multipolygon", "building": "yes", **tags}.items())
        self.elements.append(f'<relation id="{self._id()}">{body}</relation>')

    def write(self, path):
        path.write_text('<?xml version="1.0"?>\n<osm version="0.6">\n' + "\n".join(self.nodes + self.elements)
                        + "\n</osm>\n")
        return path


def _check_heights(report, footprints, expected_m, holes=()):
    """Heights and building mask on a 2 m grid whose cell centres sit at odd metres (edges at even ones)."""
    scene = load_scene(str(report.xml_path))
    dx, dy = _offset_m(report)
    grid = Grid(center_x_m=19.0 + dx, center_y_m=19.0 + dy, num_x=21, num_y=21, cell_size_m=2.0)
    height = surface_height_m(scene, grid)
    mask = building_mask(scene, grid)
    x, y = np.meshgrid(grid.x_m - dx, grid.y_m - dy)

    expected = np.zeros(grid.shape)
    for polygon, height_m in zip(footprints, expected_m):
        inside = np.vectorize(lambda a, b: polygon.contains(Point(a, b)))(x, y)
        expected[inside] = height_m
    # Cells within 0.5 m of an edge could fall either side after projection: judge only the clear ones.
    clear = np.vectorize(lambda a, b: min(p.exterior.distance(Point(a, b)) for p in footprints) > 0.5)(x, y)
    np.testing.assert_allclose(height[clear], expected[clear], atol=1e-2)
    np.testing.assert_array_equal(mask[clear], expected[clear] > grid.height_m)
    for hx, hy in holes:
        j, i = np.argmin(np.abs(grid.x_m - dx - hx)), np.argmin(np.abs(grid.y_m - dy - hy))
        assert abs(height[i, j]) < 1e-2 and not mask[i, j]
    return scene


def test_osm_heights_holes_repair_and_skip(tmp_path):
    osm = _OsmWriter()
    osm.way(_square(0, 0, 10, 10), height="15")
    osm.way(_square(14, 0, 24, 10), **{"building:levels": "4"})
    osm.way(_square(28, 0, 38, 10))
    osm.relation(_square(0, 16, 20, 36), _square(6, 22, 14, 30), height="9 m")
    bow_tie = [(28, 16), (38, 26), (38, 16), (28, 26), (28, 16)]
    osm.way(bow_tie, height="6.5m")
    osm.way([(2, 12), (8, 12)], closed=False)  # two nodes: no area
    with pytest.warns(UserWarning, match=r"repaired 1 invalid footprint\(s\), skipped 1"):
        report = import_footprints(osm.write(tmp_path / "city.osm"), tmp_path / "scene")
    assert (report.num_buildings, report.num_repaired, report.num_skipped) == (6, 1, 1)
    assert report.origin_lon_lat == pytest.approx(_lonlat(19.0, 18.0), abs=1e-6)

    courtyard = Polygon(_square(0, 16, 20, 36), [_square(6, 22, 14, 30)])
    triangles = [Polygon([(28, 16), (33, 21), (28, 26)]), Polygon([(38, 16), (33, 21), (38, 26)])]
    footprints = [Polygon(_square(0, 0, 10, 10)), Polygon(_square(14, 0, 24, 10)), Polygon(_square(28, 0, 38, 10)),
                  courtyard, *triangles]
    holes = [(9.0, 25.0)]
    _check_heights(report, footprints + [Polygon(_square(6, 22, 14, 30))], [15, 12, 20, 9, 6.5, 6.5, 0], holes)
    info = json.loads((tmp_path / "scene" / "scene.json").read_text())
    assert info["num_repaired"] == 1 and info["num_skipped"] == 1 and info["source"].endswith("city.osm")


def test_geojson_heights_and_materials(tmp_path):
    def lonlat_ring(ring):
        return [list(_lonlat(x, y)) for x, y in ring]

    features = [
        {"type": "Feature", "properties": {"height": 10},
         "geometry": {"type": "Polygon", "coordinates": [lonlat_ring(_square(0, 0, 10, 10))]}},
        {"type": "Feature", "properties": {"building:levels": 2},
         "geometry": {"type": "MultiPolygon", "coordinates": [[lonlat_ring(_square(20, 0, 30, 10))],
                                                              [lonlat_ring(_square(20, 20, 30, 30))]]}},
    ]
    path = tmp_path / "city.geojson"
    path.write_text(json.dumps({"type": "FeatureCollection", "features": features}))
    report = import_footprints(path, tmp_path / "scene", building_material="brick", frequency_hz=28e9)
    assert (report.num_buildings, report.num_repaired, report.num_skipped) == (3, 0, 0)
    footprints = [Polygon(_square(0, 0, 10, 10)), Polygon(_square(20, 0, 30, 10)), Polygon(_square(20, 20, 30, 30))]
    scene = _check_heights(report, footprints, [10, 6, 6])
    # Sionna drops the "mat-" id prefix
    materials = {name: obj.radio_material.name for name, obj in scene.objects.items()}
    assert set(materials.values()) == {"brick", "concrete"}
    assert [m for name, m in materials.items() if "ground" in name] == ["concrete"]


@pytest.mark.parametrize("frequency_hz, ground", [(28e9, "concrete"), (3.5e9, "medium_dry_ground")])
def test_auto_ground_material(tmp_path, frequency_hz, ground):
    path = _OsmWriter()
    path.way(_square(0, 0, 10, 10))
    import_footprints(path.write(tmp_path / "a.osm"), tmp_path / "scene", frequency_hz=frequency_hz)
    assert json.loads((tmp_path / "scene" / "scene.json").read_text())["materials"]["ground"] == ground


def test_parse_height():
    assert [parse_height_m(v) for v in ("12", "12 m", "12.5m", 7, "tall", "-3", None)] == \
           [12.0, 12.0, 12.5, 7.0, None, None, None]


def test_clear_errors(tmp_path):
    with pytest.raises(CkmsimError, match="'.*nothing.osm' does not exist"):
        import_footprints(tmp_path / "nothing.osm", tmp_path / "s")
    (tmp_path / "city.shp").write_text("x")
    with pytest.raises(CkmsimError, match=r"city.shp': unknown extension '.shp'"):
        import_footprints(tmp_path / "city.shp", tmp_path / "s")
    (tmp_path / "bad.osm").write_text("<osm><node id='1'</osm>")
    with pytest.raises(CkmsimError, match=r"bad.osm': not well-formed XML"):
        import_footprints(tmp_path / "bad.osm", tmp_path / "s")
    (tmp_path / "hole.osm").write_text('<osm><node id="1" lat="48.14" lon="11.57"/><node id="2" lat="48.1401" '
                                       'lon="11.57"/><way id="77"><nd ref="1"/><nd ref="2"/><nd ref="3"/>'
                                       '<nd ref="1"/><tag k="building" v="yes"/></way></osm>')
    with pytest.raises(CkmsimError, match=r"hole.osm': way 77 references missing node 3"):
        import_footprints(tmp_path / "hole.osm", tmp_path / "s")
    (tmp_path / "bad.geojson").write_text("{not json")
    with pytest.raises(CkmsimError, match=r"bad.geojson': not valid JSON"):
        import_footprints(tmp_path / "bad.geojson", tmp_path / "s")


def test_building_casts_radio_shadow(tmp_path):
    """A 40 m tower between a low BS and a patch of street: the patch loses > 10 dB against no tower."""
    from ckmsim.raytrace.gain_map import gain_map_db
    from ckmsim.raytrace.scene_setup import place_base_station
    from ckmsim.raytrace.settings import RayTracingSettings

    settings = RayTracingSettings(radio_map_samples=10**6, max_depth=1, diffraction=False, edge_diffraction=False)
    gains = []
    for with_tower in (True, False):
        osm = _OsmWriter()
        # Two huts fix the ground extent (and the same origin) in both scenes.
        osm.way(_square(-64, -44, -60, -40), height="3")
        osm.way(_square(60, 40, 64, 44), height="3")
        if with_tower:
            osm.way(_square(-10, -10, 10, 10), height="40")
        report = import_footprints(osm.write(tmp_path / f"t{with_tower}.osm"), tmp_path / f"s{with_tower}")
        dx, dy = _offset_m(report)
        scene = load_scene(str(report.xml_path))
        place_base_station(scene, (-40.0 + dx, dy, 5.0), settings)
        # 8 x 4 cells of 2 m straight behind the tower, seen from the BS
        grid = Grid(center_x_m=30.0 + dx, center_y_m=dy, num_x=8, num_y=4, cell_size_m=2.0)
        gains.append(gain_map_db(scene, grid, settings))
    shadowed, open_street = gains
    assert open_street.mean() - shadowed.mean() > 10.0
