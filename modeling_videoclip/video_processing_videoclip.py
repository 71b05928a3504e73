"""VideoCLIP's video processor: torchmultimodal's MUGEN ``VideoTransform`` as a transformers video processor.

In the reference's order: nearest-neighbour resampling to ``num_frames`` frames, torchvision's bilinear antialiased
resize of the uint8 frames to 224x224, division by 255, Kinetics normalisation; output layout (B, T, C, H, W).
"""

from __future__ import annotations

import io
import os
import re
import urllib.parse
import urllib.request
import warnings
from collections.abc import Callable, Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from functools import partial, reduce
from typing import Any

import numpy as np
import torch
from torchvision.transforms import functional as tvF
from transformers.feature_extraction_utils import BatchFeature
from transformers.image_utils import PILImageResampling, pil_torch_interpolation_mapping
from transformers.video_processing_utils import BaseVideoProcessor
from transformers.video_utils import VideoMetadata

KINETICS_MEAN = (0.43216, 0.394666, 0.37645)
KINETICS_STD = (0.22803, 0.22145, 0.216989)


URL_TIMEOUT_SECONDS = 60  # per network operation when downloading a video URL; no reference value
_URL_SCHEME = re.compile(r"^([A-Za-z][A-Za-z0-9+.-]*)://")
_DECODER_CHUNK = 32  # frames per torchcodec `get_frames_at` call: bounds memory when iterating a long video


class VideoDecodeError(ValueError):
    """A video that cannot be read (undecodable, no frame, a folder, an unsupported or failing URL); the message names
    the file or URL and the fix."""


class FrameCountMismatch(Exception):
    """Raised by `VideoSource.iter_frames_at` when a file declared more frames than it holds; `count` is how many it
    really holds (`read_frames` then samples again from it)."""

    def __init__(self, count: int):
        super().__init__(count)
        self.count = count


class VideoSource:
    """One video, read lazily: its `metadata` (transformers' `VideoMetadata`: frame count, fps, size, duration) and
    the frames at chosen indices in decode order, decoding no more of the file than those need.

    Made by `open_video` from every accepted input form; frames come out as (C, H, W) uint8 tensors."""

    name: str
    metadata: VideoMetadata

    def iter_frames_at(self, indices: Sequence[int]) -> Iterator[tuple[int, torch.Tensor]]:
        """`(index, frame)` for the sorted, distinct `indices`, in that order."""
        raise NotImplementedError

    def frames_at(self, indices: Sequence[int]) -> torch.Tensor:
        """The (N, C, H, W) uint8 frames at `indices` (any order, repeats allowed)."""
        indices = [int(i) for i in indices]
        frames = dict(self.iter_frames_at(sorted(set(indices))))
        return torch.stack([frames[i] for i in indices])


class _ArraySource(VideoSource):
    def __init__(self, frames: torch.Tensor, name: str, metadata: Mapping | None):
        fps = (metadata or {}).get("fps")
        total, _, height, width = frames.shape
        self.frames, self.name = frames, name
        self.metadata = VideoMetadata(
            total_num_frames=total, fps=fps, width=width, height=height, duration=total / fps if fps else None
        )

    def iter_frames_at(self, indices: Sequence[int]) -> Iterator[tuple[int, torch.Tensor]]:
        return ((i, self.frames[i]) for i in indices)


class _DecoderSource(VideoSource):
    """A torchcodec `VideoDecoder` (what `datasets.Video()` gives), used as given."""

    def __init__(self, decoder: Any, name: str):
        info = decoder.metadata
        total = info.num_frames if info.num_frames is not None else len(decoder)
        fps = float(info.average_fps) if info.average_fps else None
        self.decoder, self.name = decoder, name
        self.metadata = VideoMetadata(
            total_num_frames=int(total), fps=fps, width=info.width, height=info.height,
            duration=info.duration_seconds, video_backend="torchcodec",
        )
        if total == 0:
            raise VideoDecodeError(f"{name} holds no frame.")

    def iter_frames_at(self, indices: Sequence[int]) -> Iterator[tuple[int, torch.Tensor]]:
        for start in range(0, len(indices), _DECODER_CHUNK):
            chunk = list(indices[start:start + _DECODER_CHUNK])
            try:
                frames = self.decoder.get_frames_at(chunk).data
            except (RuntimeError, IndexError, ValueError) as error:
                raise VideoDecodeError(
                    f"Cannot decode frames {chunk[0]}-{chunk[-1]} of {self.name}: {error}"
                ) from error
            if frames.shape[-1] == 3 and frames.shape[1] != 3:  # a decoder made with dimension_order="NHWC"
                frames = frames.permute(0, 3, 1, 2)
            yield from zip(chunk, frames)


