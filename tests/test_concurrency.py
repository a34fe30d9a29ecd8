"""Thread safety (issue 16): the kernels release the GIL, so several Python threads really run
them at once. Whatever runs from 4-8 threads at the same time must give, bit for bit, what the
same call gives alone: the kernels (softmax, layer_norm, matmul with a shared packed weight,
attention, rope with its shared table cache), one KVCache shared by threads (docs/kv_cache.md,
"Threads"), one decoder model generating for several threads, and one SentenceEmbedder /
FillMask pipeline serving several threads."""
import contextlib
import sys
import threading
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest

import fastattn
from fastattn.io import load_config
from fastattn.models.gpt2 import build_gpt2
from fastattn.models.llama import build_llama
from fastattn.pipelines import FillMask, SentenceEmbedder

from conftest import gpt2_checkpoint, llama_checkpoint
from test_bert import VOCAB
from test_fill_mask import write as write_bert_dir

THREADS = 6


@contextlib.contextmanager
def frequent_thread_switches():
    """Python switches threads every microsecond instead of every 5 ms, so calls from several
    threads interleave as on a busy machine. Without the cache's lock, 4 threads x 1000
    appends kept 1000-2750 of the 4000 blocks (5 runs): an append read the length, released
    the GIL in the kernel, then wrote length + T over another thread's update."""
    interval = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)
    try:
        yield
    finally:
        sys.setswitchinterval(interval)


def concurrently(jobs, threads=THREADS):
    """Runs the zero-argument callables ``jobs`` from ``threads`` threads that start together
    (thread i takes jobs i, i + threads, ...); returns the results in job order."""
    start = threading.Barrier(threads)

    def worker(i):
        start.wait()
        return [(j, jobs[j]()) for j in range(i, len(jobs), threads)]

    with frequent_thread_switches(), ThreadPoolExecutor(threads) as pool:
        done = dict(pair for part in pool.map(worker, range(threads)) for pair in part)
    return [done[j] for j in range(len(jobs))]


def assert_same_as_alone(jobs, threads=THREADS):
    """Each job's result from many threads at once equals its result run alone, bit for bit
    (the kernels' results never depend on timing or thread count)."""
    alone = [job() for job in jobs]
    together = concurrently(jobs, threads)
    for j, (a, b) in enumerate(zip(alone, together)):
        assert np.array_equal(a, b), f"job {j} differs when run alongside other threads"


# -- kernels --------------------------------------------------------------------------------

def _f32(rng, *shape):
    return rng.standard_normal(shape).astype(np.float32)


def softmax_jobs(rng):
    xs = [_f32(rng, 7, 300) * 10 for _ in range(4 * THREADS)]
    return [lambda x=x: fastattn.softmax(x) for x in xs]


def layer_norm_jobs(rng):
    w, b = _f32(rng, 257), _f32(rng, 257)
    xs = [_f32(rng, 5, 257) for _ in range(4 * THREADS)]
    return [lambda x=x: fastattn.layer_norm(x, w, b) for x in xs]


def matmul_jobs(rng):
    # one packed weight shared by every thread, as a model's Linear layers are
    packed = fastattn.PackedMatrix(_f32(rng, 70, 45))
    bias = _f32(rng, 45)
    xs = [_f32(rng, 33, 70) for _ in range(4 * THREADS)]
    return [lambda x=x: fastattn.matmul(x, packed, bias=bias, activation="gelu") for x in xs]


def attention_jobs(rng):
    qkvs = [(_f32(rng, 1, 4, 37, 16), _f32(rng, 1, 2, 37, 16), _f32(rng, 1, 2, 37, 16))
            for _ in range(4 * THREADS)]
    return [lambda q=q, k=k, v=v: fastattn.attention(q, k, v, causal=True, window=20)
            for q, k, v in qkvs]


def rope_jobs(rng):
    # 12 thetas > the 8 tables the cos/sin LRU keeps: threads also build and evict entries
    xs = [_f32(rng, 1, 4, 20, 16) for _ in range(4 * THREADS)]
    return [lambda x=x, j=j: fastattn.rope(x, np.arange(20) + 7 * j, theta=1e4 + j % 12)
            for j, x in enumerate(xs)]


