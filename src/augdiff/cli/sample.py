"""augdiff sample: draw sequences from a trained run and write them to .npy or .txt."""

from __future__ import annotations

import argparse
import os
from pathlib import Path
from typing import Any

import numpy as np
import torch

from augdiff.cli.infill import leading_bos, parse_infill
from augdiff.cli.text_eval import add_sample_eval_flags, check_sample_eval_flags, report_sample_eval, teacher_from_args
from augdiff.data.tokenizer import Tokenizer, tokenizer_from_description
from augdiff.errors import AugdiffError
from augdiff.files import check_output_file, ensure_dir, write_failed
from augdiff.runs import load_run
from augdiff.sampling import REMASKING, Remasking, generate, generate_blocks
from augdiff.sampling.named import REFERENCE_ETA
from augdiff.specs import METHOD_SPECS, SAMPLING_OPTIONS, method_spec
from augdiff.train import resolve_device

SEPARATOR = "\n===== sample {} =====\n"


def add_parser(sub: Any) -> None:
    p = sub.add_parser("sample", help="sample from a trained run", description=__doc__)
    p.add_argument("run_dir", metavar="DIR", help="run directory (or one checkpoint directory)")
    p.add_argument("--num", type=int, default=16, help="number of sequences")
    p.add_argument("--steps", type=int, default=128, help="reverse diffusion steps T (ar: one step per token)")
    p.add_argument(
        "--out", required=True, help="output file: .npy (token ids [N, L]), .txt, or .png (image data: a grid)"
    )
    p.add_argument("--batch-size", type=int, default=256)
    p.add_argument("--temperature", type=float, default=1.0)
    p.add_argument("--top-p", type=float, default=1.0)
    p.add_argument(
        "--cache",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="reuse p(x0|xt) while tokens are unchanged (default: on when exact); ar: the key/value cache",
    )
    p.add_argument(
        "--final-denoise",
        choices=("sample", "argmax"),
        default="sample",
        help="how masks left at the end of the grid are filled",
    )
    p.add_argument(
        "--t-min",
        type=float,
        default=0.0,
        help="last time of the grid; MDLM samples to 1e-3 and then fills the rest by argmax",
    )
    p.add_argument("--k", type=int, default=None, help="cadd: latent draws averaged per step (K, Eq 5)")
    p.add_argument("--z0-hat", choices=("hard", "soft"), default=None, help="cadd: estimate of z0 for the bridge")
    p.add_argument(
        "--inference",
        choices=("joint", "sequential"),
        default=None,
        help="co-ladd/di-ladd: denoise latent and tokens together, or the latent first (default: joint)",
    )
    p.add_argument("--lag", type=float, default=None, help="co-ladd/di-ladd: latent lead λ in [0,1] (0 joint, 1 seq)")
    p.add_argument("--latent-steps", type=int, default=None, help="co-ladd/di-ladd: latent-only steps T_y (λ=1)")
    p.add_argument("--eta", type=float, default=None, help="co-ladd: DDIM stochasticity η (0 deterministic)")
    p.add_argument("--guidance", type=float, default=None, help="co-ladd/di-ladd: latent guidance scale w (1: none)")
    p.add_argument(
        "--latent-from",
        choices=("prior", "encoder"),
        default=None,
        help="co-ladd/di-ladd with a lag: the latent from the latent-only prior (reads no tokens), or encoded from "
        "the --prefix / --infill tokens (free positions blanked; best with an encoder trained with ladd.p_drop > 0)",
    )
    p.add_argument("--prefix", help="text every sample starts with (text models; after BOS when rows start with one)")
    p.add_argument(
        "--ordering",
        choices=("random", "confidence", "margin", "entropy"),
        default="random",
        help="which masked positions a step unmasks: random (ancestral) or the most confident ones by the drawn "
        "token's probability, the top-2 margin or the lowest entropy (LLaDA's low-confidence remasking)",
    )
    p.add_argument(
        "--temperature-schedule",
        choices=("constant", "linear", "cosine"),
        default="constant",
        help="constant --temperature, or a decay from --tau-max at the first step to --temperature at the last",
    )
    p.add_argument("--tau-max", type=float, default=2.5, help="starting temperature of a linear or cosine schedule")
    p.add_argument(
        "--remasking",
        choices=REMASKING,
        default=None,
        help="let unmasked tokens return to the mask: ReMDM's cap, rescale, conf or loop strategy, or the discrete "
        "flow-matching corrector (dfm)",
    )
    p.add_argument(
        "--remask-eta",
        type=float,
        default=None,
        help="ReMDM's η (cap, rescale, loop; default: its authors' 0.008, 0.015, 0.02)",
    )
    p.add_argument("--t-on", type=float, default=0.55, help="ReMDM-loop: time the loop starts")
    p.add_argument("--t-off", type=float, default=0.05, help="ReMDM-loop: time the loop ends")
    p.add_argument("--alpha-on", type=float, default=0.9, help="ReMDM-loop: α held during the loop")
    p.add_argument(
        "--length",
        type=int,
        default=None,
        help="tokens per sample; beyond the model's seq_len, windows of seq_len are drawn left to right, each "
        "continuing the last seq_len − --block tokens (MDLM's semi-autoregressive sampling)",
    )
    p.add_argument("--block", type=int, default=None, help="new tokens per window with --length (default seq_len/2)")
    p.add_argument(
        "--infill",
        help="a template to complete: given text (or ids for token data) with [MASK:n] for n positions to generate, "
        'e.g. "The [MASK:5] sat on the [MASK:3]." (LADD: in joint inference the latent is denoised by the network '
        "that reads the given tokens; sequential inference draws the latent before any token is read)",
    )
    p.add_argument("--weights", choices=("ema", "raw"), default="ema")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--device", default="auto")
    add_sample_eval_flags(p)
    p.set_defaults(func=run)


