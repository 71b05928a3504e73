"""The Gradio app in a real headless browser (Debian's chromium driven by playwright), its Space folder, and its
command line. The app serves random weights (as offline users get them) over a pool of three small mp4 clips, a
video folder with a metadata.csv."""

from __future__ import annotations

import csv
import re
import socket

import pytest
from huggingface_hub import metadata_load
from tiny_videoclip import CAPTIONS, TINY_NUM_FRAMES, random_videos

from modeling_videoclip.app import AppOptions, VideoCLIPApp, launch, write_space
from modeling_videoclip.cli import main
from modeling_videoclip.common.errors import ExitCode
from modeling_videoclip.mugen.video import render_clip_to_mp4

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", "--no-first-run"]
TIMEOUT_MS = 30_000
SCORE = re.compile(r"-?\d\.\d{3}")


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture(scope="module")
def pool(tmp_path_factory):
    folder = tmp_path_factory.mktemp("pool")
    with open(folder / "metadata.csv", "w", newline="") as metadata:
        writer = csv.writer(metadata)
        writer.writerow(["file_name", "text"])
        for index, video in enumerate(random_videos(3, frames=TINY_NUM_FRAMES, size=64, seed=1)):
            render_clip_to_mp4(video, folder / f"clip{index}.mp4")
            writer.writerow([f"clip{index}.mp4", CAPTIONS[index]])
    return folder


@pytest.fixture(scope="module")
def served(pool, tmp_path_factory):
    options = AppOptions(weights="random", pool=str(pool), split="train", num_frames=TINY_NUM_FRAMES,
                         clips_dir=tmp_path_factory.mktemp("clips"))
    app = VideoCLIPApp(options, log=lambda message: None)
    port = free_port()
    demo = launch(app, port=port, block=False)
    yield app, f"http://127.0.0.1:{port}/"
    demo.close()


def test_browser_searches_clips_and_classifies_an_uploaded_video(served, pool):
    from playwright.sync_api import expect, sync_playwright

    app, url = served
    assert all("RANDOM-WEIGHTS_" in path for path in app.clip_paths)  # the mp4 files say it too
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            page = browser.new_page()
            page.set_default_timeout(TIMEOUT_MS)
            page.goto(url)
            expect(page.locator("#weights-banner")).to_contain_text("RANDOM WEIGHTS")

            page.locator("#query textarea, #query input").first.fill("mugen jumps onto a ledge")
            page.locator("#search").click()
            ranking = page.locator("#ranking")
            expect(ranking).to_contain_text("RANDOM WEIGHTS")
            expect(ranking.locator("tbody tr")).to_have_count(3)
            rows = [row.split("\t") for row in ranking.locator("tbody tr").all_inner_texts()]
            scores = [float(cells[2]) for cells in rows]
            assert scores == sorted(scores, reverse=True) and all(SCORE.fullmatch(cells[2]) for cells in rows)
            assert {cells[3] for cells in rows} == set(CAPTIONS[:3])
            expected = app.search_videos("mugen jumps onto a ledge", 3)
            assert [f"{clip.score:.3f}" for clip in expected] == [cells[2] for cells in rows]
            expect(page.locator("#ranked-clips video, #ranked-clips img").first).to_be_attached()

            page.get_by_role("tab", name="Zero-shot labels").click()
            page.locator("#zero-shot-video input[type=file]").set_input_files(str(pool / "clip1.mp4"))
            expect(page.locator("#zero-shot-video video")).to_be_attached()
            page.locator("#labels textarea, #labels input").first.fill("jumps, climbs a ladder")
            page.locator("#classify").click()
            table = page.locator("#label-table")
            expect(table.locator("tbody tr")).to_have_count(2)
            expect(table).to_contain_text("RANDOM WEIGHTS")
            labels = {row.split("\t")[0] for row in table.locator("tbody tr").all_inner_texts()}
            assert labels == {"jumps", "climbs a ladder"}
            expect(page.locator("#label-scores")).to_contain_text("climbs a ladder")
        finally:
            browser.close()


def test_video_to_texts_ranks_the_pool_captions_and_extra_texts(served):
    app, _ = served
    ranked = app.rank_texts(app.clip_paths[0], ["a bee flies"])
    assert {text for text, _ in ranked} == set(CAPTIONS[:3]) | {"a bee flies"}
    assert [score for _, score in ranked] == sorted((score for _, score in ranked), reverse=True)


def test_space_folder_is_a_gradio_space_linking_the_model(tmp_path, capsys):
    space = write_space(tmp_path / "space", "someone/videoclip-mugen")
    card = metadata_load(space / "README.md")
    assert card["sdk"] == "gradio" and card["app_file"] == "app.py" and card["models"] == ["someone/videoclip-mugen"]
    assert "torch>=2.1" in (space / "requirements.txt").read_text().split()
    compile((space / "app.py").read_text(), "app.py", "exec")
    assert (space / "modeling_videoclip" / "app" / "app.py").is_file()
    assert (space / "modeling_videoclip" / "pipeline_videoclip.py").is_file()
    assert main(["app", "--write-space", str(space), "--model", "someone/videoclip-mugen"]) == ExitCode.USAGE
    assert "not an empty folder" in capsys.readouterr().err
    assert main(["app", "--write-space", str(tmp_path / "other")]) == ExitCode.USAGE
