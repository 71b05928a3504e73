"""Hostile and careless input: a table of cases (input -> expected typed error, or the right result), each of which
failed on main before issue 16 (crash, silent wrong result, overwrite, write outside the folder, unclear error)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.torch import load_file, save_file
from tiny_videoclip import CAPTIONS, tiny_model, tiny_processor

from modeling_videoclip import VideoCLIPModel, VideoCLIPVideoProcessor, cli
from modeling_videoclip.common.errors import InputError, first_line
from modeling_videoclip.common.models import load_tokenizer
from modeling_videoclip.common.paths import safe_file_stem
from modeling_videoclip.data import load_split
from modeling_videoclip.modeling_videoclip import VideoCLIPCheckpointError
from modeling_videoclip.mugen import MugenFormatError, load_mugen, make_mugen_sample
from modeling_videoclip.mugen.game import Game
from modeling_videoclip.publish.pipeline import STAGING_OWNER, STAGING_PREFIX, remove_stale_staging


@pytest.fixture(autouse=True)
def _private_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("VIDEOCLIP_CACHE", str(tmp_path / "cache"))


@pytest.fixture(scope="module")
def model():
    return tiny_model()


@pytest.fixture(scope="module")
def sample(tmp_path_factory) -> Path:
    return make_mugen_sample(tmp_path_factory.mktemp("mugen") / "sample", num_clips=4, seed=0, with_audio=False)


def frames(dtype=np.uint8, value=100, shape=(4, 32, 32, 3)) -> np.ndarray:
    return np.full(shape, value, dtype=dtype)


# ----------------------------------------------------------------------------------------------------
# The video processor: input -> error (type, message) or None for a correct result
# ----------------------------------------------------------------------------------------------------

PROCESSOR_CASES = {
    "float frames in [0, 1]": (frames(np.float32, 0.5), {}, ValueError, r"scaled to \[0, 1\].*multiply"),
    "float frames in [0, 1] as a tensor": (torch.rand(4, 32, 32, 3), {}, ValueError, r"scaled to \[0, 1\]"),
    "uint16 frames beyond 255": (frames(np.uint16, 4000), {}, ValueError, r"outside \[0, 255\]"),
    "uint32 frames beyond 255": (frames(np.uint32, 70000), {}, ValueError, r"outside \[0, 255\]"),
    "int8 negative frames": (frames(np.int8, -3), {}, ValueError, r"outside \[0, 255\]"),
    "NaN frames": (frames(np.float32, np.nan), {}, ValueError, "NaN"),
    "infinite frames": (frames(np.float64, np.inf), {}, ValueError, "infinite"),
    "bool frames": (frames(bool, True), {}, TypeError, "uint8"),
    "complex frames": (frames(np.complex64, 1), {}, TypeError, "uint8"),
    "object array": (np.array([None, 1], dtype=object).reshape(1, 2, 1, 1), {}, TypeError, "object array"),
    "3-D frames": (frames(shape=(32, 32, 3)), {}, ValueError, "4 dimensions"),
    "zero frames": (frames(shape=(0, 32, 32, 3)), {}, ValueError, "zero frames"),
    "grayscale": (frames(shape=(4, 32, 32, 1)), {}, ValueError, "RGB"),
    "RGBA": (frames(shape=(4, 32, 32, 4)), {}, ValueError, "RGB"),
    "empty list": ([], {}, ValueError, "No video"),
    "a number": (7, {}, TypeError, "arrays, tensors"),
    "video dict without a video": ({"name": "x.mp4"}, {}, TypeError, "'array'.*'bytes' or 'path'"),
    "misspelled option": (frames(), {"num_frame": 8}, TypeError, r"Unknown video processor option\(s\) \['num_fr"),
    "num_frames 0": (frames(), {"num_frames": 0}, ValueError, "at least 1"),
    "num_frames and fps": (frames(), {"num_frames": 8, "fps": 2}, ValueError, "mutually exclusive"),
    "fps without a frame rate": (frames(), {"fps": 2}, ValueError, "frame rate"),
    "return_tensors np": (frames(), {"return_tensors": "np"}, ValueError, "'pt' or None"),
    "metadata for 2 videos, 1 video": (frames(), {"video_metadata": [{"fps": 1}, {"fps": 2}]}, ValueError, "one per"),
    "ftp URL": ("ftp://host/clip.mp4", {}, ValueError, "Unsupported URL scheme 'ftp'"),
    "s3 URL": ("s3://bucket/clip.mp4", {}, ValueError, "Unsupported URL scheme 's3'"),
    "missing file": ("/nonexistent/clip.mp4", {}, FileNotFoundError, "/nonexistent/clip.mp4"),
    "corrupt bytes": ({"path": "bad.mp4", "bytes": b"\x00" * 300}, {}, ValueError, "Cannot decode video 'bad.mp4'"),
    "uint16 frames in range": (frames(np.uint16, 200), {}, None, None),
    "int64 frames in range": (frames(np.int64, 200), {}, None, None),
    "float frames in [0, 255]": (frames(np.float32, 200.0), {}, None, None),
    "all-black float frames": (frames(np.float32, 0.0), {}, None, None),
}


@pytest.mark.parametrize("case", PROCESSOR_CASES)
def test_processor_case(case):
    video, options, error, message = PROCESSOR_CASES[case]
    processor = VideoCLIPVideoProcessor(num_frames=4)
    if error is None:
        value = float(np.asarray(video).flat[0])
        expected = processor(np.full(np.shape(video), value, np.float32))["pixel_values_videos"]
        assert torch.equal(processor(video, **options)["pixel_values_videos"], expected)
        return
    with pytest.raises(error, match=message):
        processor(video, **options)


def test_ambiguous_layout_warns_and_takes_channels_last():
    video = np.arange(4 * 3 * 3 * 3, dtype=np.uint8).reshape(4, 3, 3, 3)
    with pytest.warns(UserWarning, match=r"reads as \(T, H, W, 3\) or \(T, 3, H, W\)"):
        out = VideoCLIPVideoProcessor(num_frames=4, do_resize=False, do_normalize=False)(video)
    assert torch.equal(out["pixel_values_videos"][0], torch.from_numpy(video).permute(0, 3, 1, 2))


# ----------------------------------------------------------------------------------------------------
# The model
# ----------------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def text_inputs():
    return tiny_processor()(text=CAPTIONS[:2])


@pytest.mark.parametrize("case, change, error, message", [
    ("misspelled return_loss", {"return_los": True}, TypeError, r"Unknown argument\(s\) \['return_los'\]"),
    ("unknown option", {"output_hidden_state": True}, TypeError, "output_hidden_state"),
    ("mask of another shape", {"attention_mask": torch.ones(2, 3, dtype=torch.long)}, ValueError, "shape of"),
    ("mask of one row", {"attention_mask": torch.ones(1, 12, dtype=torch.long)}, ValueError, "shape of"),
    ("mask as a list", {"attention_mask": [[1, 1]]}, ValueError, "must be a tensor"),
])
def test_text_tower_case(model, text_inputs, case, change, error, message):
    inputs = {**text_inputs, **change}
    with pytest.raises(error, match=message):
        model.get_text_features(**inputs)


def test_ignored_inputs_change_nothing(model, text_inputs):
    expected = model.get_text_features(**text_inputs).pooler_output
    ignored = {"token_type_ids": torch.zeros_like(text_inputs["input_ids"]), "return_dict": True}
    assert torch.equal(model.get_text_features(**text_inputs, **ignored).pooler_output, expected)


@pytest.mark.parametrize("bad", [float("nan"), float("inf"), -float("inf")])
def test_non_finite_pixels_raise_at_the_model(model, bad):
    pixels = torch.zeros(1, 16, 3, 224, 224)
    pixels[0, 3, 1, 100, 100] = bad
    with pytest.raises(ValueError, match="NaN or infinite"):
        model.get_video_features(pixel_values_videos=pixels)


@pytest.fixture(scope="module")
def saved(model, tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("saved")
    model.save_pretrained(folder)
    tiny_processor().save_pretrained(folder)
    return folder


def test_missing_weights_are_an_error_unless_asked(saved, tmp_path):
    partial = tmp_path / "partial"
    partial.mkdir()
    (partial / "config.json").write_text((saved / "config.json").read_text())
    state = {k: v for k, v in load_file(saved / "model.safetensors").items() if not k.startswith("text_projection")}
    save_file(state, partial / "model.safetensors", metadata={"format": "pt"})
    with pytest.raises(VideoCLIPCheckpointError, match=r"leaves 4 weights of VideoCLIPModel uninitialised"):
        VideoCLIPModel.from_pretrained(partial)
    loaded = VideoCLIPModel.from_pretrained(partial, allow_missing_weights=True)
    assert isinstance(loaded, VideoCLIPModel)


def test_corrupt_weights_file_is_named(saved, tmp_path):
    corrupt = tmp_path / "corrupt"
    corrupt.mkdir()
    (corrupt / "config.json").write_text((saved / "config.json").read_text())
    (corrupt / "model.safetensors").write_bytes((saved / "model.safetensors").read_bytes()[:100])
    with pytest.raises(VideoCLIPCheckpointError, match=f"{corrupt}.*model.safetensors.*corrupt"):
        VideoCLIPModel.from_pretrained(corrupt)


# ----------------------------------------------------------------------------------------------------
# Files: nothing overwritten without a flag, nothing written or read outside the folders named
# ----------------------------------------------------------------------------------------------------


def one_line_error(capsys) -> str:
    err = capsys.readouterr().err
    assert "Traceback" not in err
    return err.strip().splitlines()[-1]


def test_mugen_sample_refuses_a_folder_with_mugen_files(sample, capsys):
    release = sample / "coinrun_dataset_jsons" / "release" / "test.json"
    before = release.read_bytes()
    assert cli.main(["mugen-sample", str(sample), "--num-clips", "2"]) == 2
    assert "already holds MUGEN files (coinrun_dataset_jsons" in one_line_error(capsys)
    assert release.read_bytes() == before


def test_mugen_sample_overwrite_flag(tmp_path):
    first = make_mugen_sample(tmp_path / "s", num_clips=2, seed=0, with_audio=False)
    assert cli.main(["mugen-sample", str(first), "--num-clips", "3", "--overwrite"]) == 0


@pytest.mark.parametrize("command", ["demo", "retrieve"])
def test_out_folder_files_are_kept_and_checked_before_any_work(command, saved, sample, tmp_path, capsys):
    out = tmp_path / "out"
    out.mkdir()
    mine = out / ("README.txt" if command == "demo" else "contact_sheet.png")
    mine.write_text("my notes")
    args = {"demo": ["demo", "--model", str(saved), "--data", str(sample), "--out", str(out)],
            "retrieve": ["retrieve", "--model", str(saved), "--data", str(sample), "--query", "a coin", "--out",
                         str(out)]}[command]
    started = time.monotonic()
    assert cli.main(args) == 2
    assert f"already holds {mine.name}; pass --overwrite" in one_line_error(capsys)
    assert time.monotonic() - started < 20  # refused before loading data or embedding anything
    assert mine.read_text() == "my notes"


@pytest.mark.parametrize("command", [["demo"], ["retrieve", "--query", "a coin"]])
def test_out_that_is_a_file_is_refused_before_any_work(command, saved, sample, tmp_path, capsys):
    out = tmp_path / "file.txt"
    out.write_text("keep me")
    assert cli.main([*command, "--model", str(saved), "--data", str(sample), "--out", str(out)]) == 2
    assert "is a file; give a folder" in one_line_error(capsys)
    assert out.read_text() == "keep me"


def _release_with(sample: Path, tmp_path: Path, change) -> Path:
    """A copy of the sample whose test release JSON has `change(entry)` applied to each clip."""
    data = tmp_path / "data"
    make_mugen_sample(data, num_clips=4, seed=0, with_audio=False)
    path = data / "coinrun_dataset_jsons" / "release" / "test.json"
    release = json.loads(path.read_text())
    for entry in release["data"]:
        change(entry)
    path.write_text(json.dumps(release))
    return data


def test_clip_ids_cannot_lead_writes_outside_out(saved, sample, tmp_path, capsys):
    def hostile_id(entry):
        entry["video"]["id"] = "../../escaped"

    data = _release_with(sample, tmp_path, hostile_id)
    embeddings = tmp_path / "pool.npz"
    rng = np.random.default_rng(0)
    np.savez(embeddings, text_embeds=rng.normal(size=(1, 256)).astype(np.float32),
             video_embeds=rng.normal(size=(1, 256)).astype(np.float32), ids=np.array(["../../escaped"]),
             texts=np.array(["a caption"]))
    out = tmp_path / "deep" / "out"
    status = cli.main(["retrieve", "--model", str(saved), "--data", str(data), "--embeddings", str(embeddings),
                       "--query", "a coin", "-k", "1", "--out", str(out)])
    assert status == 0, capsys.readouterr()
    written = sorted(p.relative_to(tmp_path).as_posix() for p in tmp_path.rglob("*.mp4"))
    assert written == ["deep/out/rank1__.._escaped.mp4"]


@pytest.mark.parametrize("path", ["../../outside.json", "/etc/hostname", "game_jsons/../../outside.json"])
def test_release_paths_outside_the_data_folder_are_refused(sample, tmp_path, path):
    def hostile_path(entry):
        entry["video"]["json_file"] = path

    data = _release_with(sample, tmp_path, hostile_path)
    with pytest.raises(MugenFormatError, match="points outside the data folder.*allow_outside_paths"):
        load_mugen(data, "test")


def test_release_paths_outside_are_read_when_allowed(sample, tmp_path):
    def moved(entry):
        entry["video"]["json_file"] = "../moved/" + Path(entry["video"]["json_file"]).name

    data = _release_with(sample, tmp_path, moved)
    (tmp_path / "moved").mkdir()
    for game in (data / "game_jsons").iterdir():
        game.rename(tmp_path / "moved" / game.name)
    assert len(load_mugen(data, "test", allow_outside_paths=True)) == 1


@pytest.mark.parametrize("key, value", [
    ("background_themes", ["../../../../etc/passwd"]), ("ground_themes", ["/etc/Dirt"]),
    ("agent_themes", ["..\\..\\x"]), ("monster_names", {"ground": ["../secret"], "walking": [], "flying": []}),
])
def test_sprite_names_cannot_leave_the_asset_folder(sample, key, value):
    game = json.loads(next((sample / "game_jsons").iterdir()).read_text())
    game[key] = value
    with pytest.raises(MugenFormatError, match="not a path inside the asset folder"):
        Game.from_dict(game, "hostile.json")


@pytest.mark.parametrize("name, stem", [
    ("../../escaped", "_.._escaped"), ("/etc/passwd", "_etc_passwd"), ("..", "clip"), ("a b:c", "a_b_c"),
    ("ok-1.2_x", "ok-1.2_x"), ("", "clip"), (".hidden", "hidden"),
])
def test_safe_file_stem(name, stem):
    assert safe_file_stem(name, "clip") == stem


# ----------------------------------------------------------------------------------------------------
# Unclear errors made clear
# ----------------------------------------------------------------------------------------------------


def test_no_clip_surviving_the_filters_is_reported(sample):
    dataset = load_mugen(sample, "test", sequence_length=1000)
    assert len(dataset) == 0 and "too short" in str(dataset.mugen_report)
    with pytest.raises(Exception, match="has no clip to use.*too short"):
        load_split(str(sample), "test", num_frames=1000)


def test_missing_local_tokenizer_is_not_called_offline(tmp_path):
    with pytest.raises(InputError, match="does not exist") as raised:
        load_tokenizer(str(tmp_path / "vocab.txt"))
    assert raised.value.exit_code == 2


def test_dataloader_worker_errors_keep_the_workers_message():
    class Broken(torch.utils.data.Dataset):
        def __len__(self):
            return 1

        def __getitem__(self, index):
            raise MugenFormatError("clip.json: frames[3].agent: field 'x' is out of range")

    with pytest.raises(MugenFormatError) as raised:
        list(torch.utils.data.DataLoader(Broken(), num_workers=1))
    assert first_line(raised.value) == "clip.json: frames[3].agent: field 'x' is out of range"


def test_upload_removes_its_own_stale_staging_only(tmp_path):
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    stale, live, foreign = (tmp_path / f"{STAGING_PREFIX}{name}" for name in ("stale", "live", "foreign"))
    for folder, owner in ((stale, dead.pid), (live, os.getpid()), (foreign, None)):
        folder.mkdir()
        (folder / "model.safetensors").write_bytes(b"x")
        if owner is not None:
            (folder / STAGING_OWNER).write_text(str(owner))
    assert remove_stale_staging(tmp_path, log=lambda message: None) == [stale]
    assert not stale.exists() and live.exists() and foreign.exists()


def test_malformed_model_card_yaml_is_one_line(tmp_path):
    from modeling_videoclip.cli.evaluate import write_model_card
    from modeling_videoclip.common.errors import CommandError

    card = tmp_path / "README.md"
    card.write_text("---\nlicense: [unclosed\n---\n# my card\n")
    with pytest.raises(CommandError, match="malformed YAML front matter"):
        write_model_card(card, {"text_to_video/R@1": 1.0}, "m", "MUGEN")
    assert card.read_text().startswith("---\nlicense: [unclosed")
