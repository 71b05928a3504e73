"""Video-text retrieval and its evaluation for VideoCLIP.

Three layers:

* **Metrics** (`retrieval_ranks`, `recall_at_k`, `retrieval_metrics`): Recall@K, median rank (MdR) and
  mean rank (MnR) in both directions for paired embeddings (text ``i`` matches video ``i``), as the
  reference (``examples/mugen/retrieval/model.py`` in facebookresearch/multimodal) computes them from the
  full similarity matrix with an identity target. Here the matrix is never materialised: it is computed
  one square block at a time, so the extra memory is ``O(chunk_size**2 + N)`` instead of ``O(N**2)``.
* **Embedding** (`embed_texts`, `embed_videos`, `embed_dataset`, `similarity`, `retrieve_videos`,
  `retrieve_texts`): batched, `torch.inference_mode`, progress bars, optional bf16 autocast.
* **Search at scale** (`add_embeddings_column`, `build_index`, `search`): embeddings stored as a
  `datasets` column, searched with FAISS (`Dataset.add_faiss_index`, inner product) when ``faiss-cpu``
  is installed, exact blocked matrix search otherwise; both give the same top-k.

Rank and tie convention (used everywhere in this module): the rank of the true item is
``1 + #{j != i : s_ij > s_ii}`` (*optimistic*: items scoring exactly the same as the true item do not
push it down). ``ties="pessimistic"`` gives ``1 + #{j != i : s_ij >= s_ii}`` instead. The reference
(torchmetrics ``Recall(top_k=k)`` on ``torch.topk``) breaks ties in an unspecified order, so on inputs
with exact ties it lies between the two; on inputs without ties all three agree.

Similarity is the cosine similarity, as in the reference CLIP (which L2-normalises both embeddings
before ``text @ video.T``). Functions that take embeddings normalise them by default (``normalize=True``);
the embedding helpers already return L2-normalised embeddings.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any, NamedTuple

import numpy as np
import torch
import torch.nn.functional as F

__all__ = [
    "DEFAULT_KS",
    "DirectionMetrics",
    "EmbeddingIndex",
    "RetrievalMetrics",
    "RetrievalResult",
    "add_embeddings_column",
    "build_index",
    "embed_dataset",
    "embed_texts",
    "embed_videos",
    "faiss_available",
    "metrics_from_ranks",
    "recall_at_k",
    "retrieval_metrics",
    "retrieval_ranks",
    "retrieve_texts",
    "retrieve_videos",
    "search",
    "search_embeddings",
    "similarity",
]

DEFAULT_KS: tuple[int, ...] = (1, 5, 10)
"""The ks the reference reports (``recall_ks`` in ``examples/mugen/retrieval/model.py``)."""

_DEFAULT_CHUNK_SIZE = 4096
"""Side of one square block of the similarity matrix when ``chunk_size`` is not given: the block and its
comparison mask take 2 * 4096**2 * 4 bytes = 128 MiB in float32, and GEMMs of that shape run near the
CPU's peak (smaller row counts make BLAS re-pack the whole video matrix for few rows)."""

_TIES = ("optimistic", "pessimistic")
_DIRECTIONS = ("text_to_video", "video_to_text")


# ----------------------------------------------------------------------------------------------------
# Input checking
# ----------------------------------------------------------------------------------------------------


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
    if x.dtype in (torch.float16, torch.bfloat16):
        # Half-precision scores would create many spurious ties; the reference evaluates in float32.
        x = x.float()
    return x


def _check_pair(text_embeds: Any, video_embeds: Any) -> tuple[torch.Tensor, torch.Tensor]:
    """Validate paired embeddings and bring them to a common dtype on a common device."""
    text = _as_embedding_matrix(text_embeds, "text_embeds")
    video = _as_embedding_matrix(video_embeds, "video_embeds")
    if text.shape != video.shape:
        raise ValueError(
            "text_embeds and video_embeds must have the same shape (pair i is text i with video i), "
            f"got {tuple(text.shape)} and {tuple(video.shape)}"
        )
    if text.device != video.device:
        raise ValueError(f"text_embeds is on {text.device} but video_embeds is on {video.device}")
    dtype = torch.promote_types(text.dtype, video.dtype)
    return text.to(dtype), video.to(dtype)


def _check_finite(x: torch.Tensor, name: str, chunk_size: int) -> None:
    # Chunked so that the check itself does not allocate an (N, dim) mask.
    for start in range(0, x.shape[0], chunk_size):
        if not torch.isfinite(x[start : start + chunk_size]).all():
            raise ValueError(f"{name} contains NaN or infinite values (first bad block starts at row {start})")


def _check_ks(ks: Iterable[int], num_candidates: int) -> tuple[int, ...]:
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
        warnings.warn(
            f"k={too_large} exceeds the number of candidates N={num_candidates}: the true item is always "
            f"within the top N, so Recall@k is 100% for those k",
            stacklevel=3,
        )
    return ks


def _check_ties(ties: str) -> str:
    if ties not in _TIES:
        raise ValueError(f"ties must be one of {_TIES}, got {ties!r}")
    return ties


def _check_chunk_size(chunk_size: int | None) -> int:
    if chunk_size is None:
        return _DEFAULT_CHUNK_SIZE
    if isinstance(chunk_size, bool) or not isinstance(chunk_size, (int, np.integer)) or chunk_size < 1:
        raise ValueError(f"chunk_size must be a positive integer or None, got {chunk_size!r}")
    return int(chunk_size)


