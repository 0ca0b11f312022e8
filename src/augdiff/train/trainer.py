"""The training loop: AdamW, warm-up then constant LR, clipping, EMA, gradient accumulation, exact resume.

Every random draw of a step comes from generators seeded by ``(seed, step, …)`` (data, times, masks), and the
global RNG (dropout) is saved with each checkpoint, so "train N steps" and "train k, resume, train N−k" give
the same weights bit for bit on the same device.
"""

from __future__ import annotations

import contextlib
import json
import math
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
import yaml
from tqdm.auto import tqdm

from augdiff.config import TrainConfig, config_from_dict, config_to_dict
from augdiff.data import TokenDataset, make_dataset, seeded_generator
from augdiff.errors import AugdiffError
from augdiff.methods import build_model
from augdiff.processes import sample_times
from augdiff.train.checkpoint import has_checkpoint, load_checkpoint, save_checkpoint, write_text_atomic
from augdiff.train.ema import EMA
from augdiff.train.logging import MetricsLogger

__all__ = ["Trainer", "TrainResult", "resolve_device", "lr_at"]

# Stream ids that keep the seeded generators of one step independent of each other.
_TIMES, _MASKS = 4, 5


@dataclass
class TrainResult:
    run_dir: Path
    steps: int
    seconds: float
    final_loss: float


def resolve_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(name)
    except RuntimeError:
        raise AugdiffError(f"device={name!r} is not a device (use auto, cpu or cuda)") from None
    if device.type == "cuda" and not torch.cuda.is_available():
        raise AugdiffError(f"device={name!r} but no CUDA device is available (use device=cpu)")
    return device


def lr_at(step: int, lr: float, warmup_steps: int) -> float:
    """Linear warm-up over ``warmup_steps`` optimizer steps, then constant (MDLM's schedule)."""
    return lr * min(1.0, (step + 1) / warmup_steps) if warmup_steps > 0 else lr


def _amp_dtype(precision: str, device: torch.device) -> torch.dtype | None:
    if precision == "bf16" or (precision == "auto" and device.type == "cuda"):
        return torch.bfloat16
    return None


