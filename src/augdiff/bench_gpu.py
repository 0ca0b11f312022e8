"""The GPU goals in one command: ``make bench-gpu`` (``python -m augdiff.bench_gpu --out bench-gpu.json``).

Measures, on the first CUDA device, what BENCHMARKS.md lists as GPU goals:

* MDLM training MFU of the ``small`` DiT (12 × 768) at L = 1024, V = 50,257 in bf16, eager and compiled;
* CADD's training step time over MDLM's (the two alternate in blocks, CADD App. B.3's ratio);
* CADD's sampling cost at K = 1…4 latent particles per step.

Each measurement is one :mod:`augdiff.bench` call; all of them go into one JSON file, written when each finishes
(a run cut short keeps what it measured). ``--preset smoke`` runs the same suite at toy sizes on any device, for
checking the script itself. Needs only ``PYTHONPATH=src`` beside an installed (CUDA) PyTorch and augdiff's
runtime dependencies; about 6 minutes on one H200 (the compiled run pays its compilation in warm-up steps).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

__all__ = ["PRESETS", "run_suite", "main"]

PRESETS: dict[str, dict[str, Any]] = {
    "h200": {
        "model_size": "small",
        "seq_len": 1024,
        "vocab_size": 50257,
        "train_batch": 32,
        "train_steps": 10,
        "sample_batch": 16,
        "sample_steps": 16,
        "device": "cuda",
        "compile": True,
    },
    "smoke": {
        "model_size": "xxs",
        "seq_len": 16,
        "vocab_size": 11,
        "train_batch": 4,
        "train_steps": 1,
        "sample_batch": 2,
        "sample_steps": 2,
        "device": "auto",
        "compile": False,  # a cold inductor compile takes ~30 s on a CPU
    },
}


def _measurements(p: dict[str, Any]) -> list[tuple[str, str, dict[str, Any]]]:
    shape = {"model_size": p["model_size"], "seq_len": p["seq_len"], "vocab_size": p["vocab_size"]}
    train = {**shape, "batch_size": p["train_batch"], "steps": p["train_steps"], "device": p["device"]}
    sample = {**shape, "batch_size": p["sample_batch"], "steps": p["sample_steps"], "device": p["device"]}
    compiled = {**train, "method": "mdlm", "overrides": ["compile=true"], "warmup": 5}
    return [
        ("mdlm_train_bf16", "train", {**train, "method": "mdlm"}),
        *([("mdlm_train_bf16_compiled", "train", compiled)] if p["compile"] else []),
        ("cadd_over_mdlm_train", "train", {**train, "method": "mdlm,cadd", "rounds": 3}),
        ("cadd_sample_k1_to_k4", "sample", {**sample, "method": "cadd", "k": (1, 2, 3, 4)}),
        ("mdlm_sample", "sample", {**sample, "method": "mdlm"}),
    ]


def run_suite(out: Path, preset: str = "h200") -> dict[str, Any]:
    """Run every measurement of ``preset`` and write ``out`` (JSON) after each one."""
    import torch

    from augdiff.bench import bench_sample_rows, bench_train

    p = PRESETS[preset]
    if p["device"] == "cuda" and not torch.cuda.is_available():
        raise SystemExit("bench-gpu: no CUDA device is visible (use --preset smoke to check the script on a CPU)")
    result: dict[str, Any] = {
        "preset": preset,
        "torch": torch.__version__,
        "device": torch.cuda.get_device_name(0) if torch.cuda.is_available() else "cpu",
        "started": time.strftime("%Y-%m-%dT%H:%M:%S"),
        "measurements": {},
    }
    for name, mode, kwargs in _measurements(p):
        start = time.perf_counter()
        rows = bench_train(**kwargs) if mode == "train" else bench_sample_rows(**kwargs)
        result["measurements"][name] = {"seconds": time.perf_counter() - start, "rows": rows}
        out.write_text(json.dumps(result, indent=2))
        print(f"{name}: {time.perf_counter() - start:.0f} s", file=sys.stderr, flush=True)
    result["summary"] = summarize(result["measurements"])
    out.write_text(json.dumps(result, indent=2))
    return result


def summarize(measurements: dict[str, Any]) -> dict[str, Any]:
    """The goals' figures: MFU eager / compiled, the CADD/MDLM step ratio, CADD's cost per K relative to K = 1."""
    eager = measurements["mdlm_train_bf16"]["rows"][0]
    compiled = measurements.get("mdlm_train_bf16_compiled", {"rows": [{"mfu": None, "tokens_per_s": None}]})["rows"][0]
    cadd = next(r for r in measurements["cadd_over_mdlm_train"]["rows"] if r["method"] == "cadd")
    k_rows = measurements["cadd_sample_k1_to_k4"]["rows"]
    base = k_rows[0]["seconds_per_step"]
    return {
        "mdlm_mfu": eager["mfu"],
        "mdlm_mfu_compiled": compiled["mfu"],
        "mdlm_tokens_per_s": eager["tokens_per_s"],
        "mdlm_tokens_per_s_compiled": compiled["tokens_per_s"],
        "cadd_over_mdlm_step_time": cadd["step_time_vs_mdlm"],
        "cadd_sample_cost_vs_k1": {str(r["k"]): r["seconds_per_step"] / base for r in k_rows},
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m augdiff.bench_gpu", description=__doc__.splitlines()[0])
    parser.add_argument("--out", default="bench-gpu.json", help="the JSON file to write")
    parser.add_argument("--preset", choices=tuple(PRESETS), default="h200")
    args = parser.parse_args(argv)
    out = Path(args.out)
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        out.touch()
    except OSError as exc:
        print(f"bench-gpu: cannot write {out} ({exc.strerror}); choose another --out", file=sys.stderr)
        return 2
    summary = run_suite(out, args.preset)["summary"]
    print(json.dumps(summary, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
