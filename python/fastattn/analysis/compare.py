"""CNN vs ViT at growing resolution: ResNet-50 and ViT-B/16 (each with a 1000-class head) side
by side at 224, 384, 512 and 1024 pixels — parameters, FLOPs, the share of the ViT's FLOPs
spent in attention's two products, peak memory and, given a machine, the roofline time.

A convolution's cost grows with the pixels (H W); a ViT's linear layers grow with the tokens
T ~ H W / p^2 too, but its attention grows with T^2 ~ (H W)^2: at 224 pixels (197 tokens)
attention is a few percent of ViT-B/16's FLOPs, at 1024 (4097 tokens) the largest part.
"""
from __future__ import annotations

import dataclasses

SIZES = (224, 384, 512, 1024)
LABELS = 1000
# transformers' defaults are ViT-B/16 at 224 and ResNet-50 (v1.5)
VIT_B16 = {"model_type": "vit", "num_labels": LABELS}
RESNET50 = {"model_type": "resnet", "id2label": {str(i): f"class {i}" for i in range(LABELS)}}


@dataclasses.dataclass(frozen=True)
class Row:
    model: str
    image_size: int
    tokens: int | None          # ViT: prefix + patches
    params: int
    flops: float
    attention_share: float      # FLOPs of QK^T and PV / all FLOPs (0 for a CNN)
    peak_memory: float
    seconds: float | None       # roofline prediction, when a machine was given


def cnn_vs_vit(sizes=SIZES, *, cnn=None, vit=None, batch: int = 1, machine=None) -> list:
    """Rows for ``cnn`` (default ResNet-50) and ``vit`` (default ViT-B/16), each a model,
    config or directory as ``cost`` takes them, at each of ``sizes`` pixels square."""
    from .cost import cost, resolve_config
    from .predict import predict
    from .vision import vit_tokens
    rows = []
    for name, model in (("ResNet-50" if cnn is None else "CNN", cnn or RESNET50),
                        ("ViT-B/16" if vit is None else "ViT", vit or VIT_B16)):
        config, loaded = resolve_config(model)
        for size in sizes:
            c = cost(config if loaded is None else loaded, batch=batch, image_size=size)
            attention = sum(p.flops for p in c.parts if p.name in ("attn_scores", "attn_values"))
            tokens = vit_tokens(config, size) if config.model_type != "resnet" else None
            rows.append(Row(name, size, tokens, c.params, c.flops, attention / c.flops,
                            c.peak_memory,
                            None if machine is None else predict(c, machine).seconds))
    return rows


def table(rows) -> str:
    """The rows as a Markdown table."""
    timed = any(r.seconds is not None for r in rows)
    head = ("| model | pixels | tokens | params | GFLOP | attention share | peak memory |"
            + (" predicted |" if timed else ""))
    lines = [head, "|" + " --- |" * (head.count("|") - 1)]
    for r in rows:
        line = (f"| {r.model} | {r.image_size} | {r.tokens or '-'} | {r.params / 1e6:.1f}M | "
                f"{r.flops / 1e9:.1f} | {100 * r.attention_share:.1f}% | "
                f"{r.peak_memory / 1e6:.0f} MB |")
        if timed:
            line += f" {r.seconds * 1e3:.0f} ms |"
        lines.append(line)
    return "\n".join(lines)
