"""The map_batches callables: one per task, each holding its model for the actor's life.

Ray Data runs a callable class as a pool of actors (``ActorPoolStrategy(size=N)``),
constructing it once per actor: the model is loaded there and every batch then runs on it (the
checkpoint is memory-mapped, but each actor holds its own packed weight matrices).
``num_cpus=T`` reserves T cores per actor; ``actor_threads`` gives fastattn's kernels exactly
T threads, so N actors x T threads fill a node without oversubscribing it (OpenMP's default,
one thread per core in every actor, would run N x cores threads on cores cores).

Every callable takes a batch (pyarrow Table, pandas DataFrame or dict of NumPy arrays),
returns a pyarrow Table with the batch's columns and its results added, and never raises for
one bad row: the row's results are null and ``error`` says why (a string column, null when
the row is fine). Errors that are not the row's (a missing column, a broken model) raise.
"""
from __future__ import annotations

import io

import numpy as np
import pyarrow as pa

from .columns import as_table, column, decode_text, fixed_size_vectors, with_columns


def actor_threads(num_threads: int | None = None) -> int:
    """Sets fastattn's kernel threads for this process and returns the count: ``num_threads``
    when given, else the CPUs Ray assigned to this actor / task (a fraction counts as 1),
    else leaves fastattn's default (outside Ray)."""
    from .. import get_num_threads, set_num_threads
    if num_threads is None:
        import ray
        cpus = None
        if ray.is_initialized():
            try:
                cpus = ray.get_runtime_context().get_assigned_resources().get("CPU")
            except Exception:      # the driver: no assignment
                cpus = None
        if cpus:
            num_threads = max(1, int(cpus))
    if num_threads is not None:
        set_num_threads(num_threads)
    return get_num_threads()


def _errors(errors: list) -> pa.Array:
    # always a string column (not Arrow's null type when no row failed), so that every shard
    # of a job has the same schema
    return pa.array(errors, type=pa.string())


class _ModelBatches:
    """What the callables share: the thread count, and ``self.loads`` (models loaded by this
    instance: 1, checked by the tests)."""

    def __init__(self, num_threads):
        self.num_threads = actor_threads(num_threads)
        self.loads = 0


class EmbedBatches(_ModelBatches):
    """Sentence embeddings of a batch's ``text_column`` (str, or bytes decoded as UTF-8):
    adds ``embedding`` (fixed_size_list<float32>[hidden], the pipeline's
    ``SentenceEmbedder(model_dir, pooling=, normalize=)`` vectors) and ``error``; the text
    column comes back as str.

        ds.map_batches(EmbedBatches, fn_constructor_args=(model_dir,),
                       fn_constructor_kwargs={"pooling": "mean"}, concurrency=2, num_cpus=1)

    ``batch_size``: texts per forward pass inside a Ray batch (sorted by length, see
    pipelines.encoder_batches); ``max_length``: tokens kept per text (default the model's);
    ``num_threads``: kernel threads (default: the actor's CPUs).
    """

    def __init__(self, model_dir, *, pooling: str = "mean", normalize: bool = True,
                 text_column: str = "text", batch_size: int = 32,
                 max_length: int | None = None, num_threads: int | None = None):
        super().__init__(num_threads)
        from ..pipelines.embeddings import SentenceEmbedder
        self.embedder = SentenceEmbedder(model_dir, pooling=pooling, normalize=normalize)
        self.loads += 1
        self.text_column, self.batch_size, self.max_length = text_column, batch_size, max_length
        self.dim = int(self.embedder.model.hidden_size)

    def __call__(self, batch) -> pa.Table:
        table = as_table(batch)
        texts, errors = _decoded(table, self.text_column, "EmbedBatches", decode_text)
        good = [i for i, e in enumerate(errors) if e is None]
        vectors = np.zeros((len(texts), self.dim), np.float32)
        if good:
            vectors[good] = self.embedder([texts[i] for i in good], batch_size=self.batch_size,
                                          max_length=self.max_length)
        valid = np.array([e is None for e in errors], bool)
        return with_columns(table, {self.text_column: pa.array(texts, type=pa.string()),
                                    "embedding": fixed_size_vectors(vectors, valid),
                                    "error": _errors(errors)})


