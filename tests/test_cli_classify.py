"""`fastattn classify MODEL_DIR IMAGE... [--top-k 5] [--rollout out.png]`, through
fastattn.cli.main(argv) on a random tiny ViT checkpoint and PNG files written here."""
import re

import numpy as np
import pytest

from fastattn.cli import main
from test_image_classification import write_tiny_vit


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    pytest.importorskip("PIL")
    from PIL import Image
    root = tmp_path_factory.mktemp("cli-classify")
    model_dir = write_tiny_vit(root / "vit")
    rng = np.random.default_rng(0)
    images = []
    for i, size in enumerate(((40, 52), (32, 32))):
        path = root / f"img{i}.png"
        Image.fromarray(rng.integers(0, 256, size + (3,), dtype=np.uint8)).save(path)
        images.append(path)
    return model_dir, images


LINE = re.compile(r"^\s+(\d+)  (\d\.\d{4})  (class \d)$")


def parse(stdout):
    """{image path: [(rank, probability, label)]} from the command's output."""
    blocks = {}
    for block in stdout.strip().split("\n\n"):
        head, *rows = block.splitlines()
        blocks[head] = [(int(m[1]), float(m[2]), m[3]) for m in map(LINE.match, rows)]
    return blocks


def test_classify_prints_top_k(files, capsys):
    model_dir, images = files
    assert main(["classify", str(model_dir), *map(str, images), "--top-k", "3"]) == 0
    out = parse(capsys.readouterr().out)
    assert list(out) == [str(p) for p in images]
    from fastattn.pipelines.image_classification import ImageClassifier
    expected = ImageClassifier.from_pretrained(model_dir).classify(
        [str(p) for p in images], top_k=3)
    for rows, want in zip(out.values(), expected):
        assert [r[0] for r in rows] == [1, 2, 3]
        assert [r[2] for r in rows] == [label for label, _ in want]
        np.testing.assert_allclose([r[1] for r in rows], [p for _, p in want], atol=5e-5)


def test_classify_rollout_pngs(files, tmp_path, capsys):
    pytest.importorskip("matplotlib")
    model_dir, images = files
    assert main(["classify", str(model_dir), str(images[0]), "--top-k", "1",
                 "--rollout", str(tmp_path / "one.png")]) == 0
    assert (tmp_path / "one.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert main(["classify", str(model_dir), *map(str, images), "--rollout",
                 str(tmp_path / "many.png"), "--head-fusion", "max",
                 "--discard-ratio", "0.5"]) == 0
    from PIL import Image
    for i in range(2):
        # the overlay is drawn over the model's view of the image: 32 x 32 here
        with Image.open(tmp_path / f"many-{i}.png") as im:
            assert im.size == (32, 32)
    assert "many-1.png" in capsys.readouterr().err


def test_classify_errors(files, tmp_path, capsys):
    model_dir, images = files
    assert main(["classify", str(model_dir), str(tmp_path / "nope.png")]) == 2
    assert "nope.png" in capsys.readouterr().err
    assert main(["classify", str(tmp_path / "no-model"), str(images[0])]) == 2
    assert main(["classify", str(model_dir), str(images[0]), "--top-k", "0"]) == 2
    assert main(["classify", str(model_dir), str(images[0]), "--rollout", "x.png",
                 "--discard-ratio", "1"]) == 2
    with pytest.raises(SystemExit):
        main(["classify", str(model_dir)])                       # no image
