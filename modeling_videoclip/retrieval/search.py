"""Top-k search, `search(pool, queries, k)`, over an embeddings tensor, a `datasets` column or an `EmbeddingIndex`."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, NamedTuple

import numpy as np
import torch
import torch.nn.functional as F

from .metrics import _as_embedding_matrix, _blocks, _check_chunk_size, _check_ks, _ScoreBlocks


class RetrievalResult(NamedTuple):
    """Top-k `scores` (float32) and `indices` (int64) into the pool, best first: `(num_queries, k)`, or `(k,)`."""

    scores: torch.Tensor
    indices: torch.Tensor


def similarity(text_embeds: torch.Tensor, video_embeds: torch.Tensor, normalize: bool = True) -> torch.Tensor:
    """The full `(num_texts, num_videos)` similarity matrix of a small set (for large pools: `search`).

    Args:
        text_embeds / video_embeds: `(num_texts, dim)` / `(num_videos, dim)`.
        normalize: cosine similarity. Defaults to `True`, as the reference CLIP normalises before ``text @ video.T``.
    """
    text = _as_embedding_matrix(text_embeds, "text_embeds")
    video = _as_embedding_matrix(video_embeds, "video_embeds")
    if text.shape[1] != video.shape[1]:
        raise ValueError(f"embedding dims differ: text {text.shape[1]}, video {video.shape[1]}")
    if normalize:
        text, video = F.normalize(text, dim=-1), F.normalize(video, dim=-1)
    with torch.inference_mode():
        return text @ video.T


@dataclass
class EmbeddingIndex:
    """A searchable embeddings column of a `datasets.Dataset`, as `build_index` returns it; pass it to `search`.

    Args:
        dataset: the dataset holding the column (and, with the FAISS backend, the FAISS index `index_name`).
        column: the embeddings column.
        backend: `"faiss"` or `"exact"`.
        index_name / embeds: the FAISS index's name in `dataset` / the `(N, dim)` matrix of the exact backend.
    """

    dataset: Any
    column: str
    backend: str
    index_name: str | None = None
    embeds: torch.Tensor | None = None


def faiss_available() -> bool:
    """Whether `faiss` (the optional extra ``pip install 'videoclip-hf[faiss]'``) can be imported."""
    try:
        import faiss  # noqa: F401
    except ImportError:
        return False
    return True


def add_embeddings_column(dataset: Any, embeds: torch.Tensor, column: str = "embeddings") -> Any:
    """`dataset` with `embeds` as a new float32 fixed-length-list column, built through Arrow from the buffer.

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
    _check_dataset(dataset)
    if len(dataset) != matrix.shape[0]:
        raise ValueError(f"dataset has {len(dataset)} rows but embeds has {matrix.shape[0]}")
    if column in dataset.column_names:
        raise ValueError(f"dataset already has a column {column!r}")
    dim = matrix.shape[1]
    values = pa.FixedSizeListArray.from_arrays(pa.array(np.ascontiguousarray(matrix).reshape(-1)), dim)
    return dataset.add_column(column, values, feature=datasets.List(datasets.Value("float32"), length=dim))


def _check_dataset(dataset: Any, column: str | None = None) -> None:
    import datasets

    if not isinstance(dataset, datasets.Dataset):
        raise TypeError(f"dataset must be a datasets.Dataset, got {type(dataset).__name__}")
    if column is not None and column not in dataset.column_names:
        raise ValueError(f"dataset has no column {column!r} (columns: {dataset.column_names})")


def build_index(
    dataset: Any, column: str = "embeddings", use_faiss: bool | None = None, index_name: str | None = None
) -> EmbeddingIndex:
    """Make an embeddings column searchable: FAISS when available (`add_faiss_index` with a flat inner-product index,
    i.e. the cosine similarity on normalised vectors: the same top-k), exact blocked search otherwise.

    Args:
        dataset: a `datasets.Dataset` with an embeddings column (see `add_embeddings_column`).
        column: Defaults to `"embeddings"`.
        use_faiss: `True` (require FAISS), `False` (exact search), or `None` (default: FAISS if importable).
        index_name: name of the FAISS index in the dataset. Defaults to `None`: the column name.

    Returns:
        An `EmbeddingIndex`, to pass to `search`.
    """
    _check_dataset(dataset, column)
    if len(dataset) == 0:
        raise ValueError("the dataset is empty: nothing to index")
    if use_faiss is None:
        use_faiss = faiss_available()
    if not use_faiss:
        with dataset.formatted_as(type="numpy", columns=[column]):
            matrix = dataset[:][column]
        embeds = torch.from_numpy(np.ascontiguousarray(matrix, dtype=np.float32))
        return EmbeddingIndex(dataset, column, "exact", embeds=embeds)
    if not faiss_available():
        raise ImportError("use_faiss=True needs faiss: pip install 'videoclip-hf[faiss]' (or faiss-cpu)")
    import faiss

    index_name = index_name or column
    dataset.add_faiss_index(column=column, index_name=index_name, metric_type=faiss.METRIC_INNER_PRODUCT)
    return EmbeddingIndex(dataset, column, "faiss", index_name=index_name)


