"""LADD's channels: the latent's normalization (none, unit as in Eq 75, radius R), VQ codes, DDIM (Eq 39–41),
training inputs, the two dropouts (App. C.3), stage freezing (§3.3). Inference: test_ladd_inference.py; the
encoder: tests/nn/test_latent_encoder.py."""

import math

import pytest
import torch
from ladd_models import METHODS, D, K, L, V, gen, ladd_model

from augdiff.channels.co_ladd import latent_regression_loss, project_latent, unit_normalize
from augdiff.processes.gaussian import ddim_step, gaussian_bridge, gaussian_forward
from augdiff.schedules.gaussian import LADDSqrtSchedule, VPCosineSchedule, VPSqrtSchedule


# -- Co-LADD latents and Di-LADD codes ---------------------------------------------------------------------
@pytest.mark.parametrize("pool,latent_len", [("mean", 1), ("mean", 3), ("patch", 4)])
def test_co_ladd_latents_lie_on_the_unit_sphere(pool, latent_len):
    x0 = torch.randint(0, V, (8, L), generator=gen(1))
    model = ladd_model("co-ladd", pool=pool, latent_len=latent_len, normalize="unit")
    y, extra, _ = model.channel.encode(x0, None)
    assert y.shape == (8, latent_len, D) and extra is None
    torch.testing.assert_close(y.norm(dim=-1), torch.ones(8, latent_len))
    raw = ladd_model("co-ladd", pool=pool, latent_len=latent_len, normalize="none")  # the same weights
    y_raw, _, _ = raw.channel.encode(x0, None)
    assert not torch.allclose(y_raw.norm(dim=-1), torch.ones(8, latent_len), atol=1e-2)
    torch.testing.assert_close(y, y_raw / y_raw.norm(dim=-1, keepdim=True))
    torch.testing.assert_close(unit_normalize(y_raw), y)


def test_the_auto_latent_schedule_is_the_authors():
    """``ladd.schedule=auto``: their sqrt for Co-LADD's Gaussian latent, α_y = 1 − t² for Di-LADD's codes."""
    assert isinstance(ladd_model("co-ladd").channel.schedule, LADDSqrtSchedule)
    t = torch.tensor([0.0, 0.3, 0.9], dtype=torch.float64)
    torch.testing.assert_close(ladd_model("di-ladd").channel.schedule.alpha(t), 1 - t**2)


def test_di_ladd_codes_round_trip_through_the_codebook():
    model = ladd_model("di-ladd", latent_len=4)
    ch = model.channel
    x0 = torch.randint(0, V, (64, L), generator=gen(2))
    codes, commit, _ = ch.encode(x0, None)
    assert codes.shape == (64, 4) and codes.dtype == torch.long and commit is None  # no VQ loss in eval
    assert ((codes >= 0) & (codes < K)).all() and codes.unique().numel() > 1
    codebook = ch.vq.codebook
    assert codebook.shape == (K, D)
    _, again, _ = ch.vq(codebook[codes])
    assert torch.equal(again, codes)
    masked = torch.rand(codes.shape, generator=gen(3)) < 0.5
    y_t = torch.where(masked, K, codes)
    vectors = ch.latent_input(y_t)
    assert vectors.shape == (64, 4, D)
    torch.testing.assert_close(vectors[~masked], codebook[codes[~masked]])
    torch.testing.assert_close(vectors[masked], ch.mask_embedding.detach().expand(int(masked.sum()), D))


# -- DDIM (Eq 39–41) ---------------------------------------------------------------------------------------
def test_ddim_with_eta_one_has_the_moments_of_the_ancestral_bridge():
    schedule = VPSqrtSchedule()
    t, s, n = 0.7, 0.4, 200_000
    y_t = torch.tensor([[0.3, -1.2, 0.9]], dtype=torch.float64)
    y0_hat = torch.tensor([[0.8, 0.1, -0.5]], dtype=torch.float64)
    mean, var = gaussian_bridge(y_t, y0_hat, t, s, schedule)
    noise = torch.randn(n, 3, dtype=torch.float64, generator=gen(0))
    draws = ddim_step(y_t.expand(n, 3), y0_hat.expand(n, 3), t, s, schedule, 1.0, noise)
    se_mean = (var / n).sqrt()
    assert ((draws.mean(dim=0) - mean[0]).abs() < 5 * se_mean).all()
    se_var = var * math.sqrt(2.0 / (n - 1))  # standard error of a Gaussian sample variance
    assert ((draws.var(dim=0) - var[0]).abs() < 5 * se_var).all()
    # the same in closed form: without the injected noise the step lands on the bridge mean
    torch.testing.assert_close(ddim_step(y_t, y0_hat, t, s, schedule, 1.0, torch.zeros_like(y_t)), mean)


