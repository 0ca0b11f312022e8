"""The ADM U-Net over pixel tokens: shapes, the token interface, receptive field, time switch, refusals, presets."""

import pytest
import torch
import torch.nn.functional as F

from augdiff.nn.unet import UNet, UNetConfig, UNetShapeError, image_to_tokens, tokens_to_image, unet_config

DIGITS = (8, 8, 1)
RGB = (8, 8, 3)


@pytest.fixture(autouse=True, scope="module")
def _one_thread():
    """These convolutions are tiny: on a busy 2-core machine the thread pool's overhead made one forward 200×
    slower (0.6 s against 3 ms), so the module runs on one thread and gives the setting back afterwards."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def tiny(image_shape=DIGITS, vocab_size=5, **kw) -> UNet:
    return UNet(unet_config("xxs", vocab_size, image_shape, **kw))


def randomize(net: UNet) -> UNet:
    """Give the zero-initialized layers (residual-block, attention and output convs) weights so every path matters."""
    with torch.no_grad():
        for p in net.parameters():
            p.normal_(0, 0.1)
    return net


def n_params(net: UNet) -> int:
    return sum(p.numel() for p in net.parameters())


@pytest.mark.parametrize("image_shape", [DIGITS, RGB])
def test_logits_cover_every_token_and_state(image_shape):
    net = tiny(image_shape)
    h, w, c = image_shape
    out = net(torch.randint(0, 5, (3, h * w * c)), torch.rand(3)).logits
    assert out.shape == (3, h * w * c, 5)
    assert net.embed_tokens(torch.zeros(3, 4, dtype=torch.long)).shape == (3, 4, 16)
    assert net.embedding_weight().shape == (5, 16)


def test_config_reports_a_depth_and_width():
    cfg = tiny().cfg
    assert (cfg.vocab_size, cfg.hidden_size, cfg.mlp_ratio, cfg.n_heads) == (5, 16, 4, 2)
    assert cfg.n_layers == 2 * 1 + 2 + 2 * 2  # down, middle, up residual blocks


def test_input_embeds_replace_the_token_embedding():
    net = randomize(tiny(RGB)).eval()
    x = torch.randint(0, 5, (2, 192))
    torch.testing.assert_close(
        net(x, torch.zeros(2)).logits, net(None, torch.zeros(2), input_embeds=net.embed_tokens(x)).logits
    )


def test_fresh_network_logits_depend_on_the_input():
    """The U-Net branch starts at zero (ADM's zero convs), but the token-space skip carries each embedding."""
    net = tiny().eval()
    x = torch.randint(0, 5, (1, 64))
    u = net.unet(tokens_to_image(net.embed_tokens(x), 8, 8), None)
    assert torch.equal(u, torch.zeros_like(u))
    y = x.clone()
    y[0, 10] = (x[0, 10] + 1) % 5
    assert not torch.allclose(net(x, torch.zeros(1)).logits[0, 10], net(y, torch.zeros(1)).logits[0, 10])


def test_one_token_reaches_other_pixels_and_channels():
    net = randomize(tiny(RGB)).eval()
    x = torch.randint(0, 5, (1, 192))
    y = x.clone()
    j = 3 * (8 * 2 + 5) + 1  # pixel (2, 5), green
    y[0, j] = (x[0, j] + 1) % 5
    diff = (net(x, torch.zeros(1)).logits - net(y, torch.zeros(1)).logits).abs().amax(dim=-1)[0]
    assert diff[j - 1] > 0 and diff[j + 1] > 0, "the pixel's other channels"
    assert diff[3 * 63] > 0, "the far corner pixel (through the downsampled levels and attention)"


def test_tokens_are_channels_last_pixels():
    """Tokens run over rows, columns, then channels: a pixel's C token embeddings form its C·D feature vector."""
    e = torch.arange(2 * 4 * 6 * 3 * 5, dtype=torch.float32).reshape(2, 4 * 6 * 3, 5)
    img = tokens_to_image(e, 4, 6)
    assert img.shape == (2, 15, 4, 6)
    pixel = 6 * 1 + 2  # (row 1, column 2)
    torch.testing.assert_close(img[0, :, 1, 2], e[0, 3 * pixel : 3 * pixel + 3].reshape(-1))
    torch.testing.assert_close(image_to_tokens(img, 5), e)


@pytest.mark.parametrize("conditioned", [False, True])
def test_time_conditioning_switch(conditioned):
    net = randomize(tiny(time_conditioning=conditioned)).eval()
    x = torch.randint(0, 5, (2, 64))
    same = torch.allclose(net(x, torch.tensor([0.1, 0.2])).logits, net(x, torch.tensor([0.9, 0.7])).logits)
    assert same is (not conditioned)
    assert net.time_conditioned is conditioned
    assert (net.time_embed is not None) is conditioned, "no time parameters that would go unused"


@pytest.mark.parametrize("conditioned", [False, True])
def test_every_parameter_gets_a_gradient(conditioned):
    """DDP needs every parameter in the graph; on a randomized network every gradient is non-zero."""
    net = randomize(tiny(RGB, time_conditioning=conditioned, dropout=0.1))
    net(torch.randint(0, 5, (2, 192)), torch.rand(2)).logits.square().mean().backward()
    missing = [name for name, p in net.named_parameters() if p.grad is None or not p.grad.any()]
    assert not missing, missing


def test_dropout_is_active_only_in_training():
    net = randomize(tiny(dropout=0.5))
    x = torch.randint(0, 5, (2, 64))
    net.train()
    assert not torch.allclose(net(x, torch.zeros(2)).logits, net(x, torch.zeros(2)).logits)
    net.eval()
    torch.testing.assert_close(net(x, torch.zeros(2)).logits, net(x, torch.zeros(2)).logits)


def test_refuses_images_the_levels_cannot_halve():
    with pytest.raises(ValueError, match="multiples of 4"):
        UNetConfig(vocab_size=5, height=6, width=8, channels=1, channel_mults=(1, 2, 2), norm_groups=8)


def test_refuses_an_attention_resolution_that_never_occurs():
    with pytest.raises(ValueError, match=r"attention resolution 16 never occurs.*\[8, 4\]"):
        UNetConfig(vocab_size=5, height=8, width=8, channels=1, attention_resolutions=(16,), norm_groups=8)


def test_refuses_groups_and_heads_that_do_not_divide():
    with pytest.raises(ValueError, match="norm_groups"):
        UNetConfig(vocab_size=5, height=8, width=8, channels=1, base_channels=24, norm_groups=32)
    with pytest.raises(ValueError, match="n_heads=5"):
        UNetConfig(vocab_size=5, height=8, width=8, channels=1, norm_groups=8, n_heads=5)


def test_refuses_a_sequence_that_is_not_the_image():
    net = tiny()
    with pytest.raises(ValueError, match=r"8×8×1 images.*\[batch, 64, 16\]"):
        net(torch.randint(0, 5, (2, 63)), torch.zeros(2))


def test_refuses_an_unknown_preset():
    with pytest.raises(UNetShapeError, match="choose one of: xxs, xs, cifar"):
        unet_config("huge", 5, DIGITS)


@pytest.mark.parametrize(
    ("size", "image_shape", "vocab_size", "low", "high"),
    [("xxs", DIGITS, 18, 0.25e6, 0.45e6), ("xs", DIGITS, 18, 1.5e6, 3e6), ("cifar", (32, 32, 3), 257, 25e6, 45e6)],
)
def test_preset_sizes(size, image_shape, vocab_size, low, high):
    cfg = unet_config(size, vocab_size, image_shape)
    assert cfg.attention_resolutions == (image_shape[0] // 2,)
    with torch.device("meta"):
        n = n_params(UNet(cfg))
    assert low < n < high, n


def masked_ce(net: UNet, x0: torch.Tensor, generator: torch.Generator, mask_id: int) -> torch.Tensor:
    """Cross-entropy on the masked positions of one random masking (rate t ~ U(0.2, 0.8) per image)."""
    t = 0.2 + 0.6 * torch.rand(x0.shape[0], 1, generator=generator)
    masked = torch.rand(x0.shape, generator=generator) < t
    x_t = torch.where(masked, mask_id, x0)
    logits = net(x_t, t.squeeze(1)).logits[..., :mask_id]  # SUBS: the mask state is never a prediction
    return F.cross_entropy(logits[masked], x0[masked])


def test_overfits_four_images():
    """60 Adam steps on 4 fixed 8×8 gray images (17 levels + mask) at least halve the masked cross-entropy."""
    torch.manual_seed(0)
    net = UNet(unet_config("xxs", 18, DIGITS))
    images = torch.randint(0, 17, (4, 64))
    evaluate = lambda: masked_ce(net, images.repeat(8, 1), torch.Generator().manual_seed(1), 17).item()  # noqa: E731
    start = evaluate()
    opt = torch.optim.Adam(net.parameters(), lr=3e-3)
    gen = torch.Generator().manual_seed(2)
    for _ in range(60):
        opt.zero_grad()
        masked_ce(net, images.repeat(4, 1), gen, 17).backward()
        opt.step()
    end = evaluate()
    assert end < start / 2, (start, end)


def test_the_latent_stream_conditions_every_pixel_and_has_a_head():
    """LADD on the U-Net: the latent (and its norm: no normalization in the way) reaches the logits, and the
    head reads the bottleneck; without the latent the network refuses."""
    net = randomize(tiny(latent_len=2, latent_in=4, latent_out=3)).eval()
    x, t, y = torch.randint(0, 5, (2, 64)), torch.rand(2), torch.randn(2, 2, 4)
    out = net(x, t, latent=y, latent_t=t)
    assert out.logits.shape == (2, 64, 5) and out.latent.shape == (2, 2, 3)
    for other in (3 * y, y.flip(0)):
        changed = net(x, t, latent=other, latent_t=t)
        assert (changed.logits - out.logits).abs().amax(dim=-1).min() > 0  # every pixel hears the latent
        assert not torch.allclose(changed.latent, out.latent)
    later = net(x, t, latent=y, latent_t=1 - t)  # the latent's own time
    assert not torch.allclose(later.logits, out.logits)
    with pytest.raises(AssertionError, match="latent"):
        net(x, t)
    assert tiny().latent is None and tiny()(x, t).latent is None
