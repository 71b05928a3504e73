"""MUGEN on the ``datasets`` library (:func:`load_mugen`, :class:`MugenBuilder`): only metadata is stored;
:class:`MugenTransform` renders videos, segmentation maps and audio on access, so DataLoader workers render in
parallel."""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import datasets
import numpy as np

from .assets import check_asset_dir
from .audio import AUDIO_SAMPLE_LENGTH, AUDIO_SAMPLE_RATE, load_audio
from .game import MugenFormatError, load_game
from .release import (
    ANNOTATION_CHOICES,
    SPLITS,
    LoadReport,
    ReleaseEntry,
    available_splits,
    choose_caption_index,
    choose_start,
    clip_rng,
    read_release,
    release_path,
    select_clips,
)
from .render import MugenRenderer

logger = logging.getLogger(__name__)

__all__ = ["load_mugen", "MugenTransform", "MugenBuilder", "MugenConfig", "MUGEN_FEATURES", "mugen_collate"]

START_CHOICES = ("fixed", "random")

#: Schema of the stored (metadata) columns. ``video``/``segmentation``/``audio`` are added by the transform.
MUGEN_FEATURES = datasets.Features({
    "index": datasets.Value("int32"), "id": datasets.Value("string"), "text": datasets.Value("string"),
    "caption_index": datasets.Value("int32"),
    "annotations": datasets.List({
        "text": datasets.Value("string"), "type": datasets.Value("string"),
        "characters": datasets.List(datasets.Value("string")), "actions": datasets.List(datasets.Value("string")),
    }),
    "num_frames": datasets.Value("int32"), "start": datasets.Value("int32"), "json_file": datasets.Value("string"),
    "audio_file": datasets.Value("string"), "world_theme_n": datasets.Value("int32"),
    "game_events": datasets.Value("string"), "gt_characters": datasets.Value("string"),
})


def _resolve_data_folder(data_dir: Path, metadata: dict[str, Any], data_folder: str | None, source: Path) -> Path:
    given = data_folder if data_folder is not None else metadata.get("data_folder")
    if given is None:
        return data_dir
    if not isinstance(given, (str, os.PathLike)):
        raise MugenFormatError(f"{source}: metadata.data_folder should be a path string, got {given!r}")
    folder = data_dir / given  # an absolute path replaces data_dir
    if not folder.is_dir():
        origin = "the data_folder argument" if data_folder is not None else f"metadata.data_folder of {source}"
        raise FileNotFoundError(
            f"MUGEN data folder {folder} (from {origin}) does not exist. Pass data_folder= pointing at the "
            "folder the release's json_file paths are relative to."
        )
    return folder


def _row(entry: ReleaseEntry, index: int, folder: Path, split: str, cfg: dict[str, Any]) -> dict[str, Any]:
    cap = choose_caption_index(entry, cfg["annotation"], split == "train", clip_rng(cfg["seed"], index, 0, 1))
    start = choose_start(entry.num_frames, cfg["sequence_length"], cfg["sample_every_n_frames"],
                         cfg["start"] == "random", clip_rng(cfg["seed"], index, 0, 0))
    return {
        "index": index, "id": entry.id, "text": entry.annotations[cap]["text"], "caption_index": cap,
        "annotations": entry.annotations, "num_frames": entry.num_frames, "start": start,
        "json_file": str(folder / entry.json_file),
        "audio_file": str(folder / entry.audio_file) if entry.audio_file else "",
        "world_theme_n": -1 if entry.world_theme_n is None else entry.world_theme_n,
        "game_events": json.dumps(entry.game_events, sort_keys=True),
        "gt_characters": json.dumps(entry.gt_characters, sort_keys=True),
    }


def _generate_rows(shards: Sequence[list[tuple[int, ReleaseEntry]]], folder: str, split: str,
                   cfg: dict[str, Any]) -> Iterator[dict[str, Any]]:
    """Rows for ``datasets`` generators; ``shards`` is a list so ``num_proc`` can split it."""
    for shard in shards:
        for index, entry in shard:
            yield _row(entry, index, Path(folder), split, cfg)


