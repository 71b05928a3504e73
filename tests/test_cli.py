"""Tests for the `videoclip` command (modeling_videoclip.cli), the demo and the pictures.

Fast by design: a tiny model (DistilBERT 2x32; S3D cannot shrink, so every clip costs one full S3D forward)
saved to a temporary folder, a synthetic MUGEN sample of 12 clips (3 usable test clips), and at most a few
video forwards per test. Commands run in-process through `main([...])`; one test runs the installed
`videoclip` entry point in a subprocess.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import av
import numpy as np
import pytest
import torch
from PIL import Image
from tiny_videoclip import tiny_model, tiny_processor

from modeling_videoclip import cli
from modeling_videoclip.cli import demo, evaluate
from modeling_videoclip.common.constants import MUGEN_CHECKPOINT_URL, cache_root
from modeling_videoclip.common.errors import ExitCode, VideoCLIPError
from modeling_videoclip.data import ensure_mugen_sample
from modeling_videoclip.mugen import make_mugen_sample, render_clip_to_mp4
from modeling_videoclip.retrieval import retrieval_metrics
from modeling_videoclip.retrieval.visualize import SheetEntry, SheetSection, contact_sheet, similarity_heatmap

COMMANDS = ("demo", "evaluate", "retrieve", "mugen-sample", "mugen-push", "train")


# ----------------------------------------------------------------------------------------------------
# Fixtures
# ----------------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def tiny_dir(tmp_path_factory) -> str:
    folder = tmp_path_factory.mktemp("tiny-videoclip")
    tiny_model().save_pretrained(folder)
    tiny_processor().save_pretrained(folder)
    return str(folder)


@pytest.fixture(scope="module")
def sample_dir(tmp_path_factory) -> str:
    folder = tmp_path_factory.mktemp("mugen-sample")
    make_mugen_sample(folder, num_clips=12, seed=0, with_audio=False)  # test split: 3 clips with manual captions
    return str(folder)


@pytest.fixture(autouse=True)
def _private_cache(tmp_path, monkeypatch):
    # Never generate into the user's ~/.cache from the tests.
    monkeypatch.setenv("VIDEOCLIP_CACHE", str(tmp_path / "cache"))


@pytest.fixture(scope="module")
def evaluation(tiny_dir, sample_dir, tmp_path_factory) -> dict:
    """One `videoclip evaluate` run (3 clips) whose outputs several tests read."""
    out = tmp_path_factory.mktemp("evaluate")
    paths = {name: out / name for name in ("metrics.json", "embeddings.npz", "README.md")}
    code = cli.main([
        "evaluate", "--model", tiny_dir, "--data", sample_dir, "--split", "test", "--limit", "3",
        "--batch-size", "3", "--device", "cpu", "--json", str(paths["metrics.json"]),
        "--save-embeddings", str(paths["embeddings.npz"]), "--model-card", str(paths["README.md"]),
    ])
    return {"code": code, **paths}


def decode_mp4(path) -> tuple[int, int, int]:
    """(frame count, width, height) of an mp4, decoded back with PyAV."""
    with av.open(str(path)) as container:
        frames = [frame for frame in container.decode(video=0)]
    return len(frames), frames[0].width, frames[0].height


def assert_one_line_error(capsys, code: int, expected_code: int, fragment: str = "") -> str:
    captured = capsys.readouterr()
    assert code == expected_code, captured
    progress = ("clip/s", "it/s", "%|")  # tqdm bars
    lines = [line for line in captured.err.splitlines() if line.strip() and not any(p in line for p in progress)]
    assert len(lines) == 1, captured.err
    assert lines[0].startswith("videoclip"), lines
    assert "error:" in lines[0]
    assert "Traceback" not in captured.err + captured.out
    assert fragment in lines[0], lines[0]
    return lines[0]


# ----------------------------------------------------------------------------------------------------
# demo
# ----------------------------------------------------------------------------------------------------


def test_demo_with_a_model(tiny_dir, sample_dir, tmp_path, capsys):
    out = tmp_path / "demo"
    code = cli.main(
        ["demo", "--model", tiny_dir, "--data", sample_dir, "--batch-size", "2", "--out", str(out), "--device", "cpu"]
    )
    stdout = capsys.readouterr().out
    assert code == 0
    assert "Similarity matrix (cosine" in stdout and "RANDOM" not in stdout
    assert "Text for video 0:" in stdout
    assert "text 1 stands in for the tutorial's text 6" in stdout  # a batch of 2 has no text 6
    result = json.loads((out / "demo.json").read_text())
    assert np.asarray(result["similarity"]).shape == (2, 2)
    assert (result["video_query"], result["text_query"]) == (0, 1)
    assert sorted(result["texts_for_video"]) == [0, 1] and sorted(result["videos_for_text"]) == [0, 1]
    for name in ("query_video_0.mp4", "retrieved_video_for_text_1.mp4"):
        assert decode_mp4(out / name) == (32, 256, 256)  # MUGEN clips: 32 frames at 256x256
    for name in ("contact_sheet.png", "similarity_heatmap.png"):
        with Image.open(out / name) as image:
            image.load()
            assert image.format == "PNG" and image.width >= 400 and image.height >= 200
    assert "RANDOM" not in (out / "README.txt").read_text()


def test_demo_falls_back_to_labelled_random_weights(sample_dir, tmp_path, monkeypatch, capsys):
    def offline(*args, **kwargs):
        raise VideoCLIPError("no network connection (test)", ExitCode.NETWORK)

    monkeypatch.setattr(demo, "mugen_weights", offline)
    out = tmp_path / "demo"
    code = cli.main(["demo", "--data", sample_dir, "--batch-size", "1", "--out", str(out), "--device", "cpu"])
    stdout = capsys.readouterr().out
    assert code == 0
    fallback = [line for line in stdout.splitlines() if "MUGEN weights unavailable" in line]
    assert len(fallback) == 1 and "RANDOM weights" in fallback[0] and "no network connection (test)" in fallback[0]
    assert "RANDOM WEIGHTS" in stdout.split("Similarity matrix", 1)[1]  # the matrix and retrievals are labelled
    assert "[RANDOM WEIGHTS]" in next(line for line in stdout.splitlines() if line.startswith("Text for video 0"))
    assert (out / "README.txt").read_text().startswith("!!! RANDOM WEIGHTS")
    assert json.loads((out / "demo.json").read_text())["random_weights"] is True
    # mp4 files carry the label in their names; batch of 1: video 0 and text 0
    assert sorted(p.name for p in out.glob("*.mp4")) == [
        "RANDOM-WEIGHTS_query_video_0.mp4", "RANDOM-WEIGHTS_retrieved_video_for_text_0.mp4",
    ]
    assert decode_mp4(out / "RANDOM-WEIGHTS_retrieved_video_for_text_0.mp4") == (32, 256, 256)


def test_demo_uses_the_converted_mugen_weights_when_cached(tmp_path, monkeypatch):
    """The MUGEN-weights path offline: a reference-layout checkpoint stands in for the cached download and
    bert-base-uncased's vocab (from a test dependency) for the cached tokenizer."""
    from tiny_videoclip import bert_vocab_path

    from modeling_videoclip import VideoCLIPConfig, VideoCLIPModel
    from modeling_videoclip.common import downloads
    from modeling_videoclip.convert_torchmultimodal import KEY_PREFIXES

    torch.manual_seed(0)
    original = VideoCLIPModel(VideoCLIPConfig()).state_dict()

    def reference_key(key: str) -> str:
        return next(ref + key[len(ours):] for ref, ours in KEY_PREFIXES if key.startswith(ours))

    checkpoint = tmp_path / "videoclip_mugen.pt"
    torch.save({reference_key(k): v for k, v in original.items() if k != "logit_scale"}, checkpoint)
    fetched = []

    def cached(url, **kwargs):
        fetched.append(url)
        return downloads.CheckpointFile(path=checkpoint, sha256="0" * 64, source=url, url=url)

    monkeypatch.setattr(downloads, "fetch_checkpoint", cached)
    monkeypatch.setattr("modeling_videoclip.common.models.DISTILBERT_ID", bert_vocab_path())  # the default tokenizer
    loaded = demo.load_demo_weights(None, ["unused"], "cpu", "auto", log=lambda message: None)
    assert fetched == [MUGEN_CHECKPOINT_URL] and not loaded.random_weights
    assert loaded.description.startswith("MUGEN weights (converted from https://")
    state = loaded.model.state_dict()
    for key in ("video_projection.linear1.weight", "text_model.embeddings.word_embeddings.weight"):
        assert torch.equal(state[key], original[key])
    ids = loaded.processor(text=["Mugen jumps onto a ledge."])["input_ids"][0].tolist()
    assert ids == [101, 14757, 2368, 14523, 3031, 1037, 18283, 1012, 102]  # the reference's tokenisation


