"""The `fastattn` command: `fastattn bench` runs the benchmarks, `fastattn info` prints what the
kernels run on, `fastattn generate` continues a prompt with a decoder checkpoint,
`fastattn embed` searches the lines of a file for the nearest neighbours of a query with
a BERT-family model, `fastattn classify` labels images with a vision checkpoint (and shows
where a ViT looked), `fastattn classify-text` labels texts with a sequence-classification
checkpoint (BERT, RoBERTa, XLM-R, DistilBERT, ...), `fastattn segment` cuts masks out of an
image with Segment Anything, `fastattn embed-corpus` embeds a corpus on Ray Data (files in,
Parquet shards out), `fastattn analyze` predicts (and measures) what a model costs
here, `fastattn attention` draws a text model's attention over a text."""
from __future__ import annotations

import argparse
import json
import os
import sys

# Timed samples per implementation (the median is reported): full runs, and --quick smoke runs.
FULL_REPEATS = 7
QUICK_REPEATS = 3

def cmd_bench(args) -> int:
    import datetime

    import numpy as np

    import fastattn
    from fastattn import bench
    from fastattn.bench.report import machine_line

    if args.from_json or args.plot:
        checked = _check_bench_plot_args(args)
        if checked is not None:
            return checked
    if args.threads:
        fastattn.set_num_threads(args.threads)
    if args.from_json:
        return _bench_plots_from_json(args)
    repeats = args.repeats or (QUICK_REPEATS if args.quick else FULL_REPEATS)
    torch = bench.try_import_torch()
    info = fastattn.cpu_info()
    date = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    copy_bw = bench.copy_bandwidth()
    print(f"# {machine_line(info, copy_bw)}")
    print(f"# {date}; torch {torch.__version__ if torch else 'not installed'}; medians of "
          f"{repeats} repeats in settled blocks (A B C, C B A); times per call"
          f"{'; --quick shapes' if args.quick else ''}")
    print(bench.HEADER)
    results = bench.run(
        bench.iter_cases(args.suite or None, quick=args.quick, name_filter=args.filter),
        repeats=repeats,
        progress=lambda r: print(bench.format_row(r, copy_bw), flush=True))
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"date": date, "quick": args.quick, "repeats": repeats,
                       "fastattn": fastattn.__version__, "numpy": np.__version__,
                       "machine": info, "copy_bandwidth_bytes_per_s": copy_bw,
                       "torch": torch.__version__ if torch else None,
                       "results": [r.as_dict() for r in results]}, f, indent=2)
        print(f"# saved {args.json}; `python -m fastattn.bench.report {args.json}` "
              f"makes docs/benchmarks.md from it")
    if args.plot:
        return _bench_plots([r.as_dict() for r in results], args.plot)
    return 0


# -- bench --plot / --from-json (docs/analysis.md, "Pictures") ------------------------------------

def speedup_path(path: str) -> str:
    """The speedup chart written beside the roofline: roofline.png -> roofline_speedup.png."""
    stem, suffix = os.path.splitext(path)
    return f"{stem}_speedup{suffix or '.png'}"


def _check_bench_plot_args(args):
    """None when --plot / --from-json can go ahead, else the exit code after the message."""
    if args.from_json and not args.plot:
        print("fastattn bench: --from-json needs --plot PATH (the table of a saved run: "
              "python -m fastattn.bench.report RUN.json)", file=sys.stderr)
        return 2
    try:
        from fastattn.plot import require_matplotlib
        require_matplotlib()   # fail before a run of minutes, not after it
    except ImportError as e:
        print(f"fastattn bench: --plot: {e}", file=sys.stderr)
        return 2
    return None


def _bench_plots_from_json(args) -> int:
    try:
        with open(args.from_json) as f:
            run = json.load(f)
    except OSError as e:
        print(f"fastattn bench: --from-json: cannot read {args.from_json!r}: {e.strerror}",
              file=sys.stderr)
        return 2
    except ValueError as e:
        print(f"fastattn bench: --from-json {args.from_json!r}: not JSON ({e})", file=sys.stderr)
        return 2
    rows = run.get("results") if isinstance(run, dict) else None
    if not isinstance(rows, list) or not all(
            isinstance(r, dict) and isinstance(r.get("op"), str) and isinstance(r.get("shape"), str)
            for r in rows):
        print(f"fastattn bench: --from-json {args.from_json!r}: not a `fastattn bench --json` "
              f"run (a 'results' list of rows with 'op' and 'shape')", file=sys.stderr)
        return 2
    return _bench_plots(rows, args.plot, run.get("date"))


def _bench_plots(rows: list, path: str, date: str | None = None) -> int:
    """The roofline of this machine (analysis.machine(), measured once and cached) with the
    rows on it, at ``path``, and the speedup chart beside it (speedup_path)."""
    from fastattn import analysis
    from fastattn.analysis.plots import roofline_chart, speedup_chart
    m = analysis.machine()
    title = (f"Roofline: {m.cpu_model}, {m.isa}, {m.threads} threads"
             + (f"; bench run of {date}" if date else ""))
    try:
        roofline_chart(rows, m, path, title=title)
        print(f"# roofline: {path} (machine: {m})", file=sys.stderr)
        speedup = speedup_path(path)
        speedup_chart(rows, speedup)
        print(f"# speedups: {speedup}", file=sys.stderr)
    except (OSError, ValueError) as e:
        print(f"fastattn bench: --plot: {e}", file=sys.stderr)
        return 2
    return 0


