"""Loading a split of VideoCLIP data: MUGEN (or the synthetic MUGEN sample, cached), `save_to_disk` folders and
Hub datasets; reading its captions without rendering videos."""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from ..common.constants import cache_root
from ..common.errors import CommandError, ExitCode, first_line
from .collator import row_text

Log = Callable[[str], None]

SAMPLE_NUM_CLIPS = 48
"""Clips in the cached synthetic sample: at seed 0, 9 of them land in the test split with manual captions,
enough for one tutorial batch of 8 (the sample gives manual captions to about 80% of the clips)."""
SAMPLE_SEED = 0
_SAMPLE_COMPLETE = ".complete"


def ensure_mugen_sample(cache_dir: str | os.PathLike | None = None, log: Log = print) -> Path:
    """The synthetic MUGEN sample in the cache, generated on first use.

    Generation writes into a temporary sibling folder that is renamed into place when complete, so an
    interrupted run never leaves a half-written sample behind.

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
        if staging.exists():
            shutil.rmtree(staging, ignore_errors=True)
    return folder


def load_split(
    data: str | os.PathLike | None, split: str = "test", assets: str | os.PathLike | None = None,
    num_frames: int | None = None, *, training: bool = False, log: Log = print,
):
    """Loads one split of paired caption/video data.

    Args:
        data: a MUGEN folder (holding ``coinrun_dataset_jsons/``, or its release folder; rendered lazily by
            `modeling_videoclip.mugen.load_mugen`), a folder written by `save_to_disk`, or a Hub dataset id /
            `load_dataset` path. `None` is the synthetic MUGEN sample, generated once into the cache
            (`ensure_mugen_sample`).
        split: the split name: `"train"`, `"val"` (`"validation"`, `"valid"`, `"dev"` are accepted for it) or
            `"test"`. Defaults to `"test"`, the split the tutorial and the reference's evaluation use.
        assets: MUGEN's sprite folder. Defaults to `load_mugen`'s, ``<data>/assets``.
        num_frames: frames per MUGEN clip. Defaults to `load_mugen`'s 32, the reference's.
        training: render MUGEN as the reference's VideoCLIP training data (224x224 frames, a random start frame
            in the train split, a fixed one elsewhere so that per-epoch validation figures are comparable).
            Defaults to False: `load_mugen`'s defaults (256x256, fixed start), as the tutorial and evaluation.
        log: for the note when the sample is generated. Defaults to `print`.

    Returns:
        A `datasets.Dataset` whose rows have a text and a video column.

    Raises:
        CommandError: the data does not exist or cannot be read, has no such split, or the split is empty.
    """
    import datasets

    folder = _resolve(data, log)
    try:
        if folder is not None and _is_mugen(folder, split):
            dataset = _load_mugen_split(folder, split, assets, num_frames, training)
        elif folder is not None and ((folder / "dataset_dict.json").is_file() or (folder / "state.json").is_file()):
            dataset = datasets.load_from_disk(str(folder))
            if isinstance(dataset, datasets.DatasetDict):
                dataset = dataset[_pick_split(split, list(dataset))]
        else:
            available = datasets.get_dataset_split_names(str(data))
            dataset = datasets.load_dataset(str(data), split=_pick_split(split, available))
    except FileNotFoundError as error:  # also MUGEN's missing sprites and datasets' DatasetNotFoundError
        raise CommandError(f"cannot read data {str(data)!r}: {first_line(error)}") from error
    if len(dataset) == 0:
        report = getattr(dataset, "mugen_report", "no rows")
        raise CommandError(f"the {split} split of {_source(data, split)} has no clip to use ({report})")
    return dataset


def describe_split(data: str | os.PathLike | None, split: str = "test") -> str:
    """A short "where from" line for `load_split(data, split)`'s data, e.g. for titles and printouts.

    Returns:
        ``"synthetic MUGEN sample (<folder>), test split"`` for data written by `make_mugen_sample` (the default
        data), ``"MUGEN (<folder>), ..."`` for other MUGEN data, ``"<data>, <split> split"`` otherwise.
    """
    return f"{_source(data, split)}, {split} split"


def _source(data: str | os.PathLike | None, split: str) -> str:
    from ..mugen.release import read_release, release_path

    folder = _resolve(data, log=lambda message: None)
    if folder is None or not _is_mugen(folder, split):
        return str(data)
    metadata, _ = read_release(release_path(folder, _mugen_split(split)))
    synthetic = metadata.get("type") == "synthetic"  # what make_mugen_sample writes; real releases do not say
    return f"{'synthetic MUGEN sample' if synthetic else 'MUGEN'} ({_display_path(folder)})"


def captions(dataset, column: str = "text") -> list[str]:
    """The captions of `dataset` (the first of each list of captions), read from the raw column when there is
    one: a rendering transform (`load_mugen`'s) would otherwise render every video just to return the texts.

    Args:
        dataset: a `datasets.Dataset` or anything indexable by column name.
        column: the caption column. Defaults to `"text"`, `load_mugen`'s.
    """
    raw = dataset.with_format(None) if hasattr(dataset, "with_format") else dataset
    source = raw if column in getattr(raw, "column_names", ()) else dataset
    return [row_text(value, column) for value in source[column]]


def numpy_video_format(dataset, video_column: str = "video"):
    """Returns `dataset` formatted so its fixed-shape video column (`Array3D`-`Array5D`) comes out as numpy.

    Without a format, `datasets` hands such a column over as nested Python lists, whose conversion costs seconds
    per clip; with numpy formatting it is a copy. Datasets with a format already (e.g. a rendering transform)
    and other video features are returned unchanged.

    Args:
        dataset: a `datasets.Dataset` (anything else is returned unchanged).
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
    if folder.exists() or text.startswith((".", "~", os.path.sep)) or text.count("/") > 1:
        raise CommandError(f"data folder {text!r} does not exist", ExitCode.USAGE)
    return None


def _is_mugen(folder: Path, split: str) -> bool:
    return (folder / "coinrun_dataset_jsons").is_dir() or (folder / f"{_mugen_split(split)}.json").is_file()


def _mugen_split(split: str) -> str:
    return "val" if split in _SYNONYMS["val"] else split


_SYNONYMS = {"val": ("val", "validation", "valid", "dev"), "validation": ("validation", "val", "valid", "dev")}


def _pick_split(split: str, available: Sequence[str]) -> str:
    for candidate in _SYNONYMS.get(split, (split,)):
        if candidate in available:
            return candidate
    raise CommandError(f"Split {split!r} not found; the data has {list(available)}.", ExitCode.USAGE)


def _load_mugen_split(folder: Path, split: str, assets, num_frames: int | None, training: bool):
    from ..mugen import MugenFormatError, load_mugen

    kwargs: dict[str, Any] = {"asset_dir": assets}
    if training:
        kwargs.update(resolution=224, annotation="manual", start="random" if split == "train" else "fixed")
    if num_frames is not None:
        kwargs["sequence_length"] = num_frames
    try:
        return load_mugen(folder, _mugen_split(split), **kwargs)
    except MugenFormatError as error:
        raise CommandError(f"cannot read MUGEN data {str(folder)!r}: {first_line(error)}") from error


def _display_path(path: Path) -> str:
    """`path` with the home folder shown as ``~`` (shorter in titles, and no user name in shared pictures)."""
    try:
        return "~/" + str(Path(path).expanduser().resolve().relative_to(Path.home().resolve()))
    except ValueError:
        return str(path)