def test_ddim_with_eta_zero_is_deterministic_and_keeps_the_noise_estimate():
    schedule = VPSqrtSchedule()
    t, s = 0.8, 0.3
    y_t, y0_hat = torch.randn(4, 5, dtype=torch.float64), torch.randn(4, 5, dtype=torch.float64)
    one = ddim_step(y_t, y0_hat, t, s, schedule, 0.0, torch.randn(4, 5, dtype=torch.float64))
    two = ddim_step(y_t, y0_hat, t, s, schedule, 0.0, torch.randn(4, 5, dtype=torch.float64))
    assert torch.equal(one, two)
    tt, ss = torch.tensor(t, dtype=torch.float64), torch.tensor(s, dtype=torch.float64)
    eps_t = (y_t - schedule.signal(tt) * y0_hat) / schedule.noise(tt)
    eps_s = (one - schedule.signal(ss) * y0_hat) / schedule.noise(ss)
    torch.testing.assert_close(eps_s, eps_t)
    # towards s → 0 on a path with b(0) = 0 the deterministic step lands on ŷ_0
    cosine = VPCosineSchedule()
    end = ddim_step(y_t, y0_hat, t, 1e-7, cosine, 0.0, torch.zeros_like(y_t))
    torch.testing.assert_close(end, y0_hat, atol=1e-3, rtol=0)


@pytest.mark.parametrize("eta", [0.0, 0.5, 1.0])
def test_ddim_with_the_true_y0_keeps_the_forward_marginal(eta):
    """y_t ~ q(y_t | y_0) and ŷ_0 = y_0 → y_s ~ N(a_s y_0, b_s² I) for every η."""
    schedule = VPSqrtSchedule()
    t, s, n = 0.6, 0.2, 200_000
    g = gen(1)
    y0 = torch.tensor([1.5, -0.5], dtype=torch.float64).expand(n, 2)
    tb = torch.full((n,), t, dtype=torch.float64)
    y_t = gaussian_forward(y0, tb, schedule, torch.randn(n, 2, dtype=torch.float64, generator=g))
    y_s = ddim_step(y_t, y0, t, s, schedule, eta, torch.randn(n, 2, dtype=torch.float64, generator=g))
    ss = torch.tensor(s, dtype=torch.float64)
    a_s, b_s = schedule.signal(ss).item(), schedule.noise(ss).item()
    assert ((y_s.mean(dim=0) - a_s * y0[0]).abs() < 5 * b_s / math.sqrt(n)).all()
    assert ((y_s.var(dim=0) - b_s**2).abs() < 5 * b_s**2 * math.sqrt(2.0 / (n - 1))).all()


def test_co_ladd_reverse_to_zero_returns_the_normalized_prediction():
    y, head = torch.randn(3, 1, D), torch.randn(3, 1, D)
    unit = ladd_model("co-ladd").channel  # the default: the unit sphere of Eq 75
    assert unit.normalize == "unit"
    torch.testing.assert_close(unit.reverse(y, head, 0.25, 0.0, gen(0)), unit_normalize(head))
    free = ladd_model("co-ladd", normalize="none").channel  # the prediction itself
    torch.testing.assert_close(free.reverse(y, head, 0.25, 0.0, gen(0)), head)


def test_project_latent_sets_each_latent_vectors_norm():
    y = torch.randn(5, 3, D, generator=gen(0)) * torch.tensor([0.1, 1.0, 7.0]).view(1, 3, 1)
    assert torch.equal(project_latent(y, "none"), y)
    torch.testing.assert_close(project_latent(y, "unit").norm(dim=-1), torch.ones(5, 3))
    torch.testing.assert_close(project_latent(y, "unit", radius=4.0).norm(dim=-1), torch.ones(5, 3))  # R unused
    on_radius = project_latent(y, "radius", radius=4.0)
    torch.testing.assert_close(on_radius.norm(dim=-1), torch.full((5, 3), 4.0))
    torch.testing.assert_close(on_radius, 4.0 * y / y.norm(dim=-1, keepdim=True))  # the direction is kept