def cmd_info(args) -> int:
    import fastattn
    for k, v in fastattn.cpu_info().items():
        print(f"{k}: {v}")
    return 0


def cmd_generate(args) -> int:
    import fastattn
    from fastattn.pipelines import generate_text
    from fastattn.tokenizers.tokenizer_json import load_tokenizer_json

    if args.threads:
        fastattn.set_num_threads(args.threads)
    tokenizer = load_tokenizer_json(args.model_dir)
    model = fastattn.load(args.model_dir, mmap=args.mmap, weights=args.weights)
    stats: dict = {}
    sys.stdout.write(args.prompt)
    for piece in generate_text(model, tokenizer, args.prompt, args.max_new_tokens,
                               temperature=args.temperature, top_k=args.top_k, top_p=args.top_p,
                               seed=args.seed, stats=stats, kv_dtype=args.kv_dtype):
        sys.stdout.write(piece)
        sys.stdout.flush()
    decode_steps = max(stats["new_tokens"] - 1, 0)
    rate = decode_steps / stats["decode_s"] if stats["decode_s"] > 0 else float("nan")
    print(f"\n# prompt {stats['prompt_tokens']} tokens in {stats['prefill_s']:.2f} s "
          f"({stats['prompt_tokens'] / max(stats['prefill_s'], 1e-9):.1f} tokens/s); "
          f"{stats['new_tokens']} new tokens, decode {rate:.2f} tokens/s", file=sys.stderr)
    return 0


def cmd_embed(args) -> int:
    import fastattn
    from fastattn.pipelines import SentenceEmbedder

    if args.k < 1 or args.batch_size < 1:
        print("fastattn embed: -k and --batch-size must be >= 1", file=sys.stderr)
        return 2
    if args.threads:
        fastattn.set_num_threads(args.threads)
    try:
        with open(args.file, encoding="utf-8") as f:
            lines = [line.strip() for line in f]
    except OSError as e:
        print(f"fastattn embed: cannot read {args.file!r}: {e.strerror}", file=sys.stderr)
        return 2
    lines = [line for line in lines if line]
    if not lines:
        print(f"fastattn embed: {args.file!r} has no non-empty line", file=sys.stderr)
        return 2
    try:
        embedder = SentenceEmbedder(args.model, pooling=args.pooling, mmap=args.mmap,
                                    weights=args.weights)
    except (OSError, ValueError) as e:
        print(f"fastattn embed: {e}", file=sys.stderr)
        return 2
    corpus = embedder(lines, batch_size=args.batch_size)
    queries = embedder(args.query, batch_size=args.batch_size)
    k = min(args.k, len(lines))
    index, scores = fastattn.top_k_neighbours(queries, corpus, k)
    for q, (rows, row_scores) in enumerate(zip(index, scores)):
        if q:
            print()
        print(f"query: {args.query[q]}")
        for rank, (i, s) in enumerate(zip(rows, row_scores), start=1):
            print(f"{rank:3d}  {s:+.4f}  {lines[i]}")
    return 0


def cmd_embed_corpus(args) -> int:
    """``fastattn embed-corpus MODEL_DIR INPUT... --out DIR``: fastattn.distributed.embed_corpus
    on a local Ray instance or a cluster (--address); resumable (docs/distributed.md)."""
    try:
        from fastattn.distributed import embed_corpus
    except ImportError as e:
        print(f"fastattn embed-corpus: {e}", file=sys.stderr)
        return 2

    def shard_done(row):
        n = row["error_rows"]
        note = f", {n} error row{'s' if n != 1 else ''}" if n else ""
        print(f"# wrote {row['shard']}: {row['rows']} rows{note}", file=sys.stderr, flush=True)

    try:
        s = embed_corpus(args.model_dir, args.inputs, args.out, task=args.task,
                         actors=args.actors, threads_per_actor=args.threads_per_actor,
                         batch_size=args.batch_size, shard_rows=args.shard_rows,
                         pooling=args.pooling, normalize=args.normalize,
                         text_column=args.text_column, top_k=args.top_k,
                         max_retries=args.max_retries, address=args.address,
                         on_shard=shard_done)
    except (OSError, ValueError) as e:
        print(f"fastattn embed-corpus: {e}", file=sys.stderr)
        return 2
    rate = f", {s['rows'] / s['seconds']:.1f} rows/s" if s["seconds"] else ""
    print(f"{s['out']}: {s['shards']} shards ({s['written']} written now, {s['skipped']} "
          f"already there); {s['rows']} rows written in {s['seconds']:.1f} s{rate}; "
          f"{len(s['actors'])} actor{'s' if len(s['actors']) != 1 else ''} x "
          f"{args.threads_per_actor} "
          f"thread{'s' if args.threads_per_actor != 1 else ''}")
    if s["error_rows"]:
        n = s["error_rows"]
        print(f"{n} row{'s' if n != 1 else ''} failed (null result, reason in the error "
              f"column); first: " + "; ".join(s["first_errors"][:3]))
    return 0


