"""Pieces the training scripts share: one-line CLI errors, checkpoint checks, batching, logging, model cards."""

from .cli import UserError, check_rnn_checkpoint, exit_on_user_error

__all__ = ["UserError", "check_rnn_checkpoint", "exit_on_user_error"]
