"""Loading a split of MUGEN (or the cached synthetic sample), a `save_to_disk` folder or a Hub dataset."""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from ..common.constants import cache_root
from ..common.errors import CommandError, ExitCode, first_line
from ..common.paths import looks_like_local_path
from .collator import row_text

Log = Callable[[str], None]

# Clips in the cached synthetic sample: at seed 0, 9 land in the test split with manual captions (one tutorial batch).
SAMPLE_NUM_CLIPS = 48
SAMPLE_SEED = 0
_SAMPLE_COMPLETE = ".complete"
_SYNONYMS = {"val": ("val", "validation", "valid", "dev"), "validation": ("validation", "val", "valid", "dev")}


def ensure_mugen_sample(cache_dir: str | os.PathLike | None = None, log: Log = print) -> Path:
    """The synthetic MUGEN sample in the cache, generated on first use (in a staging folder renamed when complete).

    Args:
        cache_dir: the cache root. Defaults to `common.constants.cache_root()`.
        log: where the one-line "generating" note goes. Defaults to `print`.

    Returns:
        ``<cache_dir>/mugen-sample``: `SAMPLE_NUM_CLIPS` (48) clips at seed 0, with stand-in sprites in ``assets/``.
    """
    from ..mugen import make_mugen_sample

    root = Path(cache_dir) if cache_dir is not None else cache_root()
    folder = root / "mugen-sample"
    if (folder / _SAMPLE_COMPLETE).is_file():
        return folder
    root.mkdir(parents=True, exist_ok=True)
    log(f"Generating the synthetic MUGEN sample ({SAMPLE_NUM_CLIPS} clips) into {folder} (first use only)")
    staging = Path(tempfile.mkdtemp(prefix=".mugen-sample-", dir=root))
    try:
        make_mugen_sample(staging, num_clips=SAMPLE_NUM_CLIPS, seed=SAMPLE_SEED, with_audio=False)
        (staging / _SAMPLE_COMPLETE).write_text(f"num_clips={SAMPLE_NUM_CLIPS} seed={SAMPLE_SEED}\n")
        if folder.exists():  # an incomplete folder from an older, interrupted version of this cache
            shutil.rmtree(folder)
        os.replace(staging, folder)
    finally:
        shutil.rmtree(staging, ignore_errors=True)  # nothing left once renamed into place
    return folder


def load_split(
    data: str | os.PathLike | None, split: str = "test", assets: str | os.PathLike | None = None,
    num_frames: int | None = None, *, training: bool = False, text_column: str | None = None,
    video_column: str | None = None, start_seed: int | None = None, log: Log = print,
):
    """Loads one split of paired caption/video data.

    Args:
        data: a MUGEN folder (or its release folder; rendered lazily by `mugen.load_mugen`), a `save_to_disk`
            folder, or a Hub dataset id / `load_dataset` path (a local `videofolder`: video files plus a
            ``metadata.csv``/``.jsonl`` with ``file_name`` and a caption). `None`: the synthetic sample
            (`ensure_mugen_sample`).
        split: `"train"`, `"val"` (or validation, valid, dev) or `"test"`. Defaults to `"test"`, the tutorial's.
        assets: MUGEN's sprite folder. Defaults to `load_mugen`'s, ``<data>/assets``.
        num_frames: frames per MUGEN clip. Defaults to `load_mugen`'s 32, the reference's.
        training: render MUGEN as the reference's training data (224x224, a random start frame in the train split,
            a fixed one elsewhere). Defaults to False: `load_mugen`'s defaults (256x256, fixed start).
        start_seed: render each MUGEN clip from a random start frame drawn with this seed (`load_mugen`'s
            ``start="random", seed=start_seed``), as the reference's evaluation (eval.yaml's ``fixed_start_idx:
            False``). Defaults to None: `load_mugen`'s fixed start (or `training`'s choice). Ignored for other data.
        text_column / video_column: the caption and video columns of non-MUGEN data, renamed to "text" and "video".
            Defaults to `find_columns`'s choice (a `Video()` column; "text", "caption", ... or the one string column).
        log: for the note when the sample is generated. Defaults to `print`.

    Returns:
        A `datasets.Dataset` whose rows have a "text" and a "video" column (MUGEN's arrays, `Video()` decoders, ...).

    Raises:
        CommandError: the data does not exist or cannot be read, has no such split, or the split is empty.
    """
    folder = _resolve(data, log)
    try:
        if folder is not None and _is_mugen(folder, split):
            dataset = _load_mugen_split(folder, split, assets, num_frames, training, start_seed)
        else:
            dataset = _standard_columns(_load_other(folder, data, split), text_column, video_column, data)
    except FileNotFoundError as error:  # also MUGEN's missing sprites and datasets' DatasetNotFoundError
        raise CommandError(f"cannot read data {str(data)!r}: {first_line(error)}") from error
    if len(dataset) == 0:
        report = getattr(dataset, "mugen_report", "no rows")
        raise CommandError(f"the {split} split of {_source(data, split)} has no clip to use ({report})")
    return dataset


