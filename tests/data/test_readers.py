"""RadioMapSeer and CKMImageNet readers on tiny fixture folders (16 x 16 PNGs made from known arrays)."""

import json

import numpy as np
import pytest
from PIL import Image

from ckmsim.data.readers import (
    CkmImageNetLayout,
    CkmImageNetReader,
    RadioMapSeerLayout,
    RadioMapSeerReader,
    read_gray_png,
)
from ckmsim.errors import CkmsimError
from ckmsim.maps.angles import angle_difference_deg
from ckmsim.maps.ckm import validate_ckm

SIZE = 16


def _save(path, gray):
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.asarray(gray, dtype=np.uint8), mode="L").save(path)


def _building_mask(rng):
    building = rng.uniform(size=(SIZE, SIZE)) < 0.25
    building[8, :] = False
    return building


# ------------------------------------------------------------------------------------------------ RadioMapSeer
@pytest.fixture
def radiomapseer(tmp_path, rng):
    """2 maps (3, 7) x 2 transmitters (0, 1) in the published layout; returns (root, truth)."""
    root = tmp_path / "RadioMapSeer"
    truth = {}
    for map_id in (3, 7):
        building = _building_mask(rng)
        _save(root / "png" / "buildings_complete" / f"{map_id}.png", np.where(building, 255, 0))
        positions = []
        for tx_id in (0, 1):
            # Row 8 is open ground; a column other than 8 makes a swapped [row, col] order detectable
            row, col = 8, int(rng.choice([c for c in range(SIZE) if c != 8]))
            positions.append([col, row])
            gray = np.where(building, 0, rng.integers(1, 256, size=(SIZE, SIZE)))
            _save(root / "gain" / "DPM" / f"{map_id}_{tx_id}.png", gray)
            antenna = np.zeros((SIZE, SIZE))
            antenna[row, col] = 255
            _save(root / "png" / "antennas" / f"{map_id}_{tx_id}.png", antenna)
            truth[(map_id, tx_id)] = {"gray": gray, "building": building, "cell": (row, col)}
        (root / "antenna").mkdir(exist_ok=True)
        (root / "antenna" / f"{map_id}.json").write_text(json.dumps(positions))
    return root, truth


def test_radiomapseer_reader_recovers_the_known_maps(radiomapseer):
    root, truth = radiomapseer
    reader = RadioMapSeerReader(root, simulation="DPM", layout=RadioMapSeerLayout(image_size=SIZE))
    assert len(reader) == 4 and reader.samples == [(3, 0), (3, 1), (7, 0), (7, 1)]
    for (map_id, tx_id), ckm in zip(reader.samples, reader):
        known = truth[(map_id, tx_id)]
        validate_ckm(ckm)
        np.testing.assert_array_equal(ckm["building"].values, known["building"])
        expected_db = np.where(known["building"], np.nan, -147.0 + 100.0 * known["gray"] / 255.0)
        np.testing.assert_allclose(ckm["gain_db"].values, expected_db, atol=1e-4)
        row, col = known["cell"]
        assert ckm.attrs["bs_position_m"] == [col + 0.5, row + 0.5, 1.5]
        assert ckm.attrs["gain_floor_db"] == -147.0 and ckm.attrs["frequency_hz"] == 5.9e9
        assert ckm.attrs["source"]["map"] == map_id and ckm.attrs["source"]["transmitter"] == tx_id
        np.testing.assert_allclose(ckm["x"].values, np.arange(SIZE) + 0.5)


def test_radiomapseer_reader_filters_and_reads_lazily(radiomapseer):
    root, _ = radiomapseer
    reader = RadioMapSeerReader(root, maps=[7], layout=RadioMapSeerLayout(image_size=SIZE))
    assert reader.samples == [(7, 0), (7, 1)]
    # Images are read when a sample is reached, not when the reader is made
    (root / "gain" / "DPM" / "7_1.png").unlink()
    ckms = iter(reader)
    assert next(ckms).attrs["source"]["transmitter"] == 0
    with pytest.raises(CkmsimError, match="7_1.png"):
        next(ckms)


def test_radiomapseer_reader_errors_name_the_file_or_folder(radiomapseer):
    root, _ = radiomapseer
    with pytest.raises(CkmsimError, match="gain/IRT2"):
        RadioMapSeerReader(root, simulation="IRT2")
    with pytest.raises(CkmsimError, match="No RadioMapSeer gain file"):
        RadioMapSeerReader(root, maps=[99])
    with pytest.raises(CkmsimError, match=r"3_0\.png' is 16 x 16 .* expected 256 x 256"):
        RadioMapSeerReader(root).read(3, 0)
    (root / "png" / "buildings_complete" / "3.png").unlink()
    with pytest.raises(CkmsimError, match="Missing image file .*buildings_complete/3.png"):
        RadioMapSeerReader(root, layout=RadioMapSeerLayout(image_size=SIZE)).read(3, 0)