class Trainer:
    """Train ``cfg.method`` on ``cfg.data`` into ``run_dir``.

    Example:
        >>> cfg = build_config({"steps": 100, "batch_size": 32, "model_size": "xxs"})
        >>> Trainer(cfg, "runs/demo").fit()
    """

    def __init__(self, cfg: TrainConfig, run_dir: str | Path, dataset: TokenDataset | None = None) -> None:
        self.cfg = cfg
        self.run_dir = Path(run_dir)
        self.dataset = dataset if dataset is not None else make_dataset(cfg.data, cfg.seq_len, cfg.vocab_size)
        self.device = resolve_device(cfg.device)
        self.amp_dtype = _amp_dtype(cfg.precision, self.device)
        torch.manual_seed(cfg.seed)
        self.model = build_model(cfg, self.dataset.vocab_size).to(self.device)
        o = cfg.optim
        self.optimizer = torch.optim.AdamW(
            self.model.parameters(),
            lr=o.lr,
            betas=(o.beta1, o.beta2),
            weight_decay=o.weight_decay,
            fused=self.device.type == "cuda",
        )
        self.ema = EMA(self.model, o.ema_decay)
        self.step = 0
        self.seconds = 0.0
        self._saved_step = -1

    # -- resume ---------------------------------------------------------------------------------------------
    @classmethod
    def resume(cls, run_dir: str | Path, steps: int | None = None) -> Trainer:
        """Rebuild a run from its latest checkpoint; ``steps`` may extend the run."""
        ckpt = load_checkpoint(run_dir, with_trainer_state=True)
        cfg = config_from_dict(ckpt.meta["config"])
        if steps is not None:
            cfg.steps = steps
        trainer = cls(cfg, run_dir)
        state = ckpt.trainer_state
        assert state is not None
        trainer.model.load_state_dict(ckpt.model)
        trainer.ema.load_state_dict({k: v.to(trainer.device) for k, v in ckpt.ema.items()}, state["ema_updates"])
        trainer.optimizer.load_state_dict(state["optimizer"])
        trainer.step = int(state["step"])
        trainer.seconds = float(state["seconds"])
        trainer._saved_step = trainer.step
        torch.set_rng_state(state["rng_cpu"])
        if trainer.device.type == "cuda" and "rng_cuda" in state:
            torch.cuda.set_rng_state_all(state["rng_cuda"])
        return trainer

    def _trainer_state(self) -> dict[str, Any]:
        state: dict[str, Any] = {
            "step": self.step,
            "seconds": self.seconds,
            "ema_updates": self.ema.num_updates,
            "optimizer": self.optimizer.state_dict(),
            "rng_cpu": torch.get_rng_state(),
        }
        if self.device.type == "cuda":
            state["rng_cuda"] = torch.cuda.get_rng_state_all()
        return state

    def save(self) -> Path:
        meta = {"config": config_to_dict(self.cfg), "data": self.dataset.describe(), "seconds": self.seconds}
        self._saved_step = self.step
        return save_checkpoint(
            self.run_dir,
            self.step,
            model=self.model.state_dict(),
            ema=self.ema.state_dict(),
            trainer_state=self._trainer_state(),
            meta=meta,
            keep=self.cfg.keep_checkpoints,
        )

    # -- one optimizer step -----------------------------------------------------------------------------------
    def train_step(self) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """One optimizer step over the global batch; returns (loss, nll, grad norm) as device tensors."""
        cfg, step = self.cfg, self.step
        for group in self.optimizer.param_groups:
            group["lr"] = lr_at(step, cfg.optim.lr, cfg.optim.warmup_steps)
        micro = cfg.batch_size // cfg.grad_accum
        t_all = sample_times(
            cfg.batch_size,
            antithetic=cfg.diffusion.antithetic,
            eps=cfg.diffusion.time_eps,
            device=self.device,
            generator=seeded_generator(cfg.seed, step, _TIMES, device=self.device),
        )
        loss_sum = torch.zeros((), device=self.device)
        nll_sum = torch.zeros((), device=self.device)
        self.model.train()
        for j in range(cfg.grad_accum):
            rows = slice(j * micro, (j + 1) * micro)
            x0 = self.dataset.train_batch(cfg.seed, step, cfg.batch_size, rows).to(self.device, non_blocking=True)
            gen = seeded_generator(cfg.seed, step, _MASKS, j, device=self.device)
            autocast = (
                torch.autocast(self.device.type, dtype=self.amp_dtype) if self.amp_dtype else contextlib.nullcontext()
            )
            with autocast:
                out = self.model.loss(x0, t_all[rows], gen)
            (out.loss / cfg.grad_accum).backward()
            loss_sum += out.loss.detach() / cfg.grad_accum
            nll_sum += out.nll / cfg.grad_accum
        grad_norm = torch.nn.utils.clip_grad_norm_(self.model.parameters(), cfg.optim.grad_clip)
        self.optimizer.step()
        self.optimizer.zero_grad(set_to_none=True)
        self.ema.update(self.model)
        self.step += 1
        return loss_sum, nll_sum, grad_norm

    # -- the loop ---------------------------------------------------------------------------------------------
    def _write_run_files(self) -> None:
        self.run_dir.mkdir(parents=True, exist_ok=True)
        write_text_atomic(self.run_dir / "config.yaml", yaml.safe_dump(config_to_dict(self.cfg), sort_keys=False))
        write_text_atomic(self.run_dir / "data.json", json.dumps(self.dataset.describe(), indent=2))

    def fit(self) -> TrainResult:
        """Train from ``self.step`` to ``cfg.steps``, logging and checkpointing on the way."""
        cfg = self.cfg
        resumed = self.step > 0
        if not resumed and has_checkpoint(self.run_dir):
            raise AugdiffError(
                f"{self.run_dir} already holds a run (resume it with: augdiff train --resume "
                f"{self.run_dir}, or choose a new --out)"
            )
        self._write_run_files()
        logger = MetricsLogger(self.run_dir, tensorboard=cfg.tensorboard, resume_step=self.step if resumed else None)
        tokens_per_step = cfg.batch_size * self.dataset.seq_len
        bar = tqdm(
            total=cfg.steps, initial=self.step, disable=not cfg.progress, unit="step", desc="train", dynamic_ncols=True
        )
        last_loss = math.nan
        window_start, window_steps = time.perf_counter(), 0
        window = {"loss": torch.zeros((), device=self.device), "nll": torch.zeros((), device=self.device)}
        try:
            while self.step < cfg.steps:
                t0 = time.perf_counter()
                loss, nll, grad_norm = self.train_step()
                window["loss"] += loss
                window["nll"] += nll
                window_steps += 1
                bar.update(1)
                if self.step % cfg.log_every == 0 or self.step == cfg.steps:
                    # The only host sync of the loop: window means, once per logging interval.
                    last_loss = float(window["loss"]) / window_steps
                    mean_nll = float(window["nll"]) / window_steps
                    elapsed = time.perf_counter() - window_start
                    tok_s = window_steps * tokens_per_step / max(elapsed, 1e-9)
                    logger.log(
                        self.step,
                        {
                            "loss": last_loss,
                            "nll": mean_nll,
                            "bpt": mean_nll / math.log(2),
                            "grad_norm": float(grad_norm),
                            "lr": self.optimizer.param_groups[0]["lr"],
                            "tokens_per_s": tok_s,
                        },
                    )
                    bar.set_postfix(loss=f"{last_loss:.4f}", tok_s=f"{tok_s:,.0f}")
                    window_start, window_steps = time.perf_counter(), 0
                    window = {k: torch.zeros_like(v) for k, v in window.items()}
                self.seconds += time.perf_counter() - t0
                if self.step % cfg.ckpt_every == 0 and self.step < cfg.steps:
                    self.save()
        finally:
            bar.close()
            logger.close()
        if self._saved_step != self.step:
            self.save()
        return TrainResult(run_dir=self.run_dir, steps=self.step, seconds=self.seconds, final_loss=last_loss)
