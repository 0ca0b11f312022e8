"""Images as pixel tokens: the bundled digits, a folder of PNGs, CIFAR-10 offline, and sample grids."""

import numpy as np
import pytest
import torch

from augdiff.cli.main import main
from augdiff.data import make_dataset
from augdiff.errors import AugdiffError
from augdiff.nn.unet import UNet
from augdiff.runs import load_run


def test_digits_are_64_tokens_of_17_levels():
    pytest.importorskip("sklearn")
    data = make_dataset("image:digits")
    assert (data.vocab_size, data.seq_len) == (17, 64) and data.image_shape == (8, 8, 1)
    assert data.train_rows.shape[0] + data.valid_rows.shape[0] == 1797
    assert data.describe()["image_shape"] == [8, 8, 1]
    batch = next(data.valid_batches(16))
    assert batch.shape == (16, 64) and int(batch.max()) <= 16 and int(batch.min()) >= 0


def test_a_folder_of_pngs_is_read_channels_last(tmp_path):
    image = pytest.importorskip("PIL.Image")
    rng = np.random.default_rng(0)
    pictures = rng.integers(0, 256, size=(5, 4, 3, 3), dtype=np.uint8)
    for i, p in enumerate(pictures):
        image.fromarray(p).save(tmp_path / f"{i}.png")
    data = make_dataset(f"image:{tmp_path}")
    assert (data.vocab_size, data.seq_len, data.image_shape) == (256, 36, (4, 3, 3))
    rows = np.concatenate([data.train_rows, data.valid_rows]).astype(np.int64)
    assert (rows == pictures.reshape(5, -1)).all()


@pytest.mark.parametrize("name", ["cifar10", "imagenet32"])
def test_hub_images_offline_are_one_line(monkeypatch, name):
    monkeypatch.setenv("HF_DATASETS_OFFLINE", "1")
    with pytest.raises(AugdiffError, match=f"{name} comes from the Hugging Face hub .*unreachable"):
        make_dataset(f"image:{name}")


def test_a_sampled_grid_is_a_png_and_a_grid_of_text_is_refused(tmp_path, capsys):
    pytest.importorskip("sklearn")
    run = tmp_path / "run"
    args = ["train", "--method", "mdlm", "--data", "image:digits", "--model-size", "xxs", "--steps", "2"]
    assert main([*args, "--batch-size", "8", "--out", str(run), "progress=false", "tensorboard=false"]) == 0
    grid = tmp_path / "grid.png"
    assert main(["sample", str(run), "--num", "6", "--steps", "4", "--out", str(grid)]) == 0
    assert grid.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    saw = tmp_path / "saw"
    quiet = ["--batch-size", "4", "--out", str(saw), "seq_len=16", "progress=false", "tensorboard=false"]
    assert main(["train", "--method", "mdlm", "--data", "sawtooth", "--model-size", "xxs", "--steps", "1", *quiet]) == 0
    capsys.readouterr()
    assert main(["sample", str(saw), "--num", "2", "--out", str(tmp_path / "x.png")]) == 2
    assert "image run" in capsys.readouterr().err


def test_flips_mirror_training_images_left_right_and_nothing_else():
    pytest.importorskip("sklearn")
    from augdiff.config import ImageConfig, build_config

    plain = make_dataset("image:digits")
    always = make_dataset("image:digits", image=ImageConfig(flip=1.0))
    half = make_dataset("image:digits", image=ImageConfig(flip=0.5))
    a, b = plain.train_batch(0, 3, 32), always.train_batch(0, 3, 32)
    assert (b.view(32, 8, 8) == a.view(32, 8, 8).flip(2)).all()
    h = half.train_batch(0, 3, 32).view(32, 8, 8)
    mirrored = (h == a.view(32, 8, 8).flip(2)).all(dim=(1, 2)) & ~(h == a.view(32, 8, 8)).all(dim=(1, 2))
    assert 4 < int(mirrored.sum()) < 28  # about half
    torch.testing.assert_close(half.train_batch(0, 3, 32)[8:16], half.train_batch(0, 3, 32, slice(8, 16)))
    assert next(always.valid_batches(8)).equal(next(plain.valid_batches(8)))  # validation is never flipped
    assert always.describe()["flip"] == 1.0 and make_dataset("image:digits", like=always.describe()).flip == 1.0
    with pytest.raises(AugdiffError, match="image"):
        make_dataset("sawtooth", image=build_config({}, ["image.flip=0.5"]).image)