def _check(args: argparse.Namespace) -> Path:
    out = check_output_file(args.out, "--out")
    if out.suffix not in (".npy", ".txt", ".png"):
        raise AugdiffError(f"--out {out}: unknown file type (.npy for token ids, .txt for text, .png for images)")
    for name in ("num", "steps", "batch_size"):
        if getattr(args, name) < 1:
            raise AugdiffError(f"--{name.replace('_', '-')}={getattr(args, name)} must be a positive integer")
    if not 0 < args.temperature < float("inf"):
        raise AugdiffError(f"--temperature={args.temperature} must be positive")
    if not 0 < args.tau_max < float("inf"):
        raise AugdiffError(f"--tau-max={args.tau_max} must be positive")
    if not 0 < args.top_p <= 1:
        raise AugdiffError(f"--top-p={args.top_p} must lie in (0, 1]")
    if not 0 <= args.t_min < 1:
        raise AugdiffError(f"--t-min={args.t_min} must lie in [0, 1)")
    for name in ("length", "block"):
        if getattr(args, name) is not None and getattr(args, name) < 1:
            raise AugdiffError(f"--{name}={getattr(args, name)} must be a positive integer")
    args.remasking_value = _remasking(args)
    return out


def _remasking(args: argparse.Namespace) -> Remasking | None:
    """``--remasking`` and its settings as the sampler's value (a bad setting is one line, before any work)."""
    if args.remasking is None:
        return None
    if args.ordering != "random":
        raise AugdiffError("--remasking and --ordering are two different samplers: choose one")
    try:
        eta = REFERENCE_ETA.get(args.remasking, 0.02) if args.remask_eta is None else args.remask_eta
        return Remasking(args.remasking, eta=eta, t_on=args.t_on, t_off=args.t_off, alpha_on=args.alpha_on)
    except ValueError as exc:
        flags = {"eta": "--remask-eta", "t_off": "--t-off/--t-on", "alpha_on": "--alpha-on"}
        flag = next((f for k, f in flags.items() if k in str(exc)), "--remasking")
        raise AugdiffError(f"{flag}: {exc}") from None


