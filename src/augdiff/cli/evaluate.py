"""augdiff eval: ELBO NLL (nats, bits and perplexity per token) of a run on data; SWD for the sawtooth; for text,
samples at each step budget with their generative perplexity, entropy, MAUVE, throughput and GFLOPs; for
image:digits, samples at each step budget scored by a digits classifier (Fréchet distance, class entropies)."""

from __future__ import annotations

import argparse
from collections.abc import Iterator
from typing import Any

import torch
from torch import Tensor

from augdiff.cli.code_eval import add_flags as add_code_flags
from augdiff.cli.code_eval import check_flags as check_code_flags
from augdiff.cli.code_eval import run_code_eval
from augdiff.cli.text_eval import add_teacher_flags, check_teacher_flags, emit_json, parse_steps, teacher_from_args
from augdiff.cli.zero_shot import add_flags as add_zero_shot_flags
from augdiff.cli.zero_shot import parse_corpora, run_zero_shot
from augdiff.data import ArrayDataset, SawtoothDataset, TokenDataset, make_dataset
from augdiff.data.tokenizer import CharTokenizer, tokenizer_from_description
from augdiff.errors import AugdiffError
from augdiff.metrics import (
    NLLEstimate,
    bits_per_character,
    characters_per_token,
    draw_samples,
    estimate_nll,
    evaluate_generation,
)
from augdiff.metrics.bound import estimate_bound
from augdiff.runs import load_run
from augdiff.train import resolve_device


def add_parser(sub: Any) -> None:
    p = sub.add_parser("eval", help="evaluate a trained run", description=__doc__)
    p.add_argument("run_dir", metavar="DIR", help="run directory (or one checkpoint directory)")
    p.add_argument("--data", default=None, help="sawtooth | tokens:PATH.npy | text:PATH | hf:NAME (validation split)")
    add_zero_shot_flags(p)
    add_code_flags(p)
    p.add_argument("--time-samples", type=int, default=8, help="diffusion times per sequence in the ELBO")
    p.add_argument("--max-sequences", type=int, default=None, help="cap on evaluated sequences")
    p.add_argument(
        "--split",
        choices=("valid", "all"),
        default="valid",
        help="tokens:/text: data: the validation split (last 5%%) or every row of the file (a held-out test file)",
    )
    p.add_argument("--batch-size", type=int, default=256)
    p.add_argument(
        "--bound-steps",
        default="128",
        help="grid steps T of the likelihood bound (mdlm, cadd), comma-separated; 0: continuous time; none: skip",
    )
    p.add_argument("--swd-steps", default="128", help="sawtooth: comma-separated sampling steps for SWD")
    p.add_argument("--swd-samples", type=int, default=1000, help="sawtooth: samples per SWD estimate")
    p.add_argument(
        "--gen-ppl", action="store_true", help="generative perplexity under --teacher (always computed with a teacher)"
    )
    p.add_argument(
        "--entropy", action="store_true", help="draw samples for entropy, throughput and GFLOPs (no teacher needed)"
    )
    p.add_argument(
        "--fid",
        action="store_true",
        help="image data: FID and Inception Score of --num-samples samples at each --steps against the training "
        "images (torch-fidelity; its Inception weights download once)",
    )
    p.add_argument("--num-samples", type=int, default=128, help="samples drawn at each step budget")
    p.add_argument("--steps", default="128", help="comma-separated sampling steps of the sample metrics (ar: ignored)")
    p.add_argument("--temperature", type=float, default=1.0, help="sampling temperature of the sample metrics")
    p.add_argument("--top-p", type=float, default=1.0, help="nucleus sampling of the sample metrics")
    add_teacher_flags(p)
    p.add_argument("--weights", choices=("ema", "raw"), default="ema")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--device", default="auto")
    p.set_defaults(func=run)


def _batches(data: TokenDataset, split: str, batch_size: int, limit: int | None) -> Iterator[Tensor]:
    if split == "all" and isinstance(data, ArrayDataset):
        rows = torch.cat([data.train, data.valid])
        yield from (rows if limit is None else rows[:limit]).split(batch_size)
    else:
        yield from data.valid_batches(batch_size, limit)


