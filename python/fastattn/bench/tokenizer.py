"""Benchmark cases for the WordPiece tokenizer. Goal (issue 7): >= 1 MB/s of English text on
one core for encode.

The corpus is synthetic English, generated deterministically (no data files): sentences of
words drawn with Zipf-like frequencies from a list of common English words, with inflections
(-s, -ed, -ing, -ly, -er), capitalised sentence starts, commas, quotes, parentheses, numbers,
and ~3% novel made-up words (a long tail like real text's rare words, which miss the
tokenizer's chunk cache). The vocabulary is learned from a 200 kB sample of the corpus with
``train_wordpiece`` (4000 tokens). Times are per call, one call encoding the whole corpus line
by line (``encode`` per ~100-character line, as BERT inputs are sentences); "cold" builds a
new tokenizer per call, so its caches start empty, "warm" reuses one.

Run ``python -m fastattn.bench.tokenizer`` for MB/s figures (and the Hugging Face
``tokenizers`` package, Rust, single string at a time, when installed).
"""
from __future__ import annotations

import bisect
import random
from itertools import accumulate

from . import Case

GOAL = ">= 1 MB/s English, one core"

_WORDS = """the of and to a in is it you that he was for on are with as his they be at one have
this from or had by not word but what some we can out other were all there when up use your how
said an each she which do their time if will way about many then them write would like so these
her long make thing see him two has look more day could go come did number sound no most people
my over know water than call first who may down side been now find any new work part take get
place made live where after back little only round man year came show every good me give our
under name very through just form sentence great think say help low line differ turn cause much
mean before move right boy old too same tell does set three want air well also play small end
put home read hand port large spell add even land here must big high such follow act why ask men
change went light kind off need house picture try us again animal point mother world near build
self earth father head stand own page should country found answer school grow study still learn
plant cover food sun four between state keep eye never last let thought city tree cross farm
hard start might story saw far sea draw left late run don't while press close night real life
few north open seem together next white children begin got walk example ease paper group always
music those both mark often letter until mile river car feet care second book carry took science
eat room friend began idea fish mountain stop once base hear horse cut sure watch color face wood
main enough plain girl usual young ready above ever red list though feel talk bird soon body dog
family direct pose leave song measure door product black short numeral class wind question happen
complete ship area half rock order fire south problem piece told knew pass since top whole king
space heard best hour better true during hundred five remember step early hold west ground
interest reach fast verb sing listen six table travel less morning ten simple several vowel
toward war lay against pattern slow center love person money serve appear road map rain rule
govern pull cold notice voice unit power town fine certain fly fall lead cry dark machine note
wait plan figure star box noun field rest correct able pound done beauty drive stood contain
front teach week final gave green quick develop ocean warm free minute strong special mind
behind clear tail produce fact street inch multiply nothing course stay wheel full force blue
object decide surface deep moon island foot system busy test record boat common gold possible
plane stead dry wonder laugh thousand ago ran check game shape equate miss brought heat snow tire
bring yes distant fill east paint language among grand ball yet wave drop heart present heavy
dance engine position arm wide sail material size vary settle speak weight general ice matter
circle pair include divide syllable felt perhaps pick sudden count square reason length
represent art subject region energy hunt probable bed brother egg ride cell believe fraction
forest sit race window store summer train sleep prove lone exercise wall catch mount wish sky
board joy winter sat written wild instrument kept glass grass cow job edge sign visit past soft
fun bright gas weather month million bear finish happy hope flower clothe strange gone jump baby
eight village meet root buy raise solve metal whether push seven paragraph third shall held hair
describe cook floor either result burn hill safe cat century consider type law bit coast copy
phrase silent tall sand soil roll temperature finger industry value fight lie beat excite natural
view sense ear else quite broke case middle kill son lake moment scale loud spring observe child
straight consonant nation dictionary milk speed method organ pay age section dress cloud surprise
quiet stone tiny climb cool design poor lot experiment bottom key iron single stick flat twenty
skin smile crease hole trade melody trip office receive row mouth exact symbol die least trouble
shout except wrote seed tone join suggest clean break lady yard rise bad blow oil blood touch grew
cent mix team wire cost lost brown wear garden equal sent choose fell fit flow fair bank collect
save control decimal gentle woman captain practice separate difficult doctor please protect noon
whose locate ring character insect caught period indicate radio spoke atom human history effect
electric expect crop modern element hit student corner party supply bone rail imagine provide
agree thus capital won't chair danger fruit rich thick soldier process operate guess necessary
sharp wing create neighbor wash bat rather crowd corn compare poem string bell depend meat rub
tube famous dollar stream fear sight thin triangle planet hurry chief colony clock mine tie enter
major fresh search send yellow gun allow print dead spot desert suit current lift rose continue
block chart hat sell success company subtract event particular deal swim term opposite wife shoe
shoulder spread arrange camp invent cotton born determine quart nine truck noise level chance
gather shop stretch throw shine property column molecule select wrong gray repeat require broad
prepare salt nose plural anger claim continent oxygen sugar death pretty skill women season
solution magnet silver thank branch match suffix especially fig afraid huge sister steel discuss
forward similar guide experience score apple bought led pitch coat mass card band rope slip win
dream evening condition feed tool total basic smell valley nor double seat arrive master track
parent shore division sheet substance favor connect post spend chord fat glad original share
station dad bread charge proper bar offer segment slave duck instant market degree populate chick
dear enemy reply drink occur support speech nature range steam motion path liquid log meant
quotient teeth shell neck""".split()
_SUFFIXES = ["", "", "", "", "", "s", "s", "ed", "ing", "ly", "er"]
_SYLLABLES = ["ka", "lo", "mi", "zu", "tre", "van", "qui", "bor", "sel", "dra", "phen", "ox",
              "ul", "cri", "mon", "tas", "ge", "rhy", "win", "ast"]