def _load_other(folder: Path | None, data: str | os.PathLike, split: str):
    import datasets

    if folder is not None and ((folder / "dataset_dict.json").is_file() or (folder / "state.json").is_file()):
        dataset = datasets.load_from_disk(str(folder))
        if isinstance(dataset, datasets.DatasetDict):
            dataset = dataset[_pick_split(split, list(dataset))]
        return dataset
    available = datasets.get_dataset_split_names(str(data))
    return datasets.load_dataset(str(data), split=_pick_split(split, available))


_CAPTION_NAMES = ("text", "caption", "captions", "sentence", "description")


def find_columns(dataset, text_column: str | None = None, video_column: str | None = None) -> tuple[str, str]:
    """The caption and video columns of a paired dataset: the ones named, else its `Video()` column (or one named
    "video"), and "text", "caption", "captions", "sentence" or "description" (or its only string column).

    Raises:
        CommandError (`USAGE`): a named column is missing, or no column (or more than one) fits.
    """
    import datasets

    features = dataset.features
    for option, name in (("--text-column", text_column), ("--video-column", video_column)):
        if name is not None and name not in features:
            raise CommandError(f"{option} {name!r} is not a column of the data (it has {list(features)})",
                               ExitCode.USAGE)
    if video_column is None:
        videos = [name for name, feature in features.items() if isinstance(feature, datasets.Video)]
        video_column = videos[0] if len(videos) == 1 else "video" if "video" in features else None
    if text_column is None:
        named = [name for name in _CAPTION_NAMES if name in features]
        strings = [name for name, feature in features.items()
                   if getattr(feature, "dtype", None) in ("string", "large_string") and name != video_column]
        text_column = named[0] if named else strings[0] if len(strings) == 1 else None
    if video_column is None or text_column is None:
        what, option = ("videos", "--video-column") if video_column is None else ("captions", "--text-column")
        raise CommandError(f"cannot tell which column holds the {what} (columns: {list(features)}); name it with "
                           f"{option}", ExitCode.USAGE)
    return text_column, video_column


def _standard_columns(dataset, text_column: str | None, video_column: str | None, data):
    """`dataset` with its caption and video columns (`find_columns`) named "text" and "video"."""
    text_column, video_column = find_columns(dataset, text_column, video_column)
    renames = {old: new for old, new in ((text_column, "text"), (video_column, "video")) if old != new}
    clashes = [new for new in renames.values() if new in dataset.column_names]
    if clashes:
        raise CommandError(f"{data!s} has a column {clashes[0]!r} besides the one chosen for it; choose that one or "
                           f"drop it", ExitCode.USAGE)
    return dataset.rename_columns(renames) if renames else dataset


def describe_split(data: str | os.PathLike | None, split: str = "test") -> str:
    """Where `load_split(data, split)`'s data comes from, for titles and printouts.

    Returns:
        ``"synthetic MUGEN sample (<folder>), test split"`` for `make_mugen_sample`'s data (the default),
        ``"MUGEN (<folder>), ..."`` for other MUGEN data, ``"<data>, <split> split"`` otherwise.
    """
    return f"{_source(data, split)}, {split} split"


