"""VideoCLIP's video processor: torchmultimodal's MUGEN ``VideoTransform`` as a transformers video processor.

In the reference's order: nearest-neighbour resampling to ``num_frames`` frames, torchvision's bilinear antialiased
resize of the uint8 frames to 224x224, division by 255, Kinetics normalisation; output layout (B, T, C, H, W).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from functools import partial, reduce

import numpy as np
import torch
from torchvision.transforms import functional as tvF
from transformers.feature_extraction_utils import BatchFeature
from transformers.image_utils import PILImageResampling, pil_torch_interpolation_mapping
from transformers.video_processing_utils import BaseVideoProcessor

KINETICS_MEAN = (0.43216, 0.394666, 0.37645)
KINETICS_STD = (0.22803, 0.22145, 0.216989)


def decode_video_file(path: str | os.PathLike) -> np.ndarray:
    """Decodes every frame of a video file with PyAV into uint8 RGB (T, H, W, 3).

    Raises FileNotFoundError for a missing file, ValueError for one that cannot be decoded or holds no frame."""
    import av  # imported here: only file inputs need it

    path = os.fspath(path)
    if not os.path.isfile(path):
        raise FileNotFoundError(f"Video file not found: {path!r}.")
    try:
        with av.open(path) as container:
            if not container.streams.video:
                raise ValueError(f"{path!r} has no video stream.")
            frames = [frame.to_ndarray(format="rgb24") for frame in container.decode(video=0)]
    except av.error.FFmpegError as error:
        raise ValueError(f"Cannot decode video file {path!r}: {error}. Is it a valid video?") from error
    if not frames:
        raise ValueError(f"Video file {path!r} holds no decodable frame.")
    return np.stack(frames)


def nearest_frame_indices(total_frames: int, num_frames: int) -> torch.Tensor:
    """Frame indices of the reference's ``F.interpolate(mode="nearest")`` along time: ``floor(i * scale)`` with the
    float32 scale ``total_frames / num_frames`` (short clips repeat frames)."""
    scale = np.float32(total_frames) / np.float32(num_frames)
    indices = np.floor(np.arange(num_frames, dtype=np.float32) * scale).astype(np.int64)
    return torch.from_numpy(np.minimum(indices, total_frames - 1))


class VideoCLIPVideoProcessor(BaseVideoProcessor):
    r"""Turns videos into VideoCLIP's `pixel_values_videos`, equal to torchmultimodal's `VideoTransform`.

    Accepts one video or a list of videos of any lengths and sizes: numpy arrays or torch tensors laid out
    (T, H, W, 3) or (T, 3, H, W) with pixels in [0, 255], or video file paths (decoded with PyAV).

    Attributes (saved in `video_preprocessor_config.json`): `num_frames` 32 (MUGEN's clip length), `size` 224x224
    (the reference's, S3D's input size), `image_mean` / `image_std` the Kinetics-400 statistics.
    """

    model_input_names = ["pixel_values_videos"]
    num_frames = 32
    do_sample_frames = True
    do_resize = True
    size = {"height": 224, "width": 224}
    resample = PILImageResampling.BILINEAR
    do_rescale = True
    rescale_factor = 1 / 255
    do_normalize = True
    image_mean = list(KINETICS_MEAN)
    image_std = list(KINETICS_STD)
    do_convert_rgb = False

    def preprocess(
        self, videos, num_frames: int | None = None, do_sample_frames: bool | None = None,
        do_resize: bool | None = None, size: dict | None = None, do_normalize: bool | None = None,
        image_mean: Sequence[float] | None = None, image_std: Sequence[float] | None = None,
        return_tensors: str | None = "pt", device: str | torch.device | None = None, **unused,
    ) -> BatchFeature:
        """Processes videos; every option left None takes the processor's attribute of the same name.

        Args:
            videos: one video or a list of videos (arrays, tensors or file paths).
            num_frames: frames per clip (32).
            do_sample_frames: resample every clip to `num_frames` frames (True, as the reference).
            do_resize: resize frames to `size`, skipped for frames already that size (True, as the reference).
            size: `{"height", "width"}` (224x224).
            do_normalize: divide by 255 and normalise with `image_mean` / `image_std` (True).
            return_tensors: "pt" (default) stacks into one (B, T, C, H, W) tensor; None returns (T, C, H, W) ones.
            device: where to run the resize and normalisation (default: where the videos are).

        Returns:
            `BatchFeature` with `pixel_values_videos`.
        """
        _reject_unknown_options(unused)
        num_frames = self.num_frames if num_frames is None else num_frames
        do_sample_frames = self.do_sample_frames if do_sample_frames is None else do_sample_frames
        do_resize = self.do_resize if do_resize is None else do_resize
        size = dict(self.size if size is None else size)
        do_normalize = self.do_normalize if do_normalize is None else do_normalize
        mean = self.image_mean if image_mean is None else image_mean
        std = self.image_std if image_std is None else image_std
        if num_frames is not None and num_frames < 1:
            raise ValueError(f"`num_frames` must be at least 1, got {num_frames}.")
        videos = [_to_tchw_tensor(video, index) for index, video in enumerate(_as_video_list(videos))]
        if device is not None:
            videos = [video.to(device) for video in videos]
        target_size = (size["height"], size["width"]) if do_resize else None
        plans = [_VideoPlan.make(video, num_frames if do_sample_frames else None, target_size) for video in videos]
        stack = return_tensors in ("pt", "torch")
        if not stack and return_tensors is not None:
            raise ValueError(f"`return_tensors` must be 'pt' or None, got {return_tensors!r}.")
        shapes = {plan.output_shape for plan in plans}
        if stack and len(shapes) > 1:
            raise ValueError(
                f"Processed videos have different shapes {sorted(shapes)} and cannot be stacked; enable "
                f"do_resize/do_sample_frames or pass return_tensors=None for a list."
            )
        normalization = _normalization_tensors(mean, std, videos[0].device) if do_normalize else None
        outputs = _allocate_outputs(plans, normalization is not None, stack)
        interpolation = pil_torch_interpolation_mapping[PILImageResampling(self.resample)]
        tasks = [
            partial(_process_frames, plan, start, stop, output, interpolation, normalization)
            for plan, output in zip(plans, outputs if not stack else outputs.unbind(0))
            for start, stop in plan.chunks(FRAMES_PER_TASK)
        ]
        _run_tasks(tasks, parallel=videos[0].device.type == "cpu")
        return BatchFeature(data={"pixel_values_videos": outputs})


# Frames per task: few enough to stay in the CPU cache between resize and normalisation (resizing all B*T frames
# in one call, as the reference does, is ~2x slower per frame), enough to make the per-task overhead negligible.
FRAMES_PER_TASK = 4


@dataclass(frozen=True)
class _VideoPlan:
    """One video's frames and what to do with them: which frames to keep, the output size."""

    frames: torch.Tensor  # (T, C, H, W), possibly a channels-last view
    frame_indices: torch.Tensor | None  # frames to keep, None for all of them
    resize_to: tuple[int, int] | None  # None when no resize is needed

    @classmethod
    def make(cls, frames: torch.Tensor, num_frames: int | None, size: tuple[int, int] | None) -> _VideoPlan:
        indices = None
        if num_frames is not None and frames.shape[0] != num_frames:
            indices = nearest_frame_indices(frames.shape[0], num_frames).to(frames.device)
        # The reference skips the resize for frames already at the target size.
        resize_to = size if size is not None and tuple(frames.shape[-2:]) != size else None
        return cls(frames, indices, resize_to)

    @property
    def output_shape(self) -> tuple[int, ...]:
        num_frames = self.frames.shape[0] if self.frame_indices is None else len(self.frame_indices)
        height, width = self.resize_to or tuple(self.frames.shape[-2:])
        return (num_frames, self.frames.shape[1], height, width)

    def chunks(self, frames_per_chunk: int) -> list[tuple[int, int]]:
        """(start, stop) output-frame ranges covering the output."""
        total = self.output_shape[0]
        return [(start, min(start + frames_per_chunk, total)) for start in range(0, total, frames_per_chunk)]

    def selected_frames(self, start: int, stop: int) -> torch.Tensor:
        return self.frames[start:stop] if self.frame_indices is None else self.frames[self.frame_indices[start:stop]]


def _normalization_tensors(
    mean: Sequence[float], std: Sequence[float], device: torch.device
) -> tuple[torch.Tensor, torch.Tensor]:
    """Mean and std as float32 (C, 1, 1) tensors, as torchvision's ``normalize`` builds them."""
    return tuple(torch.as_tensor(stat, dtype=torch.float32, device=device).view(-1, 1, 1) for stat in (mean, std))


def _allocate_outputs(plans: list[_VideoPlan], normalize: bool, stack: bool) -> torch.Tensor | list[torch.Tensor]:
    """Outputs filled in place by the tasks: one (B, T, C, H, W) tensor when stacking (no ``torch.stack`` copy)."""
    dtypes = [torch.float32 if normalize or plan.frames.is_floating_point() else plan.frames.dtype for plan in plans]
    device = plans[0].frames.device
    if stack:
        shape = (len(plans), *plans[0].output_shape)
        return torch.empty(shape, dtype=reduce(torch.promote_types, dtypes), device=device)
    return [torch.empty(plan.output_shape, dtype=dtype, device=device) for plan, dtype in zip(plans, dtypes)]


def _process_frames(
    plan: _VideoPlan, start: int, stop: int, output: torch.Tensor, interpolation,
    normalization: tuple[torch.Tensor, torch.Tensor] | None,
) -> None:
    """Samples, resizes and normalises output frames ``start:stop`` of one video into ``output[start:stop]``; frames
    are resized independently, so a few at a time give exactly the reference's values."""
    frames = plan.selected_frames(start, stop)
    if plan.resize_to is not None:
        frames = tvF.resize(frames, list(plan.resize_to), interpolation=interpolation, antialias=True)
    target = output[start:stop]
    target.copy_(frames)
    if normalization is not None:
        mean, std = normalization
        # ``(frames.float() / 255 - mean) / std``: the reference's operations and order, hence bit-identical.
        target.div_(255.0).sub_(mean).div_(std)


def _run_tasks(tasks: list[Callable[[], None]], parallel: bool) -> None:
    """Runs the tasks, on ``torch.get_num_threads()`` single-threaded torch threads when `parallel` (else inline).

    torchvision's uint8 antialiased resize, which dominates, runs on one core whatever torch's thread setting."""
    workers = min(torch.get_num_threads(), len(tasks)) if parallel else 1
    if workers <= 1:
        for task in tasks:
            task()
        return
    # Inference mode is thread-local: pool threads must fill outputs allocated under the caller's mode.
    in_inference_mode = torch.is_inference_mode_enabled()
    with _single_threaded_pool(workers) as pool:
        for future in [pool.submit(_run_in_mode, task, in_inference_mode) for task in tasks]:
            future.result()


def _run_in_mode(task: Callable[[], None], in_inference_mode: bool) -> None:
    with torch.inference_mode(in_inference_mode):
        task()


@contextmanager
def _single_threaded_pool(workers: int) -> Iterator[ThreadPoolExecutor]:
    """A thread pool running torch single-threaded; per call, so safe after ``fork`` (DataLoader workers).

    ``torch.set_num_threads(1)`` in a pool thread changes torch's process-wide default too, hence the restore."""
    previous = torch.get_num_threads()
    pool = ThreadPoolExecutor(max_workers=workers, initializer=torch.set_num_threads, initargs=(1,))
    try:
        yield pool
    finally:
        pool.shutdown(wait=True)
        torch.set_num_threads(previous)


def _reject_unknown_options(options: dict) -> None:
    # Options that transformers' pipelines pass for every processor and that mean nothing here.
    ignored = {"input_data_format", "data_format", "do_convert_rgb", "video_metadata", "return_metadata"}
    unknown = sorted(set(options) - ignored)
    if unknown:
        raise TypeError(
            f"Unknown video processor option(s) {unknown}; valid options are num_frames, do_sample_frames, "
            f"do_resize, size, do_normalize, image_mean, image_std, return_tensors, device."
        )


def _as_video_list(videos) -> list:
    """Splits the accepted input forms into a list of single videos."""
    if isinstance(videos, (np.ndarray, torch.Tensor)) and videos.ndim == 5:
        videos = list(videos)
    elif isinstance(videos, (str, os.PathLike, np.ndarray, torch.Tensor)):
        videos = [videos]
    elif isinstance(videos, (list, tuple)):
        videos = list(videos)
    else:
        raise TypeError(
            "Videos must be a numpy array, a torch tensor, a file path, or a list of them; "
            f"got {type(videos).__name__}."
        )
    if not videos:
        raise ValueError("No video given (empty list); pass at least one video.")
    return videos


def _to_tchw_tensor(video, index: int) -> torch.Tensor:
    """One video as a (T, C, H, W) tensor (a view of (T, H, W, C) input, no copy), validated."""
    if isinstance(video, (str, os.PathLike)):
        video = decode_video_file(video)
    if isinstance(video, np.ndarray):
        if video.dtype == object:
            raise TypeError(f"Video {index} is an object array; pass a numeric array of frames.")
        video = torch.from_numpy(np.ascontiguousarray(video))
    if not isinstance(video, torch.Tensor):
        raise TypeError(
            f"Video {index} is a {type(video).__name__}; pass a numpy array, a torch tensor or a file path."
        )
    if video.ndim != 4:
        raise ValueError(
            f"Video {index} has shape {tuple(video.shape)}; expected 4 dimensions, (T, H, W, C) or (T, C, H, W)."
        )
    if video.shape[0] == 0:
        raise ValueError(f"Video {index} has zero frames.")
    if video.shape[-1] == 3:
        video = video.permute(0, 3, 1, 2)
    elif video.shape[1] != 3:
        raise ValueError(
            f"Video {index} has shape {tuple(video.shape)}: no dimension of size 3 where channels go. VideoCLIP "
            f"takes RGB videos, (T, H, W, 3) or (T, 3, H, W); convert grayscale or RGBA frames to RGB first."
        )
    return _checked_pixels(video, index)


def _checked_pixels(video: torch.Tensor, index: int) -> torch.Tensor:
    if video.dtype == torch.uint8:
        return video
    if video.dtype == torch.bool or video.is_complex():
        raise TypeError(f"Video {index} has dtype {video.dtype}; pass uint8 pixels.")
    if video.is_floating_point() and not torch.isfinite(video).all():
        raise ValueError(f"Video {index} contains NaN or infinite pixel values.")
    low, high = video.min().item(), video.max().item()
    if low < 0 or high > 255:
        raise ValueError(
            f"Video {index} has pixel values in [{low}, {high}], outside [0, 255]. Pass uint8 frames, or "
            f"scale float frames to [0, 255] (multiply [0, 1] frames by 255)."
        )
    return video.float() if video.is_floating_point() else video.to(torch.uint8)


__all__ = ["VideoCLIPVideoProcessor", "decode_video_file", "nearest_frame_indices"]
