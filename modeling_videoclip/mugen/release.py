"""MUGEN release JSONs (``<root>/coinrun_dataset_jsons/release/<split>.json``: ``metadata`` and per-clip ``video``
and ``annotations``): reading, validation, clip filtering and caption choice, as the reference loader."""

from __future__ import annotations

import os
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from .game import MAX_STEPS, MugenFormatError, read_json

__all__ = [
    "SPLITS", "ANNOTATION_CHOICES", "ReleaseEntry", "LoadReport", "release_path", "available_splits", "read_release",
    "select_clips", "choose_caption_index", "clip_rng", "choose_start",
]

SPLITS = ("train", "val", "test")
ANNOTATION_CHOICES = ("manual", "auto", "all")
RELEASE_SUBDIR = os.path.join("coinrun_dataset_jsons", "release")


@dataclass
class ReleaseEntry:
    """One clip of a release JSON, validated."""

    id: str
    json_file: str
    num_frames: int
    annotations: list[dict[str, Any]]
    audio_file: str | None = None
    world_theme_n: int | None = None
    gt_characters: Any = None
    game_events: Any = None

    @property
    def auto_indices(self) -> list[int]:
        return [i for i, a in enumerate(self.annotations) if a["type"] == "auto"]

    @property
    def manual_indices(self) -> list[int]:
        return [i for i, a in enumerate(self.annotations) if a["type"] == "manual"]


@dataclass
class LoadReport:
    """How many clips a split has, how many were kept, and why the others were dropped."""

    split: str
    total: int = 0
    kept: int = 0
    dropped: dict[str, int] = field(default_factory=dict)

    def __str__(self) -> str:
        reasons = ", ".join(f"{n} {why}" for why, n in sorted(self.dropped.items())) or "none"
        return f"MUGEN {self.split}: kept {self.kept} of {self.total} clips; dropped: {reasons}"

    def as_dict(self) -> dict[str, Any]:
        return {"split": self.split, "total": self.total, "kept": self.kept, "dropped": dict(self.dropped)}


def release_path(data_dir: str | os.PathLike, split: str, downsampled: bool = False) -> Path:
    """Where a split's release JSON lives: ``data_dir/coinrun_dataset_jsons/release/<split>.json`` (or
    ``data_dir/<split>.json``); ``downsampled`` picks ``train_downsampled.json``."""
    name = f"{split}_downsampled.json" if downsampled and split == "train" else f"{split}.json"
    root = Path(data_dir)
    for candidate in (root / RELEASE_SUBDIR / name, root / name):
        if candidate.is_file():
            return candidate
    raise FileNotFoundError(
        f"MUGEN release JSON for split {split!r} not found: expected {root / RELEASE_SUBDIR / name}. "
        "Pass the folder that holds coinrun_dataset_jsons/ (or the release folder itself) as data_dir; "
        "splits are 'train', 'val' and 'test'."
    )


def available_splits(data_dir: str | os.PathLike, splits: Sequence[str] = SPLITS) -> list[str]:
    """The ``splits`` that have a release JSON; when none has, :func:`release_path` raises for ``"test"``."""
    found = []
    for split in splits:
        try:
            release_path(data_dir, split)
            found.append(split)
        except FileNotFoundError:
            pass
    if not found:
        release_path(data_dir, "test")  # raises, naming the expected file
    return found


