"""Evaluation metrics: likelihood (NLL, bits, perplexity), sliced Wasserstein distance, and the text sample
metrics — generative perplexity under a teacher, token entropy, MAUVE, throughput per sampling budget."""

from augdiff.metrics.entropy import (
    EntropyOutput,
    average_positional_entropy,
    positional_marginals,
    token_entropy,
    unigram_entropy,
)
from augdiff.metrics.gen_ppl import GenPPLOutput, generative_perplexity
from augdiff.metrics.generation import StepEvaluation, Throughput, draw_samples, evaluate_generation, step_flops
from augdiff.metrics.likelihood import (
    NLLEstimate,
    bits_per_character,
    bits_per_token,
    characters_per_token,
    estimate_nll,
    perplexity,
)
from augdiff.metrics.mauve_score import MauveOutput, mauve_between_samples, mauve_score, reference_features
from augdiff.metrics.sample_eval import SampleEvaluation, evaluate_samples
from augdiff.metrics.swd import random_directions, sliced_wasserstein, wasserstein_1d
from augdiff.metrics.teacher import (
    RunTeacher,
    Teacher,
    TeacherInputs,
    TeacherScore,
    load_teacher,
    same_tokenizer,
    teacher_inputs,
)

__all__ = [
    "NLLEstimate",
    "estimate_nll",
    "bits_per_token",
    "bits_per_character",
    "characters_per_token",
    "perplexity",
    "random_directions",
    "sliced_wasserstein",
    "wasserstein_1d",
    "EntropyOutput",
    "positional_marginals",
    "average_positional_entropy",
    "unigram_entropy",
    "token_entropy",
    "Teacher",
    "TeacherScore",
    "TeacherInputs",
    "RunTeacher",
    "load_teacher",
    "same_tokenizer",
    "teacher_inputs",
    "GenPPLOutput",
    "generative_perplexity",
    "MauveOutput",
    "mauve_score",
    "reference_features",
    "mauve_between_samples",
    "SampleEvaluation",
    "evaluate_samples",
    "Throughput",
    "StepEvaluation",
    "draw_samples",
    "step_flops",
    "evaluate_generation",
]
