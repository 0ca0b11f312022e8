"""``cadd+co-ladd``: CADD's token-side latent and a Co-LADD latent stream in one MM-DiT."""

import pytest
import torch
from ladd_models import L, V, gen, ladd_model, spy

from augdiff.channels.composed import ComposedChannel, ComposedSampling
from augdiff.cli.main import main
from augdiff.errors import AugdiffError
from augdiff.runs import load_run
from augdiff.sampling import generate


def composed(**ladd):
    model = ladd_model("cadd+co-ladd", **ladd)
    assert isinstance(model.channel, ComposedChannel)
    return model


def test_the_network_reads_both_latents():
    """The token stream gets CADD's fused embeddings and the latent stream LADD's noisy latent, in one call."""
    model = composed()
    calls = spy(model.network)
    x0 = torch.randint(0, V, (3, L), generator=gen(1))
    model.loss(x0, torch.full((3,), 0.6), gen(2))
    ((args, kwargs),) = calls
    fused = model.channel.cadd.train_input(model.network, x0, args[0], args[1], gen(2)).input_embeds
    assert kwargs["input_embeds"].shape == fused.shape == (3, L, model.network.cfg.hidden_size)
    assert kwargs["latent"].shape[0] == 3 and kwargs["latent_t"].shape == (3,)
    # the token stream is not MDLM's embedding of x_t: masked positions carry their noisy z_t
    masked = args[0] == model.mask_id
    plain = model.network.embed_tokens(args[0])
    assert not torch.allclose(kwargs["input_embeds"][masked], plain[masked])


def test_the_loss_adds_both_channels_terms():
    """channel_loss = CADD's MSE term + LADD's latent terms, on the same draw."""
    model = composed(lambda_y=1.0)
    model.channel.cadd.mse_weight = 0.5
    x0 = torch.randint(0, V, (4, L), generator=gen(3))
    t = torch.full((4,), 0.5)
    both = model.loss(x0, t, gen(4)).metrics["channel_loss"]
    model.channel.cadd.mse_weight = 0.0
    ladd_only = model.loss(x0, t, gen(4)).metrics["channel_loss"]
    assert float(both) > float(ladd_only) > 0


def test_particles_share_the_sequence_latent_and_average_their_heads():
    """K particles → B·K rows, each with its sequence's latent; combine: CADD's Eq 5 and the mean ŷ_0."""
    model = composed()
    opts = model.sampling_options(k=3)
    x_T = torch.full((2, L), model.mask_id)
    state = model.init_state(x_T, gen(5), opts)
    inputs = model.channel.sample_input(model.network, x_T, state)
    assert inputs.input_embeds.shape[0] == 6 and inputs.latent.shape[0] == 6
    torch.testing.assert_close(inputs.latent[0], inputs.latent[2])
    log_p = torch.log_softmax(torch.randn(2, 3, L, V, generator=gen(6)), -1)
    head = torch.randn(6, *inputs.latent.shape[1:], generator=gen(7))
    out = model.channel.combine(log_p, head, state)
    torch.testing.assert_close(out, torch.logsumexp(log_p, 1) - torch.log(torch.tensor(3.0)))
    torch.testing.assert_close(state.ladd.head, head.view(2, 3, *head.shape[1:]).mean(1))


@pytest.mark.parametrize("lag", [0.0, 1.0])
def test_sampling_with_particles_in_both_inference_modes(lag):
    """Joint (λ = 0) and sequential (λ = 1) inference with K = 2: valid tokens, the same samples for one seed."""
    model = composed()
    opts = model.sampling_options(k=2, lag=lag, latent_steps=3)
    a = generate(model, model.schedule, 3, L, 6, channel_options=opts, seed=0)
    b = generate(model, model.schedule, 3, L, 6, channel_options=opts, seed=0)
    assert a.shape == (3, L) and int(a.max()) < V and torch.equal(a, b)
    assert model.step_calls(L, 6, opts) == ({"token step": 6, "latent step": 3} if lag else {"token step": 6})


def test_options_are_both_channels_and_guidance_is_refused():
    model = composed()
    opts = model.sampling_options(k=4, z0_hat="soft", lag=0.5)
    assert isinstance(opts, ComposedSampling) and (opts.cadd.k, opts.cadd.z0_hat, opts.ladd.lag) == (4, "soft", 0.5)
    assert model.particles(opts) == 4
    with pytest.raises(TypeError):
        model.sampling_options(guidance=2.0)
    with pytest.raises(AugdiffError, match=r"ladd.guidance=2.0 is not offered for cadd\+co-ladd"):
        composed(guidance=2.0)


def test_two_stages_then_sampling_through_the_command_line(tmp_path, capsys):
    """train stage 1 → stage 2 (init_from) → sample with --k and --inference; σ measured once, kept."""
    common = ["--method", "cadd+co-ladd", "--data", "sawtooth", "--model-size", "xxs", "seq_len=16", "--batch-size"]
    common += ["8", "--device", "cpu", "ladd.latent_dim=8", "cadd.sigma=null", "progress=false", "tensorboard=false"]
    one, two = tmp_path / "one", tmp_path / "two"
    assert main(["train", *common, "--steps", "3", "--out", str(one)]) == 0
    stage2 = ["--steps", "3", "--stage", "2", "--init-from", str(one), "--out", str(two)]
    capsys.readouterr()
    assert main(["train", *common, *stage2]) == 2  # σ measured in stage 1 must be given again, not re-measured
    sigma = load_run(str(one)).config.cadd.sigma
    assert f"cadd.sigma={sigma!r}" in capsys.readouterr().err
    assert main(["train", *common, *stage2, f"cadd.sigma={sigma!r}"]) == 0
    run = load_run(str(two))
    assert run.config.cadd.sigma == sigma and run.config.ladd.stage == 2
    out = tmp_path / "samples.txt"
    args = [
        "sample",
        str(two),
        "--num",
        "2",
        "--steps",
        "4",
        "--k",
        "2",
        "--inference",
        "sequential",
        "--out",
        str(out),
    ]
    assert main(args) == 0 and out.exists()
    capsys.readouterr()
    assert main(["sample", str(two), "--num", "2", "--steps", "4", "--guidance", "2", "--out", str(out)]) == 2
    assert "guidance" in capsys.readouterr().err