def test_query_indices_follow_the_tutorial_and_clamp():
    assert demo.query_indices(8) == (0, 6)
    assert demo.query_indices(7) == (0, 6)
    assert demo.query_indices(3) == (0, 2)
    assert demo.query_indices(1) == (0, 0)


def test_default_data_is_generated_once_into_the_cache(tmp_path, monkeypatch):
    calls = []
    real = make_mugen_sample

    def counting(*args, **kwargs):
        calls.append(kwargs)
        return real(args[0], num_clips=3, seed=0, with_audio=False)  # small: the test checks the caching only

    monkeypatch.setattr("modeling_videoclip.mugen.make_mugen_sample", counting)
    first = ensure_mugen_sample(tmp_path / "cache", log=lambda message: None)
    second = ensure_mugen_sample(tmp_path / "cache", log=lambda message: None)
    assert first == second == tmp_path / "cache" / "mugen-sample"
    assert len(calls) == 1 and (first / "coinrun_dataset_jsons" / "release" / "test.json").is_file()
    assert not [p for p in (tmp_path / "cache").iterdir() if p.name.startswith(".mugen-sample-")]  # no staging left


def test_cache_root_honours_the_environment(tmp_path, monkeypatch):
    monkeypatch.setenv("VIDEOCLIP_CACHE", str(tmp_path / "a"))
    assert cache_root() == tmp_path / "a"
    monkeypatch.delenv("VIDEOCLIP_CACHE")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert cache_root() == tmp_path / "xdg" / "videoclip"