def _check_clip_files(entries: list[ReleaseEntry], folder: Path, metadata: dict[str, Any],
                      data_folder: str | os.PathLike | None, with_audio: bool, on_missing: str,
                      report: LoadReport, allow_outside_paths: bool = False) -> list[ReleaseEntry]:
    if not allow_outside_paths:  # a lexical check: no file system call per clip (375k in MUGEN)
        for entry in entries:
            for key, value in (("json_file", entry.json_file), ("audio_file", entry.audio_file)):
                normal = os.path.normpath(value) if value else ""
                if normal and (os.path.isabs(normal) or normal == ".." or normal.startswith(".." + os.sep)):
                    raise MugenFormatError(
                        f"clip {entry.id!r}: video.{key} {value!r} points outside the data folder {folder}; a release "
                        f"names files inside it. Pass allow_outside_paths=True if you trust this release."
                    )
    present = [(folder / e.json_file).is_file() for e in entries]
    missing = [e for e, ok in zip(entries, present) if not ok]
    if missing and len(missing) == len(entries):
        example = folder / entries[0].json_file
        origin = "the data_folder argument" if data_folder is not None else (
            f"metadata.data_folder={metadata.get('data_folder')!r}")
        raise FileNotFoundError(
            f"none of the {len(entries)} MUGEN game JSONs exist under {folder} (from {origin}), e.g. {example}. "
            "The data folder is probably wrong: pass data_folder= pointing at the folder the release's "
            "json_file paths are relative to."
        )
    if missing:
        if on_missing == "raise":
            names = ", ".join(str(folder / e.json_file) for e in missing[:3])
            raise FileNotFoundError(
                f"{len(missing)} of {len(entries)} MUGEN game JSONs are missing, e.g. {names}. "
                "Restore them, or pass on_missing='skip' to drop those clips (they are counted in the report)."
            )
        report.dropped["game JSON missing"] = len(missing)
        entries = [e for e, ok in zip(entries, present) if ok]
    if with_audio:
        no_audio = [e for e in entries if not e.audio_file]
        if no_audio:
            raise MugenFormatError(
                f"with_audio=True but {len(no_audio)} clips have no audio path (video.audio_file / video.video_file), "
                f"e.g. clip {no_audio[0].id}; pass with_audio=False"
            )
    report.kept = len(entries)
    return entries


def _clips(data_dir: str | os.PathLike, split: str, data_folder: str | os.PathLike | None, cfg: dict[str, Any],
           with_audio: bool = False, on_missing: str = "raise", downsampled: bool = False,
           allow_outside_paths: bool = False):
    """A split's kept clips: ``(root, data folder, [(row index = position among kept clips, entry)], report)``."""
    path = release_path(data_dir, split, downsampled)
    metadata, entries = read_release(path)
    root = path.parent.parent.parent if path.parent.name == "release" else path.parent
    folder = _resolve_data_folder(root, metadata, data_folder, path)
    kept, report = select_clips(entries, split, sequence_length=cfg["sequence_length"],
                                sample_every_n_frames=cfg["sample_every_n_frames"], annotation=cfg["annotation"])
    kept = _check_clip_files([entries[k] for k in kept], folder, metadata, data_folder, with_audio, on_missing, report,
                             allow_outside_paths)
    logger.info("%s", report)
    return root, folder, list(enumerate(kept)), report


