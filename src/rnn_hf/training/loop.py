"""Checkpoints and metric logs for Accelerate training loops (one copy, shared by the scripts)."""

import csv
import json
import time
from pathlib import Path

import torch
from accelerate import Accelerator

from .cli import UserError

STATE_FILE = "loop_state.json"


def save_checkpoint(accelerator: Accelerator, directory: Path, loop_state: dict, carried=None) -> None:
    """`accelerator.save_state` (model, optimizer, scheduler, every RNG) plus the loop's position.

    `carried` is this process's recurrent state for truncated BPTT (an `RnnCache` or None): each process keeps
    its own rows of the stream, so each writes its own file.
    """
    accelerator.save_state(str(directory))
    if carried is not None:
        layer_states = [tuple(t.cpu() for t in state) for state in carried.layer_states]
        torch.save({"layer_states": layer_states, "seen_tokens": carried.seen_tokens},
                   directory / f"carried_state_{accelerator.process_index}.pt")  # fmt: skip
    if accelerator.is_main_process:
        (directory / STATE_FILE).write_text(json.dumps(loop_state, indent=2))
    accelerator.wait_for_everyone()


def resolve_checkpoint(path: str, checkpoints_dir: Path) -> Path:
    """`path`, or the newest checkpoint under `checkpoints_dir` when `path` is "latest"."""
    if path == "latest":
        found = sorted(checkpoints_dir.glob("step_*"), key=lambda p: int(p.name.split("_")[1]))
        if not found:
            raise UserError(f"--resume_from_checkpoint latest: no checkpoint under '{checkpoints_dir}'")
        return found[-1]
    directory = Path(path)
    if not (directory / STATE_FILE).is_file():
        raise UserError(
            f"--resume_from_checkpoint '{path}' is not a checkpoint of this script (no {STATE_FILE})"
        )
    return directory


def load_checkpoint(accelerator: Accelerator, directory: Path, cache_class=None, device=None):
    """Restore what `save_checkpoint` wrote; returns `(loop_state, carried)`."""
    accelerator.load_state(str(directory))
    loop_state = json.loads((directory / STATE_FILE).read_text())
    carried = None
    carried_file = directory / f"carried_state_{accelerator.process_index}.pt"
    if cache_class is not None and carried_file.is_file():
        saved = torch.load(carried_file, map_location=device)
        carried = cache_class.from_layer_states(
            [tuple(s) for s in saved["layer_states"]], saved["seen_tokens"]
        )
    return loop_state, carried


class MetricsLog:
    """Appends `(time, step, epoch, split, metric, value)` rows to `metrics.csv`, and to the trackers if any."""

    def __init__(self, accelerator: Accelerator, output_dir: Path):
        self.accelerator = accelerator
        self.path = output_dir / "metrics.csv"
        self.start = time.time()
        if accelerator.is_main_process and not self.path.exists():
            with self.path.open("w", newline="") as file:
                csv.writer(file).writerow(["seconds", "step", "epoch", "split", "metric", "value"])

    def log(self, step: int, epoch: int, split: str, metrics: dict) -> None:
        if not self.accelerator.is_main_process:
            return
        seconds = round(time.time() - self.start, 1)
        with self.path.open("a", newline="") as file:
            writer = csv.writer(file)
            for name, value in metrics.items():
                writer.writerow([seconds, step, epoch, split, name, value])
        self.accelerator.log({f"{split}/{name}": value for name, value in metrics.items()}, step=step)