def test_co_ladd_with_a_radius_encodes_and_predicts_on_that_sphere():
    radius = 3.0
    ch = ladd_model("co-ladd", pool="mean", latent_len=2, normalize="radius", radius=radius).channel
    y, _, _ = ch.encode(torch.randint(0, V, (6, L), generator=gen(1)), None)
    torch.testing.assert_close(y.norm(dim=-1), torch.full((6, 2), radius))
    head = torch.randn(6, 2, D, generator=gen(2))
    y_t = torch.randn(6, 2, D, generator=gen(3))
    expected = radius * head / head.norm(dim=-1, keepdim=True)
    torch.testing.assert_close(ch.reverse(y_t, head, 0.25, 0.0, gen(0)), expected)


def test_latent_regression_loss_mean_and_sum_over_the_width():
    """Eq 72 per sequence: squared error averaged over the L′ positions, and over (mean) or summed along d′."""
    y0_hat, y0 = torch.randn(4, 3, D, generator=gen(0)), torch.randn(4, 3, D, generator=gen(1))
    weight = torch.tensor([1.0, 2.0, 0.5, 0.0])
    by_hand = torch.tensor(
        [weight[i] * sum(float(((y0_hat[i, j] - y0[i, j]) ** 2).sum()) for j in range(3)) / 3 for i in range(4)]
    )
    summed = latent_regression_loss(y0_hat, y0, weight, reduce="sum")
    torch.testing.assert_close(summed, by_hand)
    torch.testing.assert_close(latent_regression_loss(y0_hat, y0, weight), by_hand / D)  # "mean" is the default


# -- training inputs ---------------------------------------------------------------------------------------
def masked(x0, frac, seed):
    return torch.where(torch.rand(x0.shape, generator=gen(seed)) < frac, V, x0)


def test_latent_time_coupled_independent_and_at_evaluation():
    x0 = torch.randint(0, V, (16, L), generator=gen(1))
    x_t = masked(x0, 0.5, 2)
    t = torch.linspace(0.1, 0.9, 16)
    coupled = ladd_model("co-ladd", independent_t=False, p_seq=0.0).train()
    inputs = coupled.channel.train_input(coupled.network, x0, x_t, t, gen(3))
    torch.testing.assert_close(inputs.latent_t, t)
    assert inputs.latent.shape == (16, 1, D)
    independent = ladd_model("co-ladd", independent_t=True, p_seq=0.0).train()
    inputs = independent.channel.train_input(independent.network, x0, x_t, t, gen(3))
    assert not torch.allclose(inputs.latent_t, t)
    assert ((inputs.latent_t >= 1e-3) & (inputs.latent_t <= 1.0)).all()
    # evaluation: the coupled model follows the inference lag, t_y = (1 − λ)·t ...
    coupled.eval()
    inputs = coupled.channel.train_input(coupled.network, x0, x_t, t, gen(3), coupled.sampling_options(lag=0.25))
    torch.testing.assert_close(inputs.latent_t, 0.75 * t)
    # ... the independent one draws t_y as in training, whatever the lag (its recon is its training loss)
    independent.eval()
    drawn = []
    for lag in (0.0, 0.25, 1.0):
        options = independent.sampling_options(lag=lag)
        drawn.append(independent.channel.train_input(independent.network, x0, x_t, t, gen(3), options).latent_t)
    assert torch.equal(drawn[0], drawn[1]) and torch.equal(drawn[0], drawn[2])
    assert not torch.allclose(drawn[0], t) and not torch.allclose(drawn[0], 0.75 * t)
    assert ((drawn[0] >= 1e-3) & (drawn[0] <= 1.0)).all()


