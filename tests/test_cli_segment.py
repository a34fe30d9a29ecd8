"""`fastattn segment MODEL_DIR IMAGE --point x,y[,label] ... [--box x1,y1,x2,y2] [--auto]
[--multimask/--single] --out masks.png`, through fastattn.cli.main(argv).

Where the files' geometry is checked, ``fastattn.load`` is replaced by the model double of
test_sam_predictor (masks are discs around the points, or the boxes), so the label PNG and
the overlay can be compared with shapes known in advance; the tiny random SAM checkpoint
runs the command end to end and --auto."""
import numpy as np
import pytest

import fastattn
from fastattn.cli import main
from test_sam_predictor import DiscSam, photo

H, W = 48, 80                        # -> input (38, 64) at S = 64


@pytest.fixture
def image_path(tmp_path):
    pytest.importorskip("PIL")
    from PIL import Image
    path = tmp_path / "photo.png"
    Image.fromarray(photo(np.random.default_rng(3), H, W)).save(path)
    return path


@pytest.fixture
def doubles(monkeypatch):
    """fastattn.load(dir) -> a new DiscSam; the list of the models handed out."""
    made = []

    def load(path, mmap=True):
        made.append(DiscSam())
        return made[-1]
    monkeypatch.setattr(fastattn, "load", load)
    return made


def read_png(path):
    from PIL import Image
    with Image.open(path) as im:
        return np.asarray(im).copy()


def pixel_distance(x, y):
    yy, xx = np.mgrid[0:H, 0:W] + 0.5
    return np.hypot(xx - x, yy - y)


def test_point_writes_label_png_and_overlay(tmp_path, image_path, doubles, capsys):
    out = tmp_path / "masks.png"
    assert main(["segment", "model", str(image_path), "--point", "40,24", "--out",
                 str(out)]) == 0
    stdout, stderr = capsys.readouterr()
    lines = stdout.splitlines()
    # three candidates (radii 3, 6, 9 input px in the double; scores 1.0, 1.1, 1.2): the best
    # is the largest
    assert len(lines) == 3 and lines[2].endswith("<- best") and "score 1.2000" in lines[2]
    labels = read_png(out)
    assert labels.shape == (H, W) and labels.dtype == np.uint8
    r = 9 * W / 64                    # radius 9 input pixels in original pixels
    d = pixel_distance(40, 24)
    assert (labels[d < r - 1.5] == 1).all() and (labels[d > r + 1.5] == 0).all()
    overlay = read_png(tmp_path / "masks-overlay.png")
    image = read_png(image_path)
    assert overlay.shape == (H, W, 3)
    far = d > r + 1.5
    np.testing.assert_array_equal(overlay[far], image[far])          # untouched outside
    assert (overlay[24, 40] == (0, 200, 0)).all()                     # the foreground dot
    assert "masks-overlay.png" in stderr


def test_single_and_background_point(tmp_path, image_path, doubles, capsys):
    out = tmp_path / "m.png"
    assert main(["segment", "model", str(image_path), "--point", "10,10", "--point",
                 "70,40,0", "--single", "--out", str(out), "--overlay",
                 str(tmp_path / "o.png")]) == 0
    assert len(capsys.readouterr().out.splitlines()) == 1
    labels = read_png(out)
    assert labels[10, 10] == 1 and labels[40, 70] == 0      # the background point draws no disc
    assert (read_png(tmp_path / "o.png")[40, 70] == (220, 0, 0)).all()


def test_several_boxes_are_one_batch(tmp_path, image_path, doubles, capsys):
    out = tmp_path / "boxes.png"
    assert main(["segment", "model", str(image_path), "--box", "2,2,30,20", "--box",
                 "40,10,78,46", "--out", str(out)]) == 0
    assert [line.split(":")[0] for line in capsys.readouterr().out.splitlines()] == \
        ["box 0", "box 1"]
    labels = read_png(out)
    assert labels[10, 15] == 1 and labels[30, 60] == 2 and labels[40, 10] == 0
    assert len(doubles[0].calls) == 1 and doubles[0].calls[0]["boxes"].shape == (2, 4)


def test_embedding_cache(tmp_path, image_path, doubles, capsys):
    cache = tmp_path / "photo.sam.safetensors"
    args = ["segment", "model", str(image_path), "--point", "40,24", "--embedding", str(cache)]
    assert main(args + ["--out", str(tmp_path / "a.png")]) == 0
    assert "saved" in capsys.readouterr().err and cache.exists()
    assert main(args + ["--out", str(tmp_path / "b.png")]) == 0
    assert "read from" in capsys.readouterr().err
    assert [m.encoder_calls for m in doubles] == [1, 0]          # the second run never encodes
    np.testing.assert_array_equal(read_png(tmp_path / "a.png"), read_png(tmp_path / "b.png"))
    # another image: the cache is refused (another digest) and rewritten
    other = tmp_path / "other.png"
    from PIL import Image
    Image.fromarray(photo(np.random.default_rng(9), H, W)).save(other)
    args[2] = str(other)
    assert main(args + ["--out", str(tmp_path / "c.png")]) == 0
    err = capsys.readouterr().err
    assert "another image" in err and "saved" in err and doubles[-1].encoder_calls == 1