# ----------------------------------------------------------------------------------------------------
# evaluate
# ----------------------------------------------------------------------------------------------------


def test_evaluate_json_equals_retrieval_metrics_on_the_same_embeddings(evaluation, capsys):
    assert evaluation["code"] == 0
    record = json.loads(evaluation["metrics.json"].read_text())
    with np.load(evaluation["embeddings.npz"]) as stored:
        text, video = torch.from_numpy(stored["text_embeds"]), torch.from_numpy(stored["video_embeds"])
        assert len(stored["ids"]) == len(stored["texts"]) == 3
    with pytest.warns(UserWarning):  # k = 5, 10 > N = 3
        expected = retrieval_metrics(text, video).to_dict()
    assert record["metrics"] == expected
    assert record["metrics"]["num_pairs"] == 3 and record["split"] == "test" and record["limit"] == 3
    assert record["reference"]["text_to_video/R@1"] == 8.26


def test_evaluate_prints_the_reference_table():
    metrics = {
        "text_to_video/R@1": 1.0, "text_to_video/R@5": 2.0, "text_to_video/R@10": 3.0, "text_to_video/MdR": 4.0,
        "text_to_video/MnR": 5.0, "video_to_text/R@1": 6.0, "video_to_text/R@5": 7.0, "video_to_text/R@10": 8.0,
        "video_to_text/MdR": 9.0, "video_to_text/MnR": 10.0, "num_pairs": 3, "ties": "optimistic",
    }
    table = evaluate.format_results_table(metrics, "test").splitlines()
    row = next(line for line in table if line.startswith("test/Recall@1 (text query, video retrieval)"))
    assert row.split()[-2:] == ["1.00", "8.26"]
    row = next(line for line in table if line.startswith("test/Recall@10 (video query, text retrieval)"))
    assert row.split()[-2:] == ["8.00", "34.60"]
    row = next(line for line in table if line.startswith("test/MnR (video query, text retrieval)"))
    assert row.split()[-2:] == ["10.00", "-"]


