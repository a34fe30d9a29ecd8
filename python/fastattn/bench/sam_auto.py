"""Benchmark cases for automatic masks (issue 14). Goal, 2 threads, same run: a 32 x 32 grid
on one 1024 x 1024 image, excluding the encoder, >= 5x the reference's
SamAutomaticMaskGenerator on PyTorch CPU.

The reference (segment-anything) cannot run here: it imports torchvision (batched_nms), and
no torchvision works with this CPU-only torch build. The competitor measured instead is
Hugging Face transformers' "mask-generation" pipeline, the same algorithm on the same PyTorch:
its per-batch work (prompt encoder + mask decoder for 64 points, every mask upsampled to
1024 x 1024, IoU and stability filtering, boxes, edge filter, RLE) runs without torchvision;
its final step (post_process_for_mask_generation: box NMS) needs torchvision and is left out
of its time, while fastattn's time includes its NMS and the records. Both start from the
image embedding of the same image computed beforehand by their own encoders with the same
weights (transformers' random initialisation of a ViT-B SamModel, saved once as a
checkpoint directory that both load).

Rows: the reference's default thresholds (pred_iou_thresh 0.88, stability 0.95); with
``python -m fastattn.bench.sam_auto --all`` also both thresholds 0 (every one of the 3072
masks survives the filters and is upsampled: the case where the low-resolution prefilter saves
nothing; minutes per call). With random weights no mask passes the defaults, so that row times
the decoder calls and the filtering. ``--quick``: a tiny model on a 256 x 256 image with an
8 x 8 grid.
"""
from __future__ import annotations

import tempfile
import time

import numpy as np

from . import Case, try_import_torch

GOAL = ">= 5x reference (here: transformers' mask-generation, its final NMS excluded)"


def sam_config(quick: bool) -> dict:
    """transformers SamConfig arguments: ViT-B (its defaults) or a tiny model."""
    if not quick:
        return {}
    return {"vision_config": {"hidden_size": 32, "num_hidden_layers": 2,
                              "num_attention_heads": 2, "mlp_dim": 64, "image_size": 256,
                              "output_channels": 32, "window_size": 4,
                              "global_attn_indexes": [1], "num_pos_feats": 16},
            "prompt_encoder_config": {"hidden_size": 32, "image_size": 256},
            "mask_decoder_config": {"hidden_size": 32, "mlp_dim": 64, "num_attention_heads": 2,
                                    "iou_head_hidden_dim": 32}}


def photo(size: int, seed: int = 0) -> np.ndarray:
    """A smooth synthetic uint8 RGB image (random walks along rows and columns)."""
    rng = np.random.default_rng(seed)
    steps = rng.integers(-6, 7, (size, size, 3))
    walk = np.cumsum(np.cumsum(steps, axis=0), axis=1) / size
    walk = (walk - walk.min()) / max(np.ptp(walk), 1e-9) * 255
    return walk.astype(np.uint8)


def build(directory: str, quick: bool, with_torch: bool = True):
    """(fastattn model, transformers SamModel) with the same random weights; without torch
    (``with_torch=False``) a fastattn.testing checkpoint and None."""
    import fastattn
    if not with_torch:
        from ..testing import write_sam_checkpoint
        write_sam_checkpoint(directory, {"model_type": "sam", **sam_config(quick)})
        return fastattn.load(directory, mmap=False), None
    import transformers
    hf = transformers.SamModel(transformers.SamConfig(**sam_config(quick))).eval()
    hf.save_pretrained(directory)
    return fastattn.load(directory, mmap=False), hf


def hf_pipeline(hf, image_size: int):
    import transformers
    from transformers.models.sam.image_processing_pil_sam import SamImageProcessorPil
    processor = SamImageProcessorPil(size={"longest_edge": image_size},
                                     pad_size={"height": image_size, "width": image_size})
    return transformers.pipeline("mask-generation", model=hf, image_processor=processor,
                                 device="cpu")


ROWS = ((0.88, 0.95), (0.0, 0.0))     # (pred_iou_thresh, stability_score_thresh) per row


def _hf_runner(torch, pipe, chunks, iou_t: float, stab_t: float):
    """transformers' per-batch work over the precomputed chunks (its embedding included)."""
    def call():
        with torch.inference_mode():
            # _forward pops its arguments: a shallow copy per call
            return [pipe._forward(dict(c), pred_iou_thresh=iou_t,
                                  stability_score_thresh=stab_t) for c in chunks]
    return call


