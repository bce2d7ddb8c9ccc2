"""Command-line plumbing: bad input ends a script with one clear line and a non-zero exit, no traceback wall."""

import argparse
import functools
import json
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import transformers

from ..data import DataError


class UserError(ValueError):
    """A problem with the user's arguments or files (not a bug): printed as one line by `exit_on_user_error`."""


@contextmanager
def quiet_transformers() -> Iterator[None]:
    """transformers logs errors only inside the block (e.g. no table of unused or new weights when a checkpoint is
    loaded with another head); its verbosity comes back after, also when the block raises."""
    verbosity = transformers.logging.get_verbosity()
    transformers.logging.set_verbosity_error()
    try:
        yield
    finally:
        transformers.logging.set_verbosity(verbosity)


def exit_on_user_error(main: Callable) -> Callable:
    """Wrap a script's `main`: a `UserError` or `DataError` prints `error: <message>` and exits with status 2.

    Only these two are caught; anything else is a bug and keeps its traceback.
    """

    @functools.wraps(main)
    def wrapper(*args, **kwargs):
        try:
            return main(*args, **kwargs)
        except (UserError, DataError) as err:
            print(f"error: {err}", file=sys.stderr, flush=True)
            raise SystemExit(2) from None

    return wrapper


def labels_per_class(value: str) -> str:
    """An argparse type for a study's numbers of labels: a positive integer or 'all', kept as the string."""
    if value != "all" and not (value.isdigit() and int(value) > 0):
        raise argparse.ArgumentTypeError(f"takes positive integers or 'all', got {value!r}")
    return value


def non_negative_int(value: str) -> int:
    """An argparse type for a seed: a non-negative integer (numpy's generators refuse negative ones)."""
    if not value.isdigit():
        raise argparse.ArgumentTypeError(f"takes non-negative integers, got {value!r}")
    return int(value)


def check_rnn_checkpoint(path: str | Path, flag: str = "--model_name_or_path") -> Path:
    """Return `path` if it is a saved rnn_hf model directory, else raise a `UserError` that says what is wrong."""
    path = Path(path)
    if not path.is_dir():
        raise UserError(
            f"{flag} '{path}' is not a directory (the Hub cannot be reached here; give a local checkpoint)"
        )
    config_file = path / "config.json"
    if not config_file.is_file():
        raise UserError(f"{flag} '{path}' is not an rnn_hf model: it has no config.json")
    try:
        model_type = json.loads(config_file.read_text()).get("model_type")
    except (json.JSONDecodeError, AttributeError) as err:
        raise UserError(
            f"{flag} '{path}' is not an rnn_hf model: config.json is not valid JSON ({err})"
        ) from None
    if model_type not in ("rnn", "rnn_seq2seq"):
        raise UserError(
            f"{flag} '{path}' is not an rnn_hf model: its config.json has model_type={model_type!r}, not 'rnn' "
            "(or 'rnn_seq2seq', whose encoder is used)"
        )
    if not any((path / name).is_file() for name in ("model.safetensors", "model.safetensors.index.json")):
        raise UserError(f"{flag} '{path}' has a config but no weights (model.safetensors)")
    return path


def parse_flags(parser, argv: list[str]) -> tuple:
    """`HfArgumentParser.parse_args_into_dataclasses`, with an unknown flag ending the script with one clear line
    (a `UserError`) instead of a traceback; a dataclass's own checks raise `UserError` too."""
    *parsed, remaining = parser.parse_args_into_dataclasses(argv, return_remaining_strings=True)
    if remaining:
        raise UserError(f"unrecognized arguments: {' '.join(remaining)} (see --help)")
    return tuple(parsed)