def english_corpus(n_bytes: int = 1 << 20, seed: int = 0) -> list[str]:
    """Lines of synthetic English (about 100 characters each) totalling ~n_bytes UTF-8."""
    rnd = random.Random(seed)
    # Zipf's law (exponent 1): the word of rank i has weight 1 / (i + 1).
    cum = list(accumulate(1.0 / (i + 1) for i in range(len(_WORDS))))
    lines, total = [], 0
    while total < n_bytes:
        words = []
        for _ in range(rnd.randint(10, 24)):
            r = rnd.random()
            if r < 0.03:
                w = "".join(rnd.choice(_SYLLABLES) for _ in range(rnd.randint(2, 4)))
            elif r < 0.05:
                w = str(rnd.randint(0, 10 ** rnd.randint(1, 6)))
            else:
                i = bisect.bisect(cum, rnd.random() * cum[-1])
                # Inflect content words only (not "the" / "of" / ...).
                w = _WORDS[i] + (rnd.choice(_SUFFIXES) if i >= 60 else "")
            if rnd.random() < 0.08:
                w += ","
            elif rnd.random() < 0.02:
                w = rnd.choice(['"' + w + '"', "(" + w + ")", w + ";", w + ":"])
            words.append(w)
        words[0] = words[0][:1].upper() + words[0][1:]
        line = " ".join(words) + rnd.choice([".", ".", ".", "?", "!"])
        lines.append(line)
        total += len(line.encode()) + 1
    return lines


def make_tokenizer_vocab(lines: list[str], vocab_size: int = 4000) -> list[str]:
    from ..tokenizers import train_wordpiece
    return train_wordpiece(lines, vocab_size)