def _write(out: Path, samples: np.ndarray, tokenizer: Tokenizer | None) -> None:
    """Write atomically: a temporary file renamed into place, so a failed run leaves no partial output."""
    ensure_dir(out.parent, "--out")
    tmp = out.with_name(f".{out.name}.tmp-{os.getpid()}")
    try:
        _write_to(tmp, out.suffix, samples, tokenizer)
        os.replace(tmp, out)
    except OSError as exc:  # a full disk: one line, no partial file (the samples are lost with the process)
        raise write_failed(out, exc, samples.nbytes) from None
    finally:
        tmp.unlink(missing_ok=True)


def _write_to(tmp: Path, suffix: str, samples: np.ndarray, tokenizer: Tokenizer | None) -> None:
    """``.npy``: the ids; ``.txt``: text models' samples decoded (special tokens dropped) under a separator
    line each, other data's ids one row per line."""
    if suffix == ".npy":
        with tmp.open("wb") as f:
            np.save(f, samples)
    elif tokenizer is not None:
        text = "".join(SEPARATOR.format(i) + tokenizer.decode(row) for i, row in enumerate(samples))
        tmp.write_text(text.lstrip("\n") + "\n", encoding="utf-8")
    else:
        tmp.write_text("".join(" ".join(map(str, row)) + "\n" for row in samples))


def _encode_prefix(text: str, tokenizer: Tokenizer | None, data: dict[str, Any]) -> torch.Tensor:
    """``--prefix`` as ids of the run's tokenizer; rows packed with BOS (``wrap``, ``pad``) start with it."""
    if tokenizer is None:
        raise AugdiffError(f"--prefix needs a text model (this run was trained on {data['spec']}, without a tokenizer)")
    try:
        ids = tokenizer.encode(text)
    except AugdiffError as exc:
        raise AugdiffError(f"--prefix: {exc}") from None
    ids = [*leading_bos(tokenizer, data), *ids]
    if len(ids) > int(data["seq_len"]):
        raise AugdiffError(f"--prefix has {len(ids)} tokens but the model's seq_len is {data['seq_len']}")
    return torch.tensor(ids, dtype=torch.long)


def _refuse_diffusion_options(args: argparse.Namespace) -> None:
    """An AR run draws one token per position: the diffusion sampler's own options are errors."""
    given = [k for ks in SAMPLING_OPTIONS.values() for k in ks if getattr(args, k, None) is not None]
    given += [
        k
        for k, default in (
            ("inference", None),
            ("final_denoise", "sample"),
            ("t_min", 0.0),
            ("ordering", "random"),
            ("temperature_schedule", "constant"),
            ("remasking", None),
            ("block", None),
        )
        if getattr(args, k, default) != default
    ]
    if given:
        flag = "--" + given[0].replace("_", "-")
        raise AugdiffError(f"{flag} is a diffusion sampling option; this run is ar (token by token): drop {flag}")


def channel_options(model: Any, method: str, args: argparse.Namespace) -> Any:
    """The method-specific sampling flags as the channel's options value (``None`` for an AR run); a flag of
    another method, or a bad value, is one line."""
    if not method_spec(method).diffusion:
        _refuse_diffusion_options(args)
        return None
    if getattr(args, "inference", None) is not None:
        if not method_spec(method).inference_modes:
            with_modes = " and ".join(m for m, s in METHOD_SPECS.items() if s.inference_modes)
            raise AugdiffError(f"--inference applies to {with_modes} models; this run is {method}")
        if getattr(args, "lag", None) is not None:
            raise AugdiffError("--inference and --lag both set the latent's lead: give one of them")
        args.lag = 0.0 if args.inference == "joint" else 1.0
    model.channel.require_sampling_ready()  # refuse before the sampler draws its progress bar
    given = {k: getattr(args, k) for ks in SAMPLING_OPTIONS.values() for k in ks if getattr(args, k, None) is not None}
    foreign = [k for k in given if k not in SAMPLING_OPTIONS.get(method, ())]
    if foreign:
        owners = " and ".join(m for m, keys in SAMPLING_OPTIONS.items() if foreign[0] in keys)
        flag = "--" + foreign[0].replace("_", "-")
        raise AugdiffError(f"{flag} is a sampling option of {owners} models; this run is {method} (drop {flag})")
    try:
        return model.sampling_options(**given)
    except ValueError as exc:  # the message starts with the option's name
        key = str(exc).split()[0]
        raise AugdiffError(f"--{key.replace('_', '-')}={given.get(key)}: {exc}") from None