def _decoded(table, name: str, op: str, decode) -> tuple[list, list]:
    """Column `name` of `table` through `decode` (decode_text / decode_image): the values, and
    per row the error message or None."""
    values, errors = [], []
    for value in column(table, name, op):
        decoded, error = decode(value, op)
        values.append(decoded)
        errors.append(error)
    return values, errors


def _labelled(rows: list, errors: list) -> dict:
    """``labels`` list<string> and ``scores`` list<float32> columns from per-row lists of
    (label, score) (None for failed rows)."""
    labels = [None if r is None else [l for l, _ in r] for r in rows]
    scores = [None if r is None else [float(s) for _, s in r] for r in rows]
    return {"labels": pa.array(labels, type=pa.list_(pa.string())),
            "scores": pa.array(scores, type=pa.list_(pa.float32())),
            "error": _errors(errors)}


class ClassifyTextBatches(_ModelBatches):
    """Text classification of a batch's ``text_column`` with a sequence-classification
    checkpoint (``TextClassifier``): adds ``labels`` (list<string>) and ``scores``
    (list<float32>), the ``top_k`` best by decreasing score (None: every label), and
    ``error``."""

    def __init__(self, model_dir, *, top_k: int | None = 1, function_to_apply: str | None = None,
                 text_column: str = "text", batch_size: int = 32,
                 max_length: int | None = None, num_threads: int | None = None):
        super().__init__(num_threads)
        from ..pipelines.text_classification import TextClassifier
        self.classifier = TextClassifier(model_dir)
        self.loads += 1
        self.top_k, self.function_to_apply = top_k, function_to_apply
        self.text_column, self.batch_size, self.max_length = text_column, batch_size, max_length

    def __call__(self, batch) -> pa.Table:
        table = as_table(batch)
        texts, errors = _decoded(table, self.text_column, "ClassifyTextBatches", decode_text)
        good = [i for i, e in enumerate(errors) if e is None]
        rows = [None] * len(texts)
        if good:
            out = self.classifier([texts[i] for i in good], top_k=self.top_k,
                                  function_to_apply=self.function_to_apply,
                                  batch_size=self.batch_size, max_length=self.max_length)
            for i, labels in zip(good, out):
                rows[i] = [(d["label"], d["score"]) for d in labels]
        return with_columns(table, {self.text_column: pa.array(texts, type=pa.string()),
                                    **_labelled(rows, errors)})


def decode_image(value, op: str) -> tuple[np.ndarray | None, str | None]:
    """(image (H, W, 3) uint8 RGB, error) of one cell of an image column: the bytes of an
    image file (``ray.data.read_binary_files``' ``bytes``), a path, or an (H, W, 3) / (H, W)
    array (``ray.data.read_images``); a file that does not decode gives (None, error)."""
    from ..vision import as_image
    try:
        if isinstance(value, (bytes, bytearray, memoryview)):
            from ..vision.image_io import _pil_image_module
            Image, ImageOps = _pil_image_module()
            with Image.open(io.BytesIO(bytes(value))) as im:
                image = np.asarray(ImageOps.exif_transpose(im).convert("RGB")).copy()
        elif isinstance(value, (list, np.ndarray)):
            image = np.asarray(value)
        elif value is None:
            return None, f"{op}: the image is missing (null)"
        else:
            image = as_image(value)
    except ImportError:
        raise                       # Pillow missing: the job's problem, not the row's
    except Exception as e:          # a corrupt or truncated file, an unreadable path
        return None, f"{op}: cannot read the image ({type(e).__name__}: {e})"
    if image.ndim == 2:
        image = np.repeat(image[:, :, None], 3, axis=2)
    if image.ndim != 3 or image.shape[2] != 3 or image.shape[0] < 1 or image.shape[1] < 1:
        return None, f"{op}: expected an (H, W, 3) image, got shape {image.shape}"
    return image, None


