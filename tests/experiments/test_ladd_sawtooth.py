"""LADD Table 1 in miniature: "co-ladd-joint's recon beats its MDLM twin after a few hundred steps on CPU".

Both models share the backbone and the training recipe (ELBO-weighted token loss, as the LADD authors train);
Co-LADD (stage 1) adds the learned encoder and is trained the authors' way for joint inference only (p_seq = 0:
the token denoiser reads the latent noised to t_y = t, with their sqrt schedule, no normalization, MLP latent
embedding, latent positions after the tokens, adaLN encoder readout: ``AUTHORS_LADD``). The recon NLL is the
token ELBO given that noised latent. The readout is the quick preset's, a narrow latent (d′ = 8) read off all
per-token states (``pool=patch``, which sees absolute positions, hence the shift s): with the authors' rightmost
state and d′ = 32 the latent is not used within a few hundred steps at this batch.
"""

import math
import time

import torch

from augdiff.config import build_config
from augdiff.data import make_dataset
from augdiff.experiments.sawtooth_ladd import AUTHORS_LADD
from augdiff.metrics import estimate_nll
from augdiff.runs import load_run
from augdiff.train import Trainer

STEPS = 200
SEED = 0
N_VALID, TIME_SAMPLES = 256, 8
LADD = {**AUTHORS_LADD["co-ladd"], "pool": "patch", "latent_dim": 8, "p_seq": 0.0}


def config(method):
    tree = {
        "method": method,
        "data": "sawtooth",
        "seq_len": 128,
        "model_size": "xxs",
        "steps": STEPS,
        "batch_size": 64,
        "seed": SEED,
        "device": "cpu",
        "progress": False,
        "tensorboard": False,
        "log_every": 50,
        "diffusion": {"schedule": "linear", "loss_weighting": "elbo"},
        "optim": {"lr": 1e-3, "warmup_steps": 20, "ema_decay": 0.99},
    }
    if method == "co-ladd":
        tree["ladd"] = {"stage": 1, **LADD}
    return build_config(tree)


def recon(model, x, options=None):
    """Per-sequence token ELBO ``[N]`` averaged over TIME_SAMPLES times.

    One ``estimate_nll`` call per time sample with all sequences in one batch: every model then sees the same
    times and the same masks (the token masks are drawn before a channel's own draws), so the differences
    between models are measured with common random numbers.
    """
    runs = [estimate_nll(model, [x], time_samples=1, seed=k, options=options).per_sequence for k in range(TIME_SAMPLES)]
    return torch.stack(runs).mean(dim=0)


def paired(a, b):
    """Mean of ``a − b`` and its standard error."""
    d = a - b
    return d.mean().item(), d.std().item() / math.sqrt(d.numel())


def test_co_ladd_joint_reconstructs_sawtooth_better_than_its_mdlm_twin(tmp_path):
    start = time.perf_counter()
    models = {}
    for method in ("mdlm", "co-ladd"):
        assert Trainer(config(method), tmp_path / method).fit().steps == STEPS
        models[method] = load_run(tmp_path / method).model  # EMA weights, as evaluated everywhere else
    trained = time.perf_counter()
    data = make_dataset("sawtooth", 128)
    x = data.valid_sample(N_VALID).x
    mdlm = recon(models["mdlm"], x)
    co = models["co-ladd"]
    joint = recon(co, x, co.sampling_options(lag=0.0))  # joint: the latent noised to t_y = t, as it was trained
    entropy = data.exact_nll_per_token(x).float()
    gain, se = paired(mdlm, joint)
    floor, floor_se = paired(mdlm, entropy)
    print(
        f"\nrecon NLL per token over {N_VALID} sequences × {TIME_SAMPLES} times after {STEPS} steps: "
        f"MDLM {mdlm.mean():.4f}, co-ladd-joint {joint.mean():.4f}, data entropy {entropy.mean():.4f}; "
        f"MDLM − joint {gain:.4f} ± {se:.4f}; train {trained - start:.0f}s, eval {time.perf_counter() - trained:.0f}s"
    )
    assert floor > -4 * floor_se  # the MDLM ELBO is a bound: not below the data's entropy
    assert joint.mean() < mdlm.mean() - max(5 * se, 0.004), (gain, se)  # the noised latent still beats MDLM