def _source(data: str | os.PathLike | None, split: str) -> str:
    from ..mugen.release import read_release, release_path

    folder = _resolve(data, log=lambda message: None)
    if folder is None or not _is_mugen(folder, split):
        return str(data)
    metadata, _ = read_release(release_path(folder, _mugen_split(split)))
    synthetic = metadata.get("type") == "synthetic"  # what make_mugen_sample writes; real releases do not say
    try:  # the home folder as ~: shorter in titles, and no user name in shared pictures
        shown = "~/" + str(folder.expanduser().resolve().relative_to(Path.home().resolve()))
    except ValueError:
        shown = str(folder)
    return f"{'synthetic MUGEN sample' if synthetic else 'MUGEN'} ({shown})"


def captions(dataset, column: str = "text") -> list[str]:
    """The captions of `dataset` (the first of each list), from the raw column so that no video gets rendered.

    Args:
        dataset: a `datasets.Dataset` or anything indexable by column name.
        column: the caption column. Defaults to `"text"`, `load_mugen`'s.
    """
    raw = dataset.with_format(None) if hasattr(dataset, "with_format") else dataset
    source = raw if column in getattr(raw, "column_names", ()) else dataset
    return [row_text(value, column) for value in source[column]]


def numpy_video_format(dataset, video_column: str = "video"):
    """`dataset` with its `Array3D`-`Array5D` video column formatted as numpy (as lists, a clip takes seconds).

    Args:
        dataset: a `datasets.Dataset`; anything else, one with a format already (e.g. a rendering transform) or with
            another video feature is returned unchanged.
        video_column: Defaults to `"video"`.
    """
    import datasets

    if not isinstance(dataset, datasets.Dataset) or dataset.format["type"] is not None:
        return dataset
    if not isinstance(dataset.features.get(video_column), (datasets.Array3D, datasets.Array4D, datasets.Array5D)):
        return dataset
    return dataset.with_format("numpy", columns=[video_column], output_all_columns=True)


def epoch_setter(dataset) -> Callable[[int], None] | None:
    """The `set_epoch` of `dataset` or of its formatting transform (e.g. `load_mugen`'s `MugenTransform`, which
    draws random start frames and captions per epoch), if any."""
    for candidate in (dataset, getattr(dataset, "format", {}).get("format_kwargs", {}).get("transform")):
        if callable(getattr(candidate, "set_epoch", None)):
            return candidate.set_epoch
    return None


def _resolve(data: str | os.PathLike | None, log: Log) -> Path | None:
    """The local folder `data` names (the sample's for `None`), or `None` for a Hub id."""
    if data is None:
        return ensure_mugen_sample(log=log)
    folder = Path(data).expanduser()
    if folder.is_dir():
        return folder
    text = str(data)
    if looks_like_local_path(text):
        raise CommandError(f"data folder {text!r} does not exist", ExitCode.USAGE)
    return None


def _is_mugen(folder: Path, split: str) -> bool:
    return (folder / "coinrun_dataset_jsons").is_dir() or (folder / f"{_mugen_split(split)}.json").is_file()


def _mugen_split(split: str) -> str:
    return "val" if split in _SYNONYMS["val"] else split


def _pick_split(split: str, available: Sequence[str]) -> str:
    for candidate in _SYNONYMS.get(split, (split,)):
        if candidate in available:
            return candidate
    raise CommandError(f"Split {split!r} not found; the data has {list(available)}.", ExitCode.USAGE)


def _load_mugen_split(
    folder: Path, split: str, assets, num_frames: int | None, training: bool, start_seed: int | None = None
):
    from ..mugen import MugenFormatError, load_mugen

    kwargs: dict[str, Any] = {"asset_dir": assets}
    if training:
        kwargs.update(resolution=224, annotation="manual", start="random" if split == "train" else "fixed")
    if start_seed is not None:
        kwargs.update(start="random", seed=start_seed)
    if num_frames is not None:
        kwargs["sequence_length"] = num_frames
    try:
        return load_mugen(folder, _mugen_split(split), **kwargs)
    except MugenFormatError as error:
        raise CommandError(f"cannot read MUGEN data {str(folder)!r}: {first_line(error)}") from error