class _PyAVSource(VideoSource):
    """A file, or bytes in memory, decoded with PyAV (its own FFmpeg: no system libraries needed)."""

    def __init__(self, open_input: Callable[[], Any], name: str):
        self._open_input, self.name = open_input, name
        with self._container() as container:
            stream = container.streams.video[0]
            total = stream.frames or sum(1 for _ in self._decoded(container))  # 0: the header does not say
            fps = float(stream.average_rate) if stream.average_rate else None
            if stream.duration and stream.time_base:
                duration = float(stream.duration * stream.time_base)
            else:
                duration = container.duration / 1e6 if container.duration else None  # AV_TIME_BASE: microseconds
            width, height = stream.codec_context.width, stream.codec_context.height
        if total == 0:
            raise VideoDecodeError(f"Video {name} holds no decodable frame.")
        self.metadata = VideoMetadata(
            total_num_frames=total, fps=fps, width=width, height=height, duration=duration, video_backend="pyav"
        )

    @contextmanager
    def _container(self) -> Iterator[Any]:
        import av  # imported here: only file, URL and bytes inputs need it

        try:
            container = av.open(self._open_input())
        except (av.error.FFmpegError, OSError, ValueError) as error:
            raise VideoDecodeError(f"Cannot decode video {self.name}: {error}. Is it a valid video file?") from error
        try:
            if not container.streams.video:
                raise VideoDecodeError(f"{self.name} has no video stream.")
            yield container
        finally:
            container.close()

    def _decoded(self, container: Any) -> Iterator[Any]:
        import av

        stream = container.streams.video[0]
        stream.thread_type = "AUTO"  # frame-threaded decoding: same frames, same order
        try:
            yield from container.decode(stream)
        except av.error.FFmpegError as error:
            raise VideoDecodeError(f"Cannot decode video {self.name}: {error}. Is the file complete?") from error

    def iter_frames_at(self, indices: Sequence[int]) -> Iterator[tuple[int, torch.Tensor]]:
        wanted = iter(indices)
        target = next(wanted, None)
        count = 0
        with self._container() as container:
            for index, frame in enumerate(self._decoded(container)):
                if target is None:
                    return
                count = index + 1
                if index == target:  # only the kept frames are converted to RGB; decoding stops after the last
                    yield index, torch.from_numpy(frame.to_ndarray(format="rgb24")).permute(2, 0, 1)
                    target = next(wanted, None)
        if target is not None:
            raise FrameCountMismatch(count)


def open_video(video: Any, video_metadata: Mapping | None = None, index: int = 0) -> VideoSource:
    """One video in any form transformers and `datasets` hand over, as a `VideoSource`.

    Args:
        video: a (T, H, W, 3) or (T, 3, H, W) array or tensor with pixels in [0, 255]; a file path or ``file://``
            URL; an http(s) URL (downloaded into memory); a torchcodec `VideoDecoder` (`datasets.Video()`); a
            ``{"path", "bytes"}`` dict (`Video(decode=False)`); an ``{"array", "video_metadata"}`` dict; or a list of
            PIL images or (H, W, 3) arrays, one per frame.
        video_metadata: for arrays, the video's `fps` (a mapping or `VideoMetadata`); other forms carry their own.
        index: the video's position in its batch, for error messages. Defaults to 0.

    Raises:
        FileNotFoundError: a path that does not exist. VideoDecodeError: a video that cannot be read.
        TypeError / ValueError: an input of no accepted form or shape.
    """
    if isinstance(video, VideoSource):
        return video
    if isinstance(video, Mapping):
        if "array" in video:
            return open_video(video["array"], video.get("video_metadata", video_metadata), index)
        if video.get("bytes") is not None:
            data = video["bytes"]
            return _PyAVSource(lambda: io.BytesIO(data), repr(video.get("path") or f"(video {index}, bytes)"))
        if video.get("path") is not None:
            return open_video(video["path"], video_metadata, index)
        raise TypeError(f"Video {index} is a dict with keys {sorted(video)}; a video dict needs 'array' (and "
                        f"optionally 'video_metadata'), 'bytes' or 'path'.")
    if isinstance(video, (str, os.PathLike)):
        return _open_location(os.fspath(video))
    if _is_decoder(video):
        return _DecoderSource(video, f"video {index} ({type(video).__name__})")
    if is_frame_list(video):
        video = np.stack([np.asarray(frame.convert("RGB")) if hasattr(frame, "convert") else frame for frame in video])
    return _ArraySource(_to_tchw_tensor(video, index), f"video {index}", video_metadata)