def test_evaluate_writes_the_model_card_model_index(evaluation):
    from huggingface_hub import ModelCard

    card = ModelCard.load(evaluation["README.md"])
    results = card.data.eval_results
    assert len(results) == 10  # R@1/5/10, MdR, MnR in both directions
    record = json.loads(evaluation["metrics.json"].read_text())["metrics"]
    by_name = {r.metric_name: r for r in results}
    assert by_name["Recall@1 (text to video)"].metric_value == round(record["text_to_video/R@1"], 2)
    assert by_name["MnR (video to text)"].metric_value == round(record["video_to_text/MnR"], 2)
    assert {r.task_type for r in results} == {"video-classification"}  # a Hub task id
    # The protocol and the subset, not the published figures' group (random-start, the full test set).
    assert {r.dataset_config for r in results} == {"synthetic-sample-fixed-start-first-3"}
    assert "model-index" in evaluation["README.md"].read_text()


def test_model_card_update_replaces_only_the_same_group(tmp_path):
    card = tmp_path / "README.md"
    metrics = {
        "text_to_video/R@1": 10.0, "text_to_video/MdR": 3.0, "video_to_text/R@1": 20.0, "video_to_text/MnR": 4.5
    }
    evaluate.write_model_card(card, metrics, "m", "MUGEN")
    evaluate.write_model_card(card, metrics, "m", "MUGEN synthetic sample", dataset_config="synthetic-sample")
    _, replaced = evaluate.write_model_card(card, {**metrics, "text_to_video/R@1": 11.0}, "m", "MUGEN")
    from huggingface_hub import ModelCard

    results = ModelCard.load(card).data.eval_results
    assert replaced == 4 and len(results) == 8
    values = {(r.dataset_config, r.metric_name): r.metric_value for r in results}
    assert values[(None, "Recall@1 (text to video)")] == 11.0
    assert values[("synthetic-sample", "Recall@1 (text to video)")] == 10.0


# ----------------------------------------------------------------------------------------------------
# retrieve
# ----------------------------------------------------------------------------------------------------


def test_retrieve_videos_for_a_text(tiny_dir, sample_dir, evaluation, tmp_path, capsys):
    out, results_json = tmp_path / "retrieved", tmp_path / "results.json"
    code = cli.main([
        "retrieve", "--model", tiny_dir, "--data", sample_dir, "--embeddings", str(evaluation["embeddings.npz"]),
        "--query", "Mugen climbs a ladder", "-k", "5", "--out", str(out), "--json", str(results_json),
        "--device", "cpu",
    ])
    stdout = capsys.readouterr().out
    assert code == 0 and "Top 3 videos of 3" in stdout  # k clamped to the pool
    results = json.loads(results_json.read_text())["results"]
    assert [r["rank"] for r in results] == [1, 2, 3]
    assert [r["score"] for r in results] == sorted((r["score"] for r in results), reverse=True)
    with np.load(evaluation["embeddings.npz"]) as stored:
        assert sorted(r["id"] for r in results) == sorted(stored["ids"].tolist())
    for r in results:
        assert decode_mp4(out / f"rank{r['rank']}_{r['id']}.mp4") == (32, 256, 256)
    with Image.open(out / "contact_sheet.png") as image:
        assert image.width > 400


def test_retrieve_texts_for_a_video_file(tiny_dir, sample_dir, evaluation, tmp_path, capsys):
    frames = np.random.default_rng(0).integers(0, 256, (16, 224, 224, 3), dtype=np.uint8)
    video = render_clip_to_mp4(frames, tmp_path / "q.mp4")
    results_json = tmp_path / "results.json"
    code = cli.main([
        "retrieve", "--model", tiny_dir, "--embeddings", str(evaluation["embeddings.npz"]), "--video", str(video),
        "-k", "2", "--json", str(results_json), "--device", "cpu",
    ])
    stdout = capsys.readouterr().out
    assert code == 0 and "Top 2 texts of 3" in stdout
    results = json.loads(results_json.read_text())["results"]
    with np.load(evaluation["embeddings.npz"]) as stored:
        texts = stored["texts"].tolist()
    assert [r["text"] for r in results] == [texts[r["index"]] for r in results]


# ----------------------------------------------------------------------------------------------------
# mugen-sample, help, errors
# ----------------------------------------------------------------------------------------------------