def search(
    pool: Any, queries: torch.Tensor, k: int = 10, column: str = "embeddings", chunk_size: int | None = None,
    normalize: bool = True,
) -> RetrievalResult:
    """The k items of `pool` closest to each query (e.g. `search(video_embeds, embed_texts(...), 5)` retrieves
    videos for texts), best first. Among exactly equal scores the order is unspecified (as `torch.topk`, FAISS).

    Args:
        pool: an `(N, dim)` tensor or array (exact blocked search, ``O(chunk_size**2 + num_queries * k)`` memory),
            a `datasets.Dataset` with an embeddings `column` (FAISS index named `column` if any), an `EmbeddingIndex`.
        queries: `(Q, dim)` embeddings, or `(dim,)` for one query (results then shaped `(k,)`).
        k: how many to return. Defaults to 10, the largest k the reference reports; clamped to N, with a warning.
        column: the embeddings column of a dataset pool. Defaults to `"embeddings"`.
        chunk_size: block side of the exact search. Defaults to `None`, i.e. 4096 (as `retrieval_ranks`).
        normalize: L2-normalise queries and a tensor pool (a column is scored as stored, as FAISS). Defaults to `True`.

    Returns:
        A `RetrievalResult` of scores and indices into the pool.
    """
    single = isinstance(queries, (torch.Tensor, np.ndarray)) and queries.ndim == 1
    queries = _as_embedding_matrix(queries[None] if single else queries, "query_embeds")
    if not isinstance(pool, (EmbeddingIndex, torch.Tensor, np.ndarray)):
        _check_dataset(pool, column)
        has_index = column in pool.list_indexes()
        pool = EmbeddingIndex(pool, column, "faiss", column) if has_index else build_index(pool, column, False)
    normalize_pool = normalize and not isinstance(pool, EmbeddingIndex)  # a column is scored as stored, as by FAISS
    if isinstance(pool, EmbeddingIndex) and pool.backend == "faiss":
        size = len(pool.dataset)
        (k,) = _check_ks((k,), size, f"the search returns all {size}")
        unit = F.normalize(queries.detach().float().cpu(), dim=-1) if normalize else queries.float().cpu()
        scores, indices = pool.dataset.search_batch(pool.index_name, np.ascontiguousarray(unit.numpy()), min(k, size))
        scores, indices = torch.as_tensor(np.stack(scores)), torch.as_tensor(np.stack(indices)).long()
        return RetrievalResult(scores[0], indices[0]) if single else RetrievalResult(scores, indices)
    if isinstance(pool, EmbeddingIndex):
        pool = pool.embeds
        queries = F.normalize(queries.float(), dim=-1) if normalize else queries
    pool = _as_embedding_matrix(pool, "pool_embeds")
    if queries.shape[1] != pool.shape[1]:
        raise ValueError(f"embedding dims differ: queries {queries.shape[1]}, pool {pool.shape[1]}")
    (k,) = _check_ks((k,), pool.shape[0], f"the search returns all {pool.shape[0]}")
    k = min(k, pool.shape[0])
    chunk_size = _check_chunk_size(chunk_size)
    dtype = torch.promote_types(queries.dtype, pool.dtype)
    queries, pool = queries.to(device=pool.device, dtype=dtype), pool.to(dtype)
    with torch.inference_mode():
        scores_of = _ScoreBlocks(queries, pool, normalize_pool, chunk_size)
        all_scores, all_indices = [], []
        for rows in _blocks(queries.shape[0], chunk_size):
            query_block = scores_of.queries(rows)
            best_scores = best_indices = None
            for cols in _blocks(pool.shape[0], chunk_size):
                top = scores_of.block(query_block, cols).topk(min(k, cols.stop - cols.start), dim=1)
                indices = top.indices + cols.start
                if best_scores is not None:  # merge the running top-k with this block's
                    candidates = torch.cat([best_scores, top.values], dim=1)
                    top = candidates.topk(min(k, candidates.shape[1]), dim=1)
                    indices = torch.cat([best_indices, indices], dim=1).gather(1, top.indices)
                best_scores, best_indices = top.values, indices
            all_scores.append(best_scores)
            all_indices.append(best_indices)
        scores, indices = torch.cat(all_scores), torch.cat(all_indices)
    return RetrievalResult(scores[0].float(), indices[0]) if single else RetrievalResult(scores.float(), indices)
