"""L2-normalised embeddings of texts, videos or paired datasets: one batched loop (inference mode, eval mode, data
prepared by `VideoCLIPDataCollator` in DataLoader workers, optional bf16).

On CUDA the workers only decode and sample frames (uint8 clips); the resize and normalisation run on the model's
device. Under ``torchrun`` / ``accelerate launch`` (an initialised ``torch.distributed`` process group, see
`start_distributed`), a map-style pool is split into one contiguous block per rank and every rank receives the
embeddings of the whole pool, in dataset order."""

from __future__ import annotations

import os
import warnings
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from ..data.collator import VideoCLIPDataCollator

_TEXT_BATCH_SIZE = 64  # no reference value (it embeds texts with the videos); DistilBERT on short captions is cheap
_VIDEO_BATCH_SIZE = 8  # videos (or pairs) per forward pass: the tutorial's ``MUGENDataModule(batch_size=8)``


@dataclass(eq=False)
class _IterableSource(torch.utils.data.IterableDataset):
    iterable: Iterable[Any]

    def __iter__(self) -> Iterator[Any]:
        return iter(self.iterable)


def start_distributed() -> bool:
    """Joins the process group a launcher describes (``torchrun``, ``accelerate launch``: ``WORLD_SIZE`` > 1 and
    ``RANK``, ``MASTER_ADDR``, ``MASTER_PORT`` in the environment), unless one is already initialised. The group
    uses gloo: only CPU tensors (the embeddings) cross it, whatever device the model runs on.

    Returns:
        Whether this process is one of several ranks of an initialised process group.
    """
    if not torch.distributed.is_available():
        return False
    if not torch.distributed.is_initialized() and int(os.environ.get("WORLD_SIZE", "1")) > 1:
        torch.distributed.init_process_group("gloo")
    return _rank_and_world_size()[1] > 1


def is_main_process() -> bool:
    """Whether this process is rank 0 of the process group, or not distributed: the one that prints and writes."""
    return _rank_and_world_size()[0] == 0


def _rank_and_world_size() -> tuple[int, int]:
    if torch.distributed.is_available() and torch.distributed.is_initialized():
        return torch.distributed.get_rank(), torch.distributed.get_world_size()
    return 0, 1


def shard_bounds(total: int, rank: int, world_size: int) -> tuple[int, int]:
    """`rank`'s contiguous block ``[start, stop)`` of `total` items over `world_size` ranks: the first
    ``total % world_size`` ranks hold one item more, so that the blocks cover every item once, in order."""
    base, extra = divmod(total, world_size)
    start = rank * base + min(rank, extra)
    return start, start + base + (rank < extra)


def _gathered(local: torch.Tensor) -> torch.Tensor:
    """Every rank's `local` rows, concatenated in rank order (hence in dataset order for `shard_bounds` blocks)."""
    parts: list[torch.Tensor | None] = [None] * _rank_and_world_size()[1]
    torch.distributed.all_gather_object(parts, local)  # blocks may differ in size (uneven shards, empty ones)
    return torch.cat([part for part in parts if part.numel()])


def _loader(source: Any, collate, batch_size: int, num_workers: int, device: torch.device):
    """A DataLoader over a map-style source (this rank's `shard_bounds` block of it when distributed), a torch
    `IterableDataset` or an iterable; the number of items it yields if known; and whether it is a shard."""
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
        raise ValueError(f"batch_size must be a positive integer, got {batch_size!r}")
    if isinstance(source, (np.ndarray, torch.Tensor)) and source.ndim == 4:
        source = [source]  # one video
    total = None
    if isinstance(source, torch.utils.data.IterableDataset):
        data = source
    elif hasattr(source, "__len__") and hasattr(source, "__getitem__") and not isinstance(source, dict):
        data, total = source, len(source)
    elif isinstance(source, Iterable):
        if num_workers:
            warnings.warn("num_workers is ignored for a plain iterable (each worker would replay it); wrap it in a "
                          "torch IterableDataset that shards by worker, or pass a datasets.Dataset", stacklevel=3)
        data, num_workers = _IterableSource(source), 0
    else:
        raise TypeError(f"expected a dataset, a sequence or an iterable of videos, got {type(source).__name__}")
    if total == 0:
        raise ValueError("the dataset is empty: nothing to embed")
    rank, world_size = _rank_and_world_size()
    sharded = world_size > 1 and total is not None
    if sharded:
        start, stop = shard_bounds(total, rank, world_size)
        data, total = torch.utils.data.Subset(data, range(start, stop)), stop - start
    elif world_size > 1:
        warnings.warn("a source without a length cannot be sharded: every rank embeds all of it", stacklevel=3)
    loader = torch.utils.data.DataLoader(data, batch_size=batch_size, shuffle=False, num_workers=num_workers,
                                         collate_fn=collate, pin_memory=device.type == "cuda")
    return loader, total, sharded


