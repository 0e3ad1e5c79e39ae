"""Pixel mappings by hand: end points, clipping, building codes, inverses and 8-bit round trips."""

import numpy as np
import pytest

from ckmsim.errors import CkmsimError
from ckmsim.maps.angles import angle_difference_deg
from ckmsim.maps.pixels import (
    CKMIMAGENET_GAIN_RANGE_DB,
    RADIOMAPSEER_GAIN_RANGE_DB,
    angle_deg_to_pixel,
    angle_pixel_is_building,
    gain_db_to_pixel,
    pixel_to_angle_deg,
    pixel_to_gain_db,
    pixel_to_uint8,
    radiomapseer_gain_db_to_pixel,
    radiomapseer_pixel_to_gain_db,
    uint8_to_pixel,
)


# ------------------------------------------------------------------------------------------- CKMImageNet gain
def test_ckmimagenet_gain_end_points_clipping_nan_and_buildings():
    gain_db = np.array([-250.0, -50.0, -150.0, -300.0, 0.0, np.nan, -100.0])
    building = np.array([False, False, False, False, False, False, True])
    pixel = gain_db_to_pixel(gain_db, building)
    np.testing.assert_array_equal(pixel, [0.0, 1.0, 0.5, 0.0, 1.0, 0.0, 0.0])
    assert CKMIMAGENET_GAIN_RANGE_DB == (-250.0, -50.0)


def test_ckmimagenet_gain_inverse_is_eq_27_and_round_trips(rng):
    # CKMDiff eq. (27): g = 200 x - 250
    np.testing.assert_allclose(pixel_to_gain_db(np.array([0.0, 0.25, 1.0])), [-250.0, -200.0, -50.0])
    gain_db = rng.uniform(-250.0, -50.0, size=(8, 8))
    np.testing.assert_allclose(pixel_to_gain_db(gain_db_to_pixel(gain_db)), gain_db, atol=1e-9)
    through_png = pixel_to_gain_db(uint8_to_pixel(pixel_to_uint8(gain_db_to_pixel(gain_db))))
    assert np.max(np.abs(through_png - gain_db)) <= 0.5 * 200.0 / 255.0 + 1e-9


def test_gain_range_must_be_ordered():
    with pytest.raises(CkmsimError, match="gain_range_db"):
        gain_db_to_pixel(np.zeros(2), gain_range_db=(-50.0, -250.0))


# ------------------------------------------------------------------------------------------- RadioMapSeer gain
def test_radiomapseer_gain_end_points_threshold_and_eq_28():
    gain_db = np.array([-147.0, -47.0, -97.0, -186.0, -150.0, -40.0])
    np.testing.assert_array_equal(radiomapseer_gain_db_to_pixel(gain_db), [0.0, 1.0, 0.5, 0.0, 0.0, 1.0])
    # CKMDiff eq. (28): g = 100 x - 147
    np.testing.assert_allclose(radiomapseer_pixel_to_gain_db(np.array([0.0, 0.3, 1.0])), [-147.0, -117.0, -47.0])
    assert RADIOMAPSEER_GAIN_RANGE_DB == (-147.0, -47.0)
    assert radiomapseer_gain_db_to_pixel(np.array([-60.0]), building=np.array([True]))[0] == 0.0


def test_radiomapseer_gray_levels_round_trip_exactly():
    gray = np.arange(256, dtype=np.uint8)
    gain_db = radiomapseer_pixel_to_gain_db(uint8_to_pixel(gray))
    assert gain_db[0] == -147.0 and gain_db[-1] == -47.0
    np.testing.assert_array_equal(pixel_to_uint8(radiomapseer_gain_db_to_pixel(gain_db)), gray)


# ------------------------------------------------------------------------------------------- CKMImageNet angle
def test_angle_end_points_building_code_nan_and_wrap():
    angle_deg = np.array([180.0, -180.0, 0.0, 90.0, np.nan, 45.0, 190.0])
    building = np.array([False, False, False, False, False, True, False])
    pixel = angle_deg_to_pixel(angle_deg, building)
    # (angle + 200) / 380; -180 wraps to 180; 190 wraps to -170
    expected = np.array([380.0, 380.0, 200.0, 290.0, 0.0, 0.0, 30.0]) / 380.0
    np.testing.assert_allclose(pixel, expected, atol=1e-12)


def test_angle_inverse_marks_building_code_as_nan():
    pixel = np.array([0.0, 20.0 / 380.0, 200.0 / 380.0, 1.0, 5.0 / 380.0])
    angle = pixel_to_angle_deg(pixel)
    np.testing.assert_allclose(angle[1:4], [-180.0, 0.0, 180.0], atol=1e-9)
    assert np.isnan(angle[0]) and np.isnan(angle[4])
    np.testing.assert_array_equal(angle_pixel_is_building(pixel), [True, False, False, False, True])
    # an image method's output at a cell known to be open decodes like any pixel: the code reads as -180 deg
    np.testing.assert_allclose(pixel_to_angle_deg(pixel, building_as_nan=False), [-180.0, -180.0, 0.0, 180.0, -180.0],
                               atol=1e-9)


def test_angle_round_trip_through_8_bits_keeps_buildings_apart(rng):
    angle_deg = rng.uniform(-180.0, 180.0, size=(8, 8))
    angle_deg[0, :3] = [-180.0, 180.0, -179.9]
    building = np.zeros((8, 8), dtype=bool)
    building[5:, 5:] = True
    gray = pixel_to_uint8(angle_deg_to_pixel(angle_deg, building))
    decoded = pixel_to_angle_deg(uint8_to_pixel(gray))
    np.testing.assert_array_equal(np.isnan(decoded), building)
    error = np.abs(angle_difference_deg(decoded[~building], angle_deg[~building]))
    assert error.max() <= 0.5 * 380.0 / 255.0 + 1e-9


# ------------------------------------------------------------------------------------------- 8-bit quantisation
def test_uint8_quantisation_by_hand():
    gray = pixel_to_uint8(np.array([0.0, 1.0, 0.5, 0.2, -0.1, 1.2]))
    assert gray.dtype == np.uint8
    # 0.5 * 255 = 127.5 rounds to even 128; 0.2 * 255 = 51
    np.testing.assert_array_equal(gray, [0, 255, 128, 51, 0, 255])
    np.testing.assert_array_equal(uint8_to_pixel(np.array([0, 51, 255], dtype=np.uint8)), [0.0, 0.2, 1.0])
    all_levels = np.arange(256, dtype=np.uint8)
    np.testing.assert_array_equal(pixel_to_uint8(uint8_to_pixel(all_levels)), all_levels)


def test_uint8_quantisation_rejects_nan_and_non_gray_input():
    with pytest.raises(CkmsimError, match="NaN"):
        pixel_to_uint8(np.array([0.1, np.nan]))
    with pytest.raises(CkmsimError, match="gray levels"):
        uint8_to_pixel(np.array([0.0, 0.5]))
    with pytest.raises(CkmsimError, match="gray levels"):
        uint8_to_pixel(np.array([0, 256]))
