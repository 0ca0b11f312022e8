"""Text sample metrics: entropy (LADD Eq 83–84, ReMDM), pooled generative perplexity, retokenization, MAUVE,
teachers (a tiny bigram model as augdiff AR teacher, a tiny GPT-2 as Hugging Face teacher, the real ARModel)."""

import math
import time
from collections import Counter

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from augdiff.data.tokenizer import CharTokenizer, train_bpe
from augdiff.errors import AugdiffError
from augdiff.metrics import (
    RunTeacher,
    average_positional_entropy,
    evaluate_samples,
    generative_perplexity,
    load_teacher,
    mauve_between_samples,
    mauve_score,
    positional_marginals,
    teacher_inputs,
    token_entropy,
    unigram_entropy,
)

# -- entropy -------------------------------------------------------------------------------------------------


def brute_entropy(tokens) -> float:
    counts = Counter(int(t) for t in tokens)
    n = sum(counts.values())
    return -sum(c / n * math.log(c / n) for c in counts.values())


def test_entropy_of_a_constant_sequence_is_zero():
    x = torch.full((3, 12), 7)
    assert unigram_entropy(x).tolist() == [0.0, 0.0, 0.0]
    assert average_positional_entropy(x) == 0.0


def test_a_sequence_with_every_token_once_has_entropy_log_v():
    v = 11
    x = torch.stack([torch.randperm(v) for _ in range(4)])
    assert unigram_entropy(x) == pytest.approx([math.log(v)] * 4, abs=1e-12)
    assert unigram_entropy(x)[0].item() == pytest.approx(brute_entropy(x[0]), abs=1e-12)


def test_unigram_entropy_matches_brute_force_per_sample():
    x = torch.randint(0, 5, (20, 9), generator=torch.Generator().manual_seed(3))
    assert unigram_entropy(x).tolist() == pytest.approx([brute_entropy(row) for row in x], abs=1e-12)


def test_positional_entropy_of_a_hand_computed_example():
    # position 0 holds {0, 0, 1, 0}: H = -(3/4 log 3/4 + 1/4 log 1/4); position 1 holds 4 distinct tokens: log 4
    x = torch.tensor([[0, 1], [0, 2], [1, 3], [0, 4]])
    h0 = -(0.75 * math.log(0.75) + 0.25 * math.log(0.25))
    assert average_positional_entropy(x) == pytest.approx((h0 + math.log(4)) / 2, abs=1e-12)
    marginals = positional_marginals(x, vocab_size=6)
    assert marginals[0].tolist() == [0.75, 0.25, 0, 0, 0, 0]
    assert marginals[1].tolist() == [0, 0.25, 0.25, 0.25, 0.25, 0]


def test_positional_entropy_equals_brute_force_over_columns_and_differs_from_unigram():
    x = torch.randint(0, 4, (30, 6), generator=torch.Generator().manual_seed(0))
    x[:, 0] = 2  # a constant column lowers the positional entropy, not each row's unigram entropy as much
    columns = [brute_entropy(x[:, i]) for i in range(6)]
    assert average_positional_entropy(x) == pytest.approx(sum(columns) / 6, abs=1e-12)
    out = token_entropy(x)
    assert out.positional == pytest.approx(sum(columns) / 6)
    assert out.unigram == pytest.approx(float(unigram_entropy(x).mean()))


# -- a tiny causal teacher: p(x_i | x_{i-1}), with the ARModel contract ---------------------------------------


class BigramAR(nn.Module):
    """log p(x_i | x_{i-1}) from a table; row V is the start token (``ARModel``'s log_probs / hidden_states)."""

    def __init__(self, vocab: int, scale: float = 3.0, seed: int = 0) -> None:
        super().__init__()
        g = torch.Generator().manual_seed(seed)
        self.vocab_size = vocab
        self.table = nn.Parameter(torch.randn(vocab + 1, vocab, generator=g) * scale)

    def log_probs(self, x):
        prev = torch.cat([torch.full_like(x[:, :1], self.vocab_size), x[:, :-1]], dim=1)
        return F.log_softmax(self.table, dim=-1)[prev]

    def hidden_states(self, x):
        return F.one_hot(x, self.vocab_size).float().cumsum(dim=1)  # the state after reading x_0..x_i

    def greedy(self, n: int, length: int):
        lp = F.log_softmax(self.table, dim=-1)
        prev, out = torch.full((n,), self.vocab_size), []
        for _ in range(length):
            prev = lp[prev].argmax(dim=-1)
            out.append(prev)
        return torch.stack(out, dim=1)


