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
    n = sim.shape[0]
    t2v, v2t = [], []
    for i in range(n):
        row = [sim[i, j] for j in range(n) if j != i]
        col = [sim[j, i] for j in range(n) if j != i]
        if ties == "optimistic":
            t2v.append(1 + sum(s > sim[i, i] for s in row))
            v2t.append(1 + sum(s > sim[i, i] for s in col))
        else:
            t2v.append(1 + sum(s >= sim[i, i] for s in row))
            v2t.append(1 + sum(s >= sim[i, i] for s in col))
    return np.array(t2v), np.array(v2t)


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


@pytest.mark.parametrize("chunk_size", [37, 128, 333, 1000])
def test_chunked_identical_to_full_matrix(chunk_size):
    text, video = make_pairs(1000, dim=32, noise=1.2, seed=2)
    full = reference_style_hits(text, video)
    t2v, v2t = R.retrieval_ranks(text, video, chunk_size=chunk_size, normalize=False)
    for ranks, name in ((t2v, "text_to_video"), (v2t, "video_to_text")):
        for k, hits in full[name].items():
            np.testing.assert_array_equal((ranks <= k).numpy(), hits)
        recall = R.metrics_from_ranks(ranks).recall
        assert recall == {k: 100.0 * int(hits.sum()) / 1000 for k, hits in full[name].items()}
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