class MugenTransform:
    """Adds ``video`` (and optionally ``segmentation``/``audio``) to batches of MUGEN metadata rows, through
    ``Dataset.set_transform`` (or ``IterableDataset.map(..., batched=True)``). Random starts and captions depend
    only on ``(seed, row index, epoch)``: call :meth:`set_epoch` before each epoch (workers pick it up at start).

    Args:
        asset_dir: sprite folder.
        split: the split name (the reference draws a random manual caption only for ``"train"``).
        resolution, sequence_length, sample_every_n_frames, annotation, start, seed, with_video, with_audio,
            with_segmentation: as in :func:`load_mugen`.
    """

    def __init__(self, asset_dir: str, split: str, *, resolution: int = 256, sequence_length: int = 32,
                 sample_every_n_frames: int = 3, annotation: str = "manual", start: str = "fixed", seed: int = 0,
                 with_video: bool = True, with_audio: bool = False, with_segmentation: bool = False):
        self.asset_dir, self.split = str(asset_dir), split
        self.resolution, self.sequence_length, self.every = resolution, sequence_length, sample_every_n_frames
        self.annotation, self.start, self.seed = annotation, start, seed
        self.with_video, self.with_audio, self.with_segmentation = with_video, with_audio, with_segmentation
        self.epoch = 0
        self._renderer: MugenRenderer | None = None

    def set_epoch(self, epoch: int) -> None:
        """Select the epoch used for random starts and random captions."""
        self.epoch = int(epoch)

    @property
    def renderer(self) -> MugenRenderer:
        if self._renderer is None:
            self._renderer = MugenRenderer(self.asset_dir, self.resolution)
        return self._renderer

    def __getstate__(self):
        state = self.__dict__.copy()
        state["_renderer"] = None  # each worker builds its own caches
        return state

    def frame_ids(self, start: int) -> range:
        """The frames of a clip from ``start``: every ``sample_every_n_frames``-th, ``sequence_length`` of them."""
        return range(start, start + self.sequence_length * self.every, self.every)

    def example(self, row: dict[str, Any]) -> dict[str, Any]:
        """Render one row (a dict of stored columns) and return it with the added fields."""
        out = dict(row)
        index, epoch = int(row["index"]), self.epoch
        if epoch != 0 and (self.annotation == "all" or (self.annotation == "manual" and self.split == "train")):
            rng = clip_rng(self.seed, index, epoch, 1)
            entry = ReleaseEntry(row["id"], json_file="", num_frames=row["num_frames"], annotations=row["annotations"])
            cap = choose_caption_index(entry, self.annotation, self.split == "train", rng)
            out["caption_index"], out["text"] = cap, row["annotations"][cap]["text"]
        start = int(row["start"])
        if self.start == "random" and epoch != 0:
            start = choose_start(int(row["num_frames"]), self.sequence_length, self.every, True,
                                 clip_rng(self.seed, index, epoch, 0))
        out["start"] = start
        if self.with_video or self.with_segmentation:
            game = load_game(row["json_file"])
            frames = self.frame_ids(start)
            if frames[-1] >= len(game.frames):
                raise MugenFormatError(
                    f"{row['json_file']}: clip {row['id']} has {len(game.frames)} frames but frame {frames[-1]} is "
                    f"needed (start {start}, {self.sequence_length} frames every {self.every}); the release says "
                    f"num_frames={row['num_frames']}, so the game JSON is probably truncated"
                )
            if self.with_video:
                out["video"] = self.renderer.render(game, frames)
            if self.with_segmentation:
                out["segmentation"] = self.renderer.render_segmentation(game, frames)
        if self.with_audio:
            out["audio"] = load_audio(row["audio_file"], AUDIO_SAMPLE_RATE, AUDIO_SAMPLE_LENGTH)
        return out

    def __call__(self, batch: dict[str, list[Any]]) -> dict[str, list[Any]]:
        rows = [self.example(dict(zip(batch, values))) for values in zip(*batch.values())]
        return {k: [r[k] for r in rows] for k in (rows[0] if rows else batch)}


def mugen_collate(examples: list[dict[str, Any]]) -> dict[str, Any]:
    """DataLoader ``collate_fn`` for MUGEN rows: stacks ``video``/``segmentation``/``audio`` (and numbers) into
    tensors and keeps everything else (texts, ids, annotation lists) as Python lists."""
    import torch

    out: dict[str, Any] = {}
    for key in examples[0]:
        values = [e[key] for e in examples]
        if isinstance(values[0], np.ndarray):
            out[key] = torch.from_numpy(np.stack(values))
        elif isinstance(values[0], (int, np.integer)) and not isinstance(values[0], bool):
            out[key] = torch.tensor(values)
        else:
            out[key] = values
    return out