def _rollout_paths(path: str, n: int) -> list[str]:
    """One output path per image: ``path`` itself for one image, else ``stem-<i>.png``."""
    if n == 1:
        return [path]
    stem, suffix = os.path.splitext(path)
    return [f"{stem}-{i}{suffix or '.png'}" for i in range(n)]


def cmd_classify(args) -> int:
    import fastattn
    from fastattn.pipelines.image_classification import ImageClassifier

    if args.top_k < 1:
        print("fastattn classify: --top-k must be >= 1", file=sys.stderr)
        return 2
    if args.rollout and not 0.0 <= args.discard_ratio < 1.0:
        print("fastattn classify: --discard-ratio must be in [0, 1)", file=sys.stderr)
        return 2
    if args.threads:
        fastattn.set_num_threads(args.threads)
    try:
        if args.rollout:
            from fastattn.plot import require_matplotlib
            require_matplotlib()   # fail before the work, not after it
        classifier = ImageClassifier.from_pretrained(args.model_dir, mmap=args.mmap,
                                                     weights=args.weights)
        from fastattn.vision import load_image
        images = [load_image(path) for path in args.images]
    except (OSError, ValueError, ImportError) as e:
        print(f"fastattn classify: {e}", file=sys.stderr)
        return 2
    try:
        results = classifier.classify(images, top_k=args.top_k)
    except ValueError as e:
        print(f"fastattn classify: {e}", file=sys.stderr)
        return 2
    for n, (path, labels) in enumerate(zip(args.images, results)):
        if n:
            print()
        print(path)
        for rank, (label, p) in enumerate(labels, start=1):
            print(f"{rank:3d}  {p:.4f}  {label}")
    if args.rollout:
        from fastattn.plot import overlay
        for path, image, out_path in zip(args.images, images,
                                         _rollout_paths(args.rollout, len(images))):
            try:
                heat = classifier.explain(image, "rollout", head_fusion=args.head_fusion,
                                          discard_ratio=args.discard_ratio)
            except ValueError as e:
                print(f"fastattn classify: --rollout: {e}", file=sys.stderr)
                return 2
            overlay(classifier.model_view(image), heat, path=out_path)
            print(f"# attention rollout of {path}: {out_path}", file=sys.stderr)
    return 0


def cmd_classify_text(args) -> int:
    import fastattn
    from fastattn.pipelines.text_classification import TextClassifier

    if args.top_k < 1:
        print("fastattn classify-text: --top-k must be >= 1", file=sys.stderr)
        return 2
    if args.batch_size < 1:
        print("fastattn classify-text: --batch-size must be >= 1", file=sys.stderr)
        return 2
    if args.threads:
        fastattn.set_num_threads(args.threads)
    try:
        classifier = TextClassifier.from_pretrained(args.model_dir, mmap=args.mmap,
                                                    weights=args.weights)
        results = classifier(args.texts, top_k=args.top_k, batch_size=args.batch_size)
    except (OSError, ValueError, ImportError) as e:
        print(f"fastattn classify-text: {e}", file=sys.stderr)
        return 2
    for n, (text, labels) in enumerate(zip(args.texts, results)):
        if n:
            print()
        print(text)
        for rank, r in enumerate(labels, start=1):
            print(f"{rank:3d}  {r['score']:.4f}  {r['label']}")
    return 0


def cmd_analyze(args) -> int:
    import fastattn
    from fastattn.analysis.report import analyze, scaling_report

    if args.model_dir is None and args.scaling is None:
        print("fastattn analyze: give a model directory (or config.json), --scaling, or both",
              file=sys.stderr)
        return 2
    if args.plot_cost or args.max_seq is not None:
        return _analyze_plot_cost(args)
    if args.threads:
        fastattn.set_num_threads(args.threads)
    try:
        if args.scaling is not None:
            scaling_report(args.scaling)
        if args.model_dir is not None:
            analyze(args.model_dir, seq_len=args.seq, decode=args.decode, batch=args.batch,
                    measure=args.measure, image_size=args.image_size, parts=args.parts,
                    weights_dtype=args.weights_dtype, kv_dtype=args.kv_dtype,
                    kv_heads=args.kv_heads, weights=args.weights)
    except (OSError, ValueError) as e:
        print(f"fastattn analyze: {e}", file=sys.stderr)
        return 2
    return 0


