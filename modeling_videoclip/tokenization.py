"""Building VideoCLIP's tokenizer (bert-base-uncased WordPiece, as DistilBERT and the reference use)."""

from __future__ import annotations

import os
import re
from collections.abc import Iterable

from transformers import DistilBertTokenizer

from .processing_videoclip import MAX_TEXT_TOKENS

SPECIAL_TOKENS = ("[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]")


def tokenizer_from_vocab(vocab: str | os.PathLike | dict[str, int] | list[str]) -> DistilBertTokenizer:
    """A lower-casing WordPiece tokenizer over `vocab`, truncating at 512 tokens.

    Args:
        vocab: a `vocab.txt` path (one token a line, as bert-base-uncased ships it), a folder holding one, a
            token list or a token -> id dict. It must contain [PAD], [UNK], [CLS] and [SEP].

    Returns:
        A `DistilBertTokenizer` (tokenizers-backed in transformers 5).
    """
    tokens = _read_vocab(vocab)
    missing = [t for t in SPECIAL_TOKENS[:4] if t not in tokens]
    if missing:
        raise ValueError(f"The vocabulary lacks the special token(s) {missing}; use bert-base-uncased's vocab.txt.")
    # transformers 5 reads `vocab=`; `vocab_file=` would be silently ignored and give a dummy vocabulary.
    return DistilBertTokenizer(vocab=tokens, do_lower_case=True, model_max_length=MAX_TEXT_TOKENS)


def _read_vocab(vocab) -> dict[str, int]:
    if isinstance(vocab, dict):
        return dict(vocab)
    if isinstance(vocab, (list, tuple)):
        return {token: index for index, token in enumerate(vocab)}
    path = os.fspath(vocab)
    if os.path.isdir(path):
        path = os.path.join(path, "vocab.txt")
    if not os.path.isfile(path):
        raise FileNotFoundError(f"Vocabulary file not found: {path!r} (expected a WordPiece vocab.txt).")
    with open(path, encoding="utf-8") as handle:
        return {line.rstrip("\n"): index for index, line in enumerate(handle)}


def vocab_from_texts(texts: Iterable[str]) -> list[str]:
    """A small WordPiece vocabulary covering `texts` whole-word (special tokens first, [PAD] = 0, as in
    bert-base-uncased's order of specials), for demos and tests without bert-base-uncased's vocab."""
    words = sorted({w for text in texts for w in re.findall(r"\w+|[^\w\s]", text.lower())})
    return list(SPECIAL_TOKENS) + words


__all__ = ["tokenizer_from_vocab", "vocab_from_texts", "SPECIAL_TOKENS"]
