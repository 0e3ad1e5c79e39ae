"""CKMDiff's Swin encoder: windows, shifted-window mask, relative positions, locality, small maps, the encoder."""

from __future__ import annotations

import ckmsim  # noqa: F401  (Mitsuba before TensorFlow)

import numpy as np
import pytest
from scipy.special import erf

from ckmsim.errors import CkmsimError

keras = pytest.importorskip("keras")

from ckmsim.models.ckmdiff.swin import (PatchEmbed, PatchMerging, SwinBlock, SwinEncoder,  # noqa: E402
                                        WindowAttention, relative_position_index, shifted_window_mask,
                                        window_partition, window_reverse)


def _np(x) -> np.ndarray:
    return np.asarray(keras.ops.convert_to_numpy(x))


# ----------------------------------------------------------------------------------------------------------------
# Windows, mask, relative positions (brute force)
# ----------------------------------------------------------------------------------------------------------------

def test_window_partition_matches_explicit_slicing_and_reverse_inverts_it(rng):
    x = rng.normal(size=(2, 8, 12, 3)).astype(np.float32)
    ws = 4
    windows = _np(window_partition(x, ws))
    expected = [x[b, wy * ws:(wy + 1) * ws, wx * ws:(wx + 1) * ws].reshape(ws * ws, 3)
                for b in range(2) for wy in range(8 // ws) for wx in range(12 // ws)]
    np.testing.assert_array_equal(windows, np.stack(expected))
    np.testing.assert_array_equal(_np(window_reverse(windows, ws, 8, 12)), x)
    with pytest.raises(CkmsimError, match="window_size=5"):
        window_partition(x, 5)


@pytest.mark.parametrize("height,width,ws,shift", [(8, 8, 4, 2), (8, 12, 4, 2), (12, 8, 4, 1), (6, 9, 3, 1),
                                                   (16, 8, 4, 3), (8, 8, 4, 0)])
def test_shifted_window_mask_masks_exactly_the_pairs_the_roll_wrapped_apart(height, width, ws, shift):
    mask = shifted_window_mask(height, width, ws, shift)
    n_windows = (height // ws) * (width // ws)
    assert mask.dtype == np.float32 and mask.shape == (n_windows, ws * ws, ws * ws)
    expected = np.zeros_like(mask)
    k = 0
    for wy in range(height // ws):
        for wx in range(width // ws):
            # rolled coordinates of the window's tokens, row-major; original = (rolled + shift) mod size
            rolled = [(wy * ws + i, wx * ws + j) for i in range(ws) for j in range(ws)]
            original = [((ry + shift) % height, (rx + shift) % width) for ry, rx in rolled]
            for a in range(ws * ws):
                for b in range(ws * ws):
                    wrapped = any(original[a][axis] - original[b][axis] != rolled[a][axis] - rolled[b][axis]
                                  for axis in (0, 1))
                    expected[k, a, b] = -100.0 if wrapped else 0.0
            k += 1
    np.testing.assert_array_equal(mask, expected)
    if shift == 0:
        assert not mask.any()
    else:
        assert (mask == -100.0).any()


@pytest.mark.parametrize("ws,table", [(1, None), (2, None), (4, None), (3, 7)])
def test_relative_position_index_from_coordinate_pairs(ws, table):
    index = relative_position_index(ws, table)
    t = ws if table is None else table
    coords = [(y, x) for y in range(ws) for x in range(ws)]
    expected = np.array([[(yi - yj + t - 1) * (2 * t - 1) + (xi - xj + t - 1) for yj, xj in coords]
                         for yi, xi in coords])
    np.testing.assert_array_equal(index, expected)
    assert index.min() >= 0 and index.max() < (2 * t - 1) ** 2
    if table is None:  # every displacement of the window has its own entry, and all entries are used
        assert len(np.unique(index)) == (2 * ws - 1) ** 2


# ----------------------------------------------------------------------------------------------------------------
# Locality of (shifted) window attention
# ----------------------------------------------------------------------------------------------------------------

def _changed(layer, x, pixel, batch_index=1) -> np.ndarray:
    """Output pixels of image ``batch_index`` that change when one input pixel changes; other images must not."""
    y0 = _np(layer(x))
    x1 = x.copy()
    # not a constant over the channels: LayerNorm would remove that
    x1[(batch_index,) + pixel] += np.linspace(-3.0, 3.0, x.shape[-1], dtype=np.float32)
    diff = np.abs(_np(layer(x1)) - y0).max(axis=-1)
    others = np.delete(diff, batch_index, axis=0)
    assert (others < 1e-6).all()
    return diff[batch_index] > 1e-4


def _block(shift, dim=8, window_size=4, name=None, seed=0):
    """A block whose weights are O(1) random values, so that a change travels through attention visibly (at
    Swin's initial scale, 0.02, a change two hops away falls under any fixed threshold)."""
    block = SwinBlock(dim, num_heads=2, window_size=window_size, shift=shift, name=name)
    block.build((None, 8, 8, dim))
    weights_rng = np.random.default_rng(seed)
    for weight in block.weights:
        weight.assign(0.5 * weights_rng.normal(size=tuple(weight.shape)).astype(np.float32))
    return block


def test_window_attention_stays_inside_the_windows(rng):
    x = rng.normal(size=(2, 8, 8, 8)).astype(np.float32)
    block = _block(0)
    expected = np.zeros((8, 8), dtype=bool)
    expected[0:4, 0:4] = True
    np.testing.assert_array_equal(_changed(block, x, (1, 2)), expected)
    expected = np.zeros((8, 8), dtype=bool)
    expected[4:8, 0:4] = True
    np.testing.assert_array_equal(_changed(block, x, (6, 3)), expected)


def test_shifted_windows_move_the_window_and_mask_wrapped_tokens(rng):
    x = rng.normal(size=(2, 8, 8, 8)).astype(np.float32)
    block = _block(2)
    # (3, 3) sits in the shifted window covering original rows/cols 2..5 (no wrap there)
    expected = np.zeros((8, 8), dtype=bool)
    expected[2:6, 2:6] = True
    np.testing.assert_array_equal(_changed(block, x, (3, 3)), expected)
    # (0, 0) shares its rolled window with rows/cols 6, 7 but those came from the other side: masked out
    expected = np.zeros((8, 8), dtype=bool)
    expected[0:2, 0:2] = True
    np.testing.assert_array_equal(_changed(block, x, (0, 0)), expected)
    # (7, 1): rows 6..7 (unwrapped) x cols 0..1 (wrapped) region
    expected = np.zeros((8, 8), dtype=bool)
    expected[6:8, 0:2] = True
    np.testing.assert_array_equal(_changed(block, x, (7, 1)), expected)


def test_two_stacked_blocks_carry_information_across_the_window_border(rng):
    x = rng.normal(size=(2, 8, 8, 8)).astype(np.float32)
    first, second = _block(0, name="w", seed=1), _block(2, name="sw", seed=2)
    stacked = keras.Sequential([keras.Input((8, 8, 8)), first, second])
    changed_first = _changed(first, x, (3, 3))
    assert not changed_first[4, 4] and not changed_first[5, 5]
    changed = _changed(stacked, x, (3, 3))
    # window [0:4, 0:4] spreads it, shifted window [2:6, 2:6] carries it over the border at 4
    expected = np.zeros((8, 8), dtype=bool)
    expected[0:6, 0:6] = True
    np.testing.assert_array_equal(changed, expected)


# ----------------------------------------------------------------------------------------------------------------
# Maps smaller than the window
# ----------------------------------------------------------------------------------------------------------------

def _layer_norm(x, layer):
    mean = x.mean(-1, keepdims=True)
    var = x.var(-1, keepdims=True)
    return (x - mean) / np.sqrt(var + 1e-5) * _np(layer.gamma) + _np(layer.beta)


def _global_attention_block(block: SwinBlock, x: np.ndarray, table_window: int) -> np.ndarray:
    """Reference: a pre-norm transformer block with global attention over all positions and a relative
    position bias looked up from coordinates (float64 numpy, the block's weights)."""
    batch, height, width, dim = x.shape
    heads = block.num_heads
    hd = dim // heads
    tokens = x.reshape(batch, height * width, dim).astype(np.float64)
    att = block.attention
    qkv = _layer_norm(tokens, block.norm1) @ _np(att.qkv.kernel) + _np(att.qkv.bias)
    q, k, v = (qkv[..., i * dim:(i + 1) * dim].reshape(batch, -1, heads, hd).transpose(0, 2, 1, 3)
               for i in range(3))
    logits = q @ k.transpose(0, 1, 3, 2) / np.sqrt(hd)
    table = _np(att.relative_position_bias_table)
    t = table_window
    coords = [(y, x_) for y in range(height) for x_ in range(width)]
    bias = np.array([[table[(yi - yj + t - 1) * (2 * t - 1) + (xi - xj + t - 1)] for yj, xj in coords]
                     for yi, xi in coords])  # [N, N, heads]
    logits = logits + bias.transpose(2, 0, 1)[None]
    weights = np.exp(logits - logits.max(-1, keepdims=True))
    weights /= weights.sum(-1, keepdims=True)
    out = (weights @ v).transpose(0, 2, 1, 3).reshape(batch, -1, dim)
    tokens = tokens + out @ _np(att.proj.kernel) + _np(att.proj.bias)
    hidden = _layer_norm(tokens, block.norm2) @ _np(block.fc1.kernel) + _np(block.fc1.bias)
    hidden = 0.5 * hidden * (1.0 + erf(hidden / np.sqrt(2.0)))
    tokens = tokens + hidden @ _np(block.fc2.kernel) + _np(block.fc2.bias)
    return tokens.reshape(batch, height, width, dim)


@pytest.mark.parametrize("shift", [0, 3])
def test_block_on_a_map_smaller_than_its_window_is_global_attention(rng, shift):
    x = rng.normal(size=(2, 4, 4, 8)).astype(np.float32)
    block = SwinBlock(8, num_heads=2, window_size=7, shift=shift)
    block.build(x.shape)
    assert block.window_for(4, 4) == (4, 0)
    table = block.attention.relative_position_bias_table
    table.assign(rng.normal(size=tuple(table.shape)).astype(np.float32))
    np.testing.assert_allclose(_np(block(x)), _global_attention_block(block, x, 7), atol=1e-4, rtol=1e-4)


def test_block_rejects_a_map_that_does_not_tile_into_windows(rng):
    with pytest.raises(CkmsimError, match=r"window 4.*width=10"):
        _block(0)(rng.normal(size=(1, 8, 10, 8)).astype(np.float32))
    with pytest.raises(CkmsimError, match=r"window 4.*height=6"):  # min(6, 6) > 4: window stays 4
        _block(2)(rng.normal(size=(1, 6, 6, 8)).astype(np.float32))
    with pytest.raises(CkmsimError, match=r"window 4.*width=6"):  # min = 4: window 4, 6 is not a multiple
        SwinBlock(8, 2, window_size=7)(rng.normal(size=(1, 4, 6, 8)).astype(np.float32))
    for block in (SwinBlock(8, 2), _block(0)):  # unbuilt, built
        with pytest.raises(CkmsimError, match="8 channels.*Received: channels=6"):
            block(rng.normal(size=(1, 8, 8, 6)).astype(np.float32))
    with pytest.raises(CkmsimError, match="shift"):
        SwinBlock(8, 2, window_size=4, shift=4)


# ----------------------------------------------------------------------------------------------------------------
# Patch layers and the encoder
# ----------------------------------------------------------------------------------------------------------------

def test_patch_merging_concatenates_the_2x2_neighbourhood(rng):
    x = rng.normal(size=(2, 4, 6, 3)).astype(np.float32)
    merge = PatchMerging()
    y = _np(merge(x))
    assert y.shape == (2, 2, 3, 6)
    cat = np.concatenate([x[:, 0::2, 0::2], x[:, 1::2, 0::2], x[:, 0::2, 1::2], x[:, 1::2, 1::2]], axis=-1)
    np.testing.assert_allclose(y, _layer_norm(cat.astype(np.float64), merge.norm) @ _np(merge.reduction.kernel),
                               atol=1e-5)
    assert merge.reduction.bias is None
    with pytest.raises(CkmsimError, match="even"):
        merge(x[:, :3])


def test_layers_config_round_trip():
    for layer in (WindowAttention(8, 2, 4, qkv_bias=False), SwinBlock(8, 2, 7, 3, 2.0), PatchEmbed(16, 3),
                  PatchMerging()):
        clone = type(layer).from_config(layer.get_config())
        assert clone.get_config() == layer.get_config()
    encoder = SwinEncoder(8, (1, 2), (1, 2), 2, 4, 2.0)
    assert SwinEncoder.from_config(encoder.get_config()).get_config() == encoder.get_config()


def test_encoder_stage_shapes(rng):
    encoder = SwinEncoder(embed_dim=32, depths=(2, 2, 2), num_heads=(2, 4, 8), window_size=4, patch_size=2)
    features = encoder(rng.normal(size=(2, 32, 32, 3)).astype(np.float32))
    assert isinstance(features, list)
    assert [tuple(f.shape) for f in features] == [(2, 16, 16, 32), (2, 8, 8, 64), (2, 4, 4, 128)]
    assert encoder.feature_channels == (32, 64, 128) and encoder.feature_strides == (2, 4, 8)
    assert all(np.isfinite(_np(f)).all() for f in features)


def test_encoder_runs_when_a_stage_is_smaller_than_its_window(rng):
    encoder = SwinEncoder(embed_dim=8, depths=(2, 2, 2, 2), num_heads=(1, 2, 4, 8), window_size=4, patch_size=4)
    features = encoder(rng.normal(size=(1, 64, 64, 3)).astype(np.float32))
    assert [tuple(f.shape) for f in features] == [(1, 16, 16, 8), (1, 8, 8, 16), (1, 4, 4, 32), (1, 2, 2, 64)]
    with pytest.raises(CkmsimError, match=r"height.*32.*Received: height=48"):
        encoder(rng.normal(size=(1, 48, 64, 3)).astype(np.float32))


@pytest.mark.parametrize("kwargs,name", [
    ({"embed_dim": 0}, "embed_dim"),
    ({"embed_dim": 2.5}, "embed_dim"),
    ({"depths": ()}, "depths"),
    ({"depths": (2, 0, 2)}, "depths"),
    ({"num_heads": (2, 4)}, "num_heads"),
    ({"num_heads": (3, 4, 8)}, r"num_heads\[0\]"),
    ({"window_size": 0}, "window_size"),
    ({"patch_size": True}, "patch_size"),
    ({"mlp_ratio": -1.0}, "mlp_ratio"),
])
def test_encoder_rejects_bad_arguments(kwargs, name):
    with pytest.raises(CkmsimError, match=rf"{name}.*Received|Received: {name}"):
        SwinEncoder(**kwargs)


def test_encoder_saves_and_loads_with_identical_outputs(rng, tmp_path):
    encoder = SwinEncoder(embed_dim=8, depths=(2, 1), num_heads=(2, 2), window_size=4, patch_size=2)
    x = rng.normal(size=(2, 16, 16, 3)).astype(np.float32)
    before = [_np(f) for f in encoder(x)]
    encoder.save(tmp_path / "swin.keras")
    loaded = keras.saving.load_model(tmp_path / "swin.keras")
    assert isinstance(loaded, SwinEncoder) and loaded.get_config() == encoder.get_config()
    for a, b in zip(before, loaded(x)):
        np.testing.assert_array_equal(a, _np(b))