def test_rotations_turn_training_images_by_quarter_turns_and_need_square_images(tmp_path):
    pytest.importorskip("sklearn")
    image = pytest.importorskip("PIL.Image")
    from augdiff.config import ImageConfig

    plain = make_dataset("image:digits").train_batch(0, 5, 64).view(64, 8, 8)
    always = make_dataset("image:digits", image=ImageConfig(rotate=1.0))
    turned = always.train_batch(0, 5, 64).view(64, 8, 8)
    turns = [
        [k for k in (1, 2, 3) if torch.equal(t, p.rot90(k, dims=(0, 1)))] for t, p in zip(turned, plain, strict=True)
    ]
    assert all(turns) and not any(
        torch.equal(t, p) for t, p in zip(turned, plain, strict=True)
    )  # always one of the three
    assert {ks[0] for ks in turns} == {1, 2, 3}
    both = make_dataset("image:digits", image=ImageConfig(flip=0.5, rotate=0.5))
    torch.testing.assert_close(both.train_batch(0, 5, 64)[8:16], both.train_batch(0, 5, 64, slice(8, 16)))
    assert make_dataset("image:digits", like=both.describe()).rotate == 0.5  # a resumed run keeps it
    folder = tmp_path / "wide"
    folder.mkdir()
    for i in range(2):
        image.fromarray(np.full((4, 6), 40 * i, dtype=np.uint8)).save(folder / f"{i}.png")
    with pytest.raises(AugdiffError, match="square images; these are 4×6"):
        make_dataset(f"image:{folder}", image=ImageConfig(rotate=0.1))


@pytest.mark.parametrize("method", ["mdlm", "cadd"])
def test_the_unet_backbone_trains_and_samples_a_grid(tmp_path, method):
    """backbone=unet: ADM's U-Net over the digits' pixel tokens, trained, reloaded and sampled to a PNG."""
    pytest.importorskip("sklearn")
    run = tmp_path / "run"
    args = ["train", "--method", method, "--data", "image:digits", "--model-size", "xxs", "--steps", "2"]
    args += ["backbone=unet", "--batch-size", "8", "--out", str(run), "progress=false", "tensorboard=false"]
    assert main(args) == 0
    grid = tmp_path / "grid.png"
    assert main(["sample", str(run), "--num", "4", "--steps", "4", "--out", str(grid)]) == 0
    assert grid.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_co_ladd_on_the_unet_trains_both_stages_and_samples_both_ways(tmp_path):
    """LADD's latent on the U-Net (ADM's class conditioning): stage 1, stage 2 from it, joint and sequential draws."""
    pytest.importorskip("sklearn")
    common = ["--method", "co-ladd", "--data", "image:digits", "--model-size", "xxs", "--steps", "2", "backbone=unet"]
    common += ["--batch-size", "8", "progress=false", "tensorboard=false", "ladd.latent_len=2", "ladd.latent_dim=4"]
    assert main(["train", *common, "--out", str(tmp_path / "s1")]) == 0
    assert (
        main(["train", *common, "--stage", "2", "--init-from", str(tmp_path / "s1"), "--out", str(tmp_path / "s2")])
        == 0
    )
    run = load_run(tmp_path / "s2")
    assert isinstance(run.model.network, UNet) and run.model.network.latent is not None
    x = torch.randint(0, 17, (3, 64))
    y, t = torch.randn(3, 2, 4), torch.rand(3)
    out = run.model.network(x, t, latent=y, latent_t=t)
    assert out.logits.shape == (3, 64, 18) and out.latent.shape == (3, 2, 4)
    for lag in ("0", "1"):
        grid = tmp_path / f"grid{lag}.png"
        args = ["sample", str(tmp_path / "s2"), "--num", "4", "--steps", "4", "--lag", lag, "--out", str(grid)]
        assert main(args) == 0 and grid.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


@pytest.mark.parametrize(
    "args,message",
    [
        (["--method", "ar", "--data", "image:digits"], "backbone=unet is a diffusion denoiser, not for method=ar"),
        (["--method", "co-ladd", "--data", "image:digits", "ladd.latent_embed=linear"], "the U-Net's has its own"),
        (["--method", "mdlm", "--data", "sawtooth", "seq_len=16"], "backbone=unet needs image data"),
        (["--method", "mdlm", "--data", "image:digits", "--model-size", "tiny"], "comes in model_size xxs | xs"),
    ],
)
def test_the_unet_backbone_refuses_what_it_cannot_run(tmp_path, capsys, args, message):
    pytest.importorskip("sklearn")
    quiet = ["backbone=unet", "--steps", "1", "--batch-size", "4", "--out", str(tmp_path / "r"), "progress=false"]
    assert main(["train", *args, *quiet]) == 2
    assert message in capsys.readouterr().err