def test_mugen_sample_writes_a_sample(tmp_path, capsys):
    code = cli.main(["mugen-sample", str(tmp_path / "sample"), "--num-clips", "4", "--seed", "1"])
    stdout = capsys.readouterr().out
    assert code == 0 and "4 clips" in stdout
    release = tmp_path / "sample" / "coinrun_dataset_jsons" / "release"
    assert all((release / f"{split}.json").is_file() for split in ("train", "val", "test"))
    assert (tmp_path / "sample" / "assets").is_dir()


def test_mugen_commands_exit_2_on_bad_arguments(capsys):
    assert cli.main(["mugen-sample"]) == 2
    assert cli.main(["mugen-sample", "out", "--num-clips", "zero"]) == 2
    assert cli.main(["mugen-push", "me/repo"]) == 2
    assert "Traceback" not in capsys.readouterr().err


@pytest.mark.parametrize("command", COMMANDS)
def test_every_command_has_help(command, capsys):
    assert cli.main([command, "--help"]) == 0
    assert f"usage: videoclip {command}" in capsys.readouterr().out


def test_top_level_help_lists_the_commands(capsys):
    assert cli.main(["--help"]) == 0
    stdout = capsys.readouterr().out
    assert all(command in stdout for command in COMMANDS)


def _bad_arguments(tiny_dir: str, tmp: Path) -> list[tuple[list[str], int, str]]:
    empty = tmp / "empty-model"
    empty.mkdir(exist_ok=True)
    not_a_video = tmp / "not-a-video.mp4"
    not_a_video.write_text("hello")
    bad_npz = tmp / "bad.npz"
    bad_npz.write_text("not numpy")
    return [
        ([], 2, "COMMAND"),
        (["frob"], 2, "invalid choice"),
        (["demo", "--batch-size", "0"], 2, "--batch-size"),
        (["demo", "--batch-size", "eight"], 2, "--batch-size"),
        (["demo", "--data", str(tmp / "missing")], 2, "is not a folder"),
        (["demo", "--model", str(tmp / "missing")], 2, "does not exist"),
        (["demo", "--model", tiny_dir, "--weights", "random"], 2, "--weights"),
        (["demo", "--device", "tpu9"], 2, "device"),
        (["evaluate"], 2, "--model"),
        (["evaluate", "--model", tiny_dir, "--split", "dev"], 2, "--split"),
        (["evaluate", "--model", tiny_dir, "--limit", "-1"], 2, "--limit"),
        (["evaluate", "--model", str(empty)], 1, "cannot load a VideoCLIP model"),
        (["evaluate", "--model", tiny_dir, "--json", str(tmp)], 2, "is a folder"),
        (["retrieve", "--model", tiny_dir], 2, "--query"),
        (["retrieve", "--model", tiny_dir, "--query", "a", "--video", "b.mp4"], 2, "not allowed"),
        (["retrieve", "--model", tiny_dir, "--query", "  "], 2, "empty"),
        (["retrieve", "--model", tiny_dir, "--video", str(tmp / "missing.mp4")], 2, "does not exist"),
        (["retrieve", "--model", tiny_dir, "--video", str(not_a_video)], 1, "decode"),
        (["retrieve", "--model", tiny_dir, "--query", "a", "--embeddings", str(bad_npz)], 1, "--embeddings"),
        (["retrieve", "--model", tiny_dir, "--query", "a", "-k", "0"], 2, "--top-k"),
    ]


def test_bad_arguments_exit_non_zero_with_one_line_and_no_traceback(tiny_dir, sample_dir, tmp_path, capsys):
    cases = _bad_arguments(tiny_dir, tmp_path)
    # conftest sets HF_HUB_OFFLINE: the MUGEN tokenizer is neither cached nor downloadable
    cases.append((["demo", "--data", sample_dir, "--weights", "mugen"], 1, "cannot get the MUGEN weights"))
    for argv, expected_code, fragment in cases:
        code = cli.main(argv)
        assert_one_line_error(capsys, code, expected_code, fragment)


