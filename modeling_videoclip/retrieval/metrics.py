"""Recall@K, MdR and MnR of paired embeddings (text ``i`` matches video ``i``), one square block of the similarity
matrix at a time (``O(chunk_size**2 + N)`` memory, not the reference's ``O(N**2)``). Ties: the rank is
``1 + #{j != i : s_ij > s_ii}`` (optimistic; "pessimistic" counts ``>=``); the reference's topk lies between."""

from __future__ import annotations

import warnings
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

DEFAULT_KS: tuple[int, ...] = (1, 5, 10)  # the reference's ``recall_ks`` (examples/mugen/retrieval/model.py)
# Block and mask take 2 * 4096**2 * 4 bytes = 128 MiB in float32; GEMMs of that shape run near the CPU's peak.
_DEFAULT_CHUNK_SIZE = 4096

_TIES = ("optimistic", "pessimistic")
_DIRECTIONS = ("text_to_video", "video_to_text")
_RECALL_IS_FULL = "the true item is always within the top N, so Recall@k is 100% for those k"


def _as_embedding_matrix(x: Any, name: str) -> torch.Tensor:
    if isinstance(x, np.ndarray):
        x = torch.from_numpy(x)
    if not isinstance(x, torch.Tensor):
        raise TypeError(f"{name} must be a torch.Tensor or numpy array of shape (N, dim), got {type(x).__name__}")
    if x.ndim != 2:
        raise ValueError(f"{name} must be 2-D (N, dim), got shape {tuple(x.shape)}")
    if x.shape[0] == 0 or x.shape[1] == 0:
        raise ValueError(f"{name} is empty (shape {tuple(x.shape)}): need at least one embedding of dim >= 1")
    if not x.is_floating_point():
        raise ValueError(f"{name} must be floating point, got {x.dtype}")
    # Half-precision scores would create many spurious ties; the reference evaluates in float32.
    return x.float() if x.dtype in (torch.float16, torch.bfloat16) else x


def _check_pair(text_embeds: Any, video_embeds: Any) -> tuple[torch.Tensor, torch.Tensor]:
    text = _as_embedding_matrix(text_embeds, "text_embeds")
    video = _as_embedding_matrix(video_embeds, "video_embeds")
    if text.shape != video.shape:
        raise ValueError(f"text_embeds and video_embeds must have the same shape (pair i is text i with video i), "
                         f"got {tuple(text.shape)} and {tuple(video.shape)}")
    if text.device != video.device:
        raise ValueError(f"text_embeds is on {text.device} but video_embeds is on {video.device}")
    dtype = torch.promote_types(text.dtype, video.dtype)
    return text.to(dtype), video.to(dtype)


def _check_finite(x: torch.Tensor, name: str, chunk_size: int) -> None:
    # Chunked so that the check itself does not allocate an (N, dim) mask.
    for start in range(0, x.shape[0], chunk_size):
        if not torch.isfinite(x[start : start + chunk_size]).all():
            raise ValueError(f"{name} contains NaN or infinite values (first bad block starts at row {start})")


def _check_ks(ks: Iterable[int], num_candidates: int, then: str) -> tuple[int, ...]:
    """The ks, validated, deduplicated and sorted; the one place that warns when a k exceeds the pool."""
    try:
        ks = tuple(ks)
    except TypeError:
        raise TypeError(f"ks must be an iterable of positive integers, got {ks!r}") from None
    if not ks:
        raise ValueError("ks is empty: give at least one k, e.g. (1, 5, 10)")
    for k in ks:
        if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or k < 1:
            raise ValueError(f"every k must be a positive integer, got {k!r} in ks={ks!r}")
    ks = tuple(sorted({int(k) for k in ks}))
    too_large = [k for k in ks if k > num_candidates]
    if too_large:
        warnings.warn(f"k={too_large} exceeds the number of candidates N={num_candidates}: {then}", stacklevel=3)
    return ks


def _check_chunk_size(chunk_size: int | None) -> int:
    if chunk_size is None:
        return _DEFAULT_CHUNK_SIZE
    if isinstance(chunk_size, bool) or not isinstance(chunk_size, (int, np.integer)) or chunk_size < 1:
        raise ValueError(f"chunk_size must be a positive integer or None, got {chunk_size!r}")
    return int(chunk_size)


def _blocks(n: int, chunk_size: int) -> list[slice]:
    return [slice(start, min(n, start + chunk_size)) for start in range(0, n, chunk_size)]


def _inverse_norms(x: torch.Tensor, chunk_size: int) -> torch.Tensor:
    out = torch.empty(x.shape[0], dtype=x.dtype, device=x.device)
    for span in _blocks(x.shape[0], chunk_size):
        # Same epsilon as F.normalize: a zero vector scores 0 against everything.
        out[span] = 1.0 / torch.linalg.vector_norm(x[span], dim=1).clamp_min(1e-12)
    return out