def load_mugen(
    data_dir: str | os.PathLike, split: str = "test", *, asset_dir: str | os.PathLike | None = None,
    data_folder: str | os.PathLike | None = None, resolution: int = 256, sequence_length: int = 32,
    sample_every_n_frames: int = 3, annotation: str = "manual", start: str = "fixed", seed: int = 0,
    with_video: bool = True, with_audio: bool = False, with_segmentation: bool = False, streaming: bool = False,
    num_proc: int | None = None, downsampled: bool = False, on_missing: str = "raise",
    allow_outside_paths: bool = False,
) -> datasets.Dataset | datasets.IterableDataset:
    """Load a MUGEN split as a ``datasets`` object of (video, text) rows, rendered lazily.

    Args:
        data_dir: folder holding ``coinrun_dataset_jsons/release/<split>.json`` (or that release folder).
        split: ``"train"``, ``"val"`` or ``"test"`` ("test").
        asset_dir: sprite folder (default: ``<data_dir>/assets``, where :func:`make_mugen_sample` puts its
            stand-ins; for the real data, a copy of MUGEN_baseline's ``lib/data/coinrun/assets``).
        data_folder: overrides the release's ``metadata.data_folder`` (which is often an absolute path from
            the machine that made the release); relative paths are taken relative to ``data_dir``.
        resolution: frame size in pixels (256, the reference dataset's default; VideoCLIP trains at 224).
        sequence_length: frames per clip (32, MUGEN's).
        sample_every_n_frames: frame stride (3, MUGEN's: 32 frames span 3.2 s at 30 fps).
        annotation: ``"manual"`` (VideoCLIP's setting: clips with manual captions only; random manual caption in
            train, the first otherwise), ``"auto"`` (the generated caption) or ``"all"`` (a random caption).
        start: ``"fixed"`` (frame 0) or ``"random"`` (VideoCLIP's setting), reproducible per (seed, row, epoch).
        seed: seed for random starts and captions (0).
        with_video: add ``video``, ``uint8`` ``(T, H, W, 3)`` (True).
        with_audio: add ``audio``, ``float32`` ``(2, 70560)`` at 22050 Hz (False).
        with_segmentation: add ``segmentation``, ``uint8`` ``(T, H, W)`` with 22 labels (False).
        streaming: return an ``IterableDataset`` that reads the release lazily (False).
        num_proc: build the metadata table with this many processes (None: in this process).
        downsampled: for ``split="train"``, read ``train_downsampled.json`` (False).
        on_missing: ``"raise"`` (default) when a clip's game JSON is missing, or ``"skip"`` to drop and count it.
        allow_outside_paths: read game JSONs and audio a release names outside its data folder (``../``, absolute
            paths). Defaults to False: such a release is refused (MugenFormatError), as a release from elsewhere
            could otherwise make the loader read any file.

    Returns:
        A ``datasets.Dataset`` (``IterableDataset`` when streaming) with the columns of :data:`MUGEN_FEATURES`
        plus the rendered fields; empty (with the report) when no clip passes the filters. ``ds.mugen_report`` /
        ``ds.info.description`` say how many clips were kept and
        why the others were dropped; ``ds.mugen_transform.set_epoch(e)`` selects the epoch for random draws;
        ``ds.mugen_data_folder`` is the resolved data folder.

    Raises:
        FileNotFoundError: a missing release JSON, data folder, game JSON or asset folder (named in the message).
        MugenFormatError: a malformed release JSON.
        MissingAssetError: a sprite is missing from ``asset_dir`` (the file is named).
    """
    for name, value, choices in (("split", split, SPLITS), ("annotation", annotation, ANNOTATION_CHOICES),
                                 ("start", start, START_CHOICES)):
        if value not in choices:
            raise ValueError(f"{name} must be one of {choices}, got {value!r}")
    for name, value in (("resolution", resolution), ("sequence_length", sequence_length),
                        ("sample_every_n_frames", sample_every_n_frames)):
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ValueError(f"{name} must be a positive integer, got {value!r}")
    if on_missing not in ("raise", "skip"):
        raise ValueError(f"on_missing must be 'raise' or 'skip', got {on_missing!r}")
    cfg = dict(annotation=annotation, seed=seed, start=start, sequence_length=sequence_length,
               sample_every_n_frames=sample_every_n_frames)
    root, folder, indexed, report = _clips(data_dir, split, data_folder, cfg, with_audio, on_missing, downsampled,
                                           allow_outside_paths)
    assets = Path(asset_dir) if asset_dir is not None else root / "assets"
    if with_video or with_segmentation:
        if asset_dir is None and not assets.is_dir():
            raise FileNotFoundError(
                f"no asset folder given and {assets} does not exist. Pass asset_dir= pointing at a copy of "
                "MUGEN_baseline's lib/data/coinrun/assets (the sprites are not redistributed with this project), or "
                "create stand-in sprites with modeling_videoclip.mugen.make_stand_in_assets(folder)."
            )
        check_asset_dir(assets)
    transform = MugenTransform(str(assets), split, resolution=resolution, with_video=with_video,
                               with_audio=with_audio, with_segmentation=with_segmentation, **cfg)
    n_shards = max(1, min(len(indexed), num_proc or 1, 64))
    size = -(-len(indexed) // n_shards)  # contiguous shards keep the row order of the plain path
    shards = [indexed[s * size:(s + 1) * size] for s in range(n_shards)]
    gen_kwargs = {"shards": shards, "folder": str(folder), "split": split, "cfg": cfg}
    if streaming:
        ds = datasets.IterableDataset.from_generator(_generate_rows, features=MUGEN_FEATURES, gen_kwargs=gen_kwargs)
        ds = ds.map(transform, batched=True, batch_size=1)
    elif num_proc and num_proc > 1 and len(indexed) > 1:
        ds = datasets.Dataset.from_generator(_generate_rows, features=MUGEN_FEATURES, gen_kwargs=gen_kwargs,
                                             num_proc=n_shards, split=datasets.NamedSplit(split))
        ds.info.description = str(report)
        ds.set_transform(transform)
    else:
        rows = [_row(e, i, folder, split, cfg) for i, e in indexed]
        info = datasets.DatasetInfo(description=str(report), features=MUGEN_FEATURES)
        columns = {name: [row[name] for row in rows] for name in MUGEN_FEATURES}  # from_list cannot make 0 rows
        ds = datasets.Dataset.from_dict(columns, features=MUGEN_FEATURES, info=info, split=datasets.NamedSplit(split))
        ds.set_transform(transform)
    ds.mugen_report, ds.mugen_transform, ds.mugen_data_folder = report, transform, str(folder)
    return ds


class MugenConfig(datasets.BuilderConfig):
    """Builder settings: the same clip filtering/caption arguments as :func:`load_mugen`."""

    def __init__(self, *, data_folder: str | None = None, sequence_length: int = 32, sample_every_n_frames: int = 3,
                 annotation: str = "manual", start: str = "fixed", seed: int = 0, **kwargs):
        super().__init__(**kwargs)
        self.data_folder, self.sequence_length = data_folder, sequence_length
        self.sample_every_n_frames = sample_every_n_frames
        self.annotation, self.start, self.seed = annotation, start, seed


class MugenBuilder(datasets.GeneratorBasedBuilder):
    """Builds MUGEN metadata tables (train/val/test) as Arrow from a local MUGEN folder (``data_dir=``), with the
    rows of :func:`load_mugen` (same filtering, caption choice and epoch-0 start); render them by installing a
    :class:`MugenTransform` with ``set_transform``."""

    BUILDER_CONFIG_CLASS = MugenConfig
    DEFAULT_CONFIG_NAME = "default"

    def _info(self) -> datasets.DatasetInfo:
        return datasets.DatasetInfo(description="MUGEN clips (metadata; frames are rendered on access)",
                                    features=MUGEN_FEATURES)

    def _split_generators(self, dl_manager) -> list[datasets.SplitGenerator]:
        if not self.config.data_dir:
            raise ValueError("MugenBuilder needs data_dir= (the folder holding coinrun_dataset_jsons/)")
        return [datasets.SplitGenerator(name=split, gen_kwargs={"split": split})
                for split in available_splits(self.config.data_dir)]

    def _generate_examples(self, split: str):
        c = self.config
        cfg = dict(annotation=c.annotation, seed=c.seed, start=c.start, sequence_length=c.sequence_length,
                   sample_every_n_frames=c.sample_every_n_frames)
        _, folder, indexed, _ = _clips(c.data_dir, split, c.data_folder, cfg)
        for i, entry in indexed:
            yield i, _row(entry, i, folder, split, cfg)
