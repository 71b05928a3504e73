"""Video-text retrieval and its evaluation for VideoCLIP.

* `metrics`: Recall@K, median rank (MdR) and mean rank (MnR) in both directions for paired embeddings
  (`retrieval_metrics`, `recall_at_k`, `retrieval_ranks`, `metrics_from_ranks`), in bounded memory.
* `embedding`: `embed_texts`, `embed_videos`, `embed_dataset`: batched, eval mode, progress bars, optional bf16.
* `search`: `search(pool, queries, k)` over a tensor, a `datasets` embeddings column (`add_embeddings_column`,
  `build_index`; FAISS with ``pip install 'videoclip-hf[faiss]'``, exact search otherwise, same top-k) or an
  `EmbeddingIndex`; `similarity` for the full matrix of a small set.
* `visualize`: similarity heatmaps and contact sheets of retrieval results.

Rank and tie convention: the rank of the true item is ``1 + #{j != i : s_ij > s_ii}`` (*optimistic*: items scoring
exactly the same as the true item do not push it down); ``ties="pessimistic"`` counts ``>=`` instead. The reference
(torchmetrics ``Recall(top_k=k)`` on ``torch.topk``) breaks ties in an unspecified order, so on inputs with exact
ties it lies between the two; without ties all three agree. Similarity is the cosine similarity, as in the
reference CLIP; functions taking embeddings normalise them by default, and the embedding helpers return
L2-normalised embeddings.
"""

from .embedding import embed_dataset, embed_texts, embed_videos
from .metrics import (
    DEFAULT_KS,
    DirectionMetrics,
    RetrievalMetrics,
    metrics_from_ranks,
    recall_at_k,
    retrieval_metrics,
    retrieval_ranks,
)
from .search import (
    EmbeddingIndex,
    RetrievalResult,
    add_embeddings_column,
    build_index,
    faiss_available,
    search,
    similarity,
)

__all__ = [
    "DEFAULT_KS", "DirectionMetrics", "EmbeddingIndex", "RetrievalMetrics", "RetrievalResult",
    "add_embeddings_column", "build_index", "embed_dataset", "embed_texts", "embed_videos", "faiss_available",
    "metrics_from_ranks", "recall_at_k", "retrieval_metrics", "retrieval_ranks", "search", "similarity"
]