@pytest.mark.parametrize("method", METHODS)
def test_sequential_training_rows_see_the_clean_latent(method):
    """p_seq: a row trains the sequential conditioning (t_y = 0, the latent exactly y_0) or the joint one."""
    n = 400
    x0 = torch.randint(0, V, (n, L), generator=gen(1))
    x_t = masked(x0, 0.5, 2)
    t = torch.rand(n, generator=gen(2)).clamp_min(0.05)
    model = ladd_model(method, p_seq=1.0, p_cf=0.0).train()
    with torch.no_grad():
        inputs = model.channel.train_input(model.network, x0, x_t, t, gen(3))
        clean = model.channel.latent_input(inputs.context["y0"])
    assert (inputs.latent_t == 0).all()
    torch.testing.assert_close(inputs.latent, clean)  # no noise at all at t_y = 0
    mixed = ladd_model(method, p_seq=0.5, p_cf=0.0, independent_t=False).train()
    with torch.no_grad():
        inputs = mixed.channel.train_input(mixed.network, x0, x_t, t, gen(3))
    zero = inputs.latent_t == 0
    assert torch.equal(inputs.latent_t[~zero], t[~zero])
    assert abs(zero.float().mean().item() - 0.5) < 4 * math.sqrt(0.25 / n)


@pytest.mark.parametrize("method", METHODS)
def test_latent_dropout_feeds_the_exact_null_latent(method):
    """p_cf (Eq 76): a dropped row reads the null latent itself, never noised (zeros for Co-LADD, every code
    masked for Di-LADD), so the data never reaches it; kept rows read their own data's latent."""
    n, t = 64, torch.full((64,), 0.05)
    model = ladd_model(method, stage=1, p_cf=0.5, independent_t=False, p_seq=0.0).train()
    ch = model.channel
    x0a = torch.randint(0, V, (n, L), generator=gen(1))
    x0b = torch.randint(0, V, (n, L), generator=gen(2))
    with torch.no_grad():
        a = ch.train_input(model.network, x0a, x0a, t, gen(3))
        b = ch.train_input(model.network, x0b, x0b, t, gen(3))
    dropped = a.context["dropped"]
    assert torch.equal(dropped, b.context["dropped"]) and 0 < int(dropped.sum()) < n
    if method == "co-ladd":
        null, null_y = torch.zeros(D), torch.zeros(int(dropped.sum()), 1, D)
    else:
        null, null_y = ch.mask_embedding.detach(), torch.full((int(dropped.sum()), 1), K)
    for inputs in (a, b):
        assert torch.equal(inputs.context["y_t"][dropped], null_y)
        assert torch.equal(inputs.latent[dropped], null.expand(int(dropped.sum()), 1, D))
    assert not torch.allclose(a.latent[~dropped], b.latent[~dropped])  # the data reaches the kept rows


@pytest.mark.parametrize("method", METHODS)
def test_dropped_rows_are_left_out_of_the_latent_losses(method):
    model = ladd_model(method, p_cf=0.5, p_seq=0.0).train()
    ch = model.channel
    x0 = torch.randint(0, V, (8, L), generator=gen(1))
    x_t, t = masked(x0, 0.5, 2), torch.full((8,), 0.5)
    inputs = ch.train_input(model.network, x0, x_t, t, gen(3))
    width = D if method == "co-ladd" else K + 1
    head = torch.randn(8, 1, width, requires_grad=True)
    inputs.context["dropped"] = torch.ones(8, dtype=torch.bool)
    loss = ch.extra_loss(model.network, inputs, None, x0, x_t, t, "elbo", head, gen(4))
    assert loss.item() == 0.0
    loss.backward()
    assert all(p.grad is None or p.grad.abs().sum() == 0 for p in ch.prior.parameters())
    head.grad = None
    inputs.context["dropped"] = torch.tensor([True, False] * 4)
    if method == "di-ladd":  # the masked code loss only sees masked latent positions: mask them all
        inputs.context["y_t"] = torch.full_like(inputs.context["y_t"], K)
    loss = ch.extra_loss(model.network, inputs, None, x0, x_t, t, "elbo", head, gen(4))
    assert loss.item() > 0
    loss.backward()
    assert head.grad[0::2].abs().sum() == 0
    assert (head.grad[1::2].abs().flatten(1).sum(dim=1) > 0).all()