def cases(quick: bool = False):
    from ..tokenizers import WordPieceTokenizer
    lines = english_corpus((256 << 10) if quick else (1 << 20))
    n_bytes = sum(len(s.encode()) + 1 for s in lines)
    vocab = make_tokenizer_vocab(lines[: max(1, len(lines) // 5)])
    warm = WordPieceTokenizer(vocab)
    shape = f"{n_bytes / 1e6:.2f}MB/{len(lines)}lines"

    def encode_cold():
        tok = WordPieceTokenizer(vocab)
        for line in lines:
            tok.encode(line)

    def encode_warm():
        for line in lines:
            warm.encode(line)

    def encode_batch_warm():
        for i in range(0, len(lines), 32):
            warm.encode_batch(lines[i:i + 32])

    for op, fn in (("wordpiece_cold", encode_cold), ("wordpiece_warm", encode_warm),
                   ("wordpiece_batch32", encode_batch_warm)):
        # bytes=0: the table's GB/s and %copy columns are for memory-bound kernels; the
        # throughput is corpus_bytes / time (the shape names the corpus size).
        yield Case(op, shape, {"fastattn": fn}, bytes=0, goal=GOAL,
                   extra={"corpus_bytes": n_bytes})


def main() -> None:
    """MB/s of encode on the synthetic corpus, fastattn vs tokenizers (when installed)."""
    import argparse
    import statistics
    import time

    from ..tokenizers import WordPieceTokenizer, write_vocab
    p = argparse.ArgumentParser(description=main.__doc__)
    p.add_argument("--mb", type=float, default=1.0, help="corpus size in MB")
    p.add_argument("--repeats", type=int, default=5)
    args = p.parse_args()
    lines = english_corpus(int(args.mb * (1 << 20)))
    n_bytes = sum(len(s.encode()) + 1 for s in lines)
    t0 = time.perf_counter()
    vocab = make_tokenizer_vocab(lines[: max(1, len(lines) // 5)])
    t_train = time.perf_counter() - t0
    impls = {}

    def ours_cold():
        tok = WordPieceTokenizer(vocab)
        for line in lines:
            tok.encode(line)
    impls["fastattn cold"] = ours_cold
    warm = WordPieceTokenizer(vocab)

    def ours_warm():
        for line in lines:
            warm.encode(line)
    impls["fastattn warm"] = ours_warm
    try:
        import os
        import tempfile

        os.environ.setdefault("RAYON_NUM_THREADS", "1")
        from tokenizers import BertWordPieceTokenizer
        d = tempfile.mkdtemp()
        write_vocab(vocab, os.path.join(d, "vocab.txt"))
        hf = BertWordPieceTokenizer(os.path.join(d, "vocab.txt"))

        def theirs():
            for line in lines:
                hf.encode(line)
        impls["tokenizers (Rust)"] = theirs
    except ImportError:
        pass
    # Interleaved passes; both wall-clock and process CPU time (the latter is less disturbed
    # when other jobs share the cores), medians.
    wall: dict[str, list[float]] = {name: [] for name in impls}
    cpu: dict[str, list[float]] = {name: [] for name in impls}
    for fn in impls.values():
        fn()  # warm-up (the cold case still starts from empty caches every pass)
    for _ in range(args.repeats):
        for name, fn in impls.items():
            w0, c0 = time.perf_counter(), time.process_time()
            fn()
            cpu[name].append(time.process_time() - c0)
            wall[name].append(time.perf_counter() - w0)
    print(f"corpus: {len(lines)} lines, {n_bytes / 1e6:.2f} MB; vocabulary of {len(vocab)} "
          f"trained in {t_train:.2f} s on {n_bytes / 5e6:.2f} MB; medians of {args.repeats}")
    print(f"{'':<20} {'wall ms':>9} {'MB/s':>7} {'cpu ms':>9} {'MB/s':>7}")
    for name in impls:
        w, c = statistics.median(wall[name]), statistics.median(cpu[name])
        print(f"{name:<20} {w * 1e3:9.1f} {n_bytes / w / 1e6:7.2f} {c * 1e3:9.1f} "
              f"{n_bytes / c / 1e6:7.2f}")


if __name__ == "__main__":
    main()
