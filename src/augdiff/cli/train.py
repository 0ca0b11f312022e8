"""augdiff train: train a method on data into a run directory, or resume one."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from augdiff.config import build_config, load_yaml
from augdiff.errors import AugdiffError
from augdiff.train import Trainer
from augdiff.train.trainer import RESUMABLE_KEYS

# Flags that stand for top-level config keys (the same words, with dashes).
_FLAG_KEYS = (
    "method",
    "data",
    "model_size",
    "steps",
    "batch_size",
    "seed",
    "device",
    "init_from",
    "compile",
    "strategy",
    "trust_remote_code",
)


def add_parser(sub: Any) -> None:
    p = sub.add_parser("train", help="train a model", description=__doc__)
    p.add_argument("--method", help="mdlm | cadd | co-ladd | di-ladd | ar (autoregressive reference)")
    p.add_argument(
        "--data", help="sawtooth | tokens:PATH.npy | text:PATH | hf:NAME (text8, lm1b, openwebtext, tiny_shakespeare)"
    )
    p.add_argument("--model-size", help="xxs | xs | tiny | small")
    p.add_argument("--steps", type=int, help="optimizer steps (with --resume: the new total)")
    p.add_argument("--batch-size", type=int, help="global batch size")
    p.add_argument("--seed", type=int)
    p.add_argument("--device", help="auto | cpu | cuda")
    p.add_argument("--compile", action="store_const", const=True, help="torch.compile the network (compile=true)")
    p.add_argument(
        "--backbone", help="dit | unet (image data) | hf:PATH (a local transformers masked diffusion LM to fine-tune)"
    )
    p.add_argument(
        "--trust-remote-code",
        action="store_const",
        const=True,
        help="run the modeling code an hf:PATH model ships (LLaDA, Dream, DiffuCoder); only code you trust",
    )
    p.add_argument("--strategy", help="auto | ddp | fsdp: under torchrun --nproc_per_node=N (auto: ddp if N > 1)")
    p.add_argument("--out", help="run directory to create")
    p.add_argument("--init-from", metavar="DIR", help="start from another run: MDLM → CADD, or LADD stage 1 → stage 2")
    p.add_argument(
        "--stage", type=int, choices=(1, 2), help="ladd.stage: 1 encoder + tokens, 2 frozen encoder + latent"
    )
    p.add_argument("--config", help="YAML file of config keys (flags and key=value override it)")
    p.add_argument(
        "--resume",
        metavar="DIR",
        help="continue the run in DIR from its latest checkpoint (may change: " + ", ".join(RESUMABLE_KEYS) + ")",
    )
    p.add_argument("overrides", nargs="*", metavar="key=value", help="any config key, e.g. optim.lr=1e-3")
    p.set_defaults(func=run)


def _resume(args: argparse.Namespace) -> Trainer:
    fixed = [
        k
        for k in (*_FLAG_KEYS, "backbone", "out", "config", "stage")
        if k not in RESUMABLE_KEYS and getattr(args, k) is not None
    ]
    if fixed:
        given = ", ".join(f"--{k.replace('_', '-')}" for k in fixed)
        raise AugdiffError(f"--resume continues a run with its saved config; drop {given}")
    changes: dict[str, Any] = {
        k: getattr(args, k) for k in ("steps", "device", "compile", "strategy") if getattr(args, k) is not None
    }
    for item in args.overrides:
        key, _, value = item.partition("=")
        changes[key.strip().replace("-", "_")] = value.strip()
    return Trainer.resume(args.resume, **changes)


def run(args: argparse.Namespace) -> int:
    if args.resume:
        trainer = _resume(args)
    else:
        if not args.out:
            raise AugdiffError("--out DIR is required (the run directory to create), or --resume DIR")
        base: dict[str, Any] = load_yaml(args.config) if args.config else {}
        base.update({k: getattr(args, k) for k in _FLAG_KEYS if getattr(args, k) is not None})
        if args.init_from:
            hub = args.init_from.startswith("hub:")  # a hub model is a name, not a path
            base["init_from"] = args.init_from if hub else str(Path(args.init_from).resolve())
        if args.backbone:  # hf:PATH made absolute, so the run resumes and loads from any directory
            hf = args.backbone.startswith("hf:")
            base["backbone"] = "hf:" + str(Path(args.backbone[3:]).expanduser().resolve()) if hf else args.backbone
        if args.stage is not None:
            base.setdefault("ladd", {})["stage"] = args.stage
        trainer = Trainer(build_config(base, args.overrides), args.out)
    result = trainer.fit()
    trainer.dist.shutdown()
    if not trainer.dist.is_main:  # under torchrun only rank 0 reports
        return 130 if result.interrupted else 0
    if result.interrupted:
        print(
            f"interrupted at step {result.steps}; checkpoint saved. Continue: augdiff train --resume {result.run_dir}"
        )
        return 130
    if result.steps_run == 0:
        print(f"{result.run_dir} is already at step {result.steps}: nothing to do (raise --steps to train on)")
        return 0
    print(f"trained to step {result.steps} ({result.seconds:.1f}s of training); run directory: {result.run_dir}")
    return 0