def bigram_teacher(vocab=6, max_length=None, batch_size=3, description=None, **kw):
    model = BigramAR(vocab, **kw)
    desc = description or {"spec": "tokens:/fake.npy", "vocab_size": vocab, "seq_len": 16}
    return RunTeacher(model, desc, name="bigram", batch_size=batch_size, max_length=max_length), model


def test_pooled_nll_is_the_brute_force_sum_over_all_tokens_over_their_count():
    teacher, model = bigram_teacher(max_length=4)
    lp = F.log_softmax(model.table, dim=-1)
    rows = [[1, 2, 3, 4, 5, 0, 1, 2, 3, 4], [5, 5], [0, 1, 2, 3, 4, 5, 0]]  # chunks of 4 restart the context
    total, count = 0.0, 0
    for row in rows:
        for start in range(0, len(row), 4):
            prev = model.vocab_size
            for tok in row[start : start + 4]:
                total -= lp[prev, tok].item()
                count += 1
                prev = tok
    score = teacher.score(rows)
    assert score.n_tokens == count == 19
    assert score.total_nll == pytest.approx(total, rel=1e-6)
    out = generative_perplexity(teacher, rows, sample_description=teacher.description)
    assert out.gen_ppl == pytest.approx(math.exp(total / count), rel=1e-6)
    assert not out.retokenized
    # pooled, not the mean of per-sample perplexities
    per_sample = np.exp(score.nll_per_sample / score.tokens_per_sample).mean()
    assert abs(out.gen_ppl - per_sample) > 1e-3


def test_gen_ppl_of_the_teachers_greedy_samples_is_below_that_of_uniform_random_tokens():
    teacher, model = bigram_teacher(vocab=8)
    desc = teacher.description
    greedy = generative_perplexity(teacher, model.greedy(16, 12), sample_description=desc)
    uniform = torch.randint(0, 8, (16, 12), generator=torch.Generator().manual_seed(1))
    random = generative_perplexity(teacher, uniform, sample_description=desc)
    assert greedy.gen_ppl < random.gen_ppl
    assert greedy.n_tokens == random.n_tokens == 16 * 12


def test_ids_of_another_tokenizer_are_decoded_and_retokenized_and_round_trip_to_the_same_text():
    text = ["the cat sat on the mat", "a mat, the cat"]
    chars = CharTokenizer("".join(sorted(set("".join(text)))))
    sample_desc = {"spec": "text:/a.txt", "vocab_size": chars.vocab_size, "seq_len": 22, **chars.describe()}
    bpe = train_bpe(["the cat sat on the mat, a mat"] * 20, vocab_size=270)
    teacher_desc = {"spec": "text:/b.txt", "vocab_size": bpe.vocab_size, "seq_len": 32, **bpe.describe()}
    teacher, _ = bigram_teacher(vocab=bpe.vocab_size, description=teacher_desc)
    ids = [chars.encode(t) for t in text]
    inputs = teacher_inputs(teacher, ids, chars, sample_desc)
    assert inputs.retokenized
    assert [bpe.decode(row) for row in inputs.rows] == text
    assert inputs.rows != ids
    same = teacher_inputs(teacher, [bpe.encode(t) for t in text], bpe, teacher_desc)
    assert not same.retokenized and same.rows == [bpe.encode(t) for t in text]
    with pytest.raises(AugdiffError, match="no tokenizer to decode"):
        teacher_inputs(teacher, ids, None, {"spec": "tokens:/x.npy", "vocab_size": 9})