class _ScoreBlocks:
    """Computes blocks of the similarity matrix ``S = text @ video.T`` (cosine when ``normalize``)."""

    def __init__(self, text: torch.Tensor, video: torch.Tensor, normalize: bool, chunk_size: int) -> None:
        self.text, self.video = text, video
        self.inv_text = _inverse_norms(text, chunk_size) if normalize else None
        self.inv_video = _inverse_norms(video, chunk_size) if normalize else None

    def queries(self, rows: slice) -> torch.Tensor:
        queries = self.text[rows]
        return queries * self.inv_text[rows, None] if self.inv_text is not None else queries

    def block(self, queries: torch.Tensor, cols: slice) -> torch.Tensor:
        scores = queries @ self.video[cols].T
        if self.inv_video is not None:
            scores.mul_(self.inv_video[None, cols])
        return scores


def _iter_rank_blocks(
    text: torch.Tensor, video: torch.Tensor, chunk_size: int, normalize: bool, ties: str
) -> Iterator[tuple[slice, torch.Tensor, torch.Tensor]]:
    """Per block of text rows: ``(rows, t2v_counts, v2t_counts)`` of competitors that beat the true item so far."""
    n = text.shape[0]
    compare = torch.gt if ties == "optimistic" else torch.ge
    scores_of = _ScoreBlocks(text, video, normalize, chunk_size)
    spans = _blocks(n, chunk_size)
    true_scores = torch.empty(n, dtype=text.dtype, device=text.device)
    for span in spans:  # the same call on the same blocks as below: bit-identical, so a duplicate ties exactly
        true_scores[span] = scores_of.block(scores_of.queries(span), span).diagonal()

    v2t_counts = torch.zeros(n, dtype=torch.long, device=text.device)
    side = min(n, chunk_size)
    mask_storage = torch.empty(side * side, dtype=text.dtype, device=text.device)
    for rows in spans:
        t2v_counts = torch.zeros(rows.stop - rows.start, dtype=torch.long, device=text.device)
        queries = scores_of.queries(rows)
        for cols in spans:
            scores = scores_of.block(queries, cols)
            mask = mask_storage[: scores.numel()].view(scores.shape)
            # A float 0/1 mask summed by a matrix-vector product is many times faster than a bool sum (an int64
            # copy 8x the mask's size); the partial sums are integers <= chunk_size, so exact in float32.
            compare(scores, true_scores[rows, None], out=mask)
            t2v_counts += (mask @ mask.new_ones(mask.shape[1])).long()
            compare(scores, true_scores[None, cols], out=mask)
            v2t_counts[cols] += (mask.new_ones(mask.shape[0]) @ mask).long()
            if rows == cols:
                # The true pair is not a competitor of itself: remove its own comparison in both directions.
                own = compare(scores.diagonal(), true_scores[rows]).long()
                t2v_counts -= own
                v2t_counts[rows] -= own
            del scores  # so the next block does not coexist with this one
        yield rows, t2v_counts, v2t_counts


def retrieval_ranks(
    text_embeds: torch.Tensor, video_embeds: torch.Tensor, chunk_size: int | None = None, normalize: bool = True,
    ties: str = "optimistic",
) -> tuple[torch.Tensor, torch.Tensor]:
    """1-based rank of the true item for every query, both directions, without the N x N matrix (ties: see module).

    Args:
        text_embeds / video_embeds: `(N, dim)` tensors or numpy arrays on one device; text ``i`` describes video ``i``.
        chunk_size: block side (results do not depend on it). Defaults to `None`: 4096, 128 MiB + 32 bytes * N.
        normalize: cosine similarity, as the reference CLIP. Defaults to `True`; `False` ranks raw dot products.
        ties: `"optimistic"` (default; equal scores do not outrank the true item) or `"pessimistic"`.

    Returns:
        `(text_to_video_ranks, video_to_text_ranks)`: int64 tensors of shape `(N,)` on the inputs' device.
    """
    text, video = _check_pair(text_embeds, video_embeds)
    if ties not in _TIES:
        raise ValueError(f"ties must be one of {_TIES}, got {ties!r}")
    chunk_size = _check_chunk_size(chunk_size)
    with torch.inference_mode():
        _check_finite(text, "text_embeds", chunk_size)
        _check_finite(video, "video_embeds", chunk_size)
        blocks = list(_iter_rank_blocks(text, video, chunk_size, normalize, ties))
        return torch.cat([t2v_counts for _, t2v_counts, _ in blocks]) + 1, blocks[-1][2] + 1


@dataclass
class DirectionMetrics:
    """Retrieval quality for one query direction.

    Args:
        recall: `{k: Recall@k in percent}`.
        median_rank / mean_rank: MdR / MnR, median (even N: mean of the middle two) / mean 1-based true-item rank.
    """

    recall: dict[int, float]
    median_rank: float
    mean_rank: float


