"""The `fastattn` command: `fastattn bench` runs the benchmarks, `fastattn info` prints what the
kernels run on, `fastattn generate` continues a prompt with a decoder checkpoint."""
from __future__ import annotations

import argparse
import json
import sys


def _machine_line(info: dict, copy_bw: float) -> str:
    return (f"# {info['cpu_model']} | isa {info['isa']} (available: "
            f"{', '.join(info['available_isas'])}) | threads {info['threads']} | "
            f"openmp {info['openmp']} | copy bandwidth {copy_bw / 1e9:.1f} GB/s "
            f"({info['threads']} threads np.copyto 64 MiB, read+write)")


def cmd_bench(args) -> int:
    import fastattn
    from fastattn import bench

    if args.threads:
        fastattn.set_num_threads(args.threads)
    torch = bench.try_import_torch()
    info = fastattn.cpu_info()
    copy_bw = bench.copy_bandwidth()
    print(_machine_line(info, copy_bw))
    print(f"# torch {torch.__version__ if torch else 'not installed'}; medians of "
          f"{args.repeats} interleaved repeats; times per call")
    print(bench.HEADER)
    results = bench.run(
        bench.iter_cases(args.suite or None, quick=args.quick, name_filter=args.filter),
        repeats=args.repeats,
        progress=lambda r: print(bench.format_row(r, copy_bw), flush=True))
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"machine": info, "copy_bandwidth_bytes_per_s": copy_bw,
                       "torch": torch.__version__ if torch else None,
                       "results": [r.as_dict() for r in results]}, f, indent=2)
        print(f"# saved {args.json}")
    return 0


def cmd_info(args) -> int:
    import fastattn
    for k, v in fastattn.cpu_info().items():
        print(f"{k}: {v}")
    return 0


def cmd_generate(args) -> int:
    import fastattn
    from fastattn.text import generate_text, load_tokenizer

    if args.threads:
        fastattn.set_num_threads(args.threads)
    tokenizer = load_tokenizer(args.model_dir)
    model = fastattn.load(args.model_dir)
    stats: dict = {}
    sys.stdout.write(args.prompt)
    for piece in generate_text(model, tokenizer, args.prompt, args.max_new_tokens,
                               temperature=args.temperature, top_k=args.top_k, top_p=args.top_p,
                               seed=args.seed, stats=stats):
        sys.stdout.write(piece)
        sys.stdout.flush()
    decode_steps = max(stats["new_tokens"] - 1, 0)
    rate = decode_steps / stats["decode_s"] if stats["decode_s"] > 0 else float("nan")
    print(f"\n# prompt {stats['prompt_tokens']} tokens in {stats['prefill_s']:.2f} s "
          f"({stats['prompt_tokens'] / max(stats['prefill_s'], 1e-9):.1f} tokens/s); "
          f"{stats['new_tokens']} new tokens, decode {rate:.2f} tokens/s", file=sys.stderr)
    return 0


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="fastattn", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    b = sub.add_parser("bench", help="run the kernel benchmarks and print a table")
    b.add_argument("--json", metavar="PATH", help="also save the results as JSON")
    b.add_argument("--filter", metavar="TEXT", help="only cases whose 'op shape' contains TEXT")
    b.add_argument("--suite", action="append", metavar="NAME",
                   help="only this suite (repeatable): rowwise, matmul, attention, ...")
    b.add_argument("--threads", type=int, help="kernel threads (default: fastattn's default)")
    b.add_argument("--repeats", type=int, default=7, help="interleaved repeats (median)")
    b.add_argument("--quick", action="store_true", help="smaller shapes, for a smoke test")
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
    g.set_defaults(func=cmd_generate)
    args = parser.parse_args(argv)
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