# ----------------------------------------------------------------------------------------------------
# Ranks, Recall@K, MdR, MnR
# ----------------------------------------------------------------------------------------------------


def _inverse_norms(x: torch.Tensor, chunk_size: int) -> torch.Tensor:
    out = torch.empty(x.shape[0], dtype=x.dtype, device=x.device)
    for start in range(0, x.shape[0], chunk_size):
        block = x[start : start + chunk_size]
        # Same epsilon as F.normalize: a zero vector scores 0 against everything.
        out[start : start + chunk_size] = 1.0 / torch.linalg.vector_norm(block, dim=1).clamp_min(1e-12)
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


def _blocks(n: int, chunk_size: int) -> list[slice]:
    return [slice(start, min(n, start + chunk_size)) for start in range(0, n, chunk_size)]


def _iter_rank_blocks(
    text: torch.Tensor, video: torch.Tensor, chunk_size: int, normalize: bool, ties: str
) -> Iterator[tuple[slice, torch.Tensor, torch.Tensor]]:
    """Yield ``(rows, t2v_counts, v2t_counts)`` after each block of text rows.

    ``t2v_counts`` holds, for the texts ``rows``, how many other videos beat the true one (final once
    yielded); ``v2t_counts`` is the running count, for every video, of the texts seen so far that beat
    its true text (final after the last block). A generator so that the benchmark can time and measure
    the first blocks of a pool too large to finish.

    The matrix is walked in square ``chunk_size`` blocks: large enough on both sides for BLAS to run near
    peak, small enough to bound memory. The true-pair scores come from the diagonal blocks, computed in a
    first pass by the very same call (same shapes, same data) as in the main pass, so they are bit-identical
    to the entries they are compared with: a duplicate of the true item ties with it exactly.
    """
    n = text.shape[0]
    compare = torch.gt if ties == "optimistic" else torch.ge
    scores_of = _ScoreBlocks(text, video, normalize, chunk_size)
    spans = _blocks(n, chunk_size)
    true_scores = torch.empty(n, dtype=text.dtype, device=text.device)
    for span in spans:
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
            # A float 0/1 mask summed by a matrix-vector product is many times faster than summing a bool
            # tensor (which torch first casts to int64, a copy 8x the mask's size); the partial sums are
            # integers <= chunk_size, so exact in float32.
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
    text_embeds: torch.Tensor,
    video_embeds: torch.Tensor,
    chunk_size: int | None = None,
    normalize: bool = True,
    ties: str = "optimistic",
) -> tuple[torch.Tensor, torch.Tensor]:
    """1-based rank of the true item for every query, in both directions, without the N x N matrix.

    Pair ``i`` is ``(text_embeds[i], video_embeds[i])``, as the reference's identity target. For a text
    query ``i`` the rank is ``1 + #{j != i : s_ij > s_ii}`` over videos ``j`` (``>=`` with
    ``ties="pessimistic"``); for a video query ``j`` it is the same over texts ``i`` of column ``j``.

    Args:
        text_embeds: `(N, dim)` text embeddings (tensor or numpy array).
        video_embeds: `(N, dim)` video embeddings, on the same device.
        chunk_size: side of the square blocks in which the similarity matrix is computed. Defaults to
            `None`, i.e. 4096: a block and its mask take 128 MiB (float32), so the extra memory is about
            128 MiB + 32 bytes * N whatever N is. Results do not depend on it.
        normalize: L2-normalise both sides first (cosine similarity). Defaults to `True`, as the
            reference CLIP normalises its outputs before the similarity; pass `False` to rank raw dot
            products (identical for already-normalised inputs, and bit-identical to ``text @ video.T``).
        ties: `"optimistic"` (default; equal scores do not outrank the true item) or `"pessimistic"`.

    Returns:
        `(text_to_video_ranks, video_to_text_ranks)`, two int64 tensors of shape `(N,)` with values in
        `[1, N]`, on the inputs' device.

    Raises:
        ValueError: mismatched shapes, not 2-D, empty, non-float or non-finite inputs, bad `ties`.
    """
    text, video = _check_pair(text_embeds, video_embeds)
    ties = _check_ties(ties)
    chunk_size = _check_chunk_size(chunk_size)
    with torch.inference_mode():
        _check_finite(text, "text_embeds", chunk_size)
        _check_finite(video, "video_embeds", chunk_size)
        t2v = torch.empty(text.shape[0], dtype=torch.long, device=text.device)
        v2t = None
        for rows, t2v_counts, v2t_counts in _iter_rank_blocks(text, video, chunk_size, normalize, ties):
            t2v[rows] = t2v_counts
            v2t = v2t_counts
        return t2v + 1, v2t + 1


@dataclass
class DirectionMetrics:
    """Retrieval quality for one query direction.

    Args:
        recall: `{k: Recall@k in percent}`.
        median_rank: MdR, the median 1-based rank of the true item (mean of the two middle ranks when N
            is even, numpy's convention).
        mean_rank: MnR, the mean 1-based rank of the true item.
    """

    recall: dict[int, float]
    median_rank: float
    mean_rank: float