def test_unwritable_outputs_fail_with_one_line(tiny_dir, sample_dir, evaluation, tmp_path, capsys):
    blocker = tmp_path / "a-file"  # a path under a regular file cannot be written, even by root
    blocker.write_text("in the way")
    pool = ["--model", tiny_dir, "--data", sample_dir, "--device", "cpu"]
    evaluate_pool = ["evaluate", *pool, "--limit", "2", "--batch-size", "2"]
    tiny_text = json.dumps({"text_config": {"dim": 32, "n_layers": 1, "n_heads": 2, "hidden_dim": 64}})
    retrieve_pool = ["retrieve", *pool, "--embeddings", str(evaluation["embeddings.npz"]), "--query", "Mugen jumps"]
    cases = [
        (["mugen-sample", str(blocker / "sample"), "--num-clips", "2"], blocker / "sample"),
        ([*retrieve_pool, "--json", str(blocker / "hits.json")], blocker / "hits.json"),
        ([*retrieve_pool, "--out", str(blocker / "hits")], blocker / "hits"),
        ([*evaluate_pool, "--json", str(blocker / "m.json")], blocker / "m.json"),
        ([*evaluate_pool, "--save-embeddings", str(blocker / "e.npz")], blocker / "e.npz"),
        ([*evaluate_pool, "--model-card", str(blocker / "README.md")], blocker / "README.md"),
        (["demo", *pool, "--batch-size", "1", "--out", str(blocker / "demo")], blocker / "demo"),
        (["train", "--data", sample_dir, "--init", "random", "--tokenizer", "from-data", "--model-config", tiny_text,
          "--output-dir", str(blocker / "run")], blocker / "run"),
    ]
    for argv, path in cases:
        line = assert_one_line_error(capsys, cli.main(argv), 1, f"cannot write {path}: ")
        assert line.startswith("videoclip: error: cannot write"), line


def test_debug_shows_the_traceback(tmp_path, monkeypatch, capsys):
    assert cli.main(["--debug", "demo", "--data", str(tmp_path / "missing")]) == 2
    assert "Traceback" in capsys.readouterr().err
    assert cli.main(["demo", "--data", str(tmp_path / "missing"), "--debug"]) == 2
    assert "Traceback" in capsys.readouterr().err
    monkeypatch.setenv("VIDEOCLIP_DEBUG", "1")
    assert cli.main(["demo", "--data", str(tmp_path / "missing")]) == 2
    assert "Traceback" in capsys.readouterr().err


def test_errors_other_than_videoclip_errors_keep_their_traceback(monkeypatch):
    def bug(**kwargs):
        raise ValueError("a bug, not a user error")

    monkeypatch.setattr(demo, "run_demo", bug)
    with pytest.raises(ValueError, match="a bug"):
        cli.main(["demo"])


@pytest.mark.parametrize("how", ["script", "python -m"])
def test_installed_entry_point_runs(how, tmp_path):
    script = Path(sys.executable).with_name("videoclip")
    command = [str(script)] if how == "script" and script.is_file() else [sys.executable, "-m", "modeling_videoclip"]
    run = subprocess.run(
        [*command, "mugen-sample", str(tmp_path / "sample"), "--num-clips", "3"],
        capture_output=True, text=True, timeout=300, env={**os.environ, "VIDEOCLIP_CACHE": str(tmp_path / "cache")},
    )
    assert run.returncode == 0, run.stderr
    assert "3 clips" in run.stdout
    assert (tmp_path / "sample" / "coinrun_dataset_jsons" / "release" / "test.json").is_file()


# ----------------------------------------------------------------------------------------------------
# Pictures
# ----------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("size", [1, 8, 40])
def test_heatmap_sizes(size):
    scores = np.random.default_rng(0).uniform(-1, 1, (size, size))
    image = similarity_heatmap(scores, random_weights=True)
    assert image.mode == "RGB" and image.width >= 420 and image.height > 200


def test_heatmap_rejects_bad_input():
    with pytest.raises(ValueError):
        similarity_heatmap(np.zeros((0, 3)))


