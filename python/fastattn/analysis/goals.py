"""Predicted vs measured on the issue's goal shapes, in one command (docs/analysis.md,
"Predicted vs measured"):

    flock /tmp/fastattn-bench.lock python -m fastattn.analysis.goals --threads 1 --refresh

GPT-2 small (prefill 512, then 128 decode steps), the TinyLlama-1.1B shape in float32 (prefill
128, 32 decode steps) and BERT-base (forward 128 and 512), random weights built in memory with
the bench's builders (no checkpoint written), timed with analysis.measure (what
``fastattn analyze`` runs: best of 3) and predicted with analysis.predict on
``analysis.machine()`` at the same thread count (``--refresh``: measured again first). The
TinyLlama shape needs ~9 GB of memory (its weights and their packed copies).
"""
from __future__ import annotations

import argparse
import os
import types

from . import cost, machine, predict
from .measure import measure_decoder, measure_encoder

CASES = ("gpt2", "llama", "bert")


def _row(out, name: str, c, measured: float, m, per: int = 1) -> float:
    p = predict(c, m)
    ratio = measured / p.seconds
    out(f"{name:<36}{p.seconds / per * 1e3:>11.2f}{measured / per * 1e3:>11.2f}{ratio:>8.2f}"
        f"  {p.bound}")
    return ratio


def run(cases=CASES, out=print) -> dict:
    """{case name: measured / predicted} of the goal shapes (module docstring), printed."""
    from ..bench import models as bm
    from ..bench.bert import bert_config
    from ..testing import random_checkpoint
    m = machine()
    out(f"# {m}")
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    out(f"# load average at the start {load:.2f}")
    out(f"{'case':<36}{'pred ms':>11}{'meas ms':>11}{'ratio':>8}  bound")
    ratios = {}
    if "gpt2" in cases:
        model, _ = bm.gpt2_model(bm.GPT2_SMALL)
        r = measure_decoder(model, batch=1, seq_len=512, steps=128)
        ratios["gpt2 prefill 512"] = _row(out, "GPT-2 small prefill 512",
                                          cost(model.config, seq_len=512), r["prefill"], m)
        ratios["gpt2 decode"] = _row(out, "GPT-2 small decode (per token)",
                                     cost(model.config, seq_len=128, mode="decode",
                                          context=512), r["decode"], m, 128)
        del model
    if "llama" in cases:
        model, _ = bm.tinyllama_model(bm.TINYLLAMA)
        r = measure_decoder(model, batch=1, seq_len=128, steps=32)
        ratios["tinyllama prefill 128"] = _row(out, "TinyLlama shape prefill 128",
                                               cost(model.config, seq_len=128), r["prefill"], m)
        ratios["tinyllama decode"] = _row(out, "TinyLlama shape decode (per token)",
                                          cost(model.config, seq_len=32, mode="decode",
                                               context=128), r["decode"], m, 32)
        del model
    if "bert" in cases:
        from ..models.bert import BertModel
        config = bert_config(768, 12, 12, 3072)
        model = BertModel.from_weights(types.SimpleNamespace(**config),
                                       random_checkpoint(config))
        for n in (128, 512):
            r = measure_encoder(model, model.config, batch=1, seq_len=n)
            ratios[f"bert forward {n}"] = _row(out, f"BERT-base forward {n}",
                                               cost(model.config, seq_len=n), r["forward"], m)
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    out(f"# load average at the end {load:.2f}")
    return ratios


def main(argv=None) -> int:
    import fastattn
    parser = argparse.ArgumentParser(prog="python -m fastattn.analysis.goals",
                                     description=__doc__.split("\n\n")[0])
    parser.add_argument("--threads", type=int, help="kernel threads (default: fastattn's)")
    parser.add_argument("--refresh", action="store_true",
                        help="measure the machine again before predicting")
    parser.add_argument("--only", default=",".join(CASES),
                        help=f"comma-separated subset of {', '.join(CASES)}")
    args = parser.parse_args(argv)
    cases = [c for c in args.only.split(",") if c]
    unknown = sorted(set(cases) - set(CASES))
    if unknown:
        parser.error(f"--only: unknown case(s) {', '.join(unknown)}; known: {', '.join(CASES)}")
    if args.threads:
        fastattn.set_num_threads(args.threads)
    if args.refresh:
        machine(refresh=True)
    run(cases)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