def test_padding_is_dropped_from_passed_through_ids_even_without_a_sample_tokenizer():
    """``evaluate_generation`` passes ids straight to a teacher of the same data with no tokenizer: the padding
    must still be found (from the description) and left unscored."""
    bpe = train_bpe(["the cat sat on the mat, a mat"] * 20, vocab_size=270)
    desc = {"spec": "text:/b.txt", "vocab_size": bpe.vocab_size, "seq_len": 8, **bpe.describe()}
    teacher, _ = bigram_teacher(vocab=bpe.vocab_size, description=desc)
    body = bpe.encode("the cat")
    row = [bpe.bos_id, *body, bpe.eos_id, bpe.pad_id, bpe.pad_id]
    inputs = teacher_inputs(teacher, [row], None, desc)
    assert not inputs.retokenized and inputs.rows == [[bpe.bos_id, *body, bpe.eos_id]]


def test_evaluate_samples_reports_entropy_gen_ppl_and_mauve():
    teacher, model = bigram_teacher(vocab=8)
    samples = torch.randint(0, 8, (40, 12), generator=torch.Generator().manual_seed(2))
    out = evaluate_samples(samples, teacher=teacher, reference=samples, sample_description=teacher.description)
    assert out.mauve.mauve == pytest.approx(1.0, abs=1e-6)  # the samples against themselves
    assert out.gen_ppl.n_tokens == 40 * 12
    assert out.as_dict()["entropy"]["unigram"] == pytest.approx(float(unigram_entropy(samples).mean()))


# -- MAUVE -----------------------------------------------------------------------------------------------------


def test_mauve_of_identical_features_is_one_and_of_separated_sets_is_small():
    g = np.random.default_rng(0)
    p = g.normal(size=(60, 8)).astype(np.float32)
    same = mauve_score(p, p.copy())
    assert same.mauve == pytest.approx(1.0, abs=1e-6) and same.num_buckets == 6  # auto: 60 / 10
    far = mauve_score(p, g.normal(size=(60, 8)).astype(np.float32) + 10.0)
    assert far.mauve < 0.1


def test_mauve_rejects_bad_bucket_counts():
    p = np.zeros((4, 2), dtype=np.float32)
    with pytest.raises(AugdiffError, match="mauve-buckets"):
        mauve_score(p, p, num_buckets=50)


def test_mauve_on_teacher_features_separates_greedy_from_random_samples():
    teacher, model = bigram_teacher(vocab=8)
    random = torch.randint(0, 8, (40, 12), generator=torch.Generator().manual_seed(5))
    greedy = model.greedy(40, 12)
    out = mauve_between_samples(teacher, random, greedy, sample_description=teacher.description, num_buckets=4)
    assert out.mauve < 0.5 and out.n_reference == out.n_samples == 40


# -- Hugging Face teachers -------------------------------------------------------------------------------------


def test_a_hub_name_offline_fails_at_once_with_one_line(monkeypatch):
    pytest.importorskip("transformers")
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    start = time.perf_counter()
    with pytest.raises(AugdiffError) as exc:
        load_teacher("augdiff-tests/no-such-model")
    assert time.perf_counter() - start < 20
    message = str(exc.value)
    assert "offline" in message and "local path" in message and "AR run" in message and "\n" not in message


WORDS = ["the", "cat", "sat", "on", "mat", "a", "dog", "ran", "to", "it", "is", "red"]


@pytest.fixture(scope="module")
def tiny_gpt2(tmp_path_factory):
    """A 1-layer GPT-2 with a 14-token word-level tokenizer, saved as a local Hugging Face model directory."""
    transformers = pytest.importorskip("transformers")
    from tokenizers import Tokenizer, models, pre_tokenizers

    vocab = {w: i for i, w in enumerate(["<|endoftext|>", "[UNK]", *WORDS])}
    tok = Tokenizer(models.WordLevel(vocab, unk_token="[UNK]"))
    tok.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    hf_tok = transformers.PreTrainedTokenizerFast(
        tokenizer_object=tok, bos_token="<|endoftext|>", eos_token="<|endoftext|>", unk_token="[UNK]"
    )
    torch.manual_seed(0)
    config = transformers.GPT2Config(
        vocab_size=len(vocab), n_positions=16, n_embd=32, n_layer=1, n_head=2, bos_token_id=0, eos_token_id=0
    )
    config.initializer_range = 0.5  # peaked next-token distributions: greedy text stands out
    model = transformers.GPT2LMHeadModel(config).eval()
    path = tmp_path_factory.mktemp("hf") / "tiny-gpt2"
    model.save_pretrained(path)
    hf_tok.save_pretrained(path)
    return path, model, hf_tok