def _normalized(output: Any) -> torch.Tensor:
    """The unit-norm float32 CPU `pooler_output` of a model output (or of a tensor)."""
    pooled = output if isinstance(output, torch.Tensor) else getattr(output, "pooler_output", None)
    if pooled is None:
        raise TypeError(f"expected a model output with `pooler_output` or a tensor, got {type(output).__name__}")
    return F.normalize(pooled.float(), dim=-1).cpu()


def _embed(
    model: torch.nn.Module, processor: Any, source: Any, text_column: str | None, video_column: str | None, unit: str,
    batch_size: int, num_workers: int, device: str | torch.device | None, autocast_bf16: bool, progress: bool,
    preprocess_on_device: bool | None = None,
) -> list[torch.Tensor]:
    """The one embedding loop: `[text_embeds]`, `[video_embeds]` or both, each `(N, projection_dim)`."""
    from tqdm.auto import tqdm

    device = torch.device(next(model.parameters(), torch.empty(0)).device if device is None else device)
    on_device = device.type == "cuda" if preprocess_on_device is None else preprocess_on_device
    collate = VideoCLIPDataCollator(processor, text_column, video_column, return_loss=False,
                                    defer_video_resize=on_device and video_column is not None)
    loader, total, sharded = _loader(source, collate, batch_size, num_workers, device)
    sides = [side for side, column in (("text", text_column), ("video", video_column)) if column is not None]
    chunks: dict[str, list[torch.Tensor]] = {side: [] for side in sides}
    was_training = model.training
    bar = tqdm(total=total, desc=f"Embedding {unit}s", unit=unit, disable=not progress or not is_main_process(),
               dynamic_ncols=True)
    try:
        model.eval()
        with torch.inference_mode(), bar:
            for batch in loader:
                with torch.autocast(device_type=device.type, dtype=torch.bfloat16, enabled=autocast_bf16):
                    if "text" in chunks:
                        ids, mask = batch["input_ids"].to(device), batch["attention_mask"].to(device)
                        chunks["text"].append(_normalized(model.get_text_features(input_ids=ids, attention_mask=mask)))
                    if "video" in chunks:
                        pixels = collate.finish_videos(batch, device)["pixel_values_videos"]
                        pixels = pixels.to(device, non_blocking=True)
                        chunks["video"].append(_normalized(model.get_video_features(pixel_values_videos=pixels)))
                bar.update(len(chunks[sides[0]][-1]))
    finally:
        model.train(was_training)
    if sharded:
        return [_gathered(torch.cat(chunks[side]) if chunks[side] else torch.empty(0)) for side in sides]
    if not chunks[sides[0]]:
        raise ValueError("the dataset is empty: nothing to embed")
    return [torch.cat(chunks[side]) for side in sides]


