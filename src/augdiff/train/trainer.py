"""The training loop: AdamW, the learning-rate schedule (train/schedule.py), clipping, EMA, gradient accumulation,
exact resume.

Every random draw of a step comes from generators seeded by ``(seed, step, …)`` (data, times, masks), and the
global RNG (dropout) is saved with each checkpoint, so "train N steps" and "train k, resume, train N−k" give
the same weights bit for bit on the same device. Ctrl-C finishes the current step, saves, and stops.
"""

from __future__ import annotations

import contextlib
import json
import math
import signal
import time
from collections.abc import Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import torch
import yaml
from torch.optim.lr_scheduler import LRScheduler
from tqdm.auto import tqdm

from augdiff.config import TrainConfig, config_from_dict, config_from_stored, config_to_dict
from augdiff.data import TokenDataset, make_dataset, padding_id, seeded_generator
from augdiff.errors import AugdiffError
from augdiff.files import ensure_dir, write_text_atomic
from augdiff.methods import LADD_METHODS, build_model
from augdiff.processes import sample_times
from augdiff.runtime import configure_device
from augdiff.specs import method_spec
from augdiff.train.checkpoint import (
    has_checkpoint,
    load_checkpoint,
    remove_stale_temporaries,
    save_checkpoint,
    state_mismatch,
)
from augdiff.train.distributed import Distributed, NullLogger
from augdiff.train.ema import EMA
from augdiff.train.init_from import load_backbone
from augdiff.train.logging import MetricsLogger, MetricWindow
from augdiff.train.pretrained import load_any
from augdiff.train.schedule import build_lr_scheduler, fast_forward

__all__ = ["Trainer", "TrainResult", "resolve_device", "RESUMABLE_KEYS"]

# Stream ids that keep the seeded generators of one step independent of each other.
_TIMES, _MASKS = 4, 5
# Keys a resumed run may change: they leave the model and the objective alone. grad_accum (like the number of
# processes) only splits the same global batch; the draws repeat exactly while processes × grad_accum does.
RESUMABLE_KEYS = (
    "steps",
    "device",
    "progress",
    "tensorboard",
    "log_every",
    "ckpt_every",
    "keep_checkpoints",
    "compile",
    "strategy",
    "grad_accum",
)


@dataclass
class TrainResult:
    """How a call to :meth:`Trainer.fit` ended: the run's step, training seconds, last logged loss."""

    run_dir: Path
    steps: int
    seconds: float
    final_loss: float
    steps_run: int
    interrupted: bool = False


def resolve_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(name)
    except RuntimeError:
        raise AugdiffError(f"device={name!r} is not a device (use auto, cpu or cuda)") from None
    if device.type not in ("cpu", "cuda"):
        raise AugdiffError(f"device={name!r} is not supported (use auto, cpu or cuda)")
    if device.type == "cuda" and not torch.cuda.is_available():
        raise AugdiffError(f"device={name!r} but no CUDA device is available (use device=cpu)")
    return device


def _amp_dtype(precision: str, device: torch.device) -> torch.dtype | None:
    if precision == "bf16" or (precision == "auto" and device.type == "cuda"):
        return torch.bfloat16
    return None


@contextlib.contextmanager
def _stop_on_sigint(trainer: Trainer) -> Iterator[None]:
    """First Ctrl-C asks the loop to stop after the current step (it then saves); a second one interrupts at once."""

    def handler(signum: int, frame: Any) -> None:
        if trainer.stop_requested:
            raise KeyboardInterrupt
        trainer.request_stop()

    try:
        previous = signal.signal(signal.SIGINT, handler)
    except ValueError:  # not the main thread: keep the default behaviour
        yield
        return
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)