def test_hf_teacher_pools_the_nll_of_bos_prefixed_chunks(tiny_gpt2):
    path, model, tok = tiny_gpt2
    teacher = load_teacher(str(path), batch_size=2, max_length=4)  # 3 words + BOS per chunk
    texts = ["the cat sat on the mat a dog", "it is red"]
    total, count = 0.0, 0
    for text in texts:
        ids = tok(text, add_special_tokens=False)["input_ids"]
        for start in range(0, len(ids), 3):
            chunk = torch.tensor([[0, *ids[start : start + 3]]])
            with torch.no_grad():
                lp = model(chunk).logits.log_softmax(-1)[0, :-1]
            total -= lp.gather(-1, chunk[0, 1:, None]).sum().item()
            count += chunk.shape[1] - 1
    out = generative_perplexity(teacher, texts)
    assert out.n_tokens == count == 11 and out.retokenized
    assert out.total_nll == pytest.approx(total, rel=1e-5)
    assert out.gen_ppl == pytest.approx(math.exp(total / count), rel=1e-5)


def test_hf_teacher_features_are_the_last_hidden_state_of_the_last_token(tiny_gpt2):
    path, model, tok = tiny_gpt2
    teacher = load_teacher(str(path), batch_size=4)
    texts = ["the cat sat", "a dog ran to it", "red"]
    feats = teacher.features(texts)
    assert feats.shape == (3, 32)
    for text, row in zip(texts, feats, strict=True):
        ids = torch.tensor([tok(text, add_special_tokens=False)["input_ids"]])
        with torch.no_grad():
            expected = model(ids, output_hidden_states=True).hidden_states[-1][0, -1]
        assert np.allclose(row, expected.numpy(), atol=1e-5)


def test_hf_teacher_scores_its_greedy_text_below_random_words_and_reads_char_samples(tiny_gpt2):
    path, model, tok = tiny_gpt2
    teacher = load_teacher(str(path))
    with torch.no_grad():
        out = model.generate(torch.zeros(4, 1, dtype=torch.long), do_sample=False, max_new_tokens=10, pad_token_id=0)
    greedy = [tok.decode(row[1:]) for row in out]
    rng = np.random.default_rng(0)
    random = [" ".join(rng.choice(WORDS, 10)) for _ in range(4)]
    assert generative_perplexity(teacher, greedy).gen_ppl < generative_perplexity(teacher, random).gen_ppl
    # character-level samples reach the teacher as text
    chars = CharTokenizer(" acdeghimnorstu")
    ids = torch.tensor([chars.encode("the cat sat on"), chars.encode("a dog ran to i")])
    inputs = teacher_inputs(teacher, ids, chars, {"spec": "text:/c.txt", **chars.describe()})
    assert [tok.decode(row) for row in inputs.rows] == ["the cat sat on", "a dog ran to [UNK]"]


# -- the real augdiff AR model as teacher ------------------------------------------------------------------------


def test_arm_teacher_prefers_its_own_greedy_samples():
    from augdiff.ar import ARModel
    from augdiff.nn import DiT, DiTConfig

    torch.manual_seed(0)
    net = DiT(DiTConfig(vocab_size=9, hidden_size=32, n_layers=1, n_heads=2, causal=True))
    model = ARModel(net, vocab_size=8).eval()
    with torch.no_grad():  # the zero-initialized head predicts uniformly: give the teacher preferences
        for param in model.parameters():
            param.normal_(0.0, 0.5)
    desc = {"spec": "tokens:/x.npy", "vocab_size": 8, "seq_len": 12}
    teacher = RunTeacher(model, desc, name="ar")
    greedy = model.generate(16, 12, top_p=1e-9, generator=torch.Generator().manual_seed(0))
    uniform = torch.randint(0, 8, (16, 12), generator=torch.Generator().manual_seed(1))
    g, r = (generative_perplexity(teacher, x, sample_description=desc) for x in (greedy, uniform))
    assert g.gen_ppl < r.gen_ppl
    assert g.nll == pytest.approx(float(model.nll(greedy).detach().mean()), rel=1e-5)  # pooled = mean at equal lengths
    assert teacher.features(greedy).shape == (16, 32)
