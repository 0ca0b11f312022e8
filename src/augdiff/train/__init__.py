"""Training: the loop, checkpoints, EMA and metric logging."""

from augdiff.train.checkpoint import Checkpoint, load_checkpoint, resolve_checkpoint, save_checkpoint
from augdiff.train.ema import EMA, ema_decay_at
from augdiff.train.logging import MetricsLogger
from augdiff.train.schedule import build_lr_scheduler, lr_at
from augdiff.train.trainer import Trainer, TrainResult, resolve_device

__all__ = [
    "Checkpoint",
    "load_checkpoint",
    "resolve_checkpoint",
    "save_checkpoint",
    "EMA",
    "ema_decay_at",
    "MetricsLogger",
    "Trainer",
    "TrainResult",
    "lr_at",
    "build_lr_scheduler",
    "resolve_device",
]
