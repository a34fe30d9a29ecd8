"""The analysis pictures (PNG, matplotlib through fastattn.plot.require_matplotlib: the
object-oriented API on the Agg canvas, no window, the caller's pyplot state untouched):

- ``roofline_chart(rows, machine, path)``: this machine's roofline (min(peak, bandwidth x
  intensity)) with every ``fastattn bench`` row placed at its arithmetic intensity and its
  measured GFLOP/s (analysis/bench_points.py supplies the count a row lacks);
- ``speedup_chart(rows, path)``: fastattn's speedup over NumPy and torch per row, log scale;
- ``cost_chart(config, path, max_seq)``: the FLOPs of a text model's forward against the
  length: the linear layers (blocks, and with the LM head / pooler) and attention's
  QK^T + PV, the crossover lengths marked (analysis/crossover.py).

Each returns the matplotlib Figure and writes ``path`` as PNG (100 dpi).
"""
from __future__ import annotations

import os

import numpy as np

from ..plot import require_matplotlib
from .bench_points import point


def _figure(width: float, height: float):
    _, Figure, FigureCanvasAgg = require_matplotlib()
    fig = Figure(figsize=(width, height), dpi=100)
    FigureCanvasAgg(fig)
    return fig


def _save(fig, path) -> None:
    fig.tight_layout()
    fig.savefig(os.fspath(path), format="png")


def _label(row: dict) -> str:
    return f"{row['op']} {row['shape']}"


def placed_rows(rows) -> tuple[list, list]:
    """([(row, flops, bytes, seconds)], [row labels not placed]) of bench rows (dicts as
    ``fastattn bench --json`` saves them)."""
    placed, missing = [], []
    for r in rows:
        p = point(r)
        t = r.get("seconds", {}).get("fastattn")
        if p is None or not t:
            missing.append(_label(r))
        else:
            placed.append((r, p[0], p[1], t))
    return placed, missing


def roofline_chart(rows, machine, path, *, title: str | None = None):
    """This machine's roofline with the bench rows on it (module docstring). ``machine``:
    an analysis.Machine (peak_flops, bandwidth). Rows that cannot be placed are named in a
    note under the chart."""
    placed, missing = placed_rows(rows)
    fig = _figure(10.0, 7.0)
    ax = fig.add_subplot()
    intensities = [f / b for _, f, b, _ in placed] or [1.0]
    lo = min(min(intensities), machine.ridge) / 4
    hi = max(max(intensities), machine.ridge) * 4
    x = np.geomspace(lo, hi, 200)
    roof = np.minimum(machine.peak_flops, machine.bandwidth * x) / 1e9
    ax.plot(x, roof, color="black", linewidth=2,
            label=f"roof: {machine.peak_flops / 1e9:.0f} GFLOP/s peak, "
                  f"{machine.bandwidth / 1e9:.1f} GB/s")
    ax.axvline(machine.ridge, color="grey", linestyle=":", linewidth=1)
    ax.annotate(f"ridge {machine.ridge:.1f} FLOP/B", (machine.ridge, machine.peak_flops / 1e9),
                textcoords="offset points", xytext=(4, -14), fontsize=8, color="grey")
    groups: dict[str, list] = {}
    for r, f, b, t in placed:
        groups.setdefault(r["op"].split()[0], []).append((f / b, f / t / 1e9))
    markers = "osD^v<>phX*"
    for i, (name, pts) in enumerate(sorted(groups.items())):
        xs, ys = zip(*pts)
        ax.scatter(xs, ys, s=28, marker=markers[i % len(markers)], label=name, zorder=3)
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("arithmetic intensity (FLOPs per byte moved)")
    ax.set_ylabel("GFLOP/s (measured, fastattn)")
    ax.set_title(title or f"Roofline: {machine.cpu_model}, {machine.isa}, "
                          f"{machine.threads} threads", fontsize=10)
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=7, loc="lower right", ncol=2)
    if missing:
        fig.text(0.01, 0.005, "not placed (no arithmetic or unknown shape): "
                 + "; ".join(missing)[:300], fontsize=6, color="grey")
    _save(fig, path)
    return fig


