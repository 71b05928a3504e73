"""Tests for modeling_videoclip.retrieval: ranks and Recall@K against an independent brute force, chunked
vs full-matrix identity, ties, input errors, embedding helpers (with a test double model), search."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import torch

from modeling_videoclip import retrieval as R

# ----------------------------------------------------------------------------------------------------
# Independent brute force (plain numpy / Python, float64), written without looking at the module's code
# ----------------------------------------------------------------------------------------------------


def brute_force_ranks(text: np.ndarray, video: np.ndarray, normalize: bool, ties: str = "optimistic"):
    text = np.asarray(text, dtype=np.float64)
    video = np.asarray(video, dtype=np.float64)
    if normalize:
        text = text / np.linalg.norm(text, axis=1, keepdims=True)
        video = video / np.linalg.norm(video, axis=1, keepdims=True)
    sim = text @ video.T
    true = np.diag(sim)
    beats = (lambda a, b: a > b) if ties == "optimistic" else (lambda a, b: a >= b)
    others = ~np.eye(len(sim), dtype=bool)  # the true pair is not its own competitor
    t2v = 1 + (beats(sim, true[:, None]) & others).sum(axis=1)
    v2t = 1 + (beats(sim, true[None, :]) & others).sum(axis=0)
    return t2v, v2t


def brute_force_metrics(ranks: np.ndarray, ks=(1, 5, 10)):
    return (
        {k: 100.0 * float(np.mean(ranks <= k)) for k in ks},
        float(np.median(ranks)),
        float(np.mean(ranks)),
    )


def reference_style_hits(text: torch.Tensor, video: torch.Tensor, ks=(1, 5, 10)):
    """What the reference does: the full N x N similarity matrix, top-k per row, identity target.
    Returns the per-query hit vectors ``{direction: {k: bool array}}``."""
    sim = text @ video.T
    target = torch.arange(sim.shape[0])
    return {
        name: {k: (matrix.topk(k, dim=1).indices == target[:, None]).any(dim=1).numpy() for k in ks}
        for name, matrix in (("text_to_video", sim), ("video_to_text", sim.T))
    }


def make_pairs(n: int, dim: int = 16, noise: float = 1.0, seed: int = 0, normalized: bool = True):
    generator = torch.Generator().manual_seed(seed)
    text = torch.randn(n, dim, generator=generator)
    video = text + noise * torch.randn(n, dim, generator=generator)
    if normalized:
        text, video = torch.nn.functional.normalize(text, dim=1), torch.nn.functional.normalize(video, dim=1)
    return text, video


def integer_pairs_with_ties(n: int = 60, dim: int = 6, seed: int = 0):
    """Small-integer embeddings: every dot product is exact in float32 whatever the summation order, and
    duplicated rows create exact ties in both directions."""
    rng = np.random.default_rng(seed)
    text = rng.integers(-2, 3, size=(n, dim)).astype(np.float32)
    video = rng.integers(-2, 3, size=(n, dim)).astype(np.float32)
    text[7] = text[3]  # duplicate caption: ties for video queries
    text[20:25] = text[19]
    video[11] = video[5]  # duplicate clip: ties for text queries
    video[40] = video[41]
    return torch.from_numpy(text), torch.from_numpy(video)


# ----------------------------------------------------------------------------------------------------
# Ranks and metrics
# ----------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("chunk_size", [1, 7, 16, 50, 64, 1000, None])
@pytest.mark.parametrize("ties", ["optimistic", "pessimistic"])
def test_ranks_match_brute_force_with_ties(chunk_size, ties):
    text, video = integer_pairs_with_ties(n=64)
    expected_t2v, expected_v2t = brute_force_ranks(text.numpy(), video.numpy(), normalize=False, ties=ties)
    t2v, v2t = R.retrieval_ranks(text, video, chunk_size=chunk_size, normalize=False, ties=ties)
    np.testing.assert_array_equal(t2v.numpy(), expected_t2v)
    np.testing.assert_array_equal(v2t.numpy(), expected_v2t)


def test_ties_actually_exercised_and_conventions_differ():
    text, video = integer_pairs_with_ties(n=64)
    opt = R.retrieval_ranks(text, video, chunk_size=16, normalize=False, ties="optimistic")
    pes = R.retrieval_ranks(text, video, chunk_size=16, normalize=False, ties="pessimistic")
    for o, p in zip(opt, pes):
        assert (p >= o).all()
        assert (p > o).any()  # the data has ties in both directions
    # Duplicated caption 3 == 7: for video 3, text 7 scores exactly like the true text.
    assert pes[1][3] >= opt[1][3] + 1


@pytest.mark.parametrize("chunk_size", [3, 32, 37, 100, 250])
def test_normalized_ranks_match_brute_force(chunk_size):
    # Non-normalised inputs, cosine similarity (the default). N=150 is not a multiple of most chunk sizes.
    text, video = make_pairs(150, dim=12, noise=1.5, seed=1, normalized=False)
    text = text * torch.linspace(0.1, 10.0, 150)[:, None]  # very different norms
    expected = brute_force_ranks(text.numpy(), video.numpy(), normalize=True)
    got = R.retrieval_ranks(text, video, chunk_size=chunk_size)
    np.testing.assert_array_equal(got[0].numpy(), expected[0])
    np.testing.assert_array_equal(got[1].numpy(), expected[1])
    # normalize=False ranks raw dot products, which differ from cosine ranks on these inputs.
    raw = brute_force_ranks(text.numpy(), video.numpy(), normalize=False)
    got_raw = R.retrieval_ranks(text, video, chunk_size=chunk_size, normalize=False)
    np.testing.assert_array_equal(got_raw[1].numpy(), raw[1])
    assert not np.array_equal(raw[1], expected[1])


@pytest.mark.parametrize("chunk_size", [37, 128, 600])
def test_chunked_identical_to_full_matrix(chunk_size):
    text, video = make_pairs(600, dim=32, noise=1.2, seed=2)
    full = reference_style_hits(text, video)
    t2v, v2t = R.retrieval_ranks(text, video, chunk_size=chunk_size, normalize=False)
    for ranks, name in ((t2v, "text_to_video"), (v2t, "video_to_text")):
        for k, hits in full[name].items():
            np.testing.assert_array_equal((ranks <= k).numpy(), hits)
        recall = R.metrics_from_ranks(ranks).recall
        assert recall == {k: 100.0 * int(hits.sum()) / 600 for k, hits in full[name].items()}
    # And identical whatever the chunk size, with the default cosine too.
    assert R.recall_at_k(text, video, chunk_size=chunk_size) == R.recall_at_k(text, video, chunk_size=97)


def test_metrics_match_brute_force_both_directions():
    text, video = make_pairs(101, dim=8, noise=1.0, seed=3)
    metrics = R.retrieval_metrics(text, video, chunk_size=20)
    expected_ranks = brute_force_ranks(text.numpy(), video.numpy(), normalize=True)
    for name, ranks in zip(("text_to_video", "video_to_text"), expected_ranks):
        recall, median, mean = brute_force_metrics(ranks)
        got = getattr(metrics, name)
        assert got.recall == pytest.approx(recall, abs=1e-12)
        assert got.median_rank == median
        assert got.mean_rank == pytest.approx(mean, rel=1e-12)
    assert metrics.num_pairs == 101 and metrics.ties == "optimistic"
    flat = metrics.to_dict()
    assert flat["text_to_video/R@1"] == metrics.text_to_video.recall[1]
    assert flat["video_to_text/MnR"] == metrics.video_to_text.mean_rank
    table = metrics.to_table()
    assert "R@10" in table and "video -> text" in table and "MdR" in table


def test_median_even_n_averages_middle_ranks():
    assert R.metrics_from_ranks(torch.tensor([1, 4, 2, 3]), ks=(1,)).median_rank == 2.5
    assert R.metrics_from_ranks(torch.tensor([3, 1, 3]), ks=(1,)).median_rank == 3.0


def test_perfect_and_single_pair():
    eye = torch.eye(5)
    metrics = R.retrieval_metrics(eye, eye, ks=(1,))
    assert metrics.text_to_video.recall == {1: 100.0} and metrics.video_to_text.median_rank == 1.0
    with pytest.warns(UserWarning, match="exceeds the number of candidates"):
        single = R.retrieval_metrics(torch.ones(1, 4), torch.ones(1, 4))
    assert single.text_to_video.recall == {1: 100.0, 5: 100.0, 10: 100.0}


def test_k_larger_than_n_warns_and_is_100_percent():
    text, video = make_pairs(8, seed=4)
    with pytest.warns(UserWarning, match=r"k=\[10\] exceeds the number of candidates N=8"):
        recall = R.recall_at_k(text, video, ks=(1, 5, 10))
    assert recall["text_to_video"][10] == 100.0 and recall["video_to_text"][10] == 100.0


def test_ks_sorted_and_deduplicated():
    text, video = make_pairs(30, seed=5)
    assert list(R.recall_at_k(text, video, ks=(5, 1, 5))["text_to_video"]) == [1, 5]


def test_numpy_and_half_inputs():
    text, video = make_pairs(40, seed=6)
    expected = R.recall_at_k(text, video)
    assert R.recall_at_k(text.numpy(), video.numpy()) == expected
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        R.recall_at_k(text.half(), video.bfloat16())  # upcast, no error


@pytest.mark.parametrize(
    "text, video, message",
    [
        (torch.zeros(4, 8), torch.zeros(5, 8), "same shape"),
        (torch.zeros(4, 8), torch.zeros(4, 9), "same shape"),
        (torch.zeros(4), torch.zeros(4), "2-D"),
        (torch.zeros(2, 3, 4), torch.zeros(2, 3, 4), "2-D"),
        (torch.zeros(0, 8), torch.zeros(0, 8), "empty"),
        (torch.zeros(4, 8, dtype=torch.long), torch.zeros(4, 8, dtype=torch.long), "floating point"),
        (torch.full((3, 2), float("nan")), torch.zeros(3, 2), "NaN or infinite"),
    ],
)
def test_bad_inputs_raise_value_error(text, video, message):
    with pytest.raises(ValueError, match=message):
        R.retrieval_metrics(text, video, ks=(1,))


def test_bad_arguments_raise_value_error():
    text, video = make_pairs(10)
    with pytest.raises(ValueError, match="positive integer"):
        R.recall_at_k(text, video, ks=(0, 1))
    with pytest.raises(ValueError, match="ks is empty"):
        R.recall_at_k(text, video, ks=())
    with pytest.raises(ValueError, match="chunk_size"):
        R.recall_at_k(text, video, chunk_size=0)
    with pytest.raises(ValueError, match="ties must be one of"):
        R.recall_at_k(text, video, ties="random")
    with pytest.raises(TypeError, match="torch.Tensor or numpy array"):
        R.recall_at_k([[1.0]], [[1.0]])


# ----------------------------------------------------------------------------------------------------
# Embedding helpers, with a TEST DOUBLE of the model/processor contract (not the real VideoCLIP)
# ----------------------------------------------------------------------------------------------------


class FakeOutput:
    def __init__(self, pooled: torch.Tensor) -> None:
        self.pooler_output = pooled


class FakeProcessor:
    """Test double of VideoCLIPProcessor's contract: `input_ids`/`attention_mask` for texts (padded to the
    longest, pad id 0) and `pixel_values_videos` (B, T, C, H, W) float32 for uint8 (T, H, W, 3) videos."""

    def __call__(self, text=None, videos=None, return_tensors="pt"):
        assert return_tensors == "pt"
        out = {}
        if text is not None:
            texts = [text] if isinstance(text, str) else list(text)
            ids = [[1 + (ord(c) % 50) for c in t] or [1] for t in texts]
            width = max(map(len, ids))
            out["input_ids"] = torch.tensor([row + [0] * (width - len(row)) for row in ids])
            out["attention_mask"] = (out["input_ids"] != 0).long()
        if videos is not None:
            videos = [videos] if isinstance(videos, np.ndarray) and videos.ndim == 4 else videos
            out["pixel_values_videos"] = torch.stack(
                [torch.from_numpy(np.asarray(v)).permute(0, 3, 1, 2).float() / 255 for v in videos]
            )
        return out


class FakeVideoCLIP(torch.nn.Module):
    """Test double of VideoCLIPModel's contract: `get_text_features` / `get_video_features` return objects
    whose `pooler_output` is an un-normalised (B, 4) embedding. Has dropout, to check eval mode is used."""

    def __init__(self) -> None:
        super().__init__()
        generator = torch.Generator().manual_seed(0)
        self.token_embedding = torch.nn.Parameter(torch.randn(51, 4, generator=generator))
        self.video_projection = torch.nn.Parameter(torch.randn(3, 4, generator=generator))
        self.dropout = torch.nn.Dropout(0.5)

    def get_text_features(self, input_ids, attention_mask):
        mask = attention_mask[..., None].float()
        pooled = (self.token_embedding[input_ids] * mask).sum(1) / mask.sum(1)
        return FakeOutput(3.0 * self.dropout(pooled))

    def get_video_features(self, pixel_values_videos):
        assert pixel_values_videos.ndim == 5 and pixel_values_videos.shape[2] == 3
        return FakeOutput(5.0 * self.dropout(pixel_values_videos.mean(dim=(1, 3, 4)) @ self.video_projection))


def fake_video(seed: int, frames: int = 4, size: int = 6) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, size=(frames, size, size, 3), dtype=np.uint8)


def expected_video_embeds(model, videos):
    pixels = FakeProcessor()(videos=videos)["pixel_values_videos"]
    with torch.no_grad():
        model.eval()
        return torch.nn.functional.normalize(model.get_video_features(pixels).pooler_output, dim=-1)


@pytest.fixture
def model():
    return FakeVideoCLIP().train()  # train mode on purpose: the helpers must switch dropout off


def test_embed_texts_normalised_batched_and_mode_restored(model):
    texts = ["Mugen jumps onto a ledge.", "Mugen walks right", "a", "coins", "Mugen kills a slime"]
    embeds = R.embed_texts(model, FakeProcessor(), texts, batch_size=2, progress=False)
    assert embeds.shape == (5, 4) and embeds.dtype == torch.float32 and embeds.device.type == "cpu"
    torch.testing.assert_close(embeds.norm(dim=1), torch.ones(5))
    one_by_one = torch.cat([R.embed_texts(model, FakeProcessor(), t, progress=False) for t in texts])
    torch.testing.assert_close(embeds, one_by_one)
    assert model.training  # restored
    with pytest.raises(ValueError, match="no texts"):
        R.embed_texts(model, FakeProcessor(), [], progress=False)
    with pytest.raises(TypeError, match="must be strings"):
        R.embed_texts(model, FakeProcessor(), ["ok", 3], progress=False)


def test_embed_videos_from_arrays_iterables_and_one_video(model):
    videos = [fake_video(i) for i in range(7)]
    expected = expected_video_embeds(model, videos)
    model.train()
    torch.testing.assert_close(R.embed_videos(model, FakeProcessor(), videos, batch_size=3, progress=False), expected)
    from_generator = R.embed_videos(model, FakeProcessor(), (v for v in videos), batch_size=4, progress=False)
    torch.testing.assert_close(from_generator, expected)
    dicts = [{"video": torch.from_numpy(v), "text": "x"} for v in videos]
    torch.testing.assert_close(R.embed_videos(model, FakeProcessor(), dicts, progress=False), expected)
    torch.testing.assert_close(R.embed_videos(model, FakeProcessor(), videos[2], progress=False), expected[2:3])
    bf16 = R.embed_videos(model, FakeProcessor(), videos, autocast_bf16=True, progress=False)
    torch.testing.assert_close(bf16, expected, atol=2e-2, rtol=0)
    assert model.training


def test_embed_videos_bad_items(model):
    with pytest.raises(ValueError, match=r"\(T, H, W, 3\) array"):
        R.embed_videos(model, FakeProcessor(), [np.zeros((4, 6, 6), np.uint8)], progress=False)
    with pytest.raises(ValueError, match="empty"):
        R.embed_videos(model, FakeProcessor(), [], progress=False)


def make_hf_pairs(n: int):
    """A datasets.Dataset whose videos are produced on access by a transform (as the MUGEN loader does)."""
    import datasets

    def render(batch):
        return {
            "video": [fake_video(int(i)) for i in batch["index"]],
            "text": [f"clip number {int(i)}" for i in batch["index"]],
        }

    dataset = datasets.Dataset.from_dict({"index": list(range(n))})
    dataset.set_transform(render)
    return dataset


def test_embed_dataset_with_workers_matches_separate_embedding(model):
    dataset = make_hf_pairs(10)
    text_embeds, video_embeds = R.embed_dataset(
        model, FakeProcessor(), dataset, batch_size=4, num_workers=2, progress=False
    )
    torch.testing.assert_close(video_embeds, expected_video_embeds(model, [fake_video(i) for i in range(10)]))
    model.train()
    texts = [f"clip number {i}" for i in range(10)]
    torch.testing.assert_close(text_embeds, R.embed_texts(model, FakeProcessor(), texts, progress=False))
    torch.testing.assert_close(
        R.embed_videos(model, FakeProcessor(), dataset, num_workers=2, progress=False), video_embeds
    )
    # Several captions per clip: the first one is used, as in the reference's evaluation.
    items = [{"video": fake_video(i), "text": [texts[i], "other caption"]} for i in range(3)]
    first = R.embed_dataset(model, FakeProcessor(), items, progress=False)[0]
    torch.testing.assert_close(first, text_embeds[:3])
    with pytest.raises(ValueError, match="'text' key"):
        R.embed_dataset(model, FakeProcessor(), [fake_video(0)], progress=False)


def test_similarity_and_retrieval_helpers(model):
    texts = [f"clip number {i}" for i in range(6)]
    videos = [fake_video(i) for i in range(6)]
    text_embeds = R.embed_texts(model, FakeProcessor(), texts, progress=False)
    video_embeds = R.embed_videos(model, FakeProcessor(), videos, progress=False)
    sim = R.similarity(text_embeds, video_embeds)
    assert sim.shape == (6, 6)
    torch.testing.assert_close(sim, text_embeds @ video_embeds.T)

    # Text -> video: the query's embedding searched in the video pool (one unbatched query: results (k,)).
    query = R.embed_texts(model, FakeProcessor(), texts[4], progress=False)[0]
    one = R.search(video_embeds, query, k=3)
    assert one.indices.shape == (3,) and one.scores.shape == (3,)
    torch.testing.assert_close(one.scores, sim[4].topk(3).values)
    assert one.indices.tolist() == sim[4].topk(3).indices.tolist()
    with pytest.warns(UserWarning, match=r"k=\[10\] exceeds the number of candidates N=6"):
        many = R.search(video_embeds, R.embed_texts(model, FakeProcessor(), texts[:2], progress=False), k=10)
    assert many.indices.shape == (2, 6)  # k clamped to 6
    assert sorted(many.indices[0].tolist()) == list(range(6))

    # Video -> text: the same entry point over the text pool.
    back = R.search(text_embeds, R.embed_videos(model, FakeProcessor(), videos[1], progress=False)[0], k=2)
    assert back.indices.tolist() == sim[:, 1].topk(2).indices.tolist()
    video_queries = R.embed_videos(model, FakeProcessor(), videos[:3], progress=False)
    assert R.search(text_embeds, video_queries, k=2).indices.shape == (3, 2)
    with pytest.raises(ValueError, match="k must be a positive integer"):
        R.search(video_embeds, query, k=0)


# ----------------------------------------------------------------------------------------------------
# Search at scale: datasets column, FAISS vs exact
# ----------------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def pool():
    import datasets

    embeds, _ = make_pairs(3000, dim=32, seed=7)
    queries = torch.randn(25, 32, generator=torch.Generator().manual_seed(8))
    dataset = R.add_embeddings_column(datasets.Dataset.from_dict({"id": list(range(3000))}), embeds)
    return dataset, embeds, queries


def brute_force_topk(queries: torch.Tensor, embeds: torch.Tensor, k: int):
    scores = np.asarray(torch.nn.functional.normalize(queries, dim=1), np.float64) @ np.asarray(embeds, np.float64).T
    order = np.argsort(-scores, axis=1, kind="stable")[:, :k]
    return order, np.take_along_axis(scores, order, axis=1)


def test_add_embeddings_column(pool):
    dataset, embeds, _ = pool
    assert dataset.features["embeddings"].length == 32
    np.testing.assert_array_equal(np.asarray(dataset[5]["embeddings"], np.float32), embeds[5].numpy())
    with pytest.raises(ValueError, match="already has a column"):
        R.add_embeddings_column(dataset, embeds)
    with pytest.raises(ValueError, match="3000 rows but embeds has 10"):
        R.add_embeddings_column(dataset.remove_columns("embeddings"), embeds[:10])


def test_exact_search_matches_brute_force(pool):
    dataset, embeds, queries = pool
    index = R.build_index(dataset, use_faiss=False)
    assert index.backend == "exact"
    result = R.search(index, queries, k=10)
    order, scores = brute_force_topk(queries, embeds, 10)
    np.testing.assert_array_equal(result.indices.numpy(), order)
    np.testing.assert_allclose(result.scores.numpy(), scores, atol=1e-6)
    blocked = R.search(embeds, queries, k=10, chunk_size=128)
    np.testing.assert_array_equal(blocked.indices.numpy(), order)
    # k larger than a block: the merged top-k has the right scores (compared by value, as float32 vs
    # float64 rounding may swap near-equal neighbours deep in the list).
    _, scores_300 = brute_force_topk(queries, embeds, 300)
    wide = R.search(embeds, queries, k=300, chunk_size=128)
    np.testing.assert_allclose(wide.scores.numpy(), scores_300, atol=1e-6)
    np.testing.assert_array_equal(wide.indices[:, :10].numpy(), order)
    assert R.search(index, queries[0], k=4).indices.tolist() == order[0, :4].tolist()
    # A dataset without a FAISS index is searched exactly over its column.
    np.testing.assert_array_equal(R.search(dataset, queries, k=10).indices.numpy(), order)
    with pytest.warns(UserWarning, match="exceeds the number of candidates N=3000"):
        assert R.search(embeds, queries, k=5000).indices.shape == (25, 3000)  # k clamped to the pool


def test_faiss_and_exact_give_the_same_top_k(pool):
    if not R.faiss_available():
        pytest.skip("faiss-cpu is not installed (optional extra: pip install 'videoclip-hf[faiss]')")
    dataset, embeds, queries = pool
    dataset = dataset.select(range(len(dataset)))  # a copy, so the module fixture carries no FAISS index
    exact = R.search(R.build_index(dataset, use_faiss=False), queries, k=10)
    faiss_index = R.build_index(dataset)
    assert faiss_index.backend == "faiss" and "embeddings" in dataset.list_indexes()
    with_faiss = R.search(faiss_index, queries, k=10)
    np.testing.assert_array_equal(with_faiss.indices.numpy(), exact.indices.numpy())
    np.testing.assert_allclose(with_faiss.scores.numpy(), exact.scores.numpy(), atol=1e-6)
    # A dataset carrying the FAISS index is searched with it; `get_nearest_examples` works as in datasets.
    np.testing.assert_array_equal(R.search(dataset, queries, k=10).indices.numpy(), exact.indices.numpy())
    scores, examples = dataset.get_nearest_examples(
        "embeddings", torch.nn.functional.normalize(queries[0], dim=0).numpy(), k=3
    )
    assert examples["id"] == exact.indices[0, :3].tolist()
