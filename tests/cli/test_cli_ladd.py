"""Co-LADD and Di-LADD from the command line: two-stage training, joint/sequential/lagged/guided sampling,
and the one-line refusals of what does not fit."""

import numpy as np
import pytest
import torch

from augdiff.cli.main import main
from augdiff.runs import load_run

SEQ_LEN = 32
TINY = [
    "--data",
    "sawtooth",
    "--model-size",
    "xxs",
    "--batch-size",
    "8",
    "--steps",
    "3",
    "progress=false",
    "tensorboard=false",
    "ladd.codebook_size=16",
    f"seq_len={SEQ_LEN}",
]


def train(out, *args):
    return main(["train", "--out", str(out), *TINY, *args])


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """Stage 1 and stage 2 of both methods, and an MDLM run."""
    root = tmp_path_factory.mktemp("runs")
    dirs = {"mdlm": root / "mdlm"}
    assert train(dirs["mdlm"], "--method", "mdlm") == 0
    for method in ("co-ladd", "di-ladd"):
        one, two = root / f"{method}-1", root / f"{method}-2"
        assert train(one, "--method", method, "--stage", "1") == 0
        assert train(two, "--method", method, "--stage", "2", "--init-from", str(one)) == 0
        dirs[method, 1], dirs[method, 2] = one, two
    return dirs


def sample(run_dir, out, *args):
    return main(["sample", str(run_dir), "--num", "4", "--steps", "6", "--out", str(out), *args])


@pytest.mark.parametrize(
    "method,flags",
    [
        ("co-ladd", ["--inference", "joint"]),
        ("co-ladd", ["--inference", "sequential", "--latent-steps", "4"]),
        ("co-ladd", ["--lag", "0.5", "--guidance", "1.5"]),
        ("co-ladd", ["--lag", "0.5", "--eta", "1.0", "--latent-steps", "4"]),
        ("di-ladd", ["--inference", "joint"]),
        ("di-ladd", ["--inference", "sequential", "--latent-steps", "4"]),
        ("di-ladd", ["--lag", "0.5", "--guidance", "1.5"]),
        ("co-ladd", ["--inference", "sequential", "--latent-from", "encoder", "--infill", "1 0 [MASK:4] 1"]),
        ("di-ladd", ["--lag", "0.5", "--latent-from", "encoder", "--infill", "0 [MASK:3] 1 1"]),
    ],
    ids=[
        "co-joint", "co-seq", "co-lag-guided", "co-lag-eta", "di-joint", "di-seq", "di-lag-guided", "co-seq-encoded",
        "di-lag-encoded",
    ],
)  # fmt: skip
def test_stage_2_runs_sample(runs, tmp_path, method, flags):
    out = tmp_path / "samples.npy"
    assert sample(runs[method, 2], out, *flags) == 0
    x = np.load(out)
    assert x.shape == (4, SEQ_LEN) and set(np.unique(x)) <= {0, 1}


@pytest.mark.parametrize("method", ["co-ladd", "di-ladd"])
def test_stage_2_starts_from_the_stage_1_weights(runs, method):
    one = load_run(runs[method, 1]).model  # EMA weights
    two_raw = load_run(runs[method, 2], weights="raw").model
    two_ema = load_run(runs[method, 2]).model
    frozen = ("encoder", "vq") if method == "di-ladd" else ("encoder",)
    for name in frozen:
        source = getattr(one.channel, name).state_dict()
        assert source
        for two in (two_raw, two_ema):
            target = getattr(two.channel, name).state_dict()
            assert source.keys() == target.keys()
            for key, value in source.items():
                assert torch.equal(value, target[key]), f"{name}.{key}"
    # while the parts stage 2 trains have moved away from stage 1
    moved = [
        not torch.equal(p, two_raw.channel.prior.state_dict()[k]) for k, p in one.channel.prior.state_dict().items()
    ]
    assert any(moved)
    assert two_raw.channel.stage == 2 and one.channel.stage == 1


def one_line(err):
    return len(err.strip().splitlines()) == 1