def test_radiomapseer_reader_checks_conventions(radiomapseer):
    root, _ = radiomapseer
    swapped = RadioMapSeerReader(root, layout=RadioMapSeerLayout(image_size=SIZE, antenna_json_order="yx"))
    with pytest.raises(CkmsimError, match="antenna_json_order"):
        swapped.read(3, 0)
    inverted = RadioMapSeerReader(root, layout=RadioMapSeerLayout(image_size=SIZE, building_value=0))
    with pytest.raises(CkmsimError, match="polarity"):
        inverted.read(3, 0)
    with pytest.raises(CkmsimError, match="antenna_json_order"):
        RadioMapSeerLayout(antenna_json_order="rc")


def test_radiomapseer_positions_from_png_alone(radiomapseer):
    root, truth = radiomapseer
    reader = RadioMapSeerReader(root, layout=RadioMapSeerLayout(image_size=SIZE, antenna_json_dir=None))
    row, col = truth[(7, 1)]["cell"]
    assert reader.read(7, 1).attrs["bs_position_m"] == [col + 0.5, row + 0.5, 1.5]


def test_read_gray_png_modes(tmp_path):
    gray = np.arange(SIZE * SIZE).reshape(SIZE, SIZE) % 256
    Image.fromarray(np.stack([gray] * 3, axis=-1).astype(np.uint8), mode="RGB").save(tmp_path / "gray_rgb.png")
    np.testing.assert_array_equal(read_gray_png(tmp_path / "gray_rgb.png"), gray)
    colour = np.stack([gray, gray, 255 - gray], axis=-1).astype(np.uint8)
    Image.fromarray(colour, mode="RGB").save(tmp_path / "colour.png")
    with pytest.raises(CkmsimError, match="colour image"):
        read_gray_png(tmp_path / "colour.png")
    Image.fromarray(gray.astype(np.uint16)).save(tmp_path / "wide.png")
    with pytest.raises(CkmsimError, match="mode"):
        read_gray_png(tmp_path / "wide.png")
    (tmp_path / "broken.png").write_bytes(b"not a png")
    with pytest.raises(CkmsimError, match="not a readable image"):
        read_gray_png(tmp_path / "broken.png")


# ------------------------------------------------------------------------------------------------ CKMImageNet
ANGLE_TEMPLATE = "{city}_AoD/{city}_AoD_BS{bs}/graph_{area}.png"


@pytest.fixture
def ckmimagenet(tmp_path, rng):
    """BS 2 and BS 10 of 'Testville', subareas 5 and 28 each, gain + angle images; returns (root, truth)."""
    root = tmp_path / "Testville"
    truth = {}
    for bs in (10, 2):
        for area in (28, 5):
            building = _building_mask(rng)
            gray = np.where(building, 0, rng.integers(1, 250, size=(SIZE, SIZE)))
            peak = (8, int(rng.integers(0, SIZE)))  # on the open row 8
            gray[peak] = 255
            angle_deg = rng.uniform(-180.0, 180.0, size=(SIZE, SIZE))
            angle_gray = np.where(building, 0, np.rint((angle_deg + 200.0) / 380.0 * 255.0))
            _save(root / "Testville_ch_gain" / f"Testville_ch_gain_BS{bs}" / f"graph_{area}.png", gray)
            _save(root / "Testville_AoD" / f"Testville_AoD_BS{bs}" / f"graph_{area}.png", angle_gray)
            truth[(str(bs), str(area))] = {"gray": gray, "building": building, "angle": angle_deg, "peak": peak}
    return root, truth


def test_ckmimagenet_reader_recovers_gain_buildings_and_bs(ckmimagenet):
    root, truth = ckmimagenet
    reader = CkmImageNetReader(root, city="Testville", image_size=SIZE)
    # numeric-aware order: BS 2 before BS 10, subarea 5 before 28
    assert [(s["bs"], s["area"]) for s in reader.samples] == [("2", "5"), ("2", "28"), ("10", "5"), ("10", "28")]
    for sample, ckm in zip(reader.samples, reader):
        known = truth[(sample["bs"], sample["area"])]
        validate_ckm(ckm)
        # No building image, no angle template: buildings are the gain pixels at 0 (-250 dB)
        np.testing.assert_array_equal(ckm["building"].values, known["building"])
        expected_db = np.where(known["building"], np.nan, -250.0 + 200.0 * known["gray"] / 255.0)
        np.testing.assert_allclose(ckm["gain_db"].values, expected_db, atol=1e-4)
        row, col = known["peak"]
        assert ckm.attrs["bs_position_m"] == [2.0 * col + 1.0, 2.0 * row + 1.0, 10.0]
        assert ckm.attrs["source"]["bs"] == sample["bs"] and ckm.attrs["frequency_hz"] == 28e9


