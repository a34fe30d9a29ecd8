"""Benchmark cases for matmul (issue 3) against numpy's BLAS (OpenBLAS in the wheels).

NumPy's BLAS threads are limited to fastattn's thread count (``fastattn bench --threads 1``
compares one thread with one thread) through threadpoolctl when it is installed; without it,
run with ``OPENBLAS_NUM_THREADS=<n>`` in the environment (read when numpy loads OpenBLAS).
Goals: square 256..4096 >= 1.0x numpy; square 16..128 and the attention-like batch >= 1.5x
(issue 15: >= 1.0x from 32^3 up on AVX2 and AVX-512, parity at every square size); the skinny
products (a few tokens through a layer, per-head attention scores) >= 1.0x;
GEMV >= 85% of the measured memory bandwidth (bytes = the weight, read once); prefill-like
128x4096 @ 4096x4096 >= 1.0x; Linear + bias + GELU >= 1.3x numpy's unfused composition; the
exact-GELU Linear (ViT-B's MLP, 256x768 @ 768x3072) >= 1.0x torch's addmm + F.gelu, its epilogue
a small part of the Linear's time.
"""
from __future__ import annotations

import itertools

import numpy as np

import fastattn
from fastattn import reference

from . import Case, try_import_torch


def limit_numpy_threads(n: int) -> bool:
    """Caps numpy's BLAS at n threads for the rest of the process (threadpoolctl), if it can."""
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:
        return False
    threadpool_limits(limits=n, user_api="blas")
    return True


