"""Rebuild the scenes ckmsim ships: `python scenes/make_scenes.py` (from the repository root).

- ``city-s0``, ``city-s1``, ``city-s2``: procedural cities, ``ckmsim.scene.procedural`` with the default
  ``CityConfig`` (256 m x 256 m) and seeds 0, 1, 2.
- ``crossroads-osm``: an OpenStreetMap XML extract authored by the ckmsim project (``crossroads.osm``, written
  by :func:`write_crossroads_osm` below: a fictitious crossroads placed near lon 11.575, lat 48.137, so it
  carries no third-party map data), imported with ``ckmsim.scene.osm.import_footprints`` at 28 GHz. It
  exercises the importer's rules: ``height`` tags, ``building:levels``, the default height, and a
  multipolygon relation with a courtyard.
"""

import os
from pathlib import Path

import ckmsim  # noqa: F401  (Mitsuba before TensorFlow)
from ckmsim.scene.osm import import_footprints
from ckmsim.scene.procedural import CityConfig, write_city

HERE = Path(__file__).resolve().parent
LON0, LAT0 = 11.575, 48.137
M_PER_DEG_LAT = 111_320.0
M_PER_DEG_LON = 111_320.0 * 0.6678  # cos(48.137 deg)

# (name, corners in local metres around the crossroads, tags); streets are 20 m wide along x = 0 and y = 0
BLOCKS = [
    ("nw", [(-70, 10), (-10, 10), (-10, 60), (-70, 60)], {"height": "24"}),
    ("ne", [(10, 10), (45, 10), (45, 40), (10, 40)], {"building:levels": "6"}),
    ("ne2", [(50, 10), (80, 10), (80, 55), (50, 55)], {}),
    ("sw", [(-60, -60), (-10, -60), (-10, -12), (-60, -12)], {"height": "31 m"}),
    ("se-tower", [(15, -35), (35, -35), (35, -15), (15, -15)], {"height": "55"}),
]
COURTYARD_OUTER = [(40, -75), (85, -75), (85, -25), (40, -25)]
COURTYARD_INNER = [(52, -63), (73, -63), (73, -37), (52, -37)]


def _lon_lat(x_m, y_m):
    return LON0 + x_m / M_PER_DEG_LON, LAT0 + y_m / M_PER_DEG_LAT


def write_crossroads_osm(path: Path) -> None:
    """Write the project's own tiny OSM XML file."""
    nodes, ways, next_id = [], [], [1]

    def ring(corners):
        ids = []
        for x, y in corners:
            lon, lat = _lon_lat(x, y)
            nodes.append(f'  <node id="{next_id[0]}" lon="{lon:.7f}" lat="{lat:.7f}"/>')
            ids.append(next_id[0])
            next_id[0] += 1
        return ids + ids[:1]

    for index, (name, corners, tags) in enumerate(BLOCKS, start=1):
        refs = "".join(f'<nd ref="{r}"/>' for r in ring(corners))
        tag_xml = "".join(f'<tag k="{k}" v="{v}"/>' for k, v in {"building": "yes", "name": name, **tags}.items())
        ways.append(f'  <way id="{100 + index}">{refs}{tag_xml}</way>')
    for way_id, corners in ((201, COURTYARD_OUTER), (202, COURTYARD_INNER)):
        refs = "".join(f'<nd ref="{r}"/>' for r in ring(corners))
        ways.append(f'  <way id="{way_id}">{refs}</way>')
    relation = ('  <relation id="301"><member type="way" ref="201" role="outer"/>'
                '<member type="way" ref="202" role="inner"/><tag k="type" v="multipolygon"/>'
                '<tag k="building" v="yes"/><tag k="building:levels" v="5"/></relation>')
    path.write_text('<?xml version="1.0" encoding="UTF-8"?>\n<osm version="0.6" generator="ckmsim scenes/make_scenes.py">\n'
                    + "\n".join(nodes + ways + [relation]) + "\n</osm>\n")


def main() -> None:
    for seed in (0, 1, 2):
        write_city(CityConfig(), seed, HERE / f"city-s{seed}")
    write_crossroads_osm(HERE / "crossroads.osm")
    # A path relative to scenes/ keeps the machine's folders out of the provenance in scene.json
    os.chdir(HERE)
    import_footprints("crossroads.osm", "crossroads-osm", frequency_hz=28e9)


if __name__ == "__main__":
    main()