def test_ckmimagenet_reader_decodes_angles_and_their_building_code(ckmimagenet):
    root, truth = ckmimagenet
    layout = CkmImageNetLayout(angles={"aoa_az_deg": ANGLE_TEMPLATE})
    ckm = CkmImageNetReader(root, city="Testville", layout=layout, bs_cell_rule=None).read({"bs": "10", "area": "5"})
    known = truth[("10", "5")]
    assert "bs_position_m" not in ckm.attrs
    np.testing.assert_array_equal(ckm["building"].values, known["building"])
    az = ckm["aoa_az_deg"].sel(path=0).values
    np.testing.assert_array_equal(np.isnan(az), known["building"])
    error = np.abs(angle_difference_deg(az[~known["building"]], known["angle"][~known["building"]]))
    assert error.max() <= 0.5 * 380.0 / 255.0 + 1e-4


def test_ckmimagenet_reader_errors(ckmimagenet):
    root, _ = ckmimagenet
    with pytest.raises(CkmsimError, match="Missing CKMImageNet gain folder"):
        CkmImageNetReader(root, city="Nowhere")
    with pytest.raises(CkmsimError, match="expected 32 x 32"):
        CkmImageNetReader(root, city="Testville", image_size=32).read({"bs": "2", "area": "5"})
    layout = CkmImageNetLayout(angles={"aoa_az_deg": "{city}_AoD/BS{bs}_{tile}.png"})
    with pytest.raises(CkmsimError, match="field 'tile'"):
        CkmImageNetReader(root, city="Testville", layout=layout).read({"bs": "2", "area": "5"})
    (root / "Testville_AoD" / "Testville_AoD_BS2" / "graph_28.png").unlink()
    layout = CkmImageNetLayout(angles={"aoa_az_deg": ANGLE_TEMPLATE})
    with pytest.raises(CkmsimError, match="Missing image file .*graph_28.png"):
        CkmImageNetReader(root, city="Testville", layout=layout).read({"bs": "2", "area": "28"})
    with pytest.raises(CkmsimError, match="angles keys"):
        CkmImageNetLayout(angles={"toa_s": ANGLE_TEMPLATE})


# ------------------------------------------------------------------------------------------------ import to a store
def test_imported_radiomapseer_store_round_trips_and_feeds_the_pipeline(radiomapseer, tmp_path):
    from ckmsim.cli import main
    from ckmsim.data.pipeline import GainEncoder, pair_generator
    from ckmsim.data.store import DatasetStore
    from ckmsim.maps.degrade import Degradation, Subsample

    root, truth = radiomapseer
    out = tmp_path / "store"
    assert main(["dataset", "import", "radiomapseer", str(root), "--out", str(out), "--image-size", str(SIZE),
                 "--val-fraction", "0", "--test-fraction", "0", "--quiet"]) == 0
    store = DatasetStore.open(out)
    reader = RadioMapSeerReader(root, layout=RadioMapSeerLayout(image_size=SIZE))
    assert len(store) == len(reader) == 4
    for index, key in enumerate(reader.samples):
        ckm, expected = store.ckm(index), reader.read(*key)
        np.testing.assert_array_equal(ckm["building"].values, expected["building"].values)
        np.testing.assert_allclose(ckm["gain_db"].values, expected["gain_db"].values, equal_nan=True)
        assert ckm.attrs["bs_position_m"] == expected.attrs["bs_position_m"]
        assert ckm.attrs["gain_floor_db"] == expected.attrs["gain_floor_db"]
    x, y = next(pair_generator(store, Degradation([Subsample(2)]), GainEncoder(), split="train"))
    assert x.shape == (SIZE, SIZE, 3) and y.shape == (SIZE, SIZE, 1)
    # Re-running the import resumes (nothing to add) instead of duplicating samples.
    assert main(["dataset", "import", "radiomapseer", str(root), "--out", str(out), "--image-size", str(SIZE),
                 "--val-fraction", "0", "--test-fraction", "0", "--quiet"]) == 0
    assert len(DatasetStore.open(out)) == 4


def test_split_by_area_keeps_every_area_in_one_split():
    from ckmsim.data.importer import split_areas

    areas = [f"map{m}" for m in range(10) for _ in range(8)]
    splits = split_areas(areas, val_fraction=0.2, test_fraction=0.1, seed=3)
    assert sorted(splits) == sorted(set(areas))
    assert sorted(splits.values()).count("val") == 2 and sorted(splits.values()).count("test") == 1
    assert split_areas(areas, 0.2, 0.1, seed=3) == splits
    assert split_areas(areas, 0.2, 0.1, seed=4) != splits
    with pytest.raises(CkmsimError, match="leave areas for training"):
        split_areas(areas, 0.6, 0.4, seed=0)