def test_random_weights_label_changes_the_picture():
    frames = np.zeros((4, 32, 32, 3), dtype=np.uint8)
    query = SheetEntry("query: text 0", text="Mugen jumps.")
    sections = [SheetSection("Video for text 0", query, [SheetEntry("#1", frames=frames, is_match=True)])]
    plain, random = contact_sheet(sections), contact_sheet(sections, random_weights=True)
    assert random.height > plain.height  # the RANDOM WEIGHTS line
    assert np.asarray(random).reshape(-1, 3).tolist().count([200, 20, 20]) > 20  # drawn in red


def test_clip_names_label_random_runs():
    names = demo.clip_names(0, 6, random_weights=True)
    assert names == {"query_video": "RANDOM-WEIGHTS_query_video_0.mp4",
                     "retrieved_video": "RANDOM-WEIGHTS_retrieved_video_for_text_6.mp4"}
    assert demo.clip_names(0, 6, random_weights=False)["query_video"] == "query_video_0.mp4"


# evaluate --protocol reference (issue 14)
# ----------------------------------------------------------------------------------------------------


def test_reference_protocol_draws_random_starts_per_seed(sample_dir):
    """load_split's start_seed is eval.yaml's fixed_start_idx: False: a random start per clip, one draw per seed,
    reproducible; the default is frame 0."""
    from modeling_videoclip.data import load_split

    def starts(**options) -> list[int]:
        return list(load_split(sample_dir, "test", **options).with_format(None)["start"])

    fixed = starts()
    draws = [starts(start_seed=seed) for seed in (0, 1, 2)]
    assert fixed == [0] * len(fixed) and len(fixed) == 3
    assert draws[0] == starts(start_seed=0) and len({tuple(draw) for draw in draws}) == 3


def test_evaluate_reference_protocol_reports_mean_and_std_over_seeds(tiny_dir, sample_dir, tmp_path, capsys):
    paths = {"json": tmp_path / "metrics.json", "card": tmp_path / "README.md"}
    code = cli.main([
        "evaluate", "--model", tiny_dir, "--data", sample_dir, "--limit", "2", "--batch-size", "2", "--device", "cpu",
        "--protocol", "reference", "--seeds", "2", "--json", str(paths["json"]), "--model-card", str(paths["card"]),
    ])
    assert code == 0
    out = capsys.readouterr().out
    assert "Protocol: reference, torchmultimodal's configs/eval.yaml" in out and "seeds 0, 1" in out
    header = next(line for line in out.splitlines() if line.startswith("Test metric"))
    assert header.split()[2:4] == ["Mean", "Std"]
    record = json.loads(paths["json"].read_text())
    assert record["protocol"]["name"] == "reference" and record["seeds"] == [0, 1] and len(record["per_seed"]) == 2
    for key in ("text_to_video/R@1", "video_to_text/MnR"):
        values = [run[key] for run in record["per_seed"]]
        assert record["metrics"][key] == pytest.approx(np.mean(values))
        assert record["std"][key] == pytest.approx(np.std(values, ddof=1))
    assert record["reference"]["checkpoint"].endswith("videoclip_lightning_mugen.pt")

    from huggingface_hub import ModelCard

    results = ModelCard.load(paths["card"]).data.eval_results
    assert {r.dataset_config for r in results} == {"synthetic-sample-random-start-first-2"}
    by_name = {r.metric_name: r for r in results}
    std = round(record["std"]["text_to_video/R@1"], 2)
    assert by_name["Recall@1 (text to video)"].metric_args == {"k": 1, "std": std, "seeds": 2}
    assert by_name["Recall@1 (text to video)"].metric_value == round(record["metrics"]["text_to_video/R@1"], 2)


def test_evaluate_protocol_errors(tiny_dir, sample_dir, tmp_path, capsys):
    assert cli.main(["evaluate", "--model", tiny_dir, "--data", sample_dir, "--seeds", "3"]) == ExitCode.USAGE
    assert "--seeds applies to --protocol reference" in capsys.readouterr().err
    import datasets

    other = tmp_path / "other"
    videos = np.zeros((2, 16, 224, 224, 3), np.uint8)
    datasets.Dataset.from_dict({"text": ["a", "b"], "video": list(videos)}).save_to_disk(str(other))
    reference = ["evaluate", "--model", tiny_dir, "--data", str(other), "--protocol", "reference"]
    assert cli.main(reference) == ExitCode.USAGE
    assert "is not MUGEN data" in capsys.readouterr().err