@pytest.mark.parametrize("method", METHODS)
def test_sequential_rows_are_left_out_of_the_joint_latent_loss(method):
    """A row trained at t_y = 0 reads y_0 itself: the joint head would only learn to copy its input, so such a
    row trains the latent-only denoiser (the prior term) alone."""
    model = ladd_model(method, p_cf=0.0, p_seq=0.0).train()
    ch = model.channel
    x0 = torch.randint(0, V, (8, L), generator=gen(1))
    x_t, t = masked(x0, 0.5, 2), torch.full((8,), 0.5)
    inputs = ch.train_input(model.network, x0, x_t, t, gen(3))
    if method == "di-ladd":  # the masked code loss only sees masked latent positions: mask them all
        inputs.context["y_t"] = torch.full_like(inputs.context["y_t"], K)
    width = D if method == "co-ladd" else K + 1
    head = torch.randn(8, 1, width, requires_grad=True)
    inputs.context["t_y"] = torch.tensor([0.0, 0.5] * 4)
    ch.extra_loss(model.network, inputs, None, x0, x_t, t, "elbo", head, gen(4)).backward()
    assert head.grad[0::2].abs().sum() == 0
    assert (head.grad[1::2].abs().flatten(1).sum(dim=1) > 0).all()
    head.grad = None
    ch.prior.zero_grad()
    inputs.context["t_y"] = torch.zeros(8)  # every row sequential (p_seq = 1): no joint term at all
    loss = ch.extra_loss(model.network, inputs, None, x0, x_t, t, "elbo", head, gen(4))
    loss.backward()
    assert loss.item() > 0 and head.grad.abs().sum() == 0
    assert any(p.grad is not None and p.grad.abs().sum() > 0 for p in ch.prior.parameters())


@pytest.mark.parametrize("method", METHODS)
def test_encoder_input_dropout_blanks_only_masked_positions(method):
    model = ladd_model(method, stage=1, p_drop=1.0).train()
    blanks = []
    forward = model.channel.encoder.forward

    def recording(x0, blank=None):
        blanks.append(blank)
        return forward(x0, blank)

    model.channel.encoder.forward = recording
    x0 = torch.randint(0, V, (64, L), generator=gen(1))
    x_t = masked(x0, 0.5, 2)
    model.channel.train_input(model.network, x0, x_t, torch.rand(64, generator=gen(3)), gen(4))
    blank = blanks[-1]
    assert blank is not None and blank.shape == x0.shape
    assert not (blank & (x_t != V)).any()  # only positions masked in x_t
    assert 0 < int(blank.sum()) < int((x_t == V).sum())  # rate ~ U[0, p_drop] per sequence
    model.eval()
    model.channel.train_input(model.network, x0, x_t, torch.rand(64, generator=gen(3)), gen(4))
    assert blanks[-1] is None  # no dropout at evaluation


# -- two-stage training ------------------------------------------------------------------------------------
def one_step(model, seed=0):
    model.train()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    opt = torch.optim.AdamW(model.parameters(), lr=1e-2, weight_decay=0.0)
    g = gen(seed)
    x0 = torch.randint(0, V, (16, L), generator=g)
    model.loss(x0, torch.rand(16, generator=g).clamp_min(0.05), g).loss.backward()
    opt.step()
    after = model.state_dict()
    return {k for k in before if not torch.equal(before[k], after[k])}


def under(keys, prefix):
    return {k for k in keys if k.startswith(prefix)}


@pytest.mark.parametrize("method", METHODS)
def test_stage_2_freezes_the_encoder_and_trains_the_latent_denoisers(method):
    model = ladd_model(method, stage=2, lambda_y=2.0, p_seq=0.0)  # every row trains the joint latent head
    assert model.channel.lambda_y == 2.0
    assert not any(p.requires_grad for p in model.channel.encoder.parameters())
    changed = one_step(model)
    assert not model.channel.encoder.training  # frozen modules stay in eval mode (no dropout, no VQ updates)
    assert not under(changed, "channel.encoder.") and not under(changed, "channel.vq.")
    assert {"network.heads.y.weight", "network.heads.x.weight"} <= changed
    assert under(changed, "channel.prior.")


@pytest.mark.parametrize("method", METHODS)
def test_stage_1_trains_the_encoder_and_leaves_the_latent_denoisers_alone(method):
    model = ladd_model(method, stage=1, lambda_y=2.0)
    assert model.channel.lambda_y == 0.0
    assert all(p.requires_grad for p in model.channel.encoder.parameters())
    changed = one_step(model)
    assert under(changed, "channel.encoder.blocks.") and "channel.encoder.proj.weight" in changed
    assert not under(changed, "channel.prior.") and not under(changed, "network.heads.y.")
    assert "network.heads.x.weight" in changed
    if method == "di-ladd":
        assert "channel.vq._codebook.embed" in changed  # the EMA codebook follows the encoder
