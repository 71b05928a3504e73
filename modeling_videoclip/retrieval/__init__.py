"""Video-text retrieval for VideoCLIP: `metrics` (Recall@K, MdR, MnR in bounded memory), `embedding` (batched
L2-normalised embeddings), `search` (top-k over a tensor, a `datasets` column or a FAISS index), `moments`
(`search_moments`: moments inside long videos) and `visualize` (heatmaps, contact sheets). Similarity is the cosine
similarity, as in the reference CLIP."""

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
from .moments import search_moments
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
    "metrics_from_ranks", "recall_at_k", "retrieval_metrics", "retrieval_ranks", "search", "search_moments",
    "similarity",
]
