"""Opening a checkpoint: fastattn.SafetensorsFile (memory-mapped views) against the
`safetensors` package's NumPy loader (copies), on a 512 MiB F32 file (32 tensors 4096 x 1024)
in the page cache. Interleaved, median of 5; "open" takes every tensor, "open+sum" also reads
every byte.

    flock /tmp/fastattn-bench.lock python bench/loading_open.py [path]
"""
import os
import statistics
import sys
import time

import numpy as np

import fastattn

try:
    from safetensors.numpy import load_file
except ImportError:
    load_file = None


def main(path: str) -> None:
    if not os.path.exists(path):
        rng = np.random.default_rng(0)
        fastattn.save_safetensors(path, {f"w{i}": rng.standard_normal((4096, 1024),
                                                                      dtype=np.float32)
                                         for i in range(32)})

    def ours():
        with fastattn.SafetensorsFile(path) as f:
            return {n: f[n] for n in f}

    contenders = {"fastattn": ours}
    if load_file is not None:
        contenders["safetensors"] = lambda: load_file(path)
    times = {f"{n} {what}": [] for n in contenders for what in ("open", "open+sum")}
    for _ in range(5):
        for name, fn in contenders.items():
            t = time.perf_counter()
            tensors = fn()
            times[f"{name} open"].append(time.perf_counter() - t)
            del tensors
            t = time.perf_counter()
            tensors = fn()
            sum(float(v.sum()) for v in tensors.values())
            times[f"{name} open+sum"].append(time.perf_counter() - t)
            del tensors
    for key, values in times.items():
        print(f"{key:22s} {statistics.median(values) * 1e3:9.2f} ms")


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "/tmp/fastattn-loading-bench.safetensors")