def runners(quick: bool = False, rows=ROWS):
    """[(row name, fastattn call, transformers call or None)], one per thresholds pair: each
    call answers the whole grid for the image whose embedding was computed here, once per
    library (the encoders stay outside the timed calls)."""
    torch = try_import_torch()
    from ..pipelines.sam_automatic import SamAutomaticMaskGenerator
    size, n = (256, 8) if quick else (1024, 32)
    image = photo(size)
    with tempfile.TemporaryDirectory() as directory:
        model, hf = build(directory, quick, torch is not None)
    predictor = SamAutomaticMaskGenerator(model).predictor
    predictor.set_image(image)
    pipe = chunks = None
    if torch is not None:
        from PIL import Image
        pipe = hf_pipeline(hf, size)
        chunks = list(pipe.preprocess(Image.fromarray(image), points_per_batch=64,
                                      points_per_crop=n))
    out = []
    for iou_t, stab_t in rows:
        gen = SamAutomaticMaskGenerator(model, points_per_side=n, points_per_batch=64,
                                        pred_iou_thresh=iou_t, stability_score_thresh=stab_t)
        gen.predictor = predictor                 # the image embedded above
        hf_call = None if pipe is None else _hf_runner(torch, pipe, chunks, iou_t, stab_t)
        name = f"{'tiny 256' if quick else 'ViT-B 1024'} {n}x{n} iou>{iou_t} stab>={stab_t}"
        out.append((name, gen.generate_from_predictor, hf_call))
    return out


def cases(quick: bool = False):
    # the default thresholds only: with thresholds 0 every one of the 3072 masks is upsampled
    # by both libraries, minutes per call on 2 cores (python -m fastattn.bench.sam_auto --all)
    for name, fa, hf_call in runners(quick, ROWS[:1]):
        impls = {"fastattn": fa}
        if hf_call is not None:
            impls["torch"] = hf_call
        yield Case("sam auto", name, impls, goal=GOAL,
                   extra={"masks": len(fa()), "competitor": "transformers mask-generation "
                          "(per-batch decode + filter; final NMS needs torchvision)"})


def main(quick: bool = False, repeats: int = 3, rows=ROWS[:1]):
    """One measurement per row, interleaved fastattn / transformers / transformers / fastattn
    ..., medians; prints seconds, the ratio and the number of masks."""
    import statistics
    for name, fa, hf_call in runners(quick, rows):
        masks = len(fa())                   # warm-up, and the count
        kept = None if hf_call is None else sum(len(o["iou_scores"]) for o in hf_call())
        times = {"fastattn": [], "transformers": []}
        for r in range(repeats):
            order = (("fastattn", fa), ("transformers", hf_call))
            for label, call in order if r % 2 == 0 else order[::-1]:
                if call is None:
                    continue
                t0 = time.perf_counter()
                call()
                times[label].append(time.perf_counter() - t0)
        med = {k: statistics.median(v) for k, v in times.items() if v}
        line = f"sam auto {name}: fastattn {med['fastattn'] * 1e3:.0f} ms ({masks} masks)"
        if "transformers" in med:
            line += (f", transformers {med['transformers'] * 1e3:.0f} ms ({kept} masks before "
                     f"its NMS): {med['transformers'] / med['fastattn']:.2f}x")
        print(line, flush=True)


def stability_agreement(model, image, n: int = 32, offsets=(1.0,), quantiles=(0.5, 0.9),
                        margins=(0.05, 0.1, 0.2)) -> dict:
    """How far the low-resolution stability estimate is from the reference's score (logits
    upsampled to the image size), over every mask of an n x n grid (no IoU filter), per
    stability offset: the mean |estimate - score| and quantiles of the signed difference;
    per threshold t and prefilter margin m, how many masks the prefilter rules out
    (estimate < t - m: their upsampling is skipped) and how many of those the reference keeps
    (score >= t: wrong drops), against how many it keeps in all. The thresholds are the
    ``quantiles`` of the reference's scores (a random model's scores sit far from a trained
    one's: with its small logits, 0.95 may keep nothing); offsets scaled with the logits give
    scores that are not all 0 or all 1."""
    from ..pipelines import mask_utils as mu
    from ..pipelines.sam_automatic import SamAutomaticMaskGenerator
    from ..pipelines.sam_predictor import MASK_THRESHOLD, upscale_masks
    gen = SamAutomaticMaskGenerator(model, points_per_side=n)
    gen.predictor.set_image(image)
    h, w = image.shape[:2]
    points = mu.build_point_grid(n) * [w, h]
    low = {o: [] for o in offsets}
    full = {o: [] for o in offsets}
    for i in range(0, len(points), 64):
        p = points[i:i + 64]
        low_res, _, (size, input_size, orig) = gen.predictor.predict_low_res(
            p[:, None], np.ones((len(p), 1), np.int64))
        low_res = low_res.reshape(-1, *low_res.shape[2:])
        for o in offsets:
            gen.stability_score_offset = o
            low[o].append(gen.low_res_stability(low_res, size, input_size))
        for j in range(0, len(low_res), 16):
            logits = upscale_masks(low_res[j:j + 16], size, input_size, orig, return_logits=True)
            for o in offsets:
                full[o].append(mu.stability_score(logits, MASK_THRESHOLD, o))
    out = {"masks": len(points) * 3}
    for o in offsets:
        est, ref = np.concatenate(low[o]), np.concatenate(full[o])
        diff = est - ref
        row = {"mean_abs_diff": round(float(np.abs(diff).mean()), 4),
               "diff_q0_q1_q50_q99_q100": [round(float(q), 4) for q in
                                           np.quantile(diff, [0, 0.01, 0.5, 0.99, 1])]}
        for q in quantiles:
            t = float(np.quantile(ref, q))
            kept = ref >= np.float32(t)
            name = f"t=q{q}={t:.3f}"
            row[f"{name} reference keeps"] = int(kept.sum())
            for m in margins:
                ruled_out = est < np.float32(t - m)
                row[f"{name} m{m} skipped / wrong drops"] = (int(ruled_out.sum()),
                                                             int((ruled_out & kept).sum()))
        out[f"offset {o}"] = row
    return out


