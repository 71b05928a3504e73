"""The model to train (`common.models.build_model`, towers frozen) and its processor."""

from __future__ import annotations

import warnings
from collections.abc import Mapping, Sequence
from typing import Any

from torch import nn

from ..common.constants import VIDEOCLIP_BASE
from ..common.downloads import from_hub_or_cache
from ..common.errors import VideoCLIPError, first_line
from ..common.models import (
    RANDOM_INIT,
    TOKENIZER_FROM_DATA,
    PretrainedWeightsUnavailableError,
    build_model,
    build_processor,
    check_model_path,
    load_tokenizer,
)
from ..configuration_videoclip import VideoCLIPConfig
from ..modeling_videoclip import VideoCLIPModel
from ..processing_videoclip import VideoCLIPProcessor


def freeze_towers(model: VideoCLIPModel, text: bool = False, video: bool = False) -> list[str]:
    """Freezes DistilBERT and/or S3D, as the reference's `text_trainable=False` / `video_trainable=False`: their
    parameters stop requiring gradients (no optimizer state, no weight decay); projections and logit scale train.
    A frozen S3D also keeps its BatchNorm statistics (eval mode before every forward, unlike the reference), so it
    is bit-identical after training; a frozen DistilBERT keeps its dropout, as in the reference.

    Args:
        model: the model, modified in place.
        text, video: freeze `model.text_model` / `model.video_model`. Both default to False.

    Returns:
        The names of the frozen parameters.
    """
    frozen: list[str] = []
    for flag, prefix, tower in ((text, "text_model", model.text_model), (video, "video_model", model.video_model)):
        if not flag:
            continue
        for name, parameter in tower.named_parameters():
            parameter.requires_grad_(False)
            frozen.append(f"{prefix}.{name}")
    if video and not getattr(model.video_model, "_videoclip_frozen_batch_norm", False):
        model.video_model.register_forward_pre_hook(_batch_norm_to_eval)
        model.video_model._videoclip_frozen_batch_norm = True
    return frozen


def _batch_norm_to_eval(module: nn.Module, args: Any) -> None:
    for sub in module.modules():
        if isinstance(sub, nn.modules.batchnorm._BatchNorm):
            sub.eval()


def initialize_model(
    init: str = VIDEOCLIP_BASE, config: VideoCLIPConfig | Mapping[str, Any] | None = None,
    *, freeze_text: bool = False, freeze_video: bool = False, seed: int = 0,
) -> VideoCLIPModel:
    """The model to train: `build_model(init, config, seed=seed)` in train mode, towers frozen (`freeze_towers`).

    Args:
        init, config, seed: as `common.models.build_model` (`"videoclip-base"`, `"random"` or a saved VideoCLIP).
        freeze_text: freeze DistilBERT (the MUGEN recipe does; `--freeze-text`). Defaults to False. Ignored, with
            a warning, for `"random"`, as the reference ignores `text_trainable=False` without pretrained weights.
        freeze_video: freeze S3D (the MUGEN recipe trains it). Defaults to False; ignored for `"random"` too.
    """
    if init == RANDOM_INIT and (freeze_text or freeze_video):
        # The reference: "`text_trainable` acts as True when `text_pretrained` is False" (likewise for video).
        # A frozen random DistilBERT maps every caption to nearly one [CLS] embedding: loss pinned at log(batch).
        warnings.warn("--freeze-text/--freeze-video are ignored with --init random (nothing pretrained to keep), as "
                      "in the reference.", stacklevel=2)
        freeze_text = freeze_video = False
    model = build_model(init, config, seed=seed)
    freeze_towers(model, text=freeze_text, video=freeze_video)
    return model.train()


def initial_processor(
    init: str = VIDEOCLIP_BASE, tokenizer: str | None = None, num_frames: int | None = None,
    texts: Sequence[str] | None = None,
) -> VideoCLIPProcessor:
    """The processor matching `initialize_model(init)`.

    Args:
        init: as `initialize_model`; a saved model brings its own processor unless `tokenizer` is given.
        tokenizer: `load_tokenizer`'s source. Defaults to the saved processor's, else DistilBERT's (the reference's).
        num_frames: frames per clip. Defaults to the saved processor's, else the reference's 32.
        texts: the training captions, for `tokenizer="from-data"`.

    Raises:
        PretrainedWeightsUnavailableError: the saved processor or the tokenizer cannot be loaded.
        InputError: (`USAGE`) `init` names a local folder that does not exist.
    """
    from transformers import AutoProcessor

    if tokenizer is None and init not in (VIDEOCLIP_BASE, RANDOM_INIT):
        check_model_path(init)
        try:
            processor = from_hub_or_cache(AutoProcessor.from_pretrained, init, "processor")
        except (OSError, ValueError, KeyError, TypeError, VideoCLIPError) as error:
            raise PretrainedWeightsUnavailableError(
                f"Cannot load a processor from {init!r} ({type(error).__name__}: {first_line(error)}); pass "
                f"--tokenizer (a vocab.txt or tokenizer) to build one."
            ) from error
        if num_frames is not None:
            processor.video_processor.num_frames = num_frames
        return processor
    try:
        loaded = load_tokenizer(tokenizer, texts=texts)
    except VideoCLIPError as error:
        if tokenizer == TOKENIZER_FROM_DATA:
            raise
        raise PretrainedWeightsUnavailableError(
            f"{error.message}; to train, pass --tokenizer with a vocab.txt, or --tokenizer {TOKENIZER_FROM_DATA} with "
            f"--init random.", error.exit_code,
        ) from error
    return build_processor(loaded, **({} if num_frames is None else {"num_frames": num_frames}))