@dataclass
class RetrievalMetrics:
    """Recall@K, MdR and MnR in both directions (what `retrieval_metrics` returns).

    Args:
        text_to_video: text queries retrieving videos (the reference's "text query, video retrieval").
        video_to_text: video queries retrieving texts.
        num_pairs: N, the number of (text, video) pairs, i.e. the candidates per query.
        ties: the tie convention used for the ranks.
    """

    text_to_video: DirectionMetrics
    video_to_text: DirectionMetrics
    num_pairs: int
    ties: str = "optimistic"
    ks: tuple[int, ...] = field(default=DEFAULT_KS)

    def to_dict(self) -> dict[str, float | int | str]:
        """Flat JSON-friendly dict: ``"text_to_video/R@1"``, ..., ``"video_to_text/MnR"``, ``"num_pairs"``."""
        out: dict[str, float | int | str] = {}
        for name in _DIRECTIONS:
            direction: DirectionMetrics = getattr(self, name)
            for k, value in direction.recall.items():
                out[f"{name}/R@{k}"] = value
            out[f"{name}/MdR"] = direction.median_rank
            out[f"{name}/MnR"] = direction.mean_rank
        out["num_pairs"] = self.num_pairs
        out["ties"] = self.ties
        return out

    def to_table(self, digits: int = 2) -> str:
        """The figures as a Markdown table, one row per direction (the reference reports Recall in %)."""
        header = ["Direction"] + [f"R@{k}" for k in self.ks] + ["MdR", "MnR"]
        lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
        labels = {"text_to_video": "text -> video", "video_to_text": "video -> text"}
        for name in _DIRECTIONS:
            d: DirectionMetrics = getattr(self, name)
            cells = [labels[name]] + [f"{d.recall[k]:.{digits}f}" for k in self.ks]
            cells += [f"{d.median_rank:g}", f"{d.mean_rank:.{digits}f}"]
            lines.append("| " + " | ".join(cells) + " |")
        return "\n".join(lines)