def embed_texts(
    model: torch.nn.Module, processor: Any, texts: str | Iterable[str], batch_size: int = _TEXT_BATCH_SIZE,
    device: str | torch.device | None = None, progress: bool = True, autocast_bf16: bool = False,
) -> torch.Tensor:
    """L2-normalised text embeddings (`model.get_text_features(...).pooler_output`), batch by batch.

    Args:
        model: a VideoCLIP model (anything with `get_text_features(input_ids=, attention_mask=)`).
        processor: its processor (`processor(text=list_of_str, return_tensors="pt")`).
        texts: one string or an iterable of strings.
        batch_size: texts per forward pass. Defaults to 64 (no reference value; text encoding is cheap).
        device: where to run. Defaults to `None`: the model's device.
        progress: show a tqdm progress bar. Defaults to `True`.
        autocast_bf16: run under bf16 autocast. Defaults to `False` (the reference evaluates in float32).

    Returns:
        `(num_texts, projection_dim)` float32 CPU tensor, unit-norm rows.
    """
    texts = [texts] if isinstance(texts, str) else list(texts)
    if not texts:
        raise ValueError("no texts to embed")
    for i, text in enumerate(texts):
        if not isinstance(text, str):
            raise TypeError(f"texts must be strings, item {i} is {type(text).__name__}")
    return _embed(model, processor, texts, "text", None, "text", batch_size, 0, device, autocast_bf16, progress)[0]


def embed_videos(
    model: torch.nn.Module, processor: Any, videos_or_dataset: Any, batch_size: int = _VIDEO_BATCH_SIZE,
    num_workers: int = 0, device: str | torch.device | None = None, autocast_bf16: bool = False, progress: bool = True,
    video_column: str = "video", preprocess_on_device: bool | None = None,
) -> torch.Tensor:
    """L2-normalised video embeddings (`get_video_features(...).pooler_output`), prepared in DataLoader workers.

    Args:
        model: a VideoCLIP model (anything with `get_video_features(pixel_values_videos=)`).
        processor: its processor (`processor(videos=list_of_uint8_arrays, return_tensors="pt")`).
        videos_or_dataset: a dataset, sequence or iterable of dicts or of uint8 `(T, H, W, 3)` arrays; or one array.
        batch_size: videos per forward pass. Defaults to 8, the tutorial's batch size.
        num_workers: DataLoader workers preparing batches. Defaults to 0 (in this process).
        device / autocast_bf16 / progress: as `embed_texts`.
        video_column: key of the video in dict items. Defaults to `"video"`, `load_mugen`'s column.
        preprocess_on_device: the workers yield uint8 clips, resized and normalised on `device` (same operations;
            on CPU the same numbers). Defaults to `None`: on CUDA only, where the CPU side would starve the GPU.

    Returns:
        `(num_videos, projection_dim)` float32 CPU tensor, unit-norm rows (of the whole pool on every rank when
        distributed).
    """
    return _embed(model, processor, videos_or_dataset, None, video_column, "video", batch_size, num_workers,
                  device, autocast_bf16, progress, preprocess_on_device)[0]


def embed_dataset(
    model: torch.nn.Module, processor: Any, dataset: Any, batch_size: int = _VIDEO_BATCH_SIZE, num_workers: int = 0,
    device: str | torch.device | None = None, autocast_bf16: bool = False, progress: bool = True,
    text_column: str = "text", video_column: str = "video", preprocess_on_device: bool | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Text and video embeddings of a paired dataset in one pass (each item is read, rendered, once).

    Args:
        model / processor: a VideoCLIP model (`get_text_features`, `get_video_features`) and its processor.
        dataset: a dataset, sequence or iterable of dicts with a text and a video entry (e.g. `load_mugen(...)`).
        batch_size / num_workers / device / autocast_bf16 / progress / preprocess_on_device: as `embed_videos`.
        text_column / video_column: Default `"text"` / `"video"`, `load_mugen`'s columns.

    Returns:
        `(text_embeds, video_embeds)`, each `(N, projection_dim)` float32 on CPU with unit-norm rows; row i
        of both comes from item i, ready for `retrieval_metrics`.
    """
    return tuple(_embed(model, processor, dataset, text_column, video_column, "pair", batch_size, num_workers,
                        device, autocast_bf16, progress, preprocess_on_device))
