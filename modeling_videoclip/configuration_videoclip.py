"""VideoCLIP configuration; the defaults are torchmultimodal's MUGEN VideoCLIP (``examples/mugen/retrieval``):
``DistilBertConfig()`` text tower, torchvision's ``S3D`` video tower, ``Projection(in_dim, 256, dropout 0.1)`` heads.
"""

from __future__ import annotations

import copy

from transformers import DistilBertConfig, PreTrainedConfig

from .pipeline_videoclip import CUSTOM_PIPELINES


class VideoCLIPVideoConfig(PreTrainedConfig):
    r"""Settings of the S3D video tower (its layer layout is fixed; only what shapes checkpoints and inputs).

    Args:
        hidden_size (`int`, defaults to 1024): width of S3D's pooled features, fixed by S3D.
        num_channels (`int`, defaults to 3): input colour channels (RGB), as the reference's ``VideoEncoder``.
        batch_norm_eps (`float`, defaults to 1e-3): BatchNorm3d epsilon, torchvision's S3D default.
        batch_norm_momentum (`float`, defaults to 1e-3): BatchNorm3d momentum, torchvision's S3D default.
    """

    model_type = "videoclip_video_model"
    base_config_key = "video_config"

    def __init__(
        self, hidden_size: int = 1024, num_channels: int = 3, batch_norm_eps: float = 1e-3,
        batch_norm_momentum: float = 1e-3, **kwargs,
    ):
        self.hidden_size = hidden_size
        self.num_channels = num_channels
        self.batch_norm_eps = batch_norm_eps
        self.batch_norm_momentum = batch_norm_momentum
        super().__init__(**kwargs)


class VideoCLIPConfig(PreTrainedConfig):
    r"""Configuration of [`VideoCLIPModel`].

    Args:
        text_config (`dict` or `DistilBertConfig`, *optional*): the text tower; defaults to `DistilBertConfig()`
            (distilbert-base-uncased's shape: 6 layers, width 768, vocabulary 30522), as the reference.
        video_config (`dict` or `VideoCLIPVideoConfig`, *optional*): defaults to `VideoCLIPVideoConfig()`.
        projection_dim (`int`, defaults to 256): width of the joint embedding space, MUGEN's value.
        projection_dropout (`float`, defaults to 0.1): dropout inside each projection head, MUGEN's value.
        logit_scale_init_value (`float`, defaults to 0.07): initial ``logit_scale``. MUGEN's quirk, kept for parity:
            it holds the LOG of the multiplier (``logits = exp(logit_scale) * cosine``) yet starts at 0.07, so the
            multiplier starts at ``exp(0.07) ~= 1.07``, not CLIP's ``1 / 0.07``.
        logit_scale_max (`float`, defaults to 100.0): MUGEN's upper clamp of ``logit_scale`` (log space) before
            every loss; there is no lower clamp.
        pad_token_id (`int`, defaults to 0): bert-base-uncased's [PAD]; without an attention mask the text tower
            attends to every position whose id differs from it, as the reference does.
        custom_pipelines (`dict`, defaults to `pipeline_videoclip.CUSTOM_PIPELINES`): the zero-shot video
            classification pipeline, so that every saved folder (which also gets `pipeline_videoclip.py`, imported
            here) serves ``pipeline("zero-shot-video-classification", model=..., trust_remote_code=True)``.
    """

    model_type = "videoclip"
    sub_configs = {"text_config": DistilBertConfig, "video_config": VideoCLIPVideoConfig}

    def __init__(
        self, text_config: dict | DistilBertConfig | None = None,
        video_config: dict | VideoCLIPVideoConfig | None = None, projection_dim: int = 256,
        projection_dropout: float = 0.1, logit_scale_init_value: float = 0.07, logit_scale_max: float = 100.0,
        pad_token_id: int = 0, **kwargs,
    ):
        self.text_config = _as_config(text_config, DistilBertConfig)
        self.video_config = _as_config(video_config, VideoCLIPVideoConfig)
        self.projection_dim = projection_dim
        self.projection_dropout = projection_dropout
        self.logit_scale_init_value = logit_scale_init_value
        self.logit_scale_max = logit_scale_max
        self.pad_token_id = pad_token_id
        kwargs.setdefault("custom_pipelines", copy.deepcopy(CUSTOM_PIPELINES))
        super().__init__(**kwargs)


def _as_config(value, config_class):
    """Turns ``None`` (defaults), a dict or a config instance into an instance of ``config_class``."""
    if value is None:
        return config_class()
    if isinstance(value, dict):
        return config_class(**value)
    if isinstance(value, PreTrainedConfig):
        return value
    raise TypeError(f"Expected a dict or {config_class.__name__} for a sub-config, got {type(value).__name__}.")


__all__ = ["VideoCLIPConfig", "VideoCLIPVideoConfig"]