@pytest.mark.parametrize("jobs", [softmax_jobs, layer_norm_jobs, matmul_jobs, attention_jobs,
                                  rope_jobs], ids=lambda f: f.__name__[:-5])
def test_kernels_from_several_threads_equal_single_threaded_runs(jobs, rng):
    assert_same_as_alone(jobs(rng))


# -- one KVCache shared by several threads (issue 16, case 2) --------------------------------

def test_appends_from_several_threads_all_land():
    threads, appends, T, D = 4, 1000, 3, 32
    cache = fastattn.KVCache(2, 1, 2, D, threads * appends * T)

    def append_blocks(thread):
        def run():
            for n in range(appends):
                block = np.empty((1, 2, T, D), np.float32)
                block[...] = ((thread * appends + n) * T + np.arange(T))[:, None]  # token ids
                cache.append(1, block, -block)
        return run

    concurrently([append_blocks(t) for t in range(threads)], threads)
    assert cache.lengths.tolist() == [0, threads * appends * T]
    keys, values = cache.keys(1), cache.values(1)
    np.testing.assert_array_equal(values, -keys)
    assert (keys == keys[:, :, :, :1]).all() and (keys == keys[:, :1]).all()  # rows intact
    ids = keys[0, 0, :, 0].astype(np.int64).reshape(-1, T)   # one row per appended block
    np.testing.assert_array_equal(ids - ids[:, :1], np.broadcast_to(np.arange(T), ids.shape))
    assert sorted(ids[:, 0].tolist()) == list(range(0, threads * appends * T, T))
    for thread in range(threads):                # each thread's blocks in its own order
        mine = ids[:, 0][ids[:, 0] // (appends * T) == thread]
        assert (np.diff(mine) > 0).all()


def test_attend_and_keys_see_whole_appends_while_another_thread_streams():
    """A ring of W == capacity slots: each append overwrites the oldest visible key. Keys are
    zero (uniform weights) and token j's value is j in every element, so an attend over n
    tokens gives mean(max(0, n - W) .. n - 1) in every element; a read of a half-written slot
    or of a length that does not match the slots would give elements that disagree, or a
    value no length gives. (Without the lock, attend or values() saw a torn ring in about half
    of the runs.)"""
    W, D, N, readers = 16, 64, 1500, 3
    cache = fastattn.KVCache(1, 1, 2, D, W, window=W)
    q = np.zeros((1, 4, 1, D), np.float32)
    zeros = np.zeros((1, 2, 1, D), np.float32)
    cache.append(0, zeros, zeros)
    valid = {(n - 1) / 2 if n < W else n - (W + 1) / 2 for n in range(1, N + 2)}
    done = threading.Event()

    def stream():
        for j in range(1, N + 1):
            cache.append(0, zeros, np.full((1, 2, 1, D), j, np.float32))
        done.set()

    def read():
        seen = 0
        while not done.is_set():
            out = cache.attend(0, q)
            # the mean is sum(values) * (1 / count): within an ulp or two of a valid value,
            # and valid values lie 0.5 apart, so a torn read cannot pass for one
            x = float(out.flat[0])
            assert (out == x).all() and min(abs(x - w) for w in valid) <= 1e-6 * max(x, 1), out
            values = cache.values(0)[0, 0, :, 0]
            np.testing.assert_array_equal(np.diff(values), 1)  # consecutive tokens
            seen += 1
        return seen

    counts = concurrently([stream] + [read] * readers, readers + 1)
    assert cache.lengths[0] == N + 1 and sum(counts[1:]) > 0


def test_threads_driving_different_layers_of_one_cache():
    """Lengths are per layer: one thread per layer, each streaming its own keys through
    attend_new (a 20-token prompt, then 40 decode steps) on a shared ring of W + 19 slots
    (it wraps), gives what each stream gives alone."""
    layers, B, Hq, Hkv, D, W = THREADS, 2, 4, 2, 16, 24
    rng = np.random.default_rng(3)
    streams = [[_f32(rng, B, h, 60, D) for h in (Hq, Hkv, Hkv)] for _ in range(layers)]

    def drive(cache, layer):
        q, k, v = streams[layer]
        outs = [cache.attend_new(layer, q[:, :, :20], k[:, :, :20], v[:, :, :20])]
        for t in range(20, 60):
            outs.append(cache.attend_new(layer, q[:, :, t:t + 1], k[:, :, t:t + 1],
                                         v[:, :, t:t + 1]))
        return np.concatenate(outs, axis=2)

    alone = [drive(fastattn.KVCache(layers, B, Hkv, D, W + 19, window=W), layer)
             for layer in range(layers)]
    shared = fastattn.KVCache(layers, B, Hkv, D, W + 19, window=W)
    together = concurrently([lambda i=i: drive(shared, i) for i in range(layers)], layers)
    for layer in range(layers):
        assert np.array_equal(together[layer], alone[layer]), layer
    assert shared.lengths.tolist() == [60] * layers


# -- one model, several threads generating at once ------------------------------------------

MODELS = {
    "gpt2": lambda rng: gpt2_checkpoint(rng),
    "llama-gqa": lambda rng: llama_checkpoint(rng),
    "mistral-window": lambda rng: llama_checkpoint(rng, "mistral", window=5),  # a ring
    "mistral-long-window": lambda rng: llama_checkpoint(rng, "mistral", window=131072),
}


@contextlib.contextmanager
def kernel_threads(n):
    """``fastattn.threads(n)``, or the default for None. The model and pipeline tests are about
    Python threads sharing objects and run their kernels on 1 thread: OpenMP teams started from
    several Python threads at once are what the kernel tests (and gpt2-omp) cover, and on a
    loaded machine tiny kernels on 2 OpenMP threads wait for a free core at every call (6
    mistral generations took 4.2 s instead of 0.16 s on a 2-core machine at load 10)."""
    with contextlib.nullcontext() if n is None else fastattn.threads(n):
        yield


@pytest.mark.parametrize("case,omp", [("gpt2", 1), ("gpt2-omp", None), ("llama-gqa", 1),
                                      ("mistral-window", 1), ("mistral-long-window", 1)])
def test_shared_decoder_model_generates_for_several_threads(case, omp, rng):
    """Each thread its own prompt (batches of 1 and 2), greedy or sampled with its own seed;
    every generate call gets its own cache from start_generation."""
    config, tensors = MODELS[case.removesuffix("-omp")](rng)
    new = 24
    c = load_config(config)
    model = (build_gpt2 if c.model_type == "gpt2" else build_llama)(c, tensors)
    prompts = [rng.integers(0, c.vocab_size - 1, (1 + j % 2, 3 + j)) for j in range(THREADS)]
    jobs = [lambda p=p, j=j: model.generate(p, new, temperature=0.8 * (j % 2), seed=j,
                                            eos_token_id=None)
            for j, p in enumerate(prompts)]
    with kernel_threads(omp):
        assert_same_as_alone(jobs)


# -- one pipeline, several threads ----------------------------------------------------------

@pytest.fixture(scope="module")
def bert_dir(tmp_path_factory):
    return write_bert_dir(tmp_path_factory.mktemp("bert-threads"))  # with a masked-LM head


WORDS = VOCAB[5:18] + ["cats", "playing", "sunny", "rainy", "xyz"]


def texts(j, n):
    """n short texts, different for each j."""
    rng = np.random.default_rng(j)
    return [" ".join(rng.choice(WORDS, 2 + (j + i) % 9)) for i in range(n)]


def test_shared_sentence_embedder_serves_several_threads(bert_dir):
    embedder = SentenceEmbedder(bert_dir)
    jobs = [lambda j=j: embedder(texts(j, 5), batch_size=2) for j in range(3 * THREADS)]
    with kernel_threads(1):
        assert_same_as_alone(jobs)


def test_shared_fill_mask_serves_several_threads(bert_dir):
    unmask = FillMask(bert_dir)

    def job(j):
        words = texts(j, 1)[0].split()
        words[j % len(words)] = "[MASK]"
        return lambda: unmask(" ".join(words), top_k=3)

    jobs = [job(j) for j in range(3 * THREADS)]
    with kernel_threads(1):
        alone = [run() for run in jobs]
        assert concurrently(jobs) == alone  # tokens and float scores, exactly