@dataclass
class RetrievalMetrics:
    """Recall@K, MdR and MnR in both directions (what `retrieval_metrics` returns).

    Args:
        text_to_video / video_to_text: text queries retrieving videos (the reference's "text query, video
            retrieval") / video queries retrieving texts.
        num_pairs: N, the number of (text, video) pairs, i.e. the candidates per query.
        ties: the tie convention used for the ranks.
        ks: the cut-offs of `recall`.
    """

    text_to_video: DirectionMetrics
    video_to_text: DirectionMetrics
    num_pairs: int
    ties: str = "optimistic"
    ks: tuple[int, ...] = DEFAULT_KS

    def to_dict(self) -> dict[str, float | int | str]:
        """Flat JSON-friendly dict: ``"text_to_video/R@1"``, ..., ``"video_to_text/MnR"``, ``"num_pairs"``."""
        out: dict[str, float | int | str] = {}
        for name in _DIRECTIONS:
            direction: DirectionMetrics = getattr(self, name)
            out |= {f"{name}/R@{k}": value for k, value in direction.recall.items()}
            out |= {f"{name}/MdR": direction.median_rank, f"{name}/MnR": direction.mean_rank}
        return out | {"num_pairs": self.num_pairs, "ties": self.ties}

    def to_table(self, digits: int = 2) -> str:
        """The figures as a Markdown table, one row per direction (the reference reports Recall in %)."""
        header = ["Direction"] + [f"R@{k}" for k in self.ks] + ["MdR", "MnR"]
        lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
        for name in _DIRECTIONS:
            d: DirectionMetrics = getattr(self, name)
            cells = [name.replace("_to_", " -> ")] + [f"{d.recall[k]:.{digits}f}" for k in self.ks]
            cells += [f"{d.median_rank:g}", f"{d.mean_rank:.{digits}f}"]
            lines.append("| " + " | ".join(cells) + " |")
        return "\n".join(lines)


def metrics_from_ranks(ranks: torch.Tensor, ks: Iterable[int] = DEFAULT_KS) -> DirectionMetrics:
    """Recall@k (percent), MdR and MnR from 1-based ranks of the true items.

    Args:
        ranks: `(N,)` 1-based ranks, as `retrieval_ranks` returns them.
        ks: the cut-offs. Defaults to `(1, 5, 10)`, the ks the reference reports.

    Returns:
        A `DirectionMetrics`; Recall@k is 100 for every k >= N (a warning is issued when k > N).
    """
    if not isinstance(ranks, torch.Tensor) or ranks.ndim != 1 or ranks.numel() == 0:
        raise ValueError("ranks must be a non-empty 1-D tensor of 1-based ranks")
    n = ranks.numel()
    ks = _check_ks(ks, n, _RECALL_IS_FULL)
    median = float(ranks.sort().values[(n - 1) // 2 : n // 2 + 1].double().mean())
    recall = {k: 100.0 * int((ranks <= k).sum()) / n for k in ks}
    return DirectionMetrics(recall=recall, median_rank=median, mean_rank=float(ranks.double().mean()))


def retrieval_metrics(
    text_embeds: torch.Tensor, video_embeds: torch.Tensor, ks: Iterable[int] = DEFAULT_KS,
    chunk_size: int | None = None, normalize: bool = True, ties: str = "optimistic",
) -> RetrievalMetrics:
    """Recall@K (percent), median rank and mean rank, text->video and video->text.

    Args:
        text_embeds / video_embeds: `(N, dim)` embeddings; text ``i`` describes video ``i``.
        ks: the cut-offs (deduplicated, sorted; k > N warns, 100%). Defaults to `(1, 5, 10)`, the reference's.
        chunk_size / normalize / ties: as `retrieval_ranks` (defaults 4096-row blocks, cosine, optimistic).

    Returns:
        A `RetrievalMetrics`; `.to_dict()` for JSON, `.to_table()` for a Markdown table.
    """
    text, video = _check_pair(text_embeds, video_embeds)
    ks = _check_ks(ks, text.shape[0], _RECALL_IS_FULL)
    t2v, v2t = retrieval_ranks(text, video, chunk_size=chunk_size, normalize=normalize, ties=ties)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # k > N already warned about above
        t2v_metrics, v2t_metrics = metrics_from_ranks(t2v, ks), metrics_from_ranks(v2t, ks)
    return RetrievalMetrics(t2v_metrics, v2t_metrics, num_pairs=text.shape[0], ties=ties, ks=ks)


def recall_at_k(
    text_embeds: torch.Tensor, video_embeds: torch.Tensor, ks: Iterable[int] = DEFAULT_KS,
    chunk_size: int | None = None, normalize: bool = True, ties: str = "optimistic",
) -> dict[str, dict[int, float]]:
    """`{"text_to_video": {k: recall}, "video_to_text": {k: recall}}` in percent; arguments as `retrieval_metrics`."""
    metrics = retrieval_metrics(text_embeds, video_embeds, ks, chunk_size, normalize, ties)
    return {name: dict(getattr(metrics, name).recall) for name in _DIRECTIONS}
