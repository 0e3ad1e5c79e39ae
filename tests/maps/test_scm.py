"""SCM synthesis (E-SRResNet eqs. (5)-(6)) and the array convention, without ray tracing."""

import numpy as np
import pytest

from ckmsim.maps.antenna_array import AntennaArray
from ckmsim.maps.scm import scm_from_paths


def test_scm_is_hermitian_psd(rng):
    array = AntennaArray(num_cols=16)
    gain_db = rng.uniform(-140, -80, size=(50, 3))
    az = rng.uniform(-180, 180, size=(50, 3))
    el = rng.uniform(-30, 30, size=(50, 3))
    scm = scm_from_paths(gain_db, az, el, array)
    np.testing.assert_allclose(scm, np.conj(np.swapaxes(scm, -1, -2)), atol=1e-20)
    eigenvalues = np.linalg.eigvalsh(scm)
    assert eigenvalues.min() >= -1e-10 * eigenvalues.max()
    # The trace is N times the total power (unit-modulus steering vectors)
    np.testing.assert_allclose(np.trace(scm, axis1=-2, axis2=-1).real,
                               16 * (10 ** (gain_db / 10)).sum(axis=1), rtol=1e-10)


def test_scm_matches_paper_element_formula():
    """Eq. (6): [R]_mn = sum_l p_l exp(j 2 pi d/lambda (m - n) cos theta_l), theta_l the angle to the array axis."""
    array = AntennaArray(num_cols=8, spacing_wavelengths=0.5)
    gain_db = np.array([-90.0, -100.0])
    az = np.array([30.0, -120.0])
    el = np.array([10.0, 0.0])
    cos_theta = np.cos(np.radians(el)) * np.sin(np.radians(az))  # the ULA lies along y
    m = np.arange(8)
    expected = sum(10 ** (g / 10) * np.exp(1j * 2 * np.pi * 0.5 * (m[:, None] - m[None, :]) * c)
                   for g, c in zip(gain_db, cos_theta))
    np.testing.assert_allclose(scm_from_paths(gain_db, az, el, array), expected, rtol=1e-10)


def test_absent_paths_contribute_nothing():
    array = AntennaArray(num_cols=4)
    one = scm_from_paths(np.array([-90.0]), np.array([10.0]), np.array([0.0]), array)
    with_absent = scm_from_paths(np.array([-90.0, -95.0]), np.array([10.0, np.nan]), np.array([0.0, np.nan]), array)
    np.testing.assert_allclose(with_absent, one)


def test_array_positions_follow_sionna_planar_array():
    import ckmsim  # noqa: F401
    import sionna.rt as rt

    for rows, cols in [(1, 4), (2, 3)]:
        ours = AntennaArray(num_cols=cols, num_rows=rows).positions_wavelengths()
        theirs = np.array(rt.PlanarArray(num_rows=rows, num_cols=cols, vertical_spacing=0.5, horizontal_spacing=0.5,
                                         pattern="iso", polarization="V").positions(1.0)).T
        np.testing.assert_allclose(ours, theirs.reshape(ours.shape), atol=1e-6)


def test_bad_array_rejected():
    from ckmsim.errors import CkmsimError

    with pytest.raises(CkmsimError, match="num_cols=0"):
        AntennaArray(num_cols=0)
