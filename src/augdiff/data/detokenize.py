"""Undoing the word tokenization of the zero-shot corpora before BPE, with the rules MDLM's data loader applies.

WikiText, the Penn Treebank and lm1b were released tokenized ("it 's fine , he said ."; WikiText also escapes
in-number punctuation as ``@-@``). Perplexities in MDLM's, CADD's and LADD's zero-shot tables are measured on
the detokenized text under the GPT-2 tokenizer, so the same text must reach the model here. Each function is a
list of rewrites applied in order; the order matters where one rule prepares another.
"""

from __future__ import annotations

import re
from collections.abc import Callable

__all__ = [
    "DETOKENIZERS",
    "wikitext_detokenize",
    "ptb_detokenize",
    "lm1b_detokenize",
    "lambada_detokenize",
    "scientific_papers_detokenize",
]

# (pattern, replacement, is_regex)
_WIKITEXT: tuple[tuple[str, str, bool], ...] = (
    ("s '", "s'", False),  # plural possessive
    (r"/' [0-9]/", r"/'[0-9]/", True),
    (" @-@ ", "-", False),  # escaped hyphen, comma and point inside numbers and words
    (" @,@ ", ",", False),
    (" @.@ ", ".", False),
    (" : ", ": ", False),  # no space before punctuation
    (" ; ", "; ", False),
    (" . ", ". ", False),
    (" ! ", "! ", False),
    (" ? ", "? ", False),
    (" , ", ", ", False),
    (r"\(\s*([^\)]*?)\s*\)", r"(\1)", True),  # no space inside brackets and quotes
    (r"\[\s*([^\]]*?)\s*\]", r"[\1]", True),
    (r"{\s*([^}]*?)\s*}", r"{\1}", True),
    (r"\"\s*([^\"]*?)\s*\"", r'"\1"', True),
    (r"'\s*([^']*?)\s*'", r"'\1'", True),
    ("= = = =", "====", False),  # section headings
    ("= = =", "===", False),
    ("= =", "==", False),
    (" \N{DEGREE SIGN} ", "\N{DEGREE SIGN}", False),
    (" \n", "\n", False),
    ("\n ", "\n", False),
    (" N ", " 1 ", False),  # the number placeholder
    (" 's", "'s", False),
)

_PTB_BEFORE: tuple[tuple[str, str, bool], ...] = (
    (" 's", "'s", False),
    ("s ' ", "s' ", False),
    (" n't", "n't", False),
    (" \n ", "\n", False),
    ("\\/", "/", False),
)
_PTB_AFTER: tuple[tuple[str, str, bool], ...] = (
    ("$ 1", "$1", False),
    ("# 1", "#1", False),
    ("<unk>", "?", False),
)

_LM1B: tuple[tuple[str, str, bool], ...] = (
    ("http : / / ", "http://", False),
    ("https : / / ", "https://", False),
    (r" '(\w+)", r"'\1", True),
    (r" (\w+) \. ", r" \1. ", True),
    (r" (\w+) \.$", r" \1.", True),
    (" ? ", "? ", False),
    (r" \?$", "?", True),
    (" ! ", "! ", False),
    (r" \!$", "!", True),
    (" , ", ", ", False),
    (" : ", ": ", False),
    (" ; ", "; ", False),
    (" / ", "/", False),
    (r"\" ([^\"]+) \"", r'"\1"', True),
    (r"' ([^']+) '", r"'\1'", True),
    (r"\( ([^\(\)]+) \)", r"(\1)", True),
    (r"\[ ([^\[\]]+) \]", r"[\1]", True),
    ("$ ", "$", False),
    ("\N{POUND SIGN} ", "\N{POUND SIGN}", False),
)


def _apply(rules: tuple[tuple[str, str, bool], ...], text: str) -> str:
    for pattern, replacement, is_regex in rules:
        text = re.sub(pattern, replacement, text) if is_regex else text.replace(pattern, replacement)
    return text


def wikitext_detokenize(text: str) -> str:
    """WikiText-2/103 (raw): ``@-@`` escapes, spaces around punctuation, brackets and quotes, headings."""
    return _apply(_WIKITEXT, text)


def ptb_detokenize(text: str) -> str:
    """Penn Treebank: contractions, ``\\/``, the ``N`` number placeholder, ``<unk>`` → ``?``."""
    text = _apply(_PTB_BEFORE, text)
    for _ in range(10):  # overlapping placeholders ("N N N") need several passes
        text = text.replace(" N ", " 1 ")
    return _apply(_PTB_AFTER, text)


def lm1b_detokenize(text: str) -> str:
    """One Billion Words: URLs, contractions, spaces around punctuation, quotes and brackets, currency."""
    return _apply(_LM1B, text)


def lambada_detokenize(text: str) -> str:
    """LAMBADA (OpenAI's test file): curly quotes → straight ones, a leading newline (MDLM's convention)."""
    return (
        "\n"
        + text.replace("\N{LEFT DOUBLE QUOTATION MARK}", '"').replace("\N{RIGHT DOUBLE QUOTATION MARK}", '"').strip()
    )


def scientific_papers_detokenize(text: str) -> str:
    """PubMed / arXiv articles: the WikiText rules, then lm1b's."""
    return lm1b_detokenize(wikitext_detokenize(text))


DETOKENIZERS: dict[str, Callable[[str], str]] = {
    "wikitext": wikitext_detokenize,
    "ptb": ptb_detokenize,
    "lm1b": lm1b_detokenize,
    "lambada": lambada_detokenize,
    "scientific_papers": scientific_papers_detokenize,
}