def record_agreement(model, image, n: int = 32, **kwargs) -> dict:
    """The generator's records with low- and full-resolution stability (same other
    parameters): how many each returns, how many are the same record (same prompt point,
    equal mask), and the mask IoU of each unmatched record with its best counterpart."""
    from ..pipelines.sam_automatic import SamAutomaticMaskGenerator
    runs = {res: SamAutomaticMaskGenerator(model, points_per_side=n, stability_resolution=res,
                                           output_mode="binary_mask", **kwargs).generate(image)
            for res in ("low", "full")}
    low, full = runs["low"], runs["full"]

    def key(r):
        return (tuple(r["point_coords"][0]), r["segmentation"].tobytes())
    same = len({key(r) for r in low} & {key(r) for r in full})

    def best_iou(r, others):
        m = r["segmentation"]
        return max((float((m & o["segmentation"]).sum() / max((m | o["segmentation"]).sum(), 1))
                    for o in others), default=0.0)
    full_keys, low_keys = {key(r) for r in full}, {key(r) for r in low}
    unmatched = ([best_iou(r, full) for r in low if key(r) not in full_keys]
                 + [best_iou(r, low) for r in full if key(r) not in low_keys])
    return {"low": len(low), "full": len(full), "same": same,
            "unmatched_best_iou": sorted(round(u, 3) for u in unmatched)}


def disk_agreement(radii=(8, 16, 32, 64, 128, 256), widths=(2.0, 4.0, 8.0, 16.0),
                   amplitude: float = 10.0, offset: float = 1.0, threshold: float = 0.95,
                   margins=(0.05, 0.1), seed: int = 0) -> list[dict]:
    """The low-resolution estimate against the full-resolution score on object-like masks
    whose shape and edge are known: a disk of radius r (pixels of the 1024 x 1024 frame) at
    a random sub-pixel centre, low-res (256 x 256) logits ``amplitude * tanh(d / width)`` with d
    the signed distance (px) of each low-res pixel centre to the circle (a trained SAM's
    logits reach about +-10..20; width sets how soft the edge is: 4 px = one low-res pixel).
    Per (r, width): estimate, score, and per margin whether the prefilter would drop a mask the
    reference keeps at ``threshold``."""
    from ..pipelines import mask_utils as mu
    from ..pipelines.sam_predictor import MASK_THRESHOLD, upscale_masks
    rng = np.random.default_rng(seed)
    centres = (np.arange(256) + 0.5) * 4 - 0.5      # low-res pixel centres in 1024-frame px
    rows = []
    for r in radii:
        cy, cx = rng.uniform(384, 640, 2)
        dist = r - np.hypot(centres[:, None] - cy, centres[None, :] - cx)
        for width in widths:
            low = (amplitude * np.tanh(dist / width)).astype(np.float32)[None]
            est = float(mu.stability_score(low, MASK_THRESHOLD, offset)[0])
            full = upscale_masks(low, 1024, (1024, 1024), (1024, 1024), return_logits=True)
            ref = float(mu.stability_score(full, MASK_THRESHOLD, offset)[0])
            row = {"radius": r, "width": width, "estimate": round(est, 4),
                   "score": round(ref, 4)}
            for m in margins:
                row[f"wrong drop m{m}"] = bool(ref >= threshold and est < threshold - m)
            rows.append(row)
    return rows


if __name__ == "__main__":
    import sys
    main(quick="--quick" in sys.argv, rows=ROWS if "--all" in sys.argv else ROWS[:1])
