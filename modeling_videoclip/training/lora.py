"""LoRA adapters on VideoCLIP's towers through `peft`: which modules get them, wrapping the model, and merging the
trained adapters into a plain VideoCLIP folder."""

from __future__ import annotations

import os
import re
from collections.abc import Sequence
from dataclasses import dataclass

from torch import nn

from ..common.errors import CommandError, writing
from ..modeling_videoclip import VideoCLIPModel
from ..processing_videoclip import VideoCLIPProcessor
from .initialization import freeze_towers

#: LoRA's paper (Hu et al. 2021, section 7.1) adapts the attention's query and value projections; DistilBERT's.
DEFAULT_TEXT_MODULES = ("q_lin", "v_lin")
MERGED_FOLDER = "merged"  # `--merge` writes the merged model into this sub-folder of the output folder
ADAPTABLE = (nn.Linear, nn.Conv3d)  # what peft's LoRA wraps in these towers (DistilBERT Linear, S3D Conv3d)


@dataclass
class LoraOptions:
    """The adapters to train; each default is `peft.LoraConfig`'s unless said otherwise.

    Args:
        rank: LoRA rank r (8, peft's default).
        alpha: scaling numerator, the update is `alpha / rank * B @ A` (8, peft's default).
        dropout: dropout on the adapters' input (0.0, peft's default).
        text_modules: DistilBERT module names (suffixes, e.g. `q_lin`) to adapt; `DEFAULT_TEXT_MODULES`.
        video_modules: S3D module names (suffixes, e.g. `branch1.1.0.0`, the (1,3,3) convolutions of the Inception
            blocks, or `features.15.branch1.1.0.0`) to adapt; none by default (S3D has no LoRA convention).
    """

    rank: int = 8
    alpha: float = 8
    dropout: float = 0.0
    text_modules: Sequence[str] = DEFAULT_TEXT_MODULES
    video_modules: Sequence[str] = ()

    @classmethod
    def from_arguments(cls, args) -> LoraOptions:
        """The options of `videoclip train --lora` (a `VideoCLIPTrainArguments`)."""
        return cls(rank=args.lora_rank, alpha=args.lora_alpha, dropout=args.lora_dropout,
                   text_modules=parse_module_list(args.lora_text_modules),
                   video_modules=parse_module_list(args.lora_video_modules))


def parse_module_list(text: str | None) -> tuple[str, ...]:
    """``"q_lin,v_lin"`` -> ``("q_lin", "v_lin")``; empty or None -> ``()``."""
    return tuple(name.strip() for name in (text or "").split(",") if name.strip())


def lora_target_modules(model: VideoCLIPModel, options: LoraOptions) -> list[str]:
    """The full names of the modules `options` selects: Linear/Conv3d modules of `model.text_model` /
    `model.video_model` whose name is one of the suffixes (at a ``.`` boundary).

    Raises:
        CommandError: a suffix matches no adaptable module of its tower, or no tower gets adapters.
    """
    targets: list[str] = []
    towers = (("text_model", "text", options.text_modules), ("video_model", "video", options.video_modules))
    for prefix, tower, suffixes in towers:
        adaptable = [name for name, module in getattr(model, prefix).named_modules() if isinstance(module, ADAPTABLE)]
        for suffix in suffixes:
            matched = [name for name in adaptable if name == suffix or name.endswith("." + suffix)]
            if not matched:
                shown = {name.split(".")[-1] if tower == "text" else name for name in adaptable}
                examples = ", ".join(sorted(shown)[:6])
                raise CommandError(f"--lora-{tower}-modules: {suffix!r} names no Linear/Conv3d module of the {tower} "
                                   f"tower; e.g. {examples}.")
            targets.extend(f"{prefix}.{name}" for name in matched)
    if not targets:
        raise CommandError("--lora adapts nothing: give --lora-text-modules and/or --lora-video-modules.")
    return sorted(set(targets))


def apply_lora(model: VideoCLIPModel, options: LoraOptions, merge: bool = False):
    """`model` wrapped in a `peft.PeftModel` whose only trainable parameters are LoRA adapters on the modules
    `lora_target_modules` selects (the towers, projections and logit scale are frozen; S3D's BatchNorm layers
    stay in eval mode, as `freeze_towers` keeps them).

    Args:
        merge: the adapters will be merged (`save_merged`): refuse modules peft cannot merge.

    Raises:
        CommandError: `peft` is not installed, or a bad option (`lora_target_modules`, rank below 1, with `merge`
            a 1x1x1 convolution).
    """
    try:
        from peft import LoraConfig, get_peft_model
    except ImportError as error:
        raise CommandError("--lora needs peft: pip install 'videoclip-hf[lora]' (or pip install peft).") from error
    if options.rank < 1:
        raise CommandError(f"--lora-rank must be at least 1, got {options.rank}.")
    if not 0.0 <= options.dropout < 1.0:
        raise CommandError(f"--lora-dropout must be in [0, 1), got {options.dropout}.")
    # An anchored pattern of the full names: peft stores it in adapter_config.json and matches it exactly.
    targets = lora_target_modules(model, options)
    if merge:
        _check_mergeable(model, targets)
    pattern = "|".join(re.escape(name) for name in targets)
    # The base stays exactly as loaded, S3D's BatchNorm statistics included, so the saved adapters (which hold
    # nothing else) reproduce the trained model on top of the base they were trained on.
    freeze_towers(model, text=True, video=True)
    config = LoraConfig(r=options.rank, lora_alpha=options.alpha, lora_dropout=options.dropout,
                        target_modules=f"^(?:{pattern})$", bias="none")
    return get_peft_model(model, config)


def _check_mergeable(model: VideoCLIPModel, targets: Sequence[str]) -> None:
    # peft's Conv3d merge (0.21) takes any kernel whose first two sizes are 1 for a 2-D 1x1 kernel and fails.
    modules = dict(model.named_modules())
    pointwise = [name for name in targets if isinstance(modules[name], nn.Conv3d) and modules[name].kernel_size[:2]
                 == (1, 1)]
    if pointwise:
        raise CommandError(f"--merge: peft cannot merge LoRA on 1x1x1 convolutions ({pointwise[0]}); adapt S3D's "
                           f"(1,3,3)/(3,1,1) convolutions instead (e.g. branch1.1.0.0) or train without --merge.")


def save_merged(peft_model, processor: VideoCLIPProcessor | None, folder: str | os.PathLike) -> VideoCLIPModel:
    """Merges the adapters into a copy of the weights and saves a plain VideoCLIP folder (with `processor`, when
    given) that `AutoModel.from_pretrained` loads without peft; returns the merged model. `peft_model` keeps its
    adapters."""
    import copy

    merged = copy.deepcopy(peft_model).merge_and_unload()
    with writing(folder):
        merged.save_pretrained(folder)
        if processor is not None:
            processor.save_pretrained(folder)
    return merged


__all__ = [
    "DEFAULT_TEXT_MODULES", "LoraOptions", "MERGED_FOLDER", "apply_lora", "lora_target_modules", "parse_module_list",
    "save_merged",
]