def _parse_entry(item: Any, where: str) -> ReleaseEntry:
    if not isinstance(item, Mapping) or not isinstance(item.get("video"), Mapping):
        raise MugenFormatError(f"{where}: each data item needs a 'video' object")
    video = item["video"]
    for key in ("id", "json_file", "num_frames"):
        if key not in video:
            raise MugenFormatError(f"{where}: video has no {key!r}")
    if isinstance(video["id"], bool) or not isinstance(video["id"], (str, int)):
        raise MugenFormatError(f"{where}: video.id should be a string or integer, got {video['id']!r}")
    if not isinstance(video["json_file"], str):
        raise MugenFormatError(f"{where}: video.json_file should be a string path, got {video['json_file']!r}")
    n = video["num_frames"]
    if isinstance(n, bool) or not isinstance(n, int) or not 0 <= n <= MAX_STEPS:
        raise MugenFormatError(f"{where}: video.num_frames should be an integer in [0, {MAX_STEPS}], got {n!r}")
    audio = video.get("audio_file", video.get("video_file"))  # the reference reads "video_file"
    if audio is not None and not isinstance(audio, str):
        raise MugenFormatError(f"{where}: video.audio_file/video_file should be a string path, got {audio!r}")
    annotations = item.get("annotations", [])
    if not isinstance(annotations, list):
        raise MugenFormatError(f"{where}: 'annotations' should be a list")
    parsed = []
    for j, a in enumerate(annotations):
        if not isinstance(a, Mapping) or not isinstance(a.get("text"), str) or a.get("type") not in ("auto", "manual"):
            raise MugenFormatError(
                f"{where}: annotations[{j}] should be {{'text': str, 'type': 'auto'|'manual', ...}}, got {a!r}"
            )
        lists = {key: [str(c) for c in a.get(key) or []] for key in ("characters", "actions")}
        parsed.append({"text": a["text"], "type": a["type"], **lists})
    theme = video.get("world_theme_n")
    if isinstance(theme, int) and not isinstance(theme, bool) and not 0 <= theme < 2**31:
        raise MugenFormatError(f"{where}: video.world_theme_n should be a theme index, got {theme!r}")
    return ReleaseEntry(
        id=str(video["id"]), json_file=video["json_file"], num_frames=n, annotations=parsed,
        audio_file=audio, world_theme_n=theme if isinstance(theme, int) else None,
        gt_characters=video.get("gt_characters"), game_events=video.get("game_events"),
    )


def read_release(path: str | os.PathLike) -> tuple[dict[str, Any], list[ReleaseEntry]]:
    """Read and validate a release JSON: ``(metadata, entries)``.

    Raises:
        FileNotFoundError: the file does not exist.
        MugenFormatError: invalid JSON or a wrong structure; the message names the file and the entry.
    """
    path = Path(path)
    doc = read_json(path)
    if not isinstance(doc, Mapping) or "data" not in doc or "metadata" not in doc:
        raise MugenFormatError(f"{path}: a MUGEN release JSON is an object with 'metadata' and 'data'")
    if not isinstance(doc["metadata"], Mapping) or not isinstance(doc["data"], list):
        raise MugenFormatError(f"{path}: 'metadata' should be an object and 'data' a list")
    entries = [_parse_entry(item, f"{path}: data[{i}]") for i, item in enumerate(doc["data"])]
    return dict(doc["metadata"]), entries


def select_clips(entries: Sequence[ReleaseEntry], split: str, *, sequence_length: int, sample_every_n_frames: int,
                 annotation: str) -> tuple[list[int], LoadReport]:
    """Indices of the clips the reference loader keeps (``num_frames > (sequence_length - 1) * every`` and a
    caption of the ``annotation`` kind), with counts of the others by reason."""
    if annotation not in ANNOTATION_CHOICES:
        raise ValueError(f"annotation must be one of {ANNOTATION_CHOICES}, got {annotation!r}")
    need = (sequence_length - 1) * sample_every_n_frames
    dropped: Counter = Counter()
    kept = []
    for i, e in enumerate(entries):
        captions = e.annotations if annotation == "all" else getattr(e, f"{annotation}_indices")
        if e.num_frames <= need:
            dropped[f"too short (num_frames <= {need})"] += 1
        elif not captions:
            dropped["no annotation" if annotation == "all" else f"no {annotation} annotation"] += 1
        else:
            kept.append(i)
    return kept, LoadReport(split=split, total=len(entries), kept=len(kept), dropped=dict(dropped))


def clip_rng(seed: int, index: int, epoch: int, stream: int) -> np.random.Generator:
    """The random generator for one clip in one epoch (``stream`` separates start and caption draws)."""
    return np.random.default_rng([seed, epoch, index, stream])


def choose_caption_index(entry: ReleaseEntry, annotation: str, train: bool, rng: np.random.Generator) -> int:
    """The reference's caption choice: ``"manual"``, a random manual caption when training, else the first;
    ``"auto"``, the auto caption; ``"all"``, a random one among all."""
    if annotation == "manual":
        manual = entry.manual_indices
        return int(manual[rng.integers(len(manual))]) if train else manual[0]
    if annotation == "auto":
        return entry.auto_indices[0]
    return int(rng.integers(len(entry.annotations)))


def choose_start(num_frames: int, sequence_length: int, every: int, random: bool, rng: np.random.Generator) -> int:
    """First frame of the clip: 0, or uniform in ``[0, num_frames - (sequence_length - 1) * every)``."""
    if not random:
        return 0
    return int(rng.integers(0, num_frames - (sequence_length - 1) * every))