@pytest.mark.parametrize("method", ["co-ladd", "di-ladd"])
def test_sampling_a_stage_1_run_is_refused(runs, tmp_path, capsys, method):
    out = tmp_path / "x.npy"
    capsys.readouterr()
    assert sample(runs[method, 1], out) == 2
    last = capsys.readouterr().err.strip().splitlines()[-1]
    assert last.startswith("augdiff: ") and "stage 2" in last
    assert not list(tmp_path.iterdir())  # no output, no temporary file


def test_the_stage_1_refusal_is_one_line(runs, tmp_path, capsys):
    capsys.readouterr()
    assert sample(runs["co-ladd", 1], tmp_path / "x.npy") == 2
    err = capsys.readouterr().err
    assert one_line(err), err


@pytest.mark.parametrize("flags,named", [(["--lag", "0.5"], "--lag"), (["--guidance", "2"], "--guidance")])
def test_ladd_flags_are_refused_for_mdlm(runs, tmp_path, capsys, flags, named):
    out = tmp_path / "x.npy"
    capsys.readouterr()
    assert sample(runs["mdlm"], out, *flags) == 2
    err = capsys.readouterr().err
    assert one_line(err) and named in err and "this run is mdlm" in err
    assert not out.exists()


def test_an_encoded_latent_without_given_tokens_is_one_line(runs, tmp_path, capsys):
    assert sample(runs["co-ladd", 2], tmp_path / "s.npy", "--lag", "1", "--latent-from", "encoder") == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "--prefix or --infill" in err[0]


def test_the_inference_flag_is_named_for_mdlm(runs, tmp_path, capsys):
    capsys.readouterr()
    assert sample(runs["mdlm"], tmp_path / "x.npy", "--inference", "sequential") == 2
    err = capsys.readouterr().err
    assert one_line(err) and "--inference" in err, err


@pytest.mark.parametrize(
    "flags,named",
    [(["--eta", "0.5"], "--eta"), (["--lag", "1.5"], "--lag"), (["--latent-steps", "0"], "--latent-steps")],
)
def test_bad_sampling_flags_for_di_ladd(runs, tmp_path, capsys, flags, named):
    out = tmp_path / "x.npy"
    capsys.readouterr()
    assert sample(runs["di-ladd", 2], out, *flags) == 2
    err = capsys.readouterr().err
    assert one_line(err) and named in err
    assert not out.exists()


@pytest.mark.parametrize(
    "args,named",
    [
        (["--method", "co-ladd", "--stage", "2", "--init-from", "MDLM"], "mdlm"),
        (["--method", "di-ladd", "--stage", "2", "--init-from", "CO1"], "co-ladd"),
        (["--method", "di-ladd", "ladd.schedule=vp-sqrt"], "ladd.schedule"),
        (["--method", "co-ladd", "ladd.schedule=linear"], "ladd.schedule"),
        (["--method", "co-ladd", "--stage", "1", "ladd.encoder=pretrained"], "ladd.encoder=pretrained"),
        (["--method", "co-ladd", "ladd.pool=none", "ladd.latent_len=4"], "ladd.pool"),
        (["--method", "co-ladd", "--stage", "2", "--init-from", "CO1", "ladd.normalize=none"], "ladd.normalize='unit'"),
        (["--method", "co-ladd", "--stage", "2", "--init-from", "CO1", "ladd.schedule=vp-sqrt"], "ladd.schedule"),
    ],
    ids=[
        "init-from-mdlm",
        "init-from-other-method",
        "di-gaussian",
        "co-masked",
        "pretrained-stage-1",
        "pool-none",
        "stage-2-other-normalization",
        "stage-2-other-schedule",
    ],
)
def test_train_refusals_leave_no_run_behind(runs, tmp_path, capsys, args, named):
    out = tmp_path / "run"
    where = {"MDLM": str(runs["mdlm"]), "CO1": str(runs["co-ladd", 1])}
    capsys.readouterr()
    assert train(out, *[where.get(a, a) for a in args]) == 2
    err = capsys.readouterr().err
    assert one_line(err) and err.startswith("augdiff: ") and named in err
    assert not out.exists()