class Trainer:
    """Train ``cfg.method`` on ``cfg.data`` into ``run_dir``.

    Example:
        >>> cfg = build_config({"steps": 100, "batch_size": 32, "model_size": "xxs"})
        >>> Trainer(cfg, "runs/demo").fit()
    """

    def __init__(
        self, cfg: TrainConfig, run_dir: str | Path, dataset: TokenDataset | None = None, *, load_init: bool = True
    ) -> None:
        self.cfg = cfg
        self.run_dir = Path(run_dir)
        if self.run_dir.exists() and not self.run_dir.is_dir():
            raise AugdiffError(f"--out {self.run_dir}: exists and is not a directory (choose another path)")
        self.dist, self.device = Distributed.from_env(cfg.strategy, resolve_device(cfg.device))
        if self.dist.is_main:
            remove_stale_temporaries(self.run_dir / "checkpoints")
        if dataset is None:  # under torchrun one process per machine tokenizes (a lock in the cache), the rest read
            # fine-tuning on pairs speaks the tokenizer of the model it starts from
            sft = cfg.init_from and cfg.data.startswith("sft:")
            like = load_any(cfg.init_from, weights=False).meta["data"] if sft else None
            dataset = make_dataset(cfg.data, cfg.seq_len, cfg.vocab_size, like=like, text=cfg.text, image=cfg.image)
        self.dataset = dataset
        if cfg.batch_size % (cfg.grad_accum * self.dist.world_size):
            raise AugdiffError(
                f"batch_size={cfg.batch_size} is not divisible by grad_accum={cfg.grad_accum} × "
                f"{self.dist.world_size} processes (batch_size is the global batch)"
            )
        configure_device(self.device)
        self.amp_dtype = _amp_dtype(cfg.precision, self.device)
        torch.manual_seed(cfg.seed)
        ds = self.dataset
        decode = (lambda x: [ds.decode(row) for row in x]) if ds.tokenizer is not None else None
        pad = padding_id(ds.describe())
        shape = ds.describe().get("image_shape")
        self.model = build_model(cfg, ds.vocab_size, ds.seq_len, decode, pad, shape).to(self.device)
        if cfg.init_from and load_init:
            others = {name: getattr(cfg, name) for name in method_spec(cfg.method).also_reads}
            load_backbone(self.model, cfg.init_from, ds.vocab_size, cfg.method, cfg.ladd, others)
        settled = self.model.settle()
        for name, values in settled.items():  # written into config.yaml, so a resume rebuilds the same channel
            self.cfg = cfg = replace(cfg, **{name: replace(getattr(cfg, name), **values)})
        self.dist.seed_rank_stream(cfg.seed)  # identical init above; distinct dropout per rank from here
        if cfg.compile:  # in place (nn.Module.compile): state_dict keys, EMA and checkpoints stay unprefixed
            self.model.network.compile()
        # The module the loop calls (model.loss), under DDP/FSDP2 when launched by torchrun.
        self.train_model = self.dist.wrap(
            self.model, self.device, find_unused=cfg.method in LADD_METHODS, param_dtype=self.amp_dtype
        )
        o = cfg.optim
        self.optimizer = torch.optim.AdamW(
            self.model.parameters(),
            lr=o.lr,
            betas=(o.beta1, o.beta2),
            weight_decay=o.weight_decay,
            fused=self.device.type == "cuda",
        )
        self.scheduler = self._lr_scheduler()
        self.last_lr = self.optimizer.param_groups[0]["lr"]
        self.ema = EMA(self.model, o.ema_decay)
        self.window = MetricWindow(self.device)  # the open logging window (saved with checkpoints)
        self.step = 0
        self.seconds = 0.0
        self._saved_step = -1
        self.stop_requested = False

    def request_stop(self) -> None:
        """Finish the current optimizer step, save a checkpoint and return from :meth:`fit`."""
        self.stop_requested = True

    # -- resume ---------------------------------------------------------------------------------------------
    @classmethod
    def resume(cls, run_dir: str | Path, **changes: Any) -> Trainer:
        """Rebuild a run from its latest checkpoint. ``changes`` may set any of :data:`RESUMABLE_KEYS`;
        ``steps`` must lie beyond the checkpoint's step."""
        run_dir = Path(run_dir)
        if (run_dir / "meta.json").is_file() and not has_checkpoint(run_dir):
            raise AugdiffError(
                f"--resume {run_dir}: this is one checkpoint; resume the run directory that holds it "
                f"({run_dir.parent.parent})"
            )
        if (run_dir / "config.yaml").is_file() and not has_checkpoint(run_dir):
            raise AugdiffError(
                f"--resume {run_dir}: the run stopped before its first checkpoint, so there is nothing to resume; "
                f"rerun the augdiff train command that created it (its settings are in {run_dir / 'config.yaml'})"
            )
        ckpt = load_checkpoint(run_dir, with_trainer_state=True, weights=False)
        state = ckpt.trainer_state
        assert state is not None
        data = dict(ckpt.meta["data"])
        tree = config_to_dict(config_from_stored(ckpt.meta["config"]))
        for key, value in changes.items():
            if key not in RESUMABLE_KEYS:
                raise AugdiffError(
                    f"--resume keeps the run's config; {key} cannot change (only {', '.join(RESUMABLE_KEYS)})"
                )
            if value is not None:
                tree[key] = value
        cfg = config_from_dict(tree)
        step = int(state["step"])
        if changes.get("steps") is not None and cfg.steps <= step:
            raise AugdiffError(f"--steps {cfg.steps}: the run is already at step {step} (give a larger --steps)")
        # The data description stores absolute paths and the vocabulary: the run resumes from any directory,
        # and a corpus that changed under it is refused rather than silently re-indexed.
        trainer = cls(cfg, run_dir, dataset=make_dataset(data["spec"], like=data), load_init=False)
        trainer._restore(ckpt.path, state)
        trainer.step = step
        trainer.scheduler = trainer._lr_scheduler()  # AdamW's state is loaded: the schedule restarts and replays
        fast_forward(trainer.scheduler, step)
        trainer.seconds = float(state["seconds"])
        trainer._saved_step = trainer.step
        torch.set_rng_state(state["rng_cpu"])
        if trainer.device.type == "cuda" and "rng_cuda" in state:  # this device's stream: any GPU count resumes
            torch.cuda.set_rng_state(state["rng_cuda"], trainer.device)
        trainer.dist.restore_rng(state.get("rng_ranks"), trainer.device, cfg.seed, step)
        trainer.window.load(state.get("window"))  # checkpoints before this key: the window restarts empty
        return trainer

    def _lr_scheduler(self) -> LRScheduler:
        """The configured schedule's torch schedulers, at step 0 (:func:`augdiff.train.schedule.lr_at`)."""
        o = self.cfg.optim
        return build_lr_scheduler(self.optimizer, o.lr, o.warmup_steps, o.lr_schedule, self.cfg.steps, o.min_lr_ratio)

    def _restore(self, path: Path, state: dict[str, Any]) -> None:
        """Weights, EMA and AdamW from checkpoint ``path``. Under FSDP only rank 0 reads the full tensors and
        broadcasts them shard by shard; it checks them first and every rank raises its verdict together."""
        dist = self.dist
        saved, problem = None, None

        def misfit(reason: str) -> str:
            return (
                f"{path}: the saved state does not fit the configured model ({reason}); "
                "the checkpoint is damaged or foreign"
            )

        if dist.reads_full_state:
            try:
                saved = load_checkpoint(path)
                n_params = sum(len(g["params"]) for g in self.optimizer.param_groups)
                n_saved = sum(len(g["params"]) for g in state["optimizer"].get("param_groups", []))
                mismatch = (
                    state_mismatch(self.model.state_dict(), saved.model)
                    or state_mismatch(self.ema.shadow, saved.ema)
                    or (None if n_saved == n_params else f"AdamW holds {n_saved} parameters, the model {n_params}")
                )
                problem = misfit(mismatch) if mismatch else None
            except AugdiffError as exc:  # unreadable weights: every rank must hear it, not just this one
                problem = str(exc)
        problem = dist.first_problem(problem)
        if problem:
            raise AugdiffError(problem)
        try:
            dist.load_model_state(self.model, saved.model if saved else {})
            self.ema.load_state_dict(dist.load_into(self.ema.shadow, saved.ema if saved else {}), state["ema_updates"])
            dist.load_optimizer_state(self.train_model, self.optimizer, state["optimizer"])
        except (RuntimeError, KeyError, ValueError, IndexError, AssertionError) as exc:
            raise AugdiffError(misfit(f"{exc!s:.100}")) from None

    def _trainer_state(self) -> dict[str, Any]:
        state: dict[str, Any] = {
            "step": self.step,
            "seconds": self.seconds,
            "ema_updates": self.ema.num_updates,
            "optimizer": self.dist.optimizer_state(self.train_model, self.optimizer),
            "rng_cpu": torch.get_rng_state(),
            "window": self.window.state(reduce=self.dist.mean if self.dist.active else None),
        }
        if self.device.type == "cuda":
            state["rng_cuda"] = torch.cuda.get_rng_state(self.device)
        if self.dist.active:  # every rank's dropout stream (a collective)
            state["rng_ranks"] = self.dist.rng_states(self.device)
        return state

    def save(self) -> Path:
        meta = {"config": config_to_dict(self.cfg), "data": self.dataset.describe(), "seconds": self.seconds}
        self._saved_step = self.step
        # Every rank takes part in gathering the full state (FSDP); rank 0 writes it, the others wait.
        model, ema = self.dist.model_state(self.model), self.dist.full_tensors(self.ema.state_dict())
        trainer_state = self._trainer_state()
        path = self.run_dir / "checkpoints"
        if self.dist.is_main:
            path = save_checkpoint(
                self.run_dir,
                self.step,
                model=model,
                ema=ema,
                trainer_state=trainer_state,
                meta=meta,
                keep=self.cfg.keep_checkpoints,
            )
        self.dist.barrier()
        return path

    # -- one optimizer step -----------------------------------------------------------------------------------
    def train_step(self) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """One optimizer step over the global batch; returns this rank's (loss, nll) and the global grad norm as
        device tensors (the loop averages the losses over ranks when it logs)."""
        cfg, step = self.cfg, self.step
        # Rank r runs micro-batches k = r·grad_accum + j of the global batch (train/distributed.py).
        micro = cfg.batch_size // (cfg.grad_accum * self.dist.world_size)
        times = seeded_generator(cfg.seed, step, _TIMES, device=self.device)
        d = cfg.diffusion
        t_all = sample_times(
            cfg.batch_size, antithetic=d.antithetic, eps=d.time_eps, device=self.device, generator=times
        )
        loss_sum = torch.zeros((), device=self.device)
        nll_sum = torch.zeros((), device=self.device)
        self.model.train()
        autocast = torch.autocast(self.device.type, dtype=self.amp_dtype) if self.amp_dtype else None
        for j in range(cfg.grad_accum):
            k = self.dist.rank * cfg.grad_accum + j
            rows = slice(k * micro, (k + 1) * micro)
            x0 = self.dataset.train_batch(cfg.seed, step, cfg.batch_size, rows).to(self.device, non_blocking=True)
            fixed = self.dataset.train_fixed(cfg.seed, step, cfg.batch_size, rows)
            fixed = None if fixed is None else fixed.to(self.device, non_blocking=True)
            masks = seeded_generator(cfg.seed, step, _MASKS, k, device=self.device)
            with self.dist.accumulating(self.train_model, last=j == cfg.grad_accum - 1):
                with autocast or contextlib.nullcontext():
                    out = self.train_model(x0, t_all[rows], masks, fixed)
                (out.loss / cfg.grad_accum).backward()
            loss_sum += out.loss.detach() / cfg.grad_accum
            nll_sum += out.nll / cfg.grad_accum
        clip = cfg.optim.grad_clip if cfg.optim.grad_clip > 0 else math.inf  # 0: no clipping, norm still logged
        grad_norm = self.dist.scalar(torch.nn.utils.clip_grad_norm_(self.model.parameters(), clip))
        self.optimizer.step()
        self.last_lr = self.optimizer.param_groups[0]["lr"]  # what this step used (logged), before the schedule moves
        self.scheduler.step()
        self.optimizer.zero_grad(set_to_none=True)
        self.ema.update(self.model)
        self.step += 1
        return loss_sum, nll_sum, grad_norm

    # -- the loop ---------------------------------------------------------------------------------------------
    def _write_run_files(self) -> None:
        ensure_dir(self.run_dir, "--out")
        write_text_atomic(self.run_dir / "config.yaml", yaml.safe_dump(config_to_dict(self.cfg), sort_keys=False))
        write_text_atomic(self.run_dir / "data.json", json.dumps(self.dataset.describe(), indent=2))

    def fit(self) -> TrainResult:
        """Train from ``self.step`` to ``cfg.steps``, logging and checkpointing on the way."""
        cfg = self.cfg
        resumed = self._saved_step == self.step and self.step > 0
        if not resumed and has_checkpoint(self.run_dir):
            raise AugdiffError(
                f"{self.run_dir} already holds a run (resume it with: augdiff train --resume "
                f"{self.run_dir}, or choose a new --out)"
            )
        main = self.dist.is_main
        if main:
            self._write_run_files()
        logger = (
            MetricsLogger(self.run_dir, tensorboard=cfg.tensorboard, resume_step=self.step if resumed else None)
            if main
            else NullLogger()
        )
        start_step, last_loss = self.step, math.nan
        self.stop_requested = stopping = False
        bar = tqdm(
            total=cfg.steps,
            initial=self.step,
            disable=not (cfg.progress and main),
            unit="step",
            desc="train",
            dynamic_ncols=True,
        )
        window = self.window
        try:
            with _stop_on_sigint(self):
                while self.step < cfg.steps and not stopping:
                    t0 = time.perf_counter()
                    loss, nll, grad_norm = self.train_step()
                    window.add(loss, nll)
                    bar.update(1)
                    log_now = self.step % cfg.log_every == 0 or self.step == cfg.steps
                    if log_now:
                        # the loop's only host sync (and, under torchrun, its only loss all-reduce)
                        scalars = window.flush(cfg.batch_size * self.dataset.seq_len, reduce=self.dist.mean)
                        scalars.update(grad_norm=float(grad_norm), lr=self.last_lr)
                        logger.log(self.step, scalars)
                        last_loss = scalars["loss"]
                        bar.set_postfix(loss=f"{last_loss:.4f}", tok_s=f"{scalars['tokens_per_s']:,.0f}")
                    self.seconds += time.perf_counter() - t0
                    # All ranks stop together (train/distributed.py); one process: the flag, no sync.
                    due = log_now or self.step % cfg.ckpt_every == 0
                    stopping = self.dist.agree_stop(self.stop_requested, self.device, due)
                    if self.step % cfg.ckpt_every == 0 and self.step < cfg.steps:
                        self.save()
        finally:
            bar.close()
            logger.close()
        if self._saved_step != self.step:
            self.save()
        return TrainResult(
            run_dir=self.run_dir,
            steps=self.step,
            seconds=self.seconds,
            final_loss=last_loss,
            steps_run=self.step - start_step,
            interrupted=stopping and self.step < cfg.steps,
        )
