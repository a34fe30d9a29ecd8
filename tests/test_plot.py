"""fastattn.plot: PNGs of token x token heatmaps and of attention maps over images.

matplotlib is optional: these tests skip without it, except the one that checks the message
naming the extra.
"""
import struct
import sys

import numpy as np
import pytest

from fastattn import plot

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def png_size(path):
    """(width, height) from a PNG's IHDR chunk, after checking the signature."""
    data = path.read_bytes()
    assert data[:8] == PNG_SIGNATURE, "not a PNG file"
    assert data[12:16] == b"IHDR"
    return struct.unpack(">II", data[16:24])


@pytest.fixture
def mpl():
    return pytest.importorskip("matplotlib")


def test_attention_heatmap_writes_png(mpl, tmp_path):
    tokens = ["[CLS]", "the", "cat", "sat", "[SEP]"]
    m = np.random.default_rng(0).random((5, 5)).astype(np.float32)
    fig = plot.attention_heatmap(m, tokens, tokens, title="layer 0 head 1",
                                 path=tmp_path / "h.png")
    w_in, h_in = fig.get_size_inches()
    assert png_size(tmp_path / "h.png") == (round(w_in * 100), round(h_in * 100))
    ax = fig.axes[0]
    assert [t.get_text() for t in ax.get_xticklabels()] == tokens
    assert ax.get_title() == "layer 0 head 1"
    # rectangular (queries x keys), no labels, no file
    fig2 = plot.attention_heatmap(np.ones((2, 7)))
    assert fig2.axes[0].images[0].get_array().shape == (2, 7)


def test_attention_heatmap_errors(mpl):
    with pytest.raises(ValueError, match="2-D"):
        plot.attention_heatmap(np.ones((2, 2, 2)))
    with pytest.raises(ValueError, match="x_labels has 2 labels, the matrix has 3 columns"):
        plot.attention_heatmap(np.ones((3, 3)), x_labels=["a", "b"])
    with pytest.raises(ValueError, match="y_labels has 1 labels, the matrix has 3 rows"):
        plot.attention_heatmap(np.ones((3, 3)), y_labels=["a"])


def test_overlay_writes_png_of_the_image_size(mpl, tmp_path):
    rng = np.random.default_rng(1)
    image = rng.integers(0, 256, (48, 64, 3), dtype=np.uint8)
    heat = rng.random((48, 64)).astype(np.float32)
    out = plot.overlay(image, heat, path=tmp_path / "o.png")
    assert out.shape == (48, 64, 3) and out.dtype == np.uint8
    assert png_size(tmp_path / "o.png") == (64, 48)
    from PIL import Image                                      # matplotlib depends on Pillow
    np.testing.assert_array_equal(np.asarray(Image.open(tmp_path / "o.png").convert("RGB")),
                                  out)


def test_overlay_blend(mpl):
    image = np.full((4, 4, 3), 200, np.uint8)
    heat = np.arange(16, dtype=np.float32).reshape(4, 4)
    np.testing.assert_array_equal(plot.overlay(image, heat, alpha=0.0), image)
    jet = mpl.colormaps["jet"]
    top = plot.overlay(image, heat, alpha=1.0)
    # the map's max (bottom right) takes the colour map's top colour, the min its bottom one
    np.testing.assert_array_equal(top[3, 3], np.rint(np.array(jet(1.0)[:3]) * 255))
    np.testing.assert_array_equal(top[0, 0], np.rint(np.array(jet(0.0)[:3]) * 255))
    half = plot.overlay(image.astype(np.float32) / 255, heat, alpha=0.5)   # float image
    expected = np.rint((0.5 * 200 / 255 + 0.5 * np.array(jet(1.0)[:3])) * 255)
    np.testing.assert_array_equal(half[3, 3], expected)


def test_overlay_upsamples_a_patch_grid(mpl):
    image = np.zeros((32, 32, 3), np.uint8)
    heat = np.zeros((4, 4), np.float32)
    heat[0, 3] = 1.0                                   # the top-right patch
    out = plot.overlay(image, heat, alpha=1.0, cmap="gray")
    assert out.shape == (32, 32, 3)
    brightest = np.unravel_index(out[:, :, 0].argmax(), (32, 32))
    assert brightest[0] < 8 and brightest[1] >= 24


def test_overlay_errors(mpl):
    img = np.zeros((4, 4, 3), np.uint8)
    with pytest.raises(ValueError, match=r"\(H, W, 3\)"):
        plot.overlay(img[:, :, 0], np.ones((4, 4)))
    with pytest.raises(ValueError, match=r"heatmap must have shape \(h, w\)"):
        plot.overlay(img, np.ones((1, 4, 4)))
    with pytest.raises(ValueError, match="alpha"):
        plot.overlay(img, np.ones((4, 4)), alpha=1.5)
    with pytest.raises(TypeError, match="uint8 or float"):
        plot.overlay(img.astype(np.int32), np.ones((4, 4)))


def test_missing_matplotlib_names_the_extra(monkeypatch):
    monkeypatch.setitem(sys.modules, "matplotlib", None)
    with pytest.raises(ImportError, match=r"fastattn\[plot\]"):
        plot.attention_heatmap(np.ones((2, 2)))
    with pytest.raises(ImportError, match=r"fastattn\[plot\]"):
        plot.overlay(np.zeros((2, 2, 3), np.uint8), np.ones((2, 2)))
