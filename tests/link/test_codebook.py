"""DFT codebooks of ULAs and UPAs against closed forms and the array's (and Sionna RT's) steering vectors."""

import numpy as np
import pytest

from ckmsim.errors import CkmsimError
from ckmsim.link.codebook import dft_beam_spatial_frequencies, dft_codebook
from ckmsim.maps.antenna_array import AntennaArray


def fejer(num_ant: int, delta_cycles: np.ndarray) -> np.ndarray:
    """|sum_n exp(j 2 pi n delta)|^2 / N: gain of a unit-norm DFT beam along one array dimension,
    ``delta`` the phase mismatch per element [cycles]."""
    x = np.pi * delta_cycles
    with np.errstate(invalid="ignore", divide="ignore"):
        g = (np.sin(num_ant * x) / np.sin(x)) ** 2 / num_ant
    return np.where(np.abs(np.sin(x)) < 1e-12, num_ant, g)


def direction_cosines(az_deg, el_deg):
    """(u_row, u_col) of ckmsim.link.codebook: -sin(el) along the rows (-z), cos(el) sin(az) along the columns (y)."""
    az, el = np.radians(az_deg), np.radians(el_deg)
    return -np.sin(el), np.cos(el) * np.sin(az)


def on_grid_directions(u: np.ndarray):
    """(az, el) [deg] in front of the array where each beam of ``u`` [num_beams, 2] peaks; visible mask."""
    visible = (u ** 2).sum(axis=1) < 1 - 1e-9
    el = -np.degrees(np.arcsin(u[visible, 0]))
    az = np.degrees(np.arcsin(u[visible, 1] / np.cos(np.radians(el))))
    return az, el, visible


@pytest.mark.parametrize("rows, cols", [(1, 16), (4, 4), (2, 8), (3, 5)])
def test_codebook_is_unitary_without_oversampling(rows, cols):
    codebook = dft_codebook(AntennaArray(num_cols=cols, num_rows=rows))
    assert codebook.shape == (rows * cols, rows * cols)
    np.testing.assert_allclose(codebook @ codebook.conj().T, np.eye(rows * cols), atol=1e-12)


def test_oversampling_per_dimension():
    upa = AntennaArray(num_cols=8, num_rows=4)
    assert dft_codebook(upa, oversampling=2).shape == (8 * 16, 32)
    assert dft_codebook(upa, oversampling=(2, 3)).shape == (8 * 24, 32)
    assert dft_beam_spatial_frequencies(upa, (2, 3)).shape == (8 * 24, 2)
    # A one-element dimension has one beam: a ULA keeps N * O beams, as before
    ula = AntennaArray(num_cols=8)
    assert dft_codebook(ula, oversampling=(3, 2)).shape == (16, 8)
    np.testing.assert_allclose(np.linalg.norm(dft_codebook(upa, (2, 3)), axis=1), 1.0, atol=1e-12)


def test_upa_codebook_is_kronecker_of_ula_grids_in_planar_array_order():
    """Element n = col * num_rows + row; beam b = m_row * (num_cols O_col) + m_col."""
    rows, cols, over = 3, 4, 2
    upa = dft_codebook(AntennaArray(num_cols=cols, num_rows=rows), oversampling=over)
    row_grid = dft_codebook(AntennaArray(num_cols=rows), oversampling=over)
    col_grid = dft_codebook(AntennaArray(num_cols=cols), oversampling=over)
    # [m_row, m_col, col, row]
    expected = col_grid[None, :, :, None] * row_grid[:, None, None, :]
    np.testing.assert_allclose(upa, expected.reshape(rows * over * cols * over, rows * cols), atol=1e-12)


@pytest.mark.parametrize("rows, cols, oversampling, spacing", [(4, 4, 1, 0.5), (4, 8, (2, 2), 0.5),
                                                                (2, 6, (3, 1), 0.5), (3, 4, 2, 0.7)])