@pytest.mark.parametrize("extra, message", [
    ([], "give prompts (--point and / or --box) or --auto"),
    (["--auto", "--point", "1,1"], "give prompts (--point and / or --box) or --auto"),
    (["--point", "81,10"], "inside the image"),
    (["--box", "30,10,20,40"], "x1 <= x2"),
    (["--box", "0,0,5,5", "--box", "1,1,6,6", "--point", "2,2"], "at most one --box"),
])
def test_errors_exit_2(tmp_path, image_path, doubles, capsys, extra, message):
    assert main(["segment", "model", str(image_path), *extra, "--out",
                 str(tmp_path / "x.png")]) == 2
    assert message in capsys.readouterr().err
    assert not (tmp_path / "x.png").exists()


@pytest.mark.parametrize("arg", [["--point", "1"], ["--point", "1,2,5"], ["--box", "1,2,3"],
                                 ["--point", "a,b"]])
def test_malformed_prompts_are_usage_errors(tmp_path, image_path, capsys, arg):
    with pytest.raises(SystemExit) as e:
        main(["segment", "model", str(image_path), *arg, "--out", str(tmp_path / "x.png")])
    assert e.value.code == 2
    assert f"argument {arg[0]}: " in capsys.readouterr().err


def test_missing_image_exits_2(tmp_path, doubles, capsys):
    assert main(["segment", "model", str(tmp_path / "none.png"), "--point", "1,1", "--out",
                 str(tmp_path / "x.png")]) == 2
    assert "none.png" in capsys.readouterr().err


# --- the tiny random SAM checkpoint, end to end -------------------------------------------------

@pytest.fixture(scope="module")
def sam_dir(tmp_path_factory):
    from fastattn.testing import write_sam_checkpoint
    return write_sam_checkpoint(tmp_path_factory.mktemp("cli-sam") / "sam")


def test_real_checkpoint_point_and_box(tmp_path, image_path, sam_dir, capsys):
    from fastattn.pipelines import SamPredictor
    out = tmp_path / "m.png"
    assert main(["segment", str(sam_dir), str(image_path), "--point", "40,24", "--point",
                 "70,40,0", "--box", "10,5,60,45", "--out", str(out)]) == 0
    lines = capsys.readouterr().out.splitlines()
    predictor = SamPredictor(fastattn.load(sam_dir))
    predictor.set_image(read_png(image_path))
    masks, scores, _ = predictor.predict([[40, 24], [70, 40]], [1, 0], box=[10, 5, 60, 45])
    best = int(scores.argmax())
    assert len(lines) == 3 and lines[best].endswith("<- best")
    assert f"score {scores[best]:.4f}" in lines[best]
    np.testing.assert_array_equal(read_png(out), masks[best].astype(np.uint8))


def test_real_checkpoint_auto(tmp_path, image_path, sam_dir, capsys):
    from fastattn.pipelines.sam_automatic import SamAutomaticMaskGenerator
    out = tmp_path / "auto.png"
    cache = tmp_path / "e.safetensors"
    # a random model's masks are neither confident nor stable: with the default thresholds
    # none survives, so the filters are turned off
    auto = ["--auto", "--points-per-side", "4", "--pred-iou-thresh", "0",
            "--stability-score-thresh", "0"]
    assert main(["segment", str(sam_dir), str(image_path), *auto, "--out", str(out),
                 "--embedding", str(cache)]) == 0
    lines = capsys.readouterr().out.splitlines()
    records = SamAutomaticMaskGenerator(fastattn.load(sam_dir), points_per_side=4,
                                        pred_iou_thresh=0.0, stability_score_thresh=0.0
                                        ).generate(read_png(image_path))
    records.sort(key=lambda r: -r["area"])
    assert len(lines) == len(records) >= 1
    labels = np.zeros((H, W), np.uint8)
    for i, r in enumerate(records):
        labels[r["segmentation"]] = i + 1
    np.testing.assert_array_equal(read_png(out), labels)
    # the cached embedding serves the second run (no encoder), same masks
    assert main(["segment", str(sam_dir), str(image_path), *auto,
                 "--out", str(tmp_path / "again.png"), "--embedding", str(cache)]) == 0
    assert "read from" in capsys.readouterr().err
    np.testing.assert_array_equal(read_png(tmp_path / "again.png"), labels)