def _open_location(location: str) -> VideoSource:
    match = _URL_SCHEME.match(location)
    scheme = match.group(1).lower() if match else None
    if scheme in ("http", "https"):
        data = _download(location)
        return _PyAVSource(lambda: io.BytesIO(data), repr(location))
    if scheme == "file":
        location = urllib.request.url2pathname(urllib.parse.urlparse(location).path)
    elif scheme is not None:
        raise VideoDecodeError(
            f"Unsupported URL scheme {scheme!r} in {location!r}; pass an http(s) URL or a local path, or download the "
            f"file first."
        )
    if os.path.isdir(location):
        raise VideoDecodeError(f"{location!r} is a folder, not a video file; pass the video files inside it.")
    if not os.path.isfile(location):
        raise FileNotFoundError(f"Video file not found: {location!r}.")
    return _PyAVSource(lambda: location, repr(location))


def _download(url: str) -> bytes:
    request = urllib.request.Request(url, headers={"User-Agent": "videoclip"})
    try:
        with urllib.request.urlopen(request, timeout=URL_TIMEOUT_SECONDS) as response:
            return response.read()
    except (OSError, ValueError) as error:  # URLError and HTTPError are OSErrors; timeouts too
        reason = getattr(error, "reason", None) or error
        raise VideoDecodeError(f"Cannot download video {url!r}: {reason}. Check the URL and the connection, or "
                               f"download the file and pass its path.") from error


def read_frames(source: VideoSource, choose: Callable[[VideoMetadata], Sequence[int]]) -> tuple[torch.Tensor, list]:
    """The frames `choose(metadata)` picks from `source` and their indices, with the true frame count if the file
    declared a wrong one (the indices are then chosen again from the count found)."""
    indices = [int(i) for i in choose(source.metadata)]
    try:
        return source.frames_at(indices), indices
    except FrameCountMismatch as short:
        if short.count == 0:
            raise VideoDecodeError(f"Video {source.name} holds no decodable frame.") from None
        source.metadata.total_num_frames = short.count
        indices = [int(i) for i in choose(source.metadata)]
        return source.frames_at(indices), indices


def read_video_frames(video: Any, num_frames: int | None = None) -> np.ndarray:
    """A video in any accepted form as uint8 (T, H, W, 3) frames: all of them, or `num_frames` sampled as the
    processor samples them (`nearest_frame_indices`), decoding only those. For pictures and contact sheets."""
    source = open_video(video)
    if isinstance(source, _ArraySource) and num_frames is None:
        return source.frames.permute(0, 2, 3, 1).numpy()
    choose = _all_frames if num_frames is None else (
        lambda metadata: nearest_frame_indices(metadata.total_num_frames, num_frames).tolist())
    frames, _ = read_frames(source, choose)
    return frames.permute(0, 2, 3, 1).numpy()


def _is_decoder(video: Any) -> bool:
    """A torchcodec `VideoDecoder`, recognised by what is used of it (torchcodec need not be importable)."""
    return hasattr(video, "get_frames_at") and hasattr(video, "metadata")


def _all_frames(metadata: VideoMetadata) -> range:
    return range(metadata.total_num_frames)