def _bits_per_char(description: dict[str, Any], est: NLLEstimate, batches: Iterator[Tensor]) -> dict[str, float]:
    """Bits per character: bits per token for character data; for subword data, scaled by the characters per
    token of the evaluation rows (:func:`characters_per_token`). Empty for data without text."""
    tokenizer = tokenizer_from_description(description)
    if tokenizer is None:
        return {}
    if isinstance(tokenizer, CharTokenizer):
        chars_per_token = 1.0
    else:
        chars_per_token = characters_per_token(tokenizer, (row for batch in batches for row in batch))
    return {
        "bpc": bits_per_character(est.nll, chars_per_token),
        "bpc_stderr": bits_per_character(est.stderr, chars_per_token),
        "chars_per_token": chars_per_token,
    }


def _bound_steps(text: str) -> list[int]:
    """``--bound-steps``: ``"128,0"`` → [128, 0]; ``none`` → []."""
    if text.strip().lower() == "none":
        return []
    try:
        steps = [int(s) for s in text.split(",") if s.strip()]
    except ValueError:
        steps = [-1]
    if not steps or min(steps) < 0:
        raise AugdiffError(f"--bound-steps {text!r}: give grid steps ≥ 1 (0: continuous time) or none, e.g. 128,0")
    return steps


def _check(args: argparse.Namespace) -> None:
    if [args.data, args.zero_shot, args.code].count(None) != 2:
        raise AugdiffError(
            "give one of --data (one dataset), --zero-shot (the zero-shot corpora) or --code (code tasks)"
        )
    if args.zero_shot is not None:
        parse_corpora(args.zero_shot)
    elif args.code is not None:
        check_code_flags(args)
    elif args.out_md is not None:
        raise AugdiffError("--out-md writes the --zero-shot or --code table: drop it, or add one of them")
    if args.max_sequences is not None and args.max_sequences < 1:
        raise AugdiffError(f"--max-sequences={args.max_sequences} must be a positive integer")
    for name in ("time_samples", "batch_size", "swd_samples", "num_samples"):
        if getattr(args, name) < 1:
            raise AugdiffError(f"--{name.replace('_', '-')}={getattr(args, name)} must be a positive integer")
    if not 0 < args.temperature < float("inf"):
        raise AugdiffError(f"--temperature={args.temperature} must be positive")
    if not 0 < args.top_p <= 1:
        raise AugdiffError(f"--top-p={args.top_p} must lie in (0, 1]")
    if args.fid:
        if args.data is None or not args.data.startswith("image:"):
            raise AugdiffError("--fid scores image samples: give --data image:NAME")
        from augdiff.metrics.fidelity import require_fidelity

        require_fidelity("--fid")
    if args.gen_ppl and not args.teacher:
        raise AugdiffError("--gen-ppl scores samples with a teacher: give --teacher (gpt2-large, a path or an AR run)")