def speedup_chart(rows, path, *, title: str | None = None):
    """fastattn's speedup over NumPy and over torch per bench row (times faster; log scale;
    the 1x line marks parity). Rows without any competitor are left out; ValueError when no
    row has one."""
    rows = [r for r in rows if r.get("speedup_vs_numpy") or r.get("speedup_vs_torch")]
    if not rows:
        raise ValueError("speedup chart: no row has a NumPy or torch time to compare with")
    fig = _figure(9.0, max(3.0, 0.22 * len(rows) + 1.2))
    ax = fig.add_subplot()
    y = np.arange(len(rows))
    for offset, key, name in ((-0.2, "speedup_vs_numpy", "vs NumPy"),
                              (0.2, "speedup_vs_torch", "vs torch")):
        values = np.array([r.get(key) or np.nan for r in rows], dtype=np.float64)
        # from the 1x line: a slower row's bar points left
        ax.barh(y + offset, values - 1.0, left=1.0, height=0.4, label=name)
    ax.axvline(1.0, color="black", linewidth=1)
    ax.set_xscale("log")
    ax.set_yticks(y, [_label(r) for r in rows], fontsize=6)
    ax.invert_yaxis()
    ax.set_xlabel("speedup of fastattn (times faster; < 1: slower)")
    ax.set_title(title or "fastattn vs the competitors, same run", fontsize=10)
    ax.grid(True, axis="x", which="both", alpha=0.3)
    ax.legend(fontsize=8)
    _save(fig, path)
    return fig


def cost_chart(model_or_config, path, *, max_seq: int | None = None, points: int = 80):
    """FLOPs of a forward (batch 1, from scratch) against its length, 1 .. ``max_seq``
    tokens (default: twice the whole model's crossover), linear layers vs attention's
    quadratic term, the crossovers marked; the model's learned positions (when it has a
    limit) shaded beyond. Returns (Figure, Crossover of the blocks, Crossover of the whole
    model)."""
    from .cost import resolve_config
    from .crossover import crossover, flops_by_length
    config, _ = resolve_config(model_or_config)
    blocks_x, whole_x = crossover(config, head=False), crossover(config, head=True)
    if max_seq is None:
        known = [c.tokens for c in (whole_x, blocks_x) if c.tokens]
        max_seq = 2 * max(known) if known else 32768
    if isinstance(max_seq, bool) or not isinstance(max_seq, int) or max_seq < 2:
        raise ValueError(f"cost chart: max_seq must be an integer >= 2, got {max_seq!r}")
    lengths = np.unique(np.geomspace(1, max_seq, points).round().astype(int))
    f = flops_by_length(config, lengths)
    blocks, head, attention = (np.array(f[k]) for k in ("blocks", "head", "attention"))
    fig = _figure(8.0, 5.5)
    ax = fig.add_subplot()
    ax.plot(lengths, blocks, label="linear layers of the blocks (q, k, v, o, MLP)")
    if head.any():
        ax.plot(lengths, blocks + head, label="linear layers + LM head / pooler")
    ax.plot(lengths, attention, label="attention QK^T + PV (quadratic)")
    for c, what, style in ((blocks_x, "blocks", "--"), (whole_x, "whole model", ":")):
        if c.tokens and c.tokens <= max_seq and (what == "blocks" or head.any()):
            ax.axvline(c.tokens, color="grey", linestyle=style, linewidth=1)
            ax.annotate(f"crossover ({what}): {c.tokens} tokens", (c.tokens, blocks[0]),
                        textcoords="offset points", xytext=(-4, 4), fontsize=8,
                        rotation=90, ha="right", va="bottom", color="dimgrey")
    limit = getattr(config, "n_positions", None) or getattr(config, "max_position_embeddings",
                                                             None)
    if limit and limit < max_seq:
        ax.axvspan(limit, max_seq, color="grey", alpha=0.12,
                   label=f"beyond the {limit} positions the model was trained for")
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("sequence length (tokens, batch 1)")
    ax.set_ylabel("FLOPs of one forward")
    ax.set_title(f"{config.model_type}: linear layers vs attention's quadratic term",
                 fontsize=10)
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=8, loc="upper left")
    _save(fig, path)
    return fig, blocks_x, whole_x
