"""augdiff export / push / import-mdlm: a run as a self-contained model folder, on the Hugging Face hub, and MDLM's
released checkpoints as such folders."""

from __future__ import annotations

import argparse
from typing import Any


def add_parser(sub: Any) -> None:
    p = sub.add_parser(
        "export",
        help="write a run as a self-contained model folder (weights, config, tokenizer, model card)",
        description="Write a run's latest checkpoint as a folder that `sample`, `eval` and `train --init-from` read, "
        "and that the Hugging Face hub accepts as a model repository.",
    )
    p.add_argument("run_dir", metavar="RUN", help="run directory, checkpoint directory or hub:owner/name")
    p.add_argument("folder", metavar="FOLDER", help="a new (or empty) folder")
    p.add_argument("--weights", choices=("ema", "raw"), default="ema")
    p.set_defaults(func=export)
    p = sub.add_parser(
        "push",
        help="upload a run to the Hugging Face hub as a model repository",
        description="Upload a run as a model folder to the hub (huggingface_hub; log in first).",
    )
    p.add_argument("run_dir", metavar="RUN", help="run directory or model folder")
    p.add_argument("repo", metavar="REPO", help="owner/name of the hub repository (created if missing)")
    p.add_argument("--private", action="store_true")
    p.add_argument("--weights", choices=("ema", "raw"), default="ema")
    p.set_defaults(func=push)
    p = sub.add_parser(
        "import-mdlm",
        help="turn MDLM's released checkpoint (e.g. kuleshov-group/mdlm-owt) into an augdiff model folder",
        description="Map MDLM's DiT weights onto augdiff's (model.norm_affine=true) and write a model folder.",
    )
    p.add_argument("source", metavar="SRC", help="MDLM's checkpoint folder (config.json, model.safetensors)")
    p.add_argument("folder", metavar="FOLDER", help="a new (or empty) folder")
    p.add_argument("--tokenizer", required=True, help="GPT-2's tokenizer.json (or its folder): MDLM's vocabulary")
    p.set_defaults(func=import_mdlm_command)


def export(args: argparse.Namespace) -> int:
    from augdiff.train.pretrained import save_pretrained

    folder = save_pretrained(args.run_dir, args.folder, weights=args.weights)
    print(f"wrote {folder} (model.safetensors, config.json, README.md): augdiff sample {folder} …")
    return 0


def push(args: argparse.Namespace) -> int:
    from augdiff.train.pretrained import push_to_hub

    url = push_to_hub(args.run_dir, args.repo, private=args.private, weights=args.weights)
    print(f"uploaded to {url}: augdiff sample hub:{args.repo} …")
    return 0


def import_mdlm_command(args: argparse.Namespace) -> int:
    from augdiff.train.mdlm_import import import_mdlm

    folder = import_mdlm(args.source, args.folder, args.tokenizer)
    print(f"wrote {folder}: augdiff sample {folder} …  (augdiff eval {folder} --zero-shot all)")
    return 0