def _median(ranks: torch.Tensor) -> float:
    ordered = ranks.sort().values
    n = ordered.numel()
    middle = ordered[(n - 1) // 2 : n // 2 + 1].double()
    return float(middle.mean())


def metrics_from_ranks(ranks: torch.Tensor, ks: Iterable[int] = DEFAULT_KS) -> DirectionMetrics:
    """Recall@k (percent), MdR and MnR from 1-based ranks of the true items.

    Args:
        ranks: `(N,)` 1-based ranks, as returned by `retrieval_ranks`.
        ks: the cut-offs. Defaults to `(1, 5, 10)`, the ks the reference reports.

    Returns:
        A `DirectionMetrics`; Recall@k is 100 for every k >= N (a warning is issued when k > N).
    """
    if not isinstance(ranks, torch.Tensor) or ranks.ndim != 1 or ranks.numel() == 0:
        raise ValueError("ranks must be a non-empty 1-D tensor of 1-based ranks")
    ks = _check_ks(ks, ranks.numel())
    n = ranks.numel()
    recall = {k: 100.0 * int((ranks <= k).sum()) / n for k in ks}
    return DirectionMetrics(recall=recall, median_rank=_median(ranks), mean_rank=float(ranks.double().mean()))


def retrieval_metrics(
    text_embeds: torch.Tensor,
    video_embeds: torch.Tensor,
    ks: Iterable[int] = DEFAULT_KS,
    chunk_size: int | None = None,
    normalize: bool = True,
    ties: str = "optimistic",
) -> RetrievalMetrics:
    """Recall@K (percent), median rank and mean rank, text->video and video->text.

    Args:
        text_embeds: `(N, dim)` text embeddings; text ``i`` describes video ``i``.
        video_embeds: `(N, dim)` video embeddings.
        ks: the cut-offs. Defaults to `(1, 5, 10)`, the ks the reference reports. Duplicates are dropped
            and the ks sorted; k > N warns and gives 100%.
        chunk_size: side of the square blocks of the similarity matrix (see `retrieval_ranks`).
            Defaults to `None`, i.e. 4096 (128 MiB of blocks).
        normalize: cosine similarity (default `True`, as the reference CLIP) or raw dot product.
        ties: `"optimistic"` (default) or `"pessimistic"`; see the module docstring.

    Returns:
        A `RetrievalMetrics`; `.to_dict()` for JSON, `.to_table()` for a Markdown table.
    """
    text, video = _check_pair(text_embeds, video_embeds)
    ks = _check_ks(ks, text.shape[0])
    t2v, v2t = retrieval_ranks(text, video, chunk_size=chunk_size, normalize=normalize, ties=ties)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # k > N already warned about above
        return RetrievalMetrics(
            text_to_video=metrics_from_ranks(t2v, ks),
            video_to_text=metrics_from_ranks(v2t, ks),
            num_pairs=text.shape[0],
            ties=ties,
            ks=ks,
        )


def recall_at_k(
    text_embeds: torch.Tensor,
    video_embeds: torch.Tensor,
    ks: Iterable[int] = DEFAULT_KS,
    chunk_size: int | None = None,
    normalize: bool = True,
    ties: str = "optimistic",
) -> dict[str, dict[int, float]]:
    """Recall@k in percent, both directions; see `retrieval_metrics` for the arguments.

    Args:
        text_embeds: `(N, dim)` text embeddings; text ``i`` describes video ``i``.
        video_embeds: `(N, dim)` video embeddings.
        ks: Defaults to `(1, 5, 10)`, the ks the reference reports.
        chunk_size: Defaults to `None`, i.e. 4096 (128 MiB of blocks of the similarity matrix).
        normalize: Defaults to `True` (cosine similarity, as the reference CLIP).
        ties: Defaults to `"optimistic"`.

    Returns:
        `{"text_to_video": {k: recall}, "video_to_text": {k: recall}}`.
    """
    metrics = retrieval_metrics(text_embeds, video_embeds, ks, chunk_size, normalize, ties)
    return {name: dict(getattr(metrics, name).recall) for name in _DIRECTIONS}


# ----------------------------------------------------------------------------------------------------
# Similarity and exact top-k search
# ----------------------------------------------------------------------------------------------------


class RetrievalResult(NamedTuple):
    """Top-k of a search: `scores` (float32) and `indices` (int64) into the searched pool, best first,
    shaped `(num_queries, k)`, or `(k,)` for a single query given unbatched."""

    scores: torch.Tensor
    indices: torch.Tensor


def similarity(text_embeds: torch.Tensor, video_embeds: torch.Tensor, normalize: bool = True) -> torch.Tensor:
    """The full `(num_texts, num_videos)` similarity matrix, for small sets (the tutorial's batch of 8).

    Args:
        text_embeds: `(num_texts, dim)`.
        video_embeds: `(num_videos, dim)`.
        normalize: cosine similarity. Defaults to `True`, as the reference CLIP normalises before
            ``text @ video.T``.

    Returns:
        `text @ video.T` (of the normalised embeddings). For large pools use `retrieval_metrics` or `search`,
        which never build the whole matrix.
    """
    text = _as_embedding_matrix(text_embeds, "text_embeds")
    video = _as_embedding_matrix(video_embeds, "video_embeds")
    if text.shape[1] != video.shape[1]:
        raise ValueError(f"embedding dims differ: text {text.shape[1]}, video {video.shape[1]}")
    if normalize:
        text, video = F.normalize(text, dim=-1), F.normalize(video, dim=-1)
    with torch.inference_mode():
        return text @ video.T


def search_embeddings(
    query_embeds: torch.Tensor,
    pool_embeds: torch.Tensor,
    k: int = 10,
    chunk_size: int | None = None,
    normalize: bool = True,
) -> RetrievalResult:
    """Exact top-k by cosine similarity (inner product if `normalize=False`), in bounded memory.

    The score matrix is computed in `chunk_size x chunk_size` blocks and the running top-k merged block by
    block, so memory is ``O(chunk_size**2 + num_queries * k)`` whatever the pool size. Among exactly equal
    scores the order is unspecified (as with `torch.topk` and FAISS).

    Args:
        query_embeds: `(Q, dim)` or `(dim,)` queries.
        pool_embeds: `(N, dim)` candidates.
        k: how many to return. Defaults to 10, the largest k the reference reports. Clamped to N.
        chunk_size: block side. Defaults to `None`, i.e. 4096 (as `retrieval_ranks`).
        normalize: L2-normalise queries and pool (cosine). Defaults to `True`.

    Returns:
        A `RetrievalResult`; shapes `(Q, min(k, N))`, or `(min(k, N),)` for a 1-D query.
    """
    single = isinstance(query_embeds, (torch.Tensor, np.ndarray)) and query_embeds.ndim == 1
    queries = _as_embedding_matrix(query_embeds[None] if single else query_embeds, "query_embeds")
    pool = _as_embedding_matrix(pool_embeds, "pool_embeds")
    if queries.shape[1] != pool.shape[1]:
        raise ValueError(f"embedding dims differ: queries {queries.shape[1]}, pool {pool.shape[1]}")
    k = _check_k(k)
    chunk_size = _check_chunk_size(chunk_size)
    dtype = torch.promote_types(queries.dtype, pool.dtype)
    queries, pool = queries.to(device=pool.device, dtype=dtype), pool.to(dtype)
    k = min(k, pool.shape[0])
    with torch.inference_mode():
        scores_of = _ScoreBlocks(queries, pool, normalize, chunk_size)
        all_scores, all_indices = [], []
        for rows in _blocks(queries.shape[0], chunk_size):
            query_block = scores_of.queries(rows)
            best_scores = best_indices = None
            for cols in _blocks(pool.shape[0], chunk_size):
                block = scores_of.block(query_block, cols)
                top = block.topk(min(k, block.shape[1]), dim=1)
                indices = top.indices + cols.start
                if best_scores is not None:
                    candidates = torch.cat([best_scores, top.values], dim=1)
                    merged = candidates.topk(min(k, candidates.shape[1]), dim=1)
                    indices = torch.cat([best_indices, indices], dim=1).gather(1, merged.indices)
                    top = merged
                best_scores, best_indices = top.values, indices
            all_scores.append(best_scores)
            all_indices.append(best_indices)
        scores, indices = torch.cat(all_scores), torch.cat(all_indices)
    if single:
        scores, indices = scores[0], indices[0]
    return RetrievalResult(scores.float(), indices)


def _check_k(k: int) -> int:
    if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or k < 1:
        raise ValueError(f"k must be a positive integer, got {k!r}")
    return int(k)


# ----------------------------------------------------------------------------------------------------
# Embedding with the model
# ----------------------------------------------------------------------------------------------------

_DEFAULT_TEXT_BATCH_SIZE = 64
"""Texts per forward pass: no reference value (it embeds texts with the videos, 8 at a time); DistilBERT on
short captions is cheap, so a larger batch only saves overhead."""

_DEFAULT_VIDEO_BATCH_SIZE = 8
"""Videos per forward pass: the tutorial's ``MUGENDataModule(batch_size=8)``."""


def _model_device(model: torch.nn.Module) -> torch.device:
    try:
        return next(model.parameters()).device
    except StopIteration:
        return torch.device("cpu")


def _pooled(output: Any) -> torch.Tensor:
    """`pooler_output` of a model output (the contract), or the tensor itself."""
    if isinstance(output, torch.Tensor):
        return output
    pooled = getattr(output, "pooler_output", None)
    if pooled is None:
        raise TypeError(f"expected a model output with `pooler_output` or a tensor, got {type(output).__name__}")
    return pooled


class _EvalMode:
    """Puts the model in eval mode (dropout off) for the block and restores its previous mode."""

    def __init__(self, model: torch.nn.Module) -> None:
        self.model, self.was_training = model, model.training

    def __enter__(self) -> None:
        self.model.eval()

    def __exit__(self, *exc: Any) -> None:
        self.model.train(self.was_training)


def _autocast(device: torch.device, enabled: bool):
    return torch.autocast(device_type=device.type, dtype=torch.bfloat16, enabled=enabled)


def _check_texts(texts: str | Iterable[str]) -> list[str]:
    texts = [texts] if isinstance(texts, str) else list(texts)
    if not texts:
        raise ValueError("no texts to embed")
    for i, text in enumerate(texts):
        if not isinstance(text, str):
            raise TypeError(f"texts must be strings, item {i} is {type(text).__name__}")
    return texts


def _as_video(item: Any, video_key: str, position: int | None = None) -> np.ndarray:
    video = item[video_key] if isinstance(item, dict) or hasattr(item, "keys") else item
    if isinstance(video, torch.Tensor):
        video = video.cpu().numpy()
    video = np.asarray(video)
    if video.ndim != 4 or video.shape[-1] != 3:
        where = "" if position is None else f" (item {position})"
        raise ValueError(
            f"a video must be a (T, H, W, 3) array, or a dict with a {video_key!r} key holding one; got shape "
            f"{video.shape}{where}"
        )
    return video


def _as_text(item: Any, text_key: str) -> str:
    if not (isinstance(item, dict) or hasattr(item, "keys")) or text_key not in item:
        raise ValueError(f"dataset items must be dicts with a {text_key!r} key to embed their texts")
    text = item[text_key]
    if isinstance(text, (list, tuple)):
        # Several captions per clip: the reference's evaluation uses the first one.
        text = text[0] if text else None
    if not isinstance(text, str):
        raise TypeError(f"{text_key!r} must be a string, got {type(text).__name__}")
    return text


class _Collator:
    """Turns a list of dataset items into processor outputs; runs inside DataLoader workers (picklable)."""

    def __init__(self, processor: Any, video_key: str, text_key: str | None) -> None:
        self.processor, self.video_key, self.text_key = processor, video_key, text_key

    def __call__(self, items: list[Any]) -> dict[str, torch.Tensor]:
        videos = [_as_video(item, self.video_key) for item in items]
        if self.text_key is None:
            return dict(self.processor(videos=videos, return_tensors="pt"))
        texts = [_as_text(item, self.text_key) for item in items]
        return dict(self.processor(text=texts, videos=videos, return_tensors="pt"))


class _IterableSource(torch.utils.data.IterableDataset):
    def __init__(self, iterable: Iterable[Any]) -> None:
        self.iterable = iterable

    def __iter__(self) -> Iterator[Any]:
        return iter(self.iterable)


def _loader(
    source: Any, collate: _Collator, batch_size: int, num_workers: int, device: torch.device
) -> tuple[torch.utils.data.DataLoader, int | None]:
    """A DataLoader over a map-style source (anything with `__len__` and `__getitem__`, e.g.
    `datasets.Dataset`, a list, an array), a torch `IterableDataset` (e.g. `datasets.IterableDataset`), or
    any other iterable; plus the number of items when known."""
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
        raise ValueError(f"batch_size must be a positive integer, got {batch_size!r}")
    if isinstance(source, np.ndarray) and source.ndim == 4:
        source = [source]  # one video
    total = None
    if isinstance(source, torch.utils.data.IterableDataset):
        data = source
    elif hasattr(source, "__len__") and hasattr(source, "__getitem__") and not isinstance(source, dict):
        data, total = source, len(source)
    elif isinstance(source, Iterable):
        if num_workers:
            warnings.warn(
                "num_workers is ignored for a plain iterable (each worker would replay it); wrap it in a "
                "torch IterableDataset that shards by worker, or pass a datasets.Dataset",
                stacklevel=3,
            )
        data, num_workers = _IterableSource(source), 0
    else:
        raise TypeError(f"expected a dataset, a sequence or an iterable of videos, got {type(source).__name__}")
    if total == 0:
        raise ValueError("the dataset is empty: nothing to embed")
    loader = torch.utils.data.DataLoader(
        data,
        batch_size=batch_size,
        shuffle=False,
        num_workers=num_workers,
        collate_fn=collate,
        pin_memory=device.type == "cuda",
    )
    return loader, total


def _progress(total: int | None, desc: str, enabled: bool, unit: str):
    from tqdm.auto import tqdm

    return tqdm(total=total, desc=desc, unit=unit, disable=not enabled, dynamic_ncols=True)


def embed_texts(
    model: torch.nn.Module,
    processor: Any,
    texts: str | Iterable[str],
    batch_size: int = _DEFAULT_TEXT_BATCH_SIZE,
    device: str | torch.device | None = None,
    progress: bool = True,
    autocast_bf16: bool = False,
) -> torch.Tensor:
    """L2-normalised text embeddings, `model.get_text_features(...).pooler_output` batch by batch.

    Args:
        model: a VideoCLIP model (anything with `get_text_features(input_ids=, attention_mask=)`).
        processor: its processor (`processor(text=list_of_str, return_tensors="pt")`).
        texts: one string or an iterable of strings.
        batch_size: texts per forward pass. Defaults to 64 (no reference value; text encoding is cheap).
        device: where to run. Defaults to `None`: the model's device.
        progress: show a tqdm progress bar. Defaults to `True`.
        autocast_bf16: run under bf16 autocast. Defaults to `False` (the reference evaluates in float32).

    Returns:
        `(num_texts, projection_dim)` float32 CPU tensor, unit-norm rows.
    """
    texts = _check_texts(texts)
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
        raise ValueError(f"batch_size must be a positive integer, got {batch_size!r}")
    device = torch.device(device) if device is not None else _model_device(model)
    chunks = []
    with _EvalMode(model), torch.inference_mode(), _progress(len(texts), "Embedding texts", progress, "text") as bar:
        for start in range(0, len(texts), batch_size):
            batch = processor(text=texts[start : start + batch_size], return_tensors="pt")
            with _autocast(device, autocast_bf16):
                output = model.get_text_features(
                    input_ids=batch["input_ids"].to(device), attention_mask=batch["attention_mask"].to(device)
                )
            chunks.append(F.normalize(_pooled(output).float(), dim=-1).cpu())
            bar.update(len(chunks[-1]))
    return torch.cat(chunks)


def embed_videos(
    model: torch.nn.Module,
    processor: Any,
    videos_or_dataset: Any,
    batch_size: int = _DEFAULT_VIDEO_BATCH_SIZE,
    num_workers: int = 0,
    device: str | torch.device | None = None,
    autocast_bf16: bool = False,
    progress: bool = True,
    video_column: str = "video",
) -> torch.Tensor:
    """L2-normalised video embeddings, `model.get_video_features(...).pooler_output` batch by batch.

    Decoding/rendering and the processor run in the DataLoader's workers; the model runs in this process.

    Args:
        model: a VideoCLIP model (anything with `get_video_features(pixel_values_videos=)`).
        processor: its processor (`processor(videos=list_of_uint8_arrays, return_tensors="pt")`).
        videos_or_dataset: a `datasets.Dataset` / `IterableDataset`, any sequence or iterable whose items
            are dicts with a `video_column` entry or raw uint8 `(T, H, W, 3)` arrays, or one such array.
        batch_size: videos per forward pass. Defaults to 8, the tutorial's batch size.
        num_workers: DataLoader workers preparing batches. Defaults to 0 (in this process).
        device: where to run the model. Defaults to `None`: the model's device.
        autocast_bf16: run under bf16 autocast. Defaults to `False` (the reference evaluates in float32).
        progress: show a tqdm progress bar. Defaults to `True`.
        video_column: key of the video in dict items. Defaults to `"video"`, the MUGEN loader's column.

    Returns:
        `(num_videos, projection_dim)` float32 CPU tensor, unit-norm rows.
    """
    device = torch.device(device) if device is not None else _model_device(model)
    loader, total = _loader(videos_or_dataset, _Collator(processor, video_column, None), batch_size, num_workers, device)
    chunks = []
    with _EvalMode(model), torch.inference_mode(), _progress(total, "Embedding videos", progress, "video") as bar:
        for batch in loader:
            pixels = batch["pixel_values_videos"].to(device, non_blocking=True)
            with _autocast(device, autocast_bf16):
                output = model.get_video_features(pixel_values_videos=pixels)
            chunks.append(F.normalize(_pooled(output).float(), dim=-1).cpu())
            bar.update(len(chunks[-1]))
    if not chunks:
        raise ValueError("the dataset is empty: nothing to embed")
    return torch.cat(chunks)


def embed_dataset(
    model: torch.nn.Module,
    processor: Any,
    dataset: Any,
    batch_size: int = _DEFAULT_VIDEO_BATCH_SIZE,
    num_workers: int = 0,
    device: str | torch.device | None = None,
    autocast_bf16: bool = False,
    progress: bool = True,
    text_column: str = "text",
    video_column: str = "video",
) -> tuple[torch.Tensor, torch.Tensor]:
    """Text and video embeddings of a paired dataset in one pass (each item is read, rendered, once).

    Args:
        model: a VideoCLIP model (`get_text_features`, `get_video_features`).
        processor: its processor (`processor(text=..., videos=..., return_tensors="pt")`).
        dataset: `datasets.Dataset` / `IterableDataset` or any sequence/iterable of dicts with a text and a
            video entry (e.g. `load_mugen(...)`). A list of captions takes the first (as the reference's eval).
        batch_size: pairs per forward pass. Defaults to 8, the tutorial's batch size.
        num_workers: DataLoader workers rendering and preprocessing. Defaults to 0 (in this process).
        device: where to run the model. Defaults to `None`: the model's device.
        autocast_bf16: run under bf16 autocast. Defaults to `False` (the reference evaluates in float32).
        progress: show a tqdm progress bar. Defaults to `True`.
        text_column: Defaults to `"text"`, the MUGEN loader's column.
        video_column: Defaults to `"video"`, the MUGEN loader's column.

    Returns:
        `(text_embeds, video_embeds)`, each `(N, projection_dim)` float32 on CPU with unit-norm rows; row i
        of both comes from item i, ready for `retrieval_metrics`.
    """
    device = torch.device(device) if device is not None else _model_device(model)
    collate = _Collator(processor, video_column, text_column)
    loader, total = _loader(dataset, collate, batch_size, num_workers, device)
    texts, videos = [], []
    with _EvalMode(model), torch.inference_mode(), _progress(total, "Embedding pairs", progress, "pair") as bar:
        for batch in loader:
            with _autocast(device, autocast_bf16):
                text_out = model.get_text_features(
                    input_ids=batch["input_ids"].to(device), attention_mask=batch["attention_mask"].to(device)
                )
                video_out = model.get_video_features(
                    pixel_values_videos=batch["pixel_values_videos"].to(device, non_blocking=True)
                )
            texts.append(F.normalize(_pooled(text_out).float(), dim=-1).cpu())
            videos.append(F.normalize(_pooled(video_out).float(), dim=-1).cpu())
            bar.update(len(texts[-1]))
    if not texts:
        raise ValueError("the dataset is empty: nothing to embed")
    return torch.cat(texts), torch.cat(videos)


def retrieve_videos(
    model: torch.nn.Module,
    processor: Any,
    query_texts: str | Sequence[str],
    video_embeds: torch.Tensor,
    k: int = 5,
    device: str | torch.device | None = None,
    progress: bool = False,
) -> RetrievalResult:
    """The k videos of a pool closest to each query text (text -> video retrieval).

    Args:
        model: a VideoCLIP model.
        processor: its processor.
        query_texts: one text (results shaped `(k,)`) or a list of texts (results `(Q, k)`).
        video_embeds: `(N, dim)` pool, e.g. from `embed_videos`.
        k: Defaults to 5 (the tutorial's retrievals). Clamped to N.
        device: Defaults to `None`: the model's device.
        progress: Defaults to `False` (queries are few).

    Returns:
        A `RetrievalResult` of cosine scores and indices into `video_embeds`, best first.
    """
    queries = embed_texts(model, processor, query_texts, device=device, progress=progress)
    result = search_embeddings(queries, video_embeds, k)
    return RetrievalResult(result.scores[0], result.indices[0]) if isinstance(query_texts, str) else result


def retrieve_texts(
    model: torch.nn.Module,
    processor: Any,
    query_videos: Any,
    text_embeds: torch.Tensor,
    k: int = 5,
    device: str | torch.device | None = None,
    batch_size: int = _DEFAULT_VIDEO_BATCH_SIZE,
    progress: bool = False,
) -> RetrievalResult:
    """The k texts of a pool closest to each query video (video -> text retrieval).

    Args:
        model: a VideoCLIP model.
        processor: its processor.
        query_videos: one uint8 `(T, H, W, 3)` video (results shaped `(k,)`), or a list / dataset of them
            (results `(Q, k)`), as `embed_videos` accepts.
        text_embeds: `(N, dim)` pool, e.g. from `embed_texts`.
        k: Defaults to 5 (the tutorial's retrievals). Clamped to N.
        device: Defaults to `None`: the model's device.
        batch_size: Defaults to 8, the tutorial's batch size.
        progress: Defaults to `False` (queries are few).

    Returns:
        A `RetrievalResult` of cosine scores and indices into `text_embeds`, best first.
    """
    single = isinstance(query_videos, (np.ndarray, torch.Tensor)) and query_videos.ndim == 4
    queries = embed_videos(
        model, processor, [query_videos] if single else query_videos, batch_size=batch_size, device=device,
        progress=progress,
    )
    result = search_embeddings(queries, text_embeds, k)
    return RetrievalResult(result.scores[0], result.indices[0]) if single else result


# ----------------------------------------------------------------------------------------------------
# Search at scale: datasets column + FAISS (optional) or exact search
# ----------------------------------------------------------------------------------------------------


def faiss_available() -> bool:
    """Whether `faiss` (the optional extra ``pip install 'videoclip-hf[faiss]'``) can be imported."""
    try:
        import faiss  # noqa: F401
    except ImportError:
        return False
    return True


def add_embeddings_column(dataset: Any, embeds: torch.Tensor, column: str = "embeddings") -> Any:
    """Return `dataset` with the embeddings as a new float32 fixed-length-list column.

    Built through Arrow from the array's buffer (no Python lists), so a million 256-d rows take seconds.

    Args:
        dataset: a `datasets.Dataset` with one row per embedding.
        embeds: `(len(dataset), dim)` tensor or array (e.g. from `embed_videos`, already normalised).
        column: Defaults to `"embeddings"` (the name the `datasets` FAISS docs use).

    Returns:
        A new `datasets.Dataset` (the input is not modified).
    """
    import datasets
    import pyarrow as pa

    matrix = _as_embedding_matrix(embeds, "embeds").detach().float().cpu().numpy()
    if not isinstance(dataset, datasets.Dataset):
        raise TypeError(f"dataset must be a datasets.Dataset, got {type(dataset).__name__}")
    if len(dataset) != matrix.shape[0]:
        raise ValueError(f"dataset has {len(dataset)} rows but embeds has {matrix.shape[0]}")
    if column in dataset.column_names:
        raise ValueError(f"dataset already has a column {column!r}")
    dim = matrix.shape[1]
    values = pa.FixedSizeListArray.from_arrays(pa.array(np.ascontiguousarray(matrix).reshape(-1)), dim)
    feature = datasets.List(datasets.Value("float32"), length=dim)
    return dataset.add_column(column, values, feature=feature)


def _column_matrix(dataset: Any, column: str) -> torch.Tensor:
    if column not in dataset.column_names:
        raise ValueError(f"dataset has no column {column!r} (columns: {dataset.column_names})")
    with dataset.formatted_as(type="numpy", columns=[column]):
        matrix = dataset[:][column]
    return torch.from_numpy(np.ascontiguousarray(matrix, dtype=np.float32))


@dataclass
class EmbeddingIndex:
    """A searchable embeddings column, as `build_index` returns it.

    Args:
        dataset: the dataset holding the column; with the FAISS backend it also holds the FAISS index
            (named `index_name`), so `dataset.get_nearest_examples(index_name, ...)` works too.
        column: the embeddings column.
        backend: `"faiss"` or `"exact"`.
        index_name: the FAISS index's name in `dataset` (the column name by default).
        embeds: the `(N, dim)` matrix, for the exact backend.
    """

    dataset: Any
    column: str
    backend: str
    index_name: str | None = None
    embeds: torch.Tensor | None = None

    def search(self, query_embeds: torch.Tensor, k: int = 10) -> RetrievalResult:
        """Top-k by inner product (cosine for normalised columns); queries are L2-normalised first."""
        single = isinstance(query_embeds, (torch.Tensor, np.ndarray)) and query_embeds.ndim == 1
        queries = _as_embedding_matrix(query_embeds[None] if single else query_embeds, "query_embeds")
        k = min(_check_k(k), self.embeds.shape[0] if self.embeds is not None else len(self.dataset))
        if self.backend == "exact":
            # Same scoring as the FAISS inner-product index: normalised queries, stored vectors as they are.
            result = search_embeddings(F.normalize(queries.float(), dim=-1), self.embeds, k, normalize=False)
        else:
            queries = F.normalize(queries.detach().float().cpu(), dim=-1).numpy()
            scores, indices = self.dataset.search_batch(self.index_name, np.ascontiguousarray(queries), k=k)
            result = RetrievalResult(torch.as_tensor(np.stack(scores)), torch.as_tensor(np.stack(indices)).long())
        return RetrievalResult(result.scores[0], result.indices[0]) if single else result


def build_index(
    dataset: Any,
    column: str = "embeddings",
    use_faiss: bool | None = None,
    index_name: str | None = None,
) -> EmbeddingIndex:
    """Make an embeddings column searchable: FAISS when available, exact blocked search otherwise.

    The FAISS backend is `datasets.Dataset.add_faiss_index` with an exact inner-product index
    (`faiss.METRIC_INNER_PRODUCT`, a flat index): on normalised vectors that is the cosine similarity the
    model is trained with, and it returns the same top-k as the exact backend.

    Args:
        dataset: a `datasets.Dataset` with an embeddings column (see `add_embeddings_column`).
        column: Defaults to `"embeddings"`.
        use_faiss: `True` (require FAISS), `False` (exact search), or `None` (default: FAISS if importable).
        index_name: name of the FAISS index in the dataset. Defaults to `None`: the column name.

    Returns:
        An `EmbeddingIndex`; search it with `search(index, queries, k)` or `index.search(queries, k)`.
    """
    import datasets

    if not isinstance(dataset, datasets.Dataset):
        raise TypeError(f"dataset must be a datasets.Dataset, got {type(dataset).__name__}")
    if column not in dataset.column_names:
        raise ValueError(f"dataset has no column {column!r} (columns: {dataset.column_names})")
    if len(dataset) == 0:
        raise ValueError("the dataset is empty: nothing to index")
    if use_faiss is None:
        use_faiss = faiss_available()
    if not use_faiss:
        return EmbeddingIndex(dataset, column, "exact", embeds=_column_matrix(dataset, column))
    if not faiss_available():
        raise ImportError("use_faiss=True needs faiss: pip install 'videoclip-hf[faiss]' (or faiss-cpu)")
    import faiss

    index_name = index_name or column
    dataset.add_faiss_index(column=column, index_name=index_name, metric_type=faiss.METRIC_INNER_PRODUCT)
    return EmbeddingIndex(dataset, column, "faiss", index_name=index_name)


def search(
    dataset_or_index: Any, query_embeds: torch.Tensor, k: int = 10, column: str = "embeddings"
) -> RetrievalResult:
    """Top-k of `query_embeds` in an `EmbeddingIndex`, a `datasets.Dataset` or an embeddings tensor.

    A dataset is searched with its FAISS index on `column` if it has one (`build_index` or
    `add_faiss_index(..., index_name=column)`), exactly over the column otherwise; a tensor/array is an
    exact search over its rows. Scores are inner products with the L2-normalised queries (cosine for the
    normalised embeddings of `embed_texts` / `embed_videos`).

    Args:
        dataset_or_index: what to search.
        query_embeds: `(Q, dim)`, or `(dim,)` for one query (results then `(k,)`).
        k: Defaults to 10, the largest k the reference reports. Clamped to the pool size.
        column: the embeddings column of a dataset. Defaults to `"embeddings"`.

    Returns:
        A `RetrievalResult` (scores, indices), best first.
    """
    if isinstance(dataset_or_index, EmbeddingIndex):
        return dataset_or_index.search(query_embeds, k)
    if isinstance(dataset_or_index, (torch.Tensor, np.ndarray)):
        pool = _as_embedding_matrix(dataset_or_index, "pool")
        return EmbeddingIndex(None, column, "exact", embeds=pool).search(query_embeds, k)
    if column in getattr(dataset_or_index, "list_indexes", lambda: [])():
        return EmbeddingIndex(dataset_or_index, column, "faiss", index_name=column).search(query_embeds, k)
    return build_index(dataset_or_index, column, use_faiss=False).search(query_embeds, k)