def _analyze_plot_cost(args) -> int:
    """``fastattn analyze MODEL_DIR --plot-cost PATH [--max-seq N]``: the FLOPs of a forward
    against its length, linear layers vs attention, the crossovers printed and marked."""
    if args.model_dir is None or not args.plot_cost:
        print("fastattn analyze: --plot-cost PATH needs a model directory (or config.json); "
              "--max-seq goes with --plot-cost", file=sys.stderr)
        return 2
    if args.max_seq is not None and args.max_seq < 2:
        print(f"fastattn analyze: --max-seq must be >= 2, got {args.max_seq}", file=sys.stderr)
        return 2
    try:
        from fastattn.plot import require_matplotlib
        require_matplotlib()
        from fastattn.analysis.plots import cost_chart
        _, blocks, whole = cost_chart(args.model_dir, args.plot_cost, max_seq=args.max_seq)
    except (OSError, ValueError, ImportError) as e:
        print(f"fastattn analyze: --plot-cost: {e}", file=sys.stderr)
        return 2
    for what, c in (("blocks", blocks), ("whole model", whole)):
        print(f"crossover ({what}): " + (f"attention's QK^T + PV FLOPs reach the linear "
                                         f"layers' at {c.tokens} tokens (root {c.length:.2f})"
                                         if c.tokens else "attention never overtakes the "
                                                          "linear layers (sliding window)"))
    print(f"# cost vs length: {args.plot_cost}", file=sys.stderr)
    return 0


def cmd_attention(args) -> int:
    """``fastattn attention MODEL_DIR --text ... --out heat.png``: a text model's attention
    probabilities over the text's tokens, one layer, one head or the heads' mean."""
    import fastattn
    from fastattn.analysis.attention_map import text_attention

    head = args.head
    if head != "mean":
        try:
            head = int(head)
        except ValueError:
            print(f"fastattn attention: --head must be 'mean' or a head index, got {head!r}",
                  file=sys.stderr)
            return 2
    if args.threads:
        fastattn.set_num_threads(args.threads)
    try:
        from fastattn.plot import attention_heatmap, require_matplotlib
        require_matplotlib()
        tokens, matrix, title = text_attention(args.model_dir, args.text, layer=args.layer,
                                               head=head)
        attention_heatmap(matrix, tokens, tokens, title=title, path=args.out)
    except (OSError, ValueError, ImportError) as e:
        print(f"fastattn attention: {e}", file=sys.stderr)
        return 2
    print(f"# {title}, {len(tokens)} tokens: {args.out}", file=sys.stderr)
    return 0


def _numbers(text: str, counts: tuple[int, ...], what: str) -> list[float]:
    """'x,y' style comma-separated numbers; argparse.ArgumentTypeError naming the format."""
    try:
        values = [float(v) for v in text.split(",")]
    except ValueError:
        values = []
    if len(values) not in counts:
        raise argparse.ArgumentTypeError(f"expected {what}, got {text!r}")
    return values


def _point_arg(text: str):
    values = _numbers(text, (2, 3), "x,y or x,y,label (label 1 foreground, 0 background)")
    if len(values) == 3 and values[2] not in (0, 1):
        raise argparse.ArgumentTypeError(f"the label of --point must be 1 (foreground) or 0 "
                                         f"(background), got {text!r}")
    return (values[0], values[1], int(values[2]) if len(values) == 3 else 1)


def _box_arg(text: str):
    return _numbers(text, (4,), "x1,y1,x2,y2")


# Mask colours of the overlay (RGB), cycled: distinct on photos, the first one a clear blue.
_PALETTE = ((30, 144, 255), (255, 99, 71), (50, 205, 50), (255, 215, 0), (186, 85, 211),
            (0, 206, 209), (255, 140, 0), (199, 21, 133))


def _label_image(masks):
    """Masks (n, H, W) bool -> one label image (H, W): 0 background, i + 1 where mask i is (a
    later mask over an earlier one); uint8 up to 255 masks, else uint16."""
    import numpy as np
    labels = np.zeros(masks.shape[1:], np.uint8 if len(masks) < 256 else np.uint16)
    for i, m in enumerate(masks):
        labels[m] = i + 1
    return labels