def run(args: argparse.Namespace) -> int:
    _check(args)
    out_json = check_teacher_flags(args)
    swd_steps = parse_steps(args.swd_steps, "--swd-steps")
    bound_steps = _bound_steps(args.bound_steps)
    steps = parse_steps(args.steps, "--steps")
    device = resolve_device(args.device)
    loaded = load_run(args.run_dir, weights=args.weights, device=device)
    seq_len = int(loaded.data["seq_len"])
    if args.zero_shot is not None:
        emit_json({"run": str(loaded.path), "step": loaded.step, **run_zero_shot(args, loaded, device)}, out_json)
        return 0
    if args.code is not None:
        emit_json({"run": str(loaded.path), "step": loaded.step, **run_code_eval(args, loaded, device)}, out_json)
        return 0
    if bound_steps and not loaded.model.has_bound:
        bound_steps = []  # AR: the NLL is exact; LADD: no bound derived (nll_kind says what the NLL is)
    data = make_dataset(args.data, like=loaded.data)
    reference = None
    if args.mauve:  # human text for MAUVE: the first --num-samples validation rows
        reference = torch.cat(list(_batches(data, args.split, args.batch_size, args.num_samples)))
        if reference.shape[0] < 2:
            raise AugdiffError(
                f"--mauve: {args.data} has {reference.shape[0]} validation sequence(s); MAUVE needs at least 2 "
                "(use a longer corpus, or --split all)"
            )
    teacher = teacher_from_args(args, device)  # before the long work: a missing teacher fails now
    est = estimate_nll(
        loaded.model,
        _batches(data, args.split, args.batch_size, args.max_sequences),
        time_samples=args.time_samples,
        time_eps=loaded.config.diffusion.time_eps,
        seed=args.seed,
        device=device,
    )
    result: dict[str, Any] = {"run": str(loaded.path), "step": loaded.step, "data": args.data, **est.as_dict()}
    result["nll_kind"] = loaded.model.nll_kind
    result.update(_bits_per_char(loaded.data, est, _batches(data, args.split, args.batch_size, args.max_sequences)))
    if bound_steps:
        bounds = {}
        for t in bound_steps:
            batches = _batches(data, args.split, args.batch_size, args.max_sequences)
            kw = dict(steps=t, time_samples=args.time_samples, seed=args.seed, device=device)
            bounds[str(t)] = estimate_bound(loaded.model, batches, time_eps=loaded.config.diffusion.time_eps, **kw)
        result["bound"] = {t: b.as_dict() for t, b in bounds.items()}
    if isinstance(data, SawtoothDataset):
        from augdiff.experiments.sawtooth import swd_between, swd_references

        swd_reference, refs = swd_references(data, args.swd_samples)
        swd = {}
        for t in swd_steps:
            draw = dict(batch_size=args.batch_size, seed=args.seed + t, device=device, progress=True)
            samples = draw_samples(loaded.model, args.swd_samples, seq_len, t, **draw)
            swd[str(t)] = swd_between(samples, swd_reference)
        result.update({"oracle_nll": data.oracle_nll(), "swd": swd, "swd_samples": args.swd_samples, **refs})
    if str(loaded.data.get("spec")) == "image:digits":  # the offline image metric, at each --steps budget
        from augdiff.metrics.digits import digit_scores

        reference = torch.cat(list(data.valid_batches(args.batch_size))).numpy()
        result["digits"] = {
            str(t): digit_scores(
                draw_samples(
                    loaded.model,
                    args.num_samples,
                    seq_len,
                    t,
                    batch_size=args.batch_size,
                    seed=args.seed + t,
                    device=device,
                ).numpy(),  # fmt: skip
                reference,
            ).as_dict()
            for t in steps
        }
    if args.fid:
        from augdiff.metrics.fidelity import fid_and_inception_score

        shape, levels = tuple(loaded.data["image_shape"]), int(loaded.data["vocab_size"])
        assert isinstance(data, ArrayDataset), "image data are token rows"
        train = torch.cat([data.train, data.valid]).numpy()  # every image: the usual FID reference
        draw = dict(batch_size=args.batch_size, device=device, progress=True)
        result["fidelity"] = {
            str(t): fid_and_inception_score(
                draw_samples(loaded.model, args.num_samples, seq_len, t, seed=args.seed + t, **draw).numpy(),
                train,
                shape,
                levels,
                device=str(device),
                cache_reference=True,
            )
            for t in steps
        }
    if teacher is not None or args.entropy:
        sweeps = evaluate_generation(
            loaded.model,
            loaded.data,
            steps,
            args.num_samples,
            teacher=teacher,
            reference=reference,
            batch_size=args.batch_size,
            temperature=args.temperature,
            top_p=args.top_p,
            mauve_buckets=args.mauve_buckets,
            seed=args.seed,
            device=device,
            progress=True,
        )
        result["teacher"] = None if teacher is None else teacher.name
        result["generation"] = {("ar" if e.steps is None else str(e.steps)): e.as_dict() for e in sweeps}
    emit_json(result, out_json)
    return 0