def is_frame_list(video: Any) -> bool:
    """A list of frames (PIL images or (H, W, C) arrays) is one video."""
    return isinstance(video, (list, tuple)) and bool(video) and all(
        hasattr(frame, "getbands") or (isinstance(frame, (np.ndarray, torch.Tensor)) and frame.ndim == 3)
        for frame in video
    )


def nearest_frame_indices(total_frames: int, num_frames: int) -> torch.Tensor:
    """Frame indices of the reference's ``F.interpolate(mode="nearest")`` along time: ``floor(i * scale)`` with the
    float32 scale ``total_frames / num_frames`` (short clips repeat frames)."""
    scale = np.float32(total_frames) / np.float32(num_frames)
    indices = np.floor(np.arange(num_frames, dtype=np.float32) * scale).astype(np.int64)
    return torch.from_numpy(np.minimum(indices, total_frames - 1))


class VideoCLIPVideoProcessor(BaseVideoProcessor):
    r"""Turns videos into VideoCLIP's `pixel_values_videos`, equal to torchmultimodal's `VideoTransform`.

    Accepts one video or a list of videos of any lengths and sizes, in every form `open_video` takes: arrays and
    tensors, file paths, http(s) URLs, torchcodec `VideoDecoder`s (`datasets.Video()`), ``{"path", "bytes"}`` and
    ``{"array", "video_metadata"}`` dicts, lists of PIL frames. Only the sampled frames are decoded.

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
        self, videos, num_frames: int | None = None, fps: float | None = None, do_sample_frames: bool | None = None,
        video_metadata: Mapping | Sequence[Mapping | None] | None = None, return_metadata: bool = False,
        do_resize: bool | None = None, size: dict | None = None, do_normalize: bool | None = None,
        image_mean: Sequence[float] | None = None, image_std: Sequence[float] | None = None,
        return_tensors: str | None = "pt", device: str | torch.device | None = None, **unused,
    ) -> BatchFeature:
        """Processes videos; every option left None takes the processor's attribute of the same name.

        Args:
            videos: one video or a list of videos (see the class docstring).
            num_frames: frames per clip (32), picked as the reference's nearest-neighbour resampling.
            fps: sample this many frames per second of video instead (needs the video's frame rate: files,
                decoders and dicts carry it; for arrays pass `video_metadata`). Exclusive with `num_frames`.
            do_sample_frames: resample every clip (True, as the reference); False keeps (and decodes) every frame.
            video_metadata: for array inputs, a `VideoMetadata` or mapping with the video's `fps` (one, or a list
                with one per video).
            return_metadata: add `video_metadata`, one `VideoMetadata` per video with the `frames_indices` used
                (decode order) and so their `timestamps`. Defaults to False, as transformers' processors.
            do_resize: resize frames to `size`, skipped for frames already that size (True, as the reference).
            size: `{"height", "width"}` (224x224).
            do_normalize: divide by 255 and normalise with `image_mean` / `image_std` (True).
            return_tensors: "pt" (default) stacks into one (B, T, C, H, W) tensor; None returns (T, C, H, W) ones.
            device: where to run the resize and normalisation (default: where the videos are).

        Returns:
            `BatchFeature` with `pixel_values_videos` (and `video_metadata` with `return_metadata`).
        """
        _reject_unknown_options(unused)
        do_sample_frames = self.do_sample_frames if do_sample_frames is None else do_sample_frames
        do_resize = self.do_resize if do_resize is None else do_resize
        size = dict(self.size if size is None else size)
        do_normalize = self.do_normalize if do_normalize is None else do_normalize
        mean = self.image_mean if image_mean is None else image_mean
        std = self.image_std if image_std is None else image_std
        if num_frames is not None and num_frames < 1:
            raise ValueError(f"`num_frames` must be at least 1, got {num_frames}.")
        choose = partial(self.sample_frames, num_frames=num_frames, fps=fps) if do_sample_frames else _all_frames
        videos = as_video_list(videos)
        metadata = _as_metadata_list(video_metadata, len(videos))
        sources = [open_video(video, meta, index) for index, (video, meta) in enumerate(zip(videos, metadata))]
        target_size = (size["height"], size["width"]) if do_resize else None
        plans = [_VideoPlan.read(source, choose, target_size, device) for source in sources]
        stack = return_tensors in ("pt", "torch")
        if not stack and return_tensors is not None:
            raise ValueError(f"`return_tensors` must be 'pt' or None, got {return_tensors!r}.")
        shapes = {plan.output_shape for plan in plans}
        if stack and len(shapes) > 1:
            raise ValueError(
                f"Processed videos have different shapes {sorted(shapes)} and cannot be stacked; enable "
                f"do_resize/do_sample_frames or pass return_tensors=None for a list."
            )
        normalization = _normalization_tensors(mean, std, plans[0].frames.device) if do_normalize else None
        outputs = _allocate_outputs(plans, normalization is not None, stack)
        interpolation = pil_torch_interpolation_mapping[PILImageResampling(self.resample)]
        tasks = [
            partial(_process_frames, plan, start, stop, output, interpolation, normalization)
            for plan, output in zip(plans, outputs if not stack else outputs.unbind(0))
            for start, stop in plan.chunks(FRAMES_PER_TASK)
        ]
        _run_tasks(tasks, parallel=plans[0].frames.device.type == "cpu")
        data = {"pixel_values_videos": outputs}
        if return_metadata:
            data["video_metadata"] = [source.metadata for source in sources]
        return BatchFeature(data=data)

    def sample_frames(
        self, metadata: VideoMetadata, num_frames: int | None = None, fps: float | None = None, **unused
    ) -> np.ndarray:
        """The frame indices of one video: `num_frames` (default: the processor's, 32) by the reference's
        nearest-neighbour resampling (`nearest_frame_indices`; a short video repeats frames), or, with `fps` (or a
        saved `fps` attribute and no `num_frames`), ``max(1, int(total / video fps * fps))`` frames picked the same
        way, as transformers counts them."""
        if num_frames is not None and fps is not None:
            raise ValueError("`num_frames` and `fps` are mutually exclusive; pass one of them.")
        fps = fps if fps is not None or num_frames is not None else getattr(self, "fps", None)
        total = metadata.total_num_frames
        if num_frames is None and fps is not None:
            if not metadata.fps:
                raise ValueError(f"Sampling at fps={fps} needs the video's frame rate, which this input does not "
                                 f"carry; pass video_metadata={{'fps': ...}} with the array, or num_frames.")
            num_frames = max(1, int(total / metadata.fps * fps))
        return nearest_frame_indices(total, self.num_frames if num_frames is None else num_frames).numpy()


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
    def read(
        cls, source: VideoSource, choose: Callable[[VideoMetadata], Sequence[int]], size: tuple[int, int] | None,
        device: str | torch.device | None,
    ) -> _VideoPlan:
        """The frames `choose` picks: kept as indices into an array (no copy), decoded for the other forms."""
        if isinstance(source, _ArraySource):
            frames, chosen = source.frames, [int(i) for i in choose(source.metadata)]
            indices = None if chosen == list(range(len(frames))) else torch.tensor(chosen)
        else:
            frames, chosen = read_frames(source, choose)
            indices = None
        source.metadata.frames_indices = chosen
        if device is not None:
            frames = frames.to(device)
            indices = None if indices is None else indices.to(device)
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
    ignored = {"input_data_format", "data_format", "do_convert_rgb"}
    unknown = sorted(set(options) - ignored)
    if unknown:
        raise TypeError(
            f"Unknown video processor option(s) {unknown}; valid options are num_frames, fps, do_sample_frames, "
            f"video_metadata, return_metadata, do_resize, size, do_normalize, image_mean, image_std, return_tensors, "
            f"device."
        )


def _as_metadata_list(video_metadata: Any, count: int) -> list:
    if video_metadata is None or isinstance(video_metadata, Mapping):
        return [video_metadata] * count
    video_metadata = list(video_metadata)
    if len(video_metadata) != count:
        raise ValueError(f"Got {len(video_metadata)} video_metadata entries for {count} videos; pass one per video.")
    return video_metadata


def as_video_list(videos) -> list:
    """Splits the accepted input forms (one video, a list of them, a (B, T, ...) array) into a list of single
    videos."""
    if isinstance(videos, (np.ndarray, torch.Tensor)) and videos.ndim == 5:
        videos = list(videos)
    elif isinstance(videos, (str, os.PathLike, np.ndarray, torch.Tensor, Mapping, VideoSource)) or is_frame_list(
        videos
    ) or _is_decoder(videos):
        videos = [videos]
    elif isinstance(videos, (list, tuple)):
        videos = list(videos)
    else:
        raise TypeError(
            "Videos must be arrays, tensors, file paths, URLs, torchcodec VideoDecoders, video dicts or lists of "
            f"PIL frames (one, or a list of them); got {type(videos).__name__}."
        )
    if not videos:
        raise ValueError("No video given (empty list); pass at least one video.")
    return videos


def _to_tchw_tensor(video, index: int) -> torch.Tensor:
    """One video as a (T, C, H, W) tensor (a view of (T, H, W, C) input, no copy), validated."""
    if isinstance(video, np.ndarray):
        if video.dtype == object:
            raise TypeError(f"Video {index} is an object array; pass a numeric array of frames.")
        video = torch.from_numpy(np.ascontiguousarray(video))
    if not isinstance(video, torch.Tensor):
        raise TypeError(
            f"Video {index} is a {type(video).__name__}; pass an array, a tensor, a file path or URL, a torchcodec "
            f"VideoDecoder, a video dict or a list of PIL frames."
        )
    if video.ndim != 4:
        raise ValueError(
            f"Video {index} has shape {tuple(video.shape)}; expected 4 dimensions, (T, H, W, C) or (T, C, H, W)."
        )
    if video.shape[0] == 0:
        raise ValueError(f"Video {index} has zero frames.")
    if video.shape[-1] == 3:
        if video.shape[1] == 3:
            warnings.warn(f"Video {index} has shape {tuple(video.shape)}, which reads as (T, H, W, 3) or (T, 3, H, "
                          f"W); taking (T, H, W, 3). Transpose it to (T, 3, H, W) if its frames are 3 pixels wide.",
                          stacklevel=4)
        video = video.permute(0, 3, 1, 2)
    elif video.shape[1] != 3:
        raise ValueError(
            f"Video {index} has shape {tuple(video.shape)}: no dimension of size 3 where channels go. VideoCLIP "
            f"takes RGB videos, (T, H, W, 3) or (T, 3, H, W); convert grayscale or RGBA frames to RGB first."
        )
    return _checked_pixels(video, index)


def _checked_pixels(video: torch.Tensor, index: int) -> torch.Tensor:
    """Pixels in [0, 255]: uint8 as is, other integers narrowed to uint8, floats as float32. Float frames whose
    values all lie in [0, 1] are refused: they are almost surely [0, 1]-scaled and would read as near-black."""
    if video.dtype == torch.uint8:
        return video
    if video.dtype == torch.bool or video.is_complex():
        raise TypeError(f"Video {index} has dtype {video.dtype}; pass uint8 pixels.")
    if video.is_floating_point() and not torch.isfinite(video).all():
        raise ValueError(f"Video {index} contains NaN or infinite pixel values.")
    # uint16/uint32/uint64 have no min/max kernels: range-check those in int64 (the other dtypes as they are).
    wide = video.to(torch.int64) if video.dtype in (torch.uint16, torch.uint32, torch.uint64) else video
    low, high = wide.min().item(), wide.max().item()
    if low < 0 or high > 255:
        raise ValueError(
            f"Video {index} has pixel values in [{low}, {high}], outside [0, 255]. Pass uint8 frames, or "
            f"scale float frames to [0, 255] (multiply [0, 1] frames by 255)."
        )
    if video.is_floating_point() and 0 < high <= 1:
        raise ValueError(
            f"Video {index} has float pixels in [{low:g}, {high:g}]: frames scaled to [0, 1]. VideoCLIP takes pixels "
            f"in [0, 255]; multiply the frames by 255 (or pass uint8 frames)."
        )
    return video.float() if video.is_floating_point() else video.to(torch.uint8)


__all__ = [
    "FrameCountMismatch", "VideoCLIPVideoProcessor", "VideoDecodeError", "VideoSource", "as_video_list",
    "is_frame_list", "nearest_frame_indices", "open_video", "read_frames", "read_video_frames",
]