def _overlay(image, masks, points=(), boxes=(), alpha=0.5):
    """The image (H, W, 3) uint8 with each mask tinted in its palette colour, the points as
    dots (green foreground, red background) and the boxes as outlines."""
    import numpy as np
    out = image.astype(np.float32)
    palette = np.array(_PALETTE, np.float32)
    for i, m in enumerate(masks):
        out[m] = (1 - alpha) * out[m] + alpha * palette[i % len(palette)]
    out = out.round().astype(np.uint8)
    h, w = out.shape[:2]
    r = max(2, round(max(h, w) / 150))          # marker size follows the image size
    yy, xx = np.mgrid[0:h, 0:w]
    for x, y, label in points:
        dot = (xx - x) ** 2 + (yy - y) ** 2 <= r * r
        out[dot] = (0, 200, 0) if label == 1 else (220, 0, 0)
    for x1, y1, x2, y2 in boxes:
        x1, x2 = (int(np.clip(round(v), 0, w - 1)) for v in (x1, x2))
        y1, y2 = (int(np.clip(round(v), 0, h - 1)) for v in (y1, y2))
        t = max(1, r // 2)
        for rows, cols in ((slice(y1, y1 + t), slice(x1, x2 + 1)),
                           (slice(y2 - t + 1, y2 + 1), slice(x1, x2 + 1)),
                           (slice(y1, y2 + 1), slice(x1, x1 + t)),
                           (slice(y1, y2 + 1), slice(x2 - t + 1, x2 + 1))):
            out[rows, cols] = (255, 255, 0)
    return out


def _segment_prompts(args, predictor):
    """Masks (n, H, W) and a line per mask for the --point / --box prompts."""
    import numpy as np
    points = [(x, y) for x, y, _ in args.point]
    labels = [label for _, _, label in args.point]
    multimask = args.multimask
    if len(args.box) > 1:
        if args.point:
            raise ValueError("--point goes with at most one --box (several boxes are several "
                             "prompts; points would be ambiguous between them)")
        masks, scores, _ = predictor.predict_batch(boxes=np.array(args.box),
                                                   multimask_output=multimask)
        best = scores.argmax(axis=1)                # per box, its best-scoring mask
        keep = masks[np.arange(len(best)), best]
        lines = [f"box {i}: mask {best[i]}, score {scores[i, best[i]]:.4f}, area "
                 f"{int(keep[i].sum())} px" for i in range(len(best))]
        return keep, lines
    masks, scores, _ = predictor.predict(
        point_coords=np.array(points) if points else None,
        point_labels=np.array(labels) if points else None,
        box=np.array(args.box[0]) if args.box else None, multimask_output=multimask)
    best = int(scores.argmax())
    lines = [f"mask {i}: score {s:.4f}, area {int(m.sum())} px{'  <- best' if i == best else ''}"
             for i, (m, s) in enumerate(zip(masks, scores))]
    return masks[best:best + 1], lines


def _segment_auto(args, model, image):
    """Every object's mask (n, H, W), largest first, and a line per mask (--auto). With
    --embedding, the whole-image pass runs on the cached embedding (no encoder run)."""
    from fastattn.pipelines.sam_automatic import SamAutomaticMaskGenerator
    import numpy as np
    generator = SamAutomaticMaskGenerator(model, points_per_side=args.points_per_side,
                                          pred_iou_thresh=args.pred_iou_thresh,
                                          stability_score_thresh=args.stability_score_thresh)
    if args.embedding:
        _set_image(generator.predictor, image, args.embedding)
        records = generator.generate_from_predictor()
    else:
        records = generator.generate(image)
    records = sorted(records, key=lambda r: -r["area"])
    masks = (np.stack([r["segmentation"] for r in records]) if records
             else np.zeros((0, *image.shape[:2]), bool))
    lines = [f"mask {i}: area {r['area']} px, predicted iou {r['predicted_iou']:.4f}, "
             f"stability {r['stability_score']:.4f}, bbox (x, y, w, h) "
             f"{tuple(round(float(v), 1) for v in r['bbox'])}" for i, r in enumerate(records)]
    return masks, lines


def cmd_segment(args) -> int:
    import fastattn
    from fastattn.pipelines.sam_predictor import SamPredictor

    prog = "fastattn segment"
    if args.auto == bool(args.point or args.box):
        print(f"{prog}: give prompts (--point and / or --box) or --auto, one of the two",
              file=sys.stderr)
        return 2
    if args.threads:
        fastattn.set_num_threads(args.threads)
    stem, _ = os.path.splitext(args.out)
    overlay_path = args.overlay or f"{stem}-overlay.png"
    try:
        from fastattn.vision import load_image
        from PIL import Image
        image = load_image(args.image)
        model = fastattn.load(args.model_dir, mmap=args.mmap)
        if args.auto:
            masks, lines = _segment_auto(args, model, image)
        else:
            predictor = SamPredictor(model)
            _set_image(predictor, image, args.embedding)
            masks, lines = _segment_prompts(args, predictor)
    except (OSError, ValueError, TypeError, ImportError) as e:
        print(f"{prog}: {e}", file=sys.stderr)
        return 2
    for line in lines:
        print(line)
    try:
        Image.fromarray(_label_image(masks)).save(args.out, format="PNG")
        Image.fromarray(_overlay(image, masks, args.point, args.box)).save(overlay_path,
                                                                           format="PNG")
    except OSError as e:
        print(f"{prog}: cannot write the PNG files: {e}", file=sys.stderr)
        return 2
    print(f"# {len(masks)} mask{'s' if len(masks) != 1 else ''}: {args.out} (0 background, "
          f"mask i has value i + 1), overlay {overlay_path}", file=sys.stderr)
    return 0


def _set_image(predictor, image, embedding_path) -> None:
    """set_image, or with --embedding: load the cached embedding when it belongs to this image
    and model, else encode and save it there."""
    if embedding_path and os.path.exists(embedding_path):
        try:
            predictor.load_embedding(embedding_path, image=image)
            print(f"# image embedding read from {embedding_path}", file=sys.stderr)
            return
        except ValueError as e:
            print(f"# {e}; encoding the image again", file=sys.stderr)
    predictor.set_image(image)
    if embedding_path:
        predictor.save_embedding(embedding_path)
        print(f"# image embedding saved to {embedding_path}", file=sys.stderr)


def cmd_quantize(args) -> int:
    from fastattn.quantize import describe, quantize
    try:
        summary = quantize(args.model_dir, args.out_dir, args.weights)
    except (OSError, ValueError) as e:
        print(f"fastattn quantize: {e}", file=sys.stderr)
        return 2
    print(f"{args.out_dir}: {describe(summary)}")
    return 0


def _add_mmap_flag(parser) -> None:
    parser.add_argument("--no-mmap", dest="mmap", action="store_false",
                        help="read the weights into memory instead of mapping the files, so "
                             "that replacing or truncating them cannot crash the run "
                             "(see docs/loading.md)")


def _add_weights_flag(parser, default="as-stored",
                      help="the Linear weights' format in memory (fastattn.load(weights=); "
                           "default as-stored: the checkpoint's own; docs/quantization.md)"):
    from fastattn.models.weights import LOAD_FORMATS
    parser.add_argument("--weights", choices=LOAD_FORMATS, default=default, help=help)


def main(argv=None) -> int:
    from fastattn.kv_cache import KV_DTYPES
    parser = argparse.ArgumentParser(prog="fastattn", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    b = sub.add_parser("bench", help="run the kernel benchmarks and print a table")
    b.add_argument("--json", metavar="PATH", help="also save the results as JSON")
    b.add_argument("--filter", metavar="TEXT", help="only cases whose 'op shape' contains TEXT")
    b.add_argument("--suite", action="append", metavar="NAME",
                   help="only this suite (repeatable): softmax, norm, activation, matmul, attention, ...")
    b.add_argument("--threads", type=int, help="kernel threads (default: fastattn's default)")
    b.add_argument("--repeats", type=int,
                   help=f"timed samples per implementation, median taken (default "
                        f"{FULL_REPEATS}, with --quick {QUICK_REPEATS})")
    b.add_argument("--quick", action="store_true",
                   help="small shapes and 3 repeats: every suite in a minute or two")
    b.add_argument("--plot", metavar="PATH.png",
                   help="also draw this machine's roofline with every row on it (PATH) and "
                        "the speedup-vs-competitor chart (PATH_speedup.png); needs matplotlib")
    b.add_argument("--from-json", metavar="RUN.json",
                   help="with --plot: draw the charts of a saved `fastattn bench --json` run "
                        "instead of running the benchmarks")
    b.set_defaults(func=cmd_bench)
    i = sub.add_parser("info", help="print cpu_info(): ISA path, threads, build")
    i.set_defaults(func=cmd_info)
    g = sub.add_parser("generate", help="continue a prompt with a decoder checkpoint directory "
                                        "(config.json, safetensors, tokenizer.json)")
    g.add_argument("model_dir")
    g.add_argument("--prompt", required=True)
    g.add_argument("--max-new-tokens", type=int, default=64)
    g.add_argument("--temperature", type=float, default=0.0, help="0: greedy (default)")
    g.add_argument("--top-k", type=int)
    g.add_argument("--top-p", type=float)
    g.add_argument("--seed", type=int)
    g.add_argument("--threads", type=int)
    g.add_argument("--kv-dtype", choices=KV_DTYPES, default="float32",
                   help="the KV cache's storage (float16 / bfloat16: half the bytes; "
                        "docs/kv_cache.md)")
    _add_weights_flag(g)
    _add_mmap_flag(g)
    g.set_defaults(func=cmd_generate)
    q = sub.add_parser("quantize", help="write a model directory with its Linear weights in "
                       "a weight format (q8, q4, bfloat16, float16) that fastattn.load keeps "
                       "without a float32 copy (docs/quantization.md)")
    q.add_argument("model_dir", help="input: config.json + safetensors weights")
    q.add_argument("out_dir", help="output directory (created; tokenizer files are copied)")
    from fastattn.quantize import QUANTIZE_FORMATS
    q.add_argument("--weights", required=True, choices=QUANTIZE_FORMATS,
                   help="the Linear weights' format")
    q.set_defaults(func=cmd_quantize)
    e = sub.add_parser("embed", help="embed the lines of a file with a BERT-family model and "
                                     "print the nearest lines to a query (cosine similarity)")
    e.add_argument("model", metavar="MODEL_DIR",
                   help="model directory: config.json, weights, vocab.txt")
    e.add_argument("--file", required=True, metavar="PATH",
                   help="text file, one document per line (empty lines skipped)")
    e.add_argument("--query", required=True, action="append", metavar="TEXT",
                   help="query text (repeatable)")
    e.add_argument("-k", type=int, default=5, help="neighbours per query (default 5)")
    e.add_argument("--pooling", choices=("mean", "cls"), default="mean",
                   help="sentence vector: mean of the token vectors (default) or [CLS]")
    e.add_argument("--batch-size", type=int, default=32, help="texts per forward pass")
    e.add_argument("--threads", type=int, help="kernel threads (default: fastattn's default)")
    _add_weights_flag(e)
    _add_mmap_flag(e)
    e.set_defaults(func=cmd_embed)
    c = sub.add_parser("classify", help="label images with a vision checkpoint (ViT, ResNet): "
                                        "the top-k labels and their probabilities")
    c.add_argument("model_dir", metavar="MODEL_DIR",
                   help="model directory: config.json, weights, preprocessor_config.json "
                        "(or timm's pretrained_cfg in config.json)")
    c.add_argument("images", nargs="+", metavar="IMAGE", help="image files (read with Pillow)")
    c.add_argument("--top-k", type=int, default=5, help="labels per image (default 5)")
    c.add_argument("--rollout", metavar="OUT.png",
                   help="also write the attention rollout laid over each image as PNG "
                        "(ViT only; needs matplotlib); with several images OUT-0.png, "
                        "OUT-1.png, ... in the order given")
    c.add_argument("--head-fusion", choices=("mean", "max", "min"), default="mean",
                   help="how --rollout fuses the heads of a layer (default mean)")
    c.add_argument("--discard-ratio", type=float, default=0.0,
                   help="--rollout: fraction of the weakest attentions dropped per layer, "
                        "in [0, 1) (default 0)")
    c.add_argument("--threads", type=int, help="kernel threads (default: fastattn's default)")
    _add_weights_flag(c)
    _add_mmap_flag(c)
    c.set_defaults(func=cmd_classify)
    t = sub.add_parser("classify-text",
                       help="label texts with a sequence-classification checkpoint (BERT, "
                            "RoBERTa, XLM-R, DistilBERT, ...): the top-k labels and scores")
    t.add_argument("model_dir", metavar="MODEL_DIR",
                   help="model directory: config.json, weights, vocab.txt or tokenizer.json")
    t.add_argument("texts", nargs="+", metavar="TEXT", help="texts to classify")
    t.add_argument("--top-k", type=int, default=1,
                   help="labels per text, best first (default 1); scores are softmax "
                        "probabilities, sigmoids for a multi-label model, raw values for "
                        "regression")
    t.add_argument("--batch-size", type=int, default=32, help="texts per forward pass")
    t.add_argument("--threads", type=int, help="kernel threads (default: fastattn's default)")
    _add_weights_flag(t)
    _add_mmap_flag(t)
    t.set_defaults(func=cmd_classify_text)
    a = sub.add_parser("analyze", help="a model's cost (FLOPs, bytes, memory), its roofline "
                                       "prediction on this machine and the measured time; "
                                       "Chinchilla's compute-optimal model (docs/analysis.md)")
    a.add_argument("model_dir", nargs="?", metavar="MODEL_DIR",
                   help="model directory (config.json alone is enough for costs and "
                        "predictions; with weights the model is also run and timed)")
    a.add_argument("--seq", type=int, default=512, help="prompt / input tokens (default 512)")
    a.add_argument("--decode", type=int, default=128,
                   help="decoders: new tokens generated one step at a time (default 128)")
    a.add_argument("--batch", type=int, default=1, help="sequences or images (default 1)")
    a.add_argument("--image-size", type=int, help="vision models: pixels (default: the config's)")
    a.add_argument("--weights-dtype", default="float32",
                   help="what if all the weights were stored as float16, bfloat16, q8, q4, "
                        "int8, int4")
    a.add_argument("--kv-dtype", default="float32", help="what if the KV cache were float16, ...")
    _add_weights_flag(a, default=None,
                      help="the Linear weights' format (fastattn.load(weights=)): their bytes "
                           "drive the predicted bytes; with a checkpoint the model is loaded "
                           "and measured in it (default: float32, the costs from config.json)")
    a.add_argument("--kv-heads", type=int, help="what if the decoder had this many KV heads")
    a.add_argument("--parts", action="store_true", help="also print the cost per part")
    a.add_argument("--no-measure", dest="measure", action="store_false",
                   help="neither run the model nor measure the machine (a cached roofline is "
                        "still used)")
    a.add_argument("--scaling", type=float, metavar="FLOPS",
                   help="training budget: print Chinchilla's compute-optimal N, D and loss")
    a.add_argument("--threads", type=int, help="kernel threads (default: fastattn's default)")
    a.add_argument("--plot-cost", metavar="PATH.png",
                   help="text models: draw the forward's FLOPs against the length, linear "
                        "layers vs attention's QK^T + PV, the crossover marked (needs "
                        "matplotlib; nothing else is printed but the crossovers)")
    a.add_argument("--max-seq", type=int,
                   help="--plot-cost: the longest length drawn (default: twice the crossover)")
    a.set_defaults(func=cmd_analyze)
    at = sub.add_parser("attention", help="a text model's attention over a text as a token x "
                                          "token heatmap (PNG; needs matplotlib)")
    at.add_argument("model_dir", metavar="MODEL_DIR",
                    help="BERT-family (vocab.txt) or decoder (tokenizer.json) model directory")
    at.add_argument("--text", required=True)
    at.add_argument("--layer", type=int, default=-1,
                    help="layer index, negative from the end (default -1: the last)")
    at.add_argument("--head", default="mean",
                    help="head index, or 'mean' over the heads (default)")
    at.add_argument("--out", required=True, metavar="PATH.png")
    at.add_argument("--threads", type=int, help="kernel threads (default: fastattn's default)")
    at.set_defaults(func=cmd_attention)
    s = sub.add_parser("segment", help="masks of an image with Segment Anything: from points "
                                       "and boxes, or every object (--auto); writes the masks "
                                       "and an overlay as PNG (docs/segmentation.md)")
    s.add_argument("model_dir", metavar="MODEL_DIR",
                   help="SAM checkpoint: a Hugging Face SamModel directory (config.json, "
                        "weights) or an official segment-anything .safetensors file")
    s.add_argument("image", metavar="IMAGE", help="image file (read with Pillow, as RGB)")
    s.add_argument("--point", action="append", type=_point_arg, default=[],
                   metavar="X,Y[,LABEL]",
                   help="a point in image pixels, label 1 foreground (default) or 0 "
                        "background (repeatable: one prompt of several points)")
    s.add_argument("--box", action="append", type=_box_arg, default=[], metavar="X1,Y1,X2,Y2",
                   help="a box in image pixels (repeatable: one mask per box, in one batch)")
    s.add_argument("--auto", action="store_true",
                   help="every object: a grid of point prompts, filtered (automatic masks)")
    s.add_argument("--points-per-side", type=int, default=32,
                   help="--auto: the point grid is N x N (default 32)")
    s.add_argument("--pred-iou-thresh", type=float, default=0.88,
                   help="--auto: keep masks whose predicted IoU exceeds this (default 0.88, "
                        "the reference's, tuned for ViT-H)")
    s.add_argument("--stability-score-thresh", type=float, default=0.95,
                   help="--auto: keep masks at least this stable (default 0.95)")
    s.add_argument("--multimask", dest="multimask", action="store_true", default=True,
                   help="three candidate masks per prompt, the best-scoring kept (default)")
    s.add_argument("--single", dest="multimask", action="store_false",
                   help="one mask per prompt (the decoder's single-mask output)")
    s.add_argument("--out", required=True, metavar="MASKS.png",
                   help="the masks as one label PNG: 0 background, mask i is i + 1")
    s.add_argument("--overlay", metavar="PATH",
                   help="the masks tinted over the image (default: OUT-overlay.png)")
    s.add_argument("--embedding", metavar="PATH.safetensors",
                   help="cache of the image embedding: read when it holds this image's (same "
                        "model), else computed and saved there")
    s.add_argument("--threads", type=int, help="kernel threads (default: fastattn's default)")
    _add_mmap_flag(s)
    s.set_defaults(func=cmd_segment)
    ec = sub.add_parser("embed-corpus",
                        help="embed (or classify) a corpus on Ray Data: files in, Parquet "
                             "shards out; resumable; a local Ray instance or a cluster "
                             "(needs `pip install fastattn[ray]`, docs/distributed.md)")
    ec.add_argument("model_dir", metavar="MODEL_DIR")
    ec.add_argument("inputs", nargs="+", metavar="INPUT",
                    help="text files (one row per line), .jsonl (a text field per line), "
                         ".parquet (a text column); with an image task: images or folders")
    ec.add_argument("--out", required=True, metavar="DIR",
                    help="output folder of Parquet shards; rerunning skips the shards "
                         "already written")
    ec.add_argument("--task", choices=("embed", "classify-text", "classify-image", "sam-embed"),
                    default="embed", help="sentence embeddings (default), text or image "
                                          "labels, or SAM image embeddings")
    ec.add_argument("--address", default="local",
                    help="'local' (default): start Ray here; 'auto' or ray://HOST:PORT: join "
                         "that Ray cluster")
    ec.add_argument("--actors", type=int,
                    help="model replicas (default: the cluster's CPUs / --threads-per-actor)")
    ec.add_argument("--threads-per-actor", type=int, default=1,
                    help="CPUs reserved and kernel threads per actor (default 1)")
    ec.add_argument("--batch-size", type=int, default=32,
                    help="texts per forward pass (default 32)")
    ec.add_argument("--shard-rows", type=int, default=1024,
                    help="rows per chunk of work and per output shard (default 1024)")
    ec.add_argument("--pooling", choices=("mean", "cls"), default="mean")
    ec.add_argument("--no-normalize", dest="normalize", action="store_false",
                    help="keep the raw pooled vectors (default: unit length)")
    ec.add_argument("--text-column", default="text",
                    help="the JSONL field / Parquet column holding the text (default text)")
    ec.add_argument("--top-k", type=int, default=5,
                    help="classify tasks: labels per row, best first (default 5)")
    ec.add_argument("--max-retries", type=int, default=3,
                    help="restarts of a dead worker and retries of its chunk before the job "
                         "fails (default 3)")
    ec.set_defaults(func=cmd_embed_corpus)
    args = parser.parse_args(argv)
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
