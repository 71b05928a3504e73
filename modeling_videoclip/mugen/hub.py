"""Publishing MUGEN metadata (and optionally pre-rendered mp4 clips) to a Hugging Face dataset repo."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Sequence
from pathlib import Path

from ..common.paths import safe_file_stem
from .dataset import load_mugen
from .release import SPLITS, available_splits

__all__ = ["push_mugen_to_hub", "write_mugen_hub_folder"]

_CARD = """---
license: cc-by-nc-4.0
task_categories:
- text-to-video
- video-classification
tags:
- mugen
- coinrun
- video-text-retrieval
configs:
- config_name: default
  data_files:
{data_files}
---

# {title}

Metadata of [MUGEN](https://mugen-org.github.io/) clips (Hayes et al. 2022, arXiv 2204.08058): 3.2-second
CoinRun game clips with an auto-generated caption and, for some, human captions. MUGEN videos are not stored as
pixels: each row points to the clip's game-state JSON (`json_file`, relative to the data folder), from which
`modeling_videoclip.mugen` renders frames on access.{mp4_note}

| split | clips |
|---|---|
{counts}

Columns: `id`, `text` (the caption chosen as in the reference loader, annotation="{annotation}"),
`annotations` (all captions: index 0 auto, the rest manual), `num_frames`, `json_file`, `audio_file`,
`world_theme_n`, `game_events` and `gt_characters` (JSON strings){video_col}.

## Loading and rendering

```python
from modeling_videoclip.mugen import load_mugen
ds = load_mugen("/path/to/mugen", split="test")   # the folder holding coinrun_dataset_jsons/
ds[0]["video"].shape                               # (32, 256, 256, 3), rendered on access
```

Rendering needs the game JSONs and CoinRun's sprites (MUGEN_baseline's `lib/data/coinrun/assets`), which are
not part of this repo. MUGEN is released under CC-BY-NC; the Kenney sprites are CC0.
"""


def write_mugen_hub_folder(
    folder: str | os.PathLike, data_dir: str | os.PathLike, *, splits: Sequence[str] = SPLITS,
    asset_dir: str | os.PathLike | None = None, data_folder: str | os.PathLike | None = None,
    render_mp4: bool = False, resolution: int = 256, sequence_length: int = 32, sample_every_n_frames: int = 3,
    annotation: str = "all", title: str = "MUGEN clips",
) -> Path:
    """Write what :func:`push_mugen_to_hub` uploads to ``folder`` and return it as a :class:`~pathlib.Path`:
    ``data/<split>.parquet`` and ``README.md``; with `render_mp4`, the Hub's video layout instead
    (``<split>/<id>.mp4`` and ``<split>/metadata.jsonl`` with ``file_name``), which the dataset viewer plays.

    Args:
        folder: where to write.
        data_dir, asset_dir, data_folder, resolution, sequence_length, sample_every_n_frames, annotation: as in
            :func:`~modeling_videoclip.mugen.load_mugen` (``annotation="all"`` keeps every clip that has a caption).
        splits: splits to export; missing release JSONs are skipped (train, val, test).
        render_mp4: also render each clip (fixed start) to ``<split>/<id>.mp4`` (False).
        title: the dataset card's heading.
    """
    from .video import render_clip_to_mp4

    folder = Path(folder)
    counts, data_files = [], []
    for split in available_splits(data_dir, splits):
        ds = load_mugen(data_dir, split, asset_dir=asset_dir, data_folder=data_folder, resolution=resolution,
                        sequence_length=sequence_length, sample_every_n_frames=sample_every_n_frames,
                        annotation=annotation, with_video=render_mp4)
        meta = ds.with_transform(None)
        meta.reset_format()
        root = ds.mugen_data_folder  # paths relative to it: local paths mean nothing on the Hub
        meta = meta.map(lambda b: {k: [os.path.relpath(p, root) if p else "" for p in b[k]]
                                   for k in ("json_file", "audio_file")}, batched=True)
        if render_mp4:  # the Hub's video layout: <split>/<clip>.mp4 beside <split>/metadata.jsonl (file_name)
            names = []
            for i in range(len(ds)):
                row = ds[i]
                names.append(f"{safe_file_stem(row['id'], f'clip{i}')}.mp4")
                render_clip_to_mp4(row["video"], folder / split / names[-1])
            meta.add_column("file_name", names).to_json(str(folder / split / "metadata.jsonl"))
            data_files.append(f"  - split: {split}\n    path: {split}/*")
        else:
            (folder / "data").mkdir(parents=True, exist_ok=True)
            meta.to_parquet(str(folder / "data" / f"{split}.parquet"))
            data_files.append(f"  - split: {split}\n    path: data/{split}.parquet")
        counts.append(f"| {split} | {len(meta)} |")
    card = _CARD.format(
        data_files="\n".join(data_files), title=title, counts="\n".join(counts), annotation=annotation,
        mp4_note=_MP4_NOTE * render_mp4, video_col=", `video` (the clip as mp4, fixed start)" if render_mp4 else "",
    )
    (folder / "README.md").write_text(card, encoding="utf-8")
    return folder


_MP4_NOTE = (
    " Here each clip is also rendered (fixed start) as `<split>/<id>.mp4` beside `<split>/metadata.jsonl`, the Hub's"
    " video layout: the dataset viewer plays them and `load_dataset` gives a `Video()` column."
)


def push_mugen_to_hub(
    repo_id: str, data_dir: str | os.PathLike, *, token: str | None = None, private: bool = False,
    revision: str | None = None, commit_message: str | None = None, render_mp4: bool = False, **kwargs,
) -> str:
    """Upload MUGEN metadata as Parquet plus a dataset card (and optionally mp4 clips) in one commit; return its URL.

    Args:
        repo_id: dataset repo id, e.g. ``"user/mugen"`` (created if missing).
        data_dir: folder holding ``coinrun_dataset_jsons/`` (see :func:`~modeling_videoclip.mugen.load_mugen`).
        token: Hub token (default: huggingface_hub's usual lookup, e.g. ``HF_TOKEN``).
        private: create the repo as private (False).
        revision: branch to commit to (default: the repo's default branch).
        commit_message: defaults to "Upload MUGEN metadata".
        render_mp4: also upload each clip rendered to mp4 (False).
        **kwargs: passed to :func:`write_mugen_hub_folder` (``splits``, ``asset_dir``, ``resolution``...).
    """
    from huggingface_hub import HfApi

    api = HfApi(token=token)
    with tempfile.TemporaryDirectory(prefix="mugen-hub-") as tmp:
        write_mugen_hub_folder(tmp, data_dir, render_mp4=render_mp4, **kwargs)
        api.create_repo(repo_id, repo_type="dataset", private=private, exist_ok=True)
        info = api.upload_folder(
            folder_path=tmp, repo_id=repo_id, repo_type="dataset", revision=revision,
            commit_message=commit_message or "Upload MUGEN metadata" + (" and mp4 clips" if render_mp4 else ""),
        )
    return str(getattr(info, "commit_url", info))