def run(args: argparse.Namespace) -> int:
    out = _check(args)
    eval_json = check_sample_eval_flags(args)
    device = resolve_device(args.device)
    loaded = load_run(args.run_dir, weights=args.weights, device=device)
    teacher = teacher_from_args(args, device) if args.eval else None  # fails before sampling
    options = channel_options(loaded.model, loaded.config.method, args)
    ar = not loaded.model.takes_steps
    if args.cache and not ar and not loaded.model.cacheable:
        raise AugdiffError("--cache is exact only for models without time conditioning or latent state (drop --cache)")
    tokenizer, seq_len = tokenizer_from_description(loaded.data), int(loaded.data["seq_len"])
    if out.suffix == ".png" and "image_shape" not in loaded.data:
        raise AugdiffError(
            f"--out {out}: a .png grid needs an image run (this one was trained on {loaded.data['spec']})"
        )
    prefix = None if args.prefix is None else _encode_prefix(args.prefix, tokenizer, loaded.data)
    infill = None if args.infill is None else parse_infill(args.infill, tokenizer, loaded.data)
    if infill is not None and (ar or prefix is not None):
        raise AugdiffError("--infill needs a diffusion model and no --prefix (an AR model only continues a prefix)")
    if getattr(args, "latent_from", None) == "encoder" and prefix is None and infill is None:
        raise AugdiffError("--latent-from encoder reads the given tokens: add --prefix or --infill")
    length = args.length or seq_len
    block = args.block or max(1, seq_len // 2)
    if length > seq_len and (ar or infill is not None):
        raise AugdiffError(f"--length {length} > seq_len {seq_len} needs a diffusion model and no --infill")
    if block > seq_len:
        raise AugdiffError(f"--block={block} must be at most the model's seq_len ({seq_len})")
    if ar:
        samples = loaded.model.sample(
            args.num,
            seq_len,
            batch_size=args.batch_size,
            temperature=args.temperature,
            top_p=args.top_p,
            prefix=prefix,
            seed=args.seed,
            cache=args.cache is not False,
            progress=True,
        )[:, :length]
    else:
        options: dict[str, Any] = {
            "batch_size": args.batch_size,
            "cache": args.cache,
            "temperature": args.temperature,
            "top_p": args.top_p,
            "final_denoise": args.final_denoise,
            "ordering": args.ordering,
            "temperature_schedule": args.temperature_schedule,
            "tau_max": args.tau_max,
            "remasking": args.remasking_value,
            "channel_options": options,
            "t_min": args.t_min,
            "seed": args.seed,
            "device": device,
        }
        model, schedule = loaded.model, loaded.model.schedule
        if length > seq_len:
            samples = generate_blocks(
                model, schedule, args.num, length, args.steps, window=seq_len, block=block, prefix=prefix, **options
            )
        else:
            samples = generate(
                model, schedule, args.num, seq_len, args.steps, prefix=prefix, infill=infill, progress=True, **options
            )[:, :length]
    if out.suffix == ".png":
        from augdiff.data.images import image_grid

        ensure_dir(out.parent, "--out")
        image_grid(samples.numpy(), tuple(loaded.data["image_shape"]), int(loaded.data["vocab_size"]), out)
    else:
        _write(out, samples.numpy(), tokenizer)
    print(f"wrote {args.num} samples ({'token by token' if ar else f'{args.steps} steps'}) to {out}")
    if args.eval:
        report_sample_eval(args, loaded, samples, teacher, eval_json)
    return 0
