"""Zero-shot video classification with VideoCLIP, as a transformers custom pipeline (also Hub remote code).

transformers ships no zero-shot video pipeline. `VideoCLIPConfig` names this one in ``config.json``'s
``custom_pipelines`` (`CUSTOM_PIPELINES`) and imports this file, so every folder `save_pretrained` writes carries
it and ``pipeline("zero-shot-video-classification", model=FOLDER_OR_REPO, trust_remote_code=True)`` builds it.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from transformers import Pipeline

from .video_processing_videoclip import is_frame_list

ZERO_SHOT_VIDEO_CLASSIFICATION = "zero-shot-video-classification"
DEFAULT_HYPOTHESIS_TEMPLATE = "a video of {}."
# Videos per forward pass: S3D on 32 frames of 224x224 takes ~0.5 GB of activations per video on CPU.
DEFAULT_BATCH_SIZE = 8

#: ``config.json``'s ``custom_pipelines`` entry (the layout `Pipeline.save_pretrained` writes): the task, this
#: file's class, and the Auto class that loads the model.
CUSTOM_PIPELINES = {
    ZERO_SHOT_VIDEO_CLASSIFICATION: {
        "impl": "pipeline_videoclip.VideoCLIPZeroShotVideoClassificationPipeline",
        "pt": ["AutoModel"],
        "type": "multimodal",
    }
}


class VideoCLIPZeroShotVideoClassificationPipeline(Pipeline):
    r"""Classifies videos into labels given at call time: the softmax over the labels of VideoCLIP's
    `logits_per_video` for the labels put into `hypothesis_template`.

    ```python
    >>> classifier = pipeline("zero-shot-video-classification", model="<org>/videoclip-mugen", trust_remote_code=True)
    >>> classifier("clip.mp4", candidate_labels=["jumps", "climbs a ladder", "collects a coin"])
    [{'label': 'climbs a ladder', 'score': 0.61}, {'label': 'jumps', 'score': 0.22}, ...]
    ```

    Videos are anything the model's processor accepts, one or a list; a list is processed `batch_size` videos at a
    time. The label embeddings are computed once per set of formatted labels and cached (`clear_label_cache` after
    changing the model's weights).
    """

    _load_processor = True
    _load_tokenizer = False
    _load_image_processor = False
    _load_video_processor = False
    _load_feature_extractor = False

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        if self.processor is None:
            raise ValueError(
                "The zero-shot video pipeline needs VideoCLIP's processor: pass processor=AutoProcessor."
                "from_pretrained(...) or load the pipeline from a folder holding processor_config.json."
            )
        self._label_embeddings: dict[tuple[str, ...], torch.Tensor] = {}

    def __call__(
        self, videos, candidate_labels: list[str] | None = None,
        hypothesis_template: str = DEFAULT_HYPOTHESIS_TEMPLATE, top_k: int | None = None,
        batch_size: int | None = None, **video_kwargs,
    ) -> list[dict[str, Any]] | list[list[dict[str, Any]]]:
        """Scores each video against `candidate_labels`.

        Args:
            videos: one video or a list of videos in any form the processor accepts (arrays, tensors, file paths,
                URLs, decoders, dicts, lists of frames); a 5-D array or tensor is a batch.
            candidate_labels: the labels, at least one: a list, or one comma-separated string.
            hypothesis_template: the text each label is put into, with one ``{}`` (default ``"a video of {}."``;
                ``"{}"`` uses the labels as written).
            top_k: keep the best `top_k` labels; None (default) keeps them all.
            batch_size: videos per forward pass (default: the pipeline's `batch_size`, else 8).
            **video_kwargs: passed to the video processor (e.g. `num_frames`).

        Returns:
            For one video a list of ``{"label", "score"}`` sorted by decreasing score; for a list, one such list per
            video.
        """
        single = not _is_video_batch(videos)
        video_list = [videos] if single else list(videos)
        if not video_list:
            raise ValueError("No video given (empty list); pass at least one video.")
        labels = _checked_labels(candidate_labels)
        if top_k is not None and (isinstance(top_k, bool) or not isinstance(top_k, int) or top_k < 1):
            raise ValueError(f"`top_k` must be a positive integer or None, got {top_k!r}.")
        batch_size = batch_size if batch_size is not None else self._batch_size or DEFAULT_BATCH_SIZE
        if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
            raise ValueError(f"`batch_size` must be a positive integer, got {batch_size!r}.")
        text_embeds = self.label_embeddings(_formatted(labels, hypothesis_template))
        results = []
        for start in range(0, len(video_list), batch_size):
            model_inputs = self.preprocess(video_list[start : start + batch_size], **video_kwargs)
            model_outputs = self.forward(model_inputs, text_embeds=text_embeds)
            results.extend(self.postprocess(model_outputs, candidate_labels=labels, top_k=top_k))
        return results[0] if single else results

    def label_embeddings(self, texts: list[str]) -> torch.Tensor:
        """The L2-normalised text embeddings of `texts`, `(len(texts), projection_dim)` on the pipeline's device,
        computed on the first call for these texts and cached."""
        key = tuple(texts)
        if key not in self._label_embeddings:
            inputs = self.processor(text=list(texts), return_tensors="pt")
            with self.device_placement(), torch.no_grad():
                inputs = self._ensure_tensor_on_device(dict(inputs), device=self.device)
                features = self.model.get_text_features(**inputs).pooler_output
            self._label_embeddings[key] = F.normalize(features, dim=-1)
        return self._label_embeddings[key]

    def clear_label_cache(self) -> None:
        """Forgets the cached label embeddings (needed only after the model's weights change)."""
        self._label_embeddings.clear()

    def _sanitize_parameters(self, **kwargs):
        return {}, {}, {}

    def preprocess(self, videos: list, **video_kwargs) -> dict[str, torch.Tensor]:
        pixel_values = self.processor(videos=videos, return_tensors="pt", **video_kwargs)["pixel_values_videos"]
        return {"pixel_values_videos": pixel_values.to(self.model.dtype)}

    def _forward(self, model_inputs: dict[str, torch.Tensor], text_embeds: torch.Tensor) -> dict[str, torch.Tensor]:
        video_features = self.model.get_video_features(model_inputs["pixel_values_videos"]).pooler_output
        video_embeds = F.normalize(video_features, dim=-1)
        # VideoCLIPModel.forward's logits: the logit scale is the LOG of the multiplier, clamped at its maximum.
        logit_scale = self.model.logit_scale.clamp(max=self.model.config.logit_scale_max).exp()
        logits_per_text = text_embeds @ video_embeds.T * logit_scale
        return {"logits_per_video": logits_per_text.T}

    def postprocess(
        self, model_outputs: dict[str, torch.Tensor], candidate_labels: list[str], top_k: int | None = None
    ) -> list[list[dict[str, Any]]]:
        scores = model_outputs["logits_per_video"].float().softmax(dim=-1)
        results = []
        for video_scores in scores.tolist():
            ranked = sorted(zip(candidate_labels, video_scores), key=lambda pair: -pair[1])
            results.append([{"label": label, "score": score} for label, score in ranked[:top_k]])
        return results


def _is_video_batch(videos) -> bool:
    """A list/tuple of videos (not of frames: that is one video, as the processor reads it) or a 5-D (batch,
    frames, ...) array or tensor; anything else is one video."""
    if isinstance(videos, (list, tuple)):
        return not is_frame_list(videos)
    return isinstance(videos, (np.ndarray, torch.Tensor)) and videos.ndim == 5


def _checked_labels(candidate_labels) -> list[str]:
    if isinstance(candidate_labels, str):
        candidate_labels = [label.strip() for label in candidate_labels.split(",") if label.strip()]
    if not isinstance(candidate_labels, (list, tuple)) or not candidate_labels:
        raise ValueError("Pass `candidate_labels`, a non-empty list of label strings (e.g. ['jumps', 'climbs']).")
    labels = list(candidate_labels)
    bad = [index for index, label in enumerate(labels) if not isinstance(label, str) or not label.strip()]
    if bad:
        raise ValueError(f"Candidate label(s) at position(s) {bad} are not non-empty strings.")
    if len(set(labels)) != len(labels):
        raise ValueError(f"`candidate_labels` has duplicates: {labels}; pass each label once.")
    return labels


def _formatted(labels: list[str], hypothesis_template: str) -> list[str]:
    if not isinstance(hypothesis_template, str) or hypothesis_template.count("{}") != 1:
        raise ValueError(
            f"`hypothesis_template` must be a string with exactly one '{{}}' where the label goes, got "
            f"{hypothesis_template!r} (e.g. 'a video of {{}}.', or '{{}}' for the labels as written)."
        )
    return [hypothesis_template.format(label) for label in labels]


__all__ = [
    "CUSTOM_PIPELINES", "DEFAULT_HYPOTHESIS_TEMPLATE", "VideoCLIPZeroShotVideoClassificationPipeline",
    "ZERO_SHOT_VIDEO_CLASSIFICATION",
]