class ClassifyImageBatches(_ModelBatches):
    """Image classification of a batch's ``image_column`` (encoded file bytes, paths or
    arrays) with a vision checkpoint (``ImageClassifier.from_pretrained``: ViT, ResNet):
    adds ``labels`` / ``scores`` (the ``top_k`` most probable, softmax) and ``error``; a
    corrupt image is an error row. The image column is passed through unchanged (drop it
    before writing when it holds the image bytes)."""

    def __init__(self, model_dir, *, top_k: int = 5, image_column: str = "image",
                 num_threads: int | None = None):
        super().__init__(num_threads)
        from ..pipelines.image_classification import ImageClassifier
        self.classifier = ImageClassifier.from_pretrained(model_dir)
        self.loads += 1
        self.top_k, self.image_column = top_k, image_column

    def __call__(self, batch) -> pa.Table:
        table = as_table(batch)
        images, errors = _decoded(table, self.image_column, "ClassifyImageBatches",
                                  decode_image)
        rows = [None] * len(images)
        good = [i for i, image in enumerate(images) if image is not None]
        try:       # one forward pass for the batch (the processor brings every image to one size)
            out = self.classifier.classify([images[i] for i in good], top_k=self.top_k) \
                if good else []
        except ValueError:
            out = None
        if out is None:      # some image the processor refuses: find it, one image at a time
            out = []
            for i in good:
                try:
                    out.append(self.classifier.classify(images[i], top_k=self.top_k)[0])
                except ValueError as e:
                    out.append(None)
                    errors[i] = f"ClassifyImageBatches: {e}"
        for i, labels in zip(good, out):
            rows[i] = labels
        return with_columns(table, _labelled(rows, errors))


class SamEmbedBatches(_ModelBatches):
    """Segment Anything image embeddings of a batch's ``image_column`` (file bytes, paths or
    arrays): what ``SamPredictor.set_image`` computes, stored so prompts can be answered later
    without the image encoder. Adds ``embedding`` (fixed_size_list<float32>[C * g * g], the
    (C, g, g) features flattened in C order), ``embedding_shape`` ([C, g, g]),
    ``original_size`` ([H, W]) and ``input_size`` ([h, w]: the resized image inside the
    padded square), and ``error``."""

    def __init__(self, model_dir, *, image_column: str = "image",
                 num_threads: int | None = None):
        super().__init__(num_threads)
        from ..loading import load
        from ..pipelines.sam_predictor import SamPredictor
        self.predictor = SamPredictor(load(model_dir))
        self.loads += 1
        self.image_column = image_column
        vision = self.predictor.model.config.vision
        g = int(vision.image_size) // int(vision.patch_size)
        self.shape = (int(vision.output_channels), g, g)

    def __call__(self, batch) -> pa.Table:
        table = as_table(batch)
        images, errors = _decoded(table, self.image_column, "SamEmbedBatches", decode_image)
        n, size = len(images), int(np.prod(self.shape))
        features = np.zeros((n, size), np.float32)
        original, inputs = [None] * n, [None] * n
        for i, image in enumerate(images):
            if image is None:
                continue
            try:
                self.predictor.set_image(image)
            except (TypeError, ValueError) as e:
                errors[i] = f"SamEmbedBatches: {e}"
                continue
            features[i] = self.predictor.features.reshape(-1)
            original[i] = list(self.predictor.original_size)
            inputs[i] = list(self.predictor.input_size)
        self.predictor.reset_image()
        valid = np.array([e is None for e in errors], bool)
        pair = pa.list_(pa.int32(), 2)
        shape = [list(self.shape) if v else None for v in valid]
        return with_columns(table, {
            "embedding": fixed_size_vectors(features, valid),
            "embedding_shape": pa.array(shape, type=pa.list_(pa.int32(), 3)),
            "original_size": pa.array(original, type=pair),
            "input_size": pa.array(inputs, type=pair),
            "error": _errors(errors)})