def test_upa_beam_gain_is_product_of_fejer_kernels(rows, cols, oversampling, spacing, rng):
    array = AntennaArray(num_cols=cols, num_rows=rows, spacing_wavelengths=spacing)
    codebook = dft_codebook(array, oversampling)
    u_beams = dft_beam_spatial_frequencies(array, oversampling)
    az = rng.uniform(-90, 90, size=25)
    el = rng.uniform(-60, 60, size=25)
    gains = np.abs(array.steering_vectors(az, el) @ codebook.conj().T) ** 2
    u_row, u_col = direction_cosines(az, el)
    expected = (fejer(cols, spacing * (u_col[:, None] - u_beams[None, :, 1]))
                * fejer(rows, spacing * (u_row[:, None] - u_beams[None, :, 0])))
    np.testing.assert_allclose(gains, expected, rtol=1e-9, atol=1e-9)


@pytest.mark.parametrize("rows, cols, oversampling", [(1, 8, 1), (1, 8, 4), (4, 4, 1), (4, 8, (2, 3)), (8, 8, 1)])
def test_on_grid_direction_gets_full_array_gain(rows, cols, oversampling):
    """Each visible beam, steered to its own direction, collects N, and no other beam collects more."""
    array = AntennaArray(num_cols=cols, num_rows=rows)
    codebook = dft_codebook(array, oversampling)
    az, el, visible = on_grid_directions(dft_beam_spatial_frequencies(array, oversampling))
    assert visible.sum() >= 0.5 * len(codebook)
    gains = np.abs(array.steering_vectors(az, el) @ codebook.conj().T) ** 2
    np.testing.assert_allclose(gains[np.arange(len(az)), np.nonzero(visible)[0]], array.num_ant, rtol=1e-12)
    assert gains.max() <= array.num_ant * (1 + 1e-12)


def test_ula_spatial_frequencies_match_the_sionna_ula_grid():
    """Sionna's ULA beam m points where cos(theta) = 2m/(NO) mod 2, folded into [-1, 1)."""
    u = dft_beam_spatial_frequencies(AntennaArray(num_cols=8), oversampling=2)
    np.testing.assert_allclose(u[:, 0], 0.0)
    expected = np.mod(2 * np.arange(16) / 16 + 1, 2) - 1
    np.testing.assert_allclose(u[:, 1], expected, atol=1e-12)


def test_on_grid_gain_with_sionna_planar_array_positions():
    """The codebook agrees with Sionna RT's own PlanarArray geometry, not only with ckmsim's copy of it."""
    import ckmsim  # noqa: F401  (Mitsuba before TensorFlow)
    import sionna.rt as rt

    rows, cols = 4, 4
    array = AntennaArray(num_cols=cols, num_rows=rows)
    positions = np.array(rt.PlanarArray(num_rows=rows, num_cols=cols, vertical_spacing=0.5, horizontal_spacing=0.5,
                                        pattern="iso", polarization="V").positions(1.0)).T.reshape(-1, 3)
    codebook = dft_codebook(array)
    az, el, visible = on_grid_directions(dft_beam_spatial_frequencies(array))
    az, el = np.radians(az), np.radians(el)
    k = np.stack([np.cos(el) * np.cos(az), np.cos(el) * np.sin(az), np.sin(el)], axis=-1)
    steering = np.exp(2j * np.pi * k @ positions.T)
    gains = np.abs(np.einsum("dn,dn->d", steering, codebook[visible].conj())) ** 2
    np.testing.assert_allclose(gains, rows * cols, rtol=1e-5)


@pytest.mark.parametrize("oversampling", [0, 1.5, (2,), (1, 0), "2"])
def test_bad_oversampling_rejected(oversampling):
    with pytest.raises(CkmsimError, match="oversampling="):
        dft_codebook(AntennaArray(num_cols=4, num_rows=2), oversampling)
