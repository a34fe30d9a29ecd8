"""fastattn on Ray Data: corpus-scale embedding, classification and SAM image embeddings.

Callable classes for ``ray.data.Dataset.map_batches``: each loads its model once per actor
(in ``__init__``), runs fastattn's kernels on as many threads as the actor was given CPUs,
and returns a ``pyarrow.Table`` that ``write_parquet`` writes as is (vectors as fixed-size
lists of float32). A row that cannot be used (undecodable text, corrupt image) gets a null
result and a message in the ``error`` column; the batch and the job go on.

    import ray
    from fastattn.distributed import EmbedBatches

    ds = ray.data.read_parquet("corpus/")                       # a "text" column
    ds = ds.map_batches(EmbedBatches, fn_constructor_args=("all-MiniLM-L6-v2",),
                        concurrency=4, num_cpus=2, batch_size=256)
    ds.write_parquet("embeddings/")

- batches: ``EmbedBatches``, ``ClassifyTextBatches``, ``ClassifyImageBatches``,
  ``SamEmbedBatches``;
- corpus: ``embed_corpus`` (what ``fastattn embed-corpus`` runs: files in, Parquet shards out,
  resumable, exactly once under worker failures).

docs/distributed.md is the guide. Ray is an optional extra (``pip install fastattn[ray]``):
``import fastattn`` never imports it; this package raises ImportError without it.
"""
try:
    import ray  # noqa: F401
    import ray.data  # noqa: F401
    import pyarrow  # noqa: F401
except ImportError as e:   # a clean message instead of a missing-module traceback
    raise ImportError(
        f"fastattn.distributed needs Ray Data ({e.name or 'ray'} is not installed): "
        "pip install fastattn[ray]") from e

from .batches import (ClassifyImageBatches, ClassifyTextBatches, EmbedBatches,  # noqa: E402
                      SamEmbedBatches, actor_threads)
from .corpus import embed_corpus  # noqa: E402

__all__ = ["EmbedBatches", "ClassifyTextBatches", "ClassifyImageBatches", "SamEmbedBatches",
           "actor_threads", "embed_corpus"]