def cases(quick: bool = False):
    limit_numpy_threads(fastattn.get_num_threads())
    torch = try_import_torch()
    rng = np.random.default_rng(0)

    def rand(*shape):
        return rng.standard_normal(shape, dtype=np.float32)

    def impls(fa, npf, tf=None):
        d = {"fastattn": fa, "numpy": npf}
        if torch is not None and tf is not None:
            d["torch"] = tf
        return d

    # --quick: smaller and fewer shapes of every row kind (a call-bound, a cache-sized and a
    # larger square; one GEMV weight of 32 MiB in 128 MiB of copies; a smaller prefill), so
    # that `fastattn bench --quick` stays a short smoke run
    sizes = [16, 128, 512] if quick else [16, 32, 64, 128, 256, 512, 1024, 2048, 4096]
    for n in sizes:
        a, b = rand(n, n), rand(n, n)
        out = np.empty((n, n), np.float32)
        goal = ">= 1.5x numpy" if n <= 128 else ">= 1.0x numpy"
        ta, tb = (torch.from_numpy(a), torch.from_numpy(b)) if torch is not None else (None, None)
        yield Case("matmul", f"{n}x{n}x{n}", impls(
            lambda a=a, b=b, out=out: fastattn.matmul(a, b, out=out),
            lambda a=a, b=b, out=out: np.matmul(a, b, out=out),
            lambda ta=ta, tb=tb: ta @ tb), flops=2.0 * n ** 3, goal=goal)

    # skinny products (issue 15): a few tokens through a layer and per-head attention scores,
    # as in SAM's mask decoder (7 tokens of 256 / 128 dims against 64 x 64 = 4096 image
    # tokens) and ViT-B at batch 1 (197 tokens, head dim 64). One product per call.
    skinny = [(7, 256, 256), (7, 128, 4096), (4096, 128, 7), (197, 64, 197)]
    for m, k, n in skinny[:2] if quick else skinny:
        a, b = rand(m, k), rand(k, n)
        out = np.empty((m, n), np.float32)
        ta, tb = (torch.from_numpy(a), torch.from_numpy(b)) if torch is not None else (None, None)
        yield Case("matmul skinny", f"{m}x{k}@{k}x{n}", impls(
            lambda a=a, b=b, out=out: fastattn.matmul(a, b, out=out),
            lambda a=a, b=b, out=out: np.matmul(a, b, out=out),
            lambda ta=ta, tb=tb: ta @ tb), flops=2.0 * m * n * k, goal=">= 1.0x numpy")

    # attention-like: 32 heads of (128 x 64) @ (64 x 128)
    q, kt = rand(32, 128, 64), rand(32, 64, 128)
    sc = np.empty((32, 128, 128), np.float32)
    tq, tk = (torch.from_numpy(q), torch.from_numpy(kt)) if torch is not None else (None, None)
    yield Case("matmul batched", "32x(128x64@64x128)", impls(
        lambda: fastattn.matmul(q, kt, out=sc), lambda: np.matmul(q, kt, out=sc),
        lambda: tq @ tk), flops=2.0 * 32 * 128 * 64 * 128, goal=">= 1.5x numpy")

    # decode GEMV: bytes = the weight, read once. Each call takes the next of several copies of
    # the weight, together >= 256 MiB (8x this machine's 32 MiB L3; 128 MiB with --quick), so
    # every call streams its weight from memory as in a model's decode step; a lone 64 MiB
    # weight stays partly in L3.
    K, total = (2048, 128 << 20) if quick else (4096, 256 << 20)
    for n_out in (4096,) if quick else (4096, 11008):
        x = rand(1, K)
        w_nk = rand(n_out, K)               # PyTorch Linear layout (N, K)
        copies = -(-total // w_nk.nbytes)
        y = np.empty((1, n_out), np.float32)
        ws_nk = [w_nk] + [w_nk.copy() for _ in range(copies - 1)]
        ws_kn = [np.ascontiguousarray(w.T) for w in ws_nk]   # (K, N) layout (GPT-2 Conv1D)
        packs = [fastattn.PackedMatrix(w, transpose=True) for w in ws_nk]
        t_ws = [torch.from_numpy(w) for w in ws_nk] if torch is not None else None
        tx = torch.from_numpy(x) if torch is not None else None
        shape, flops = f"1x{K}@{K}x{n_out}", 2.0 * K * n_out

        def turn(items):
            return itertools.cycle(items).__next__

        # one turn per implementation, so each walks through all copies on its own
        nk, nk_np, pk_np = turn(ws_nk), turn(ws_nk), turn(ws_nk)
        kn, kn_np, pk = turn(ws_kn), turn(ws_kn), turn(packs)
        yield Case("gemv x@W^T", shape, impls(
            lambda x=x, w=nk, y=y: fastattn.matmul(x, w(), transpose_b=True, out=y),
            lambda x=x, w=nk_np, y=y: np.matmul(x, w().T, out=y),
            (lambda tx=tx, tw=turn(t_ws): tx @ tw().T) if torch is not None else None),
            bytes=w_nk.nbytes, flops=flops, goal=">= 85% memory bandwidth")
        yield Case("gemv x@W", shape, impls(
            lambda x=x, w=kn, y=y: fastattn.matmul(x, w(), out=y),
            lambda x=x, w=kn_np, y=y: np.matmul(x, w(), out=y)),
            bytes=w_nk.nbytes, flops=flops, goal=">= 85% memory bandwidth")
        yield Case("gemv packed", shape, impls(
            lambda x=x, p=pk, y=y: fastattn.matmul(x, p(), out=y),
            lambda x=x, w=pk_np, y=y: np.matmul(x, w().T, out=y)),
            bytes=w_nk.nbytes, flops=flops, goal=">= 85% memory bandwidth")
        del ws_nk, ws_kn, packs, t_ws

    # prefill-like: M tokens through a K x K Linear weight stored (N, K)
    M, K = (64, 2048) if quick else (128, 4096)
    x, w = rand(M, K), rand(K, K)
    y = np.empty((M, K), np.float32)
    packed = fastattn.PackedMatrix(w, transpose=True)
    tx, tw = (torch.from_numpy(x), torch.from_numpy(w)) if torch is not None else (None, None)
    flops, shape = 2.0 * M * K * K, f"{M}x{K}@{K}x{K}"
    yield Case("prefill x@W^T", shape, impls(
        lambda: fastattn.matmul(x, w, transpose_b=True, out=y), lambda: np.matmul(x, w.T, out=y),
        lambda: tx @ tw.T), flops=flops, goal=">= 1.0x numpy")
    yield Case("prefill packed", shape, impls(
        lambda: fastattn.matmul(x, packed, out=y), lambda: np.matmul(x, w.T, out=y)),
        flops=flops, goal=">= 1.0x numpy (packing gain)")

    # fused Linear + bias + GELU(tanh) vs numpy's gelu(x @ w.T + b)
    x, w, b = rand(256, 1024), rand(4096, 1024), rand(4096)
    y = np.empty((256, 4096), np.float32)
    packed = fastattn.PackedMatrix(w, transpose=True)
    tx, tw, tb = ((torch.from_numpy(x), torch.from_numpy(w), torch.from_numpy(b))
                  if torch is not None else (None, None, None))
    yield Case("linear+bias+gelu", "256x1024@1024x4096", impls(
        lambda: fastattn.matmul(x, packed, bias=b, activation="gelu_tanh", out=y),
        lambda: reference.gelu(x @ w.T + b, "tanh"),
        lambda: torch.nn.functional.gelu(torch.nn.functional.linear(tx, tw, tb),
                                         approximate="tanh")),
        flops=2.0 * 256 * 1024 * 4096, goal=">= 1.3x numpy")

    # ViT-B / BERT-base MLP up-projection with the exact (erf) GELU fused, beside the same
    # Linear + bias without it: the difference of the two fastattn rows is the epilogue's cost;
    # torch runs addmm then F.gelu (two passes). NumPy has no erf (the reference calls
    # math.erfc per element), so its column in both rows is x @ w + b alone. (Names of their
    # own: the lambdas above read x, w, b, packed, y when they run, after this rebinding.)
    M, K, N = (64, 768, 3072) if quick else (256, 768, 3072)
    xm, wm, bm = rand(M, K), rand(K, N) * np.float32(K ** -0.5), rand(N)
    ym = np.empty((M, N), np.float32)
    pm = fastattn.PackedMatrix(wm)
    txm, twm, tbm = ((torch.from_numpy(xm), torch.from_numpy(wm), torch.from_numpy(bm))
                     if torch is not None else (None, None, None))
    shape, flops = f"{M}x{K}@{K}x{N}", 2.0 * M * K * N
    yield Case("linear+bias", shape, impls(
        lambda: fastattn.matmul(xm, pm, bias=bm, out=ym), lambda: xm @ wm + bm,
        lambda: torch.addmm(tbm, txm, twm)), flops=flops, goal="(the row below without GELU)")
    yield Case("linear+bias+gelu(erf)", shape, impls(
        lambda: fastattn.matmul(xm, pm, bias=bm, activation="gelu", out=ym),
        lambda: xm @ wm + bm,
        lambda: torch.nn.functional.gelu(torch.addmm(tbm, txm, twm))), flops=flops,
        goal=">= 1.0x torch; epilogue cost vs the row above (numpy column: no GELU)")
