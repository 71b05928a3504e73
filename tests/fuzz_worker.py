"""Runs hostile inputs through the MUGEN loader, the renderer and the video processor in a process of its own, so
that a crash (a signal) cannot take the test run with it: ``python fuzz_worker.py CASES.json``.

Each case is ``{"id", "kind": "game" | "release" | "video", "path", ...}``; one JSON line per case goes to stdout:
``{"id", "outcome": "ok" | "error", "type": "module.Class", "message"}``. The caller decides which outcomes are
acceptable (a correct result or one of the project's typed errors)."""

from __future__ import annotations

import json
import sys
from pathlib import Path


def _run_game(case: dict) -> None:
    from modeling_videoclip.mugen.game import Game, read_json
    from modeling_videoclip.mugen.render import MugenRenderer

    game = Game.from_dict(read_json(case["path"]), case["path"])
    frames = min(len(game.frames), 4)
    MugenRenderer(case["assets"], resolution=32).render(game, list(range(frames)))


def _run_release(case: dict) -> None:
    from modeling_videoclip.mugen import load_mugen

    dataset = load_mugen(case["path"], "test", resolution=32, sequence_length=4, annotation="all")
    for row in dataset:
        assert row["video"].shape == (4, 32, 32, 3)


def _run_video(case: dict) -> None:
    from modeling_videoclip import VideoCLIPVideoProcessor

    processor = VideoCLIPVideoProcessor(num_frames=4, size={"height": 32, "width": 32})
    data = Path(case["path"]).read_bytes()
    for video in (case["path"], {"path": case["path"], "bytes": data}):
        assert processor(video)["pixel_values_videos"].shape == (1, 4, 3, 32, 32)


RUNNERS = {"game": _run_game, "release": _run_release, "video": _run_video}


def main(cases_file: str) -> None:
    for case in json.loads(Path(cases_file).read_text()):
        try:
            RUNNERS[case["kind"]](case)
            record = {"outcome": "ok"}
        except Exception as error:  # reported, not judged: the test decides which types are acceptable
            kind = type(error)
            record = {"outcome": "error", "type": f"{kind.__module__}.{kind.__qualname__}", "message": str(error)}
        print(json.dumps({"id": case["id"], **record}), flush=True)


if __name__ == "__main__":
    main(sys.argv[1])
