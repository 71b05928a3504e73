"""`videoclip train`'s options: `VideoCLIPTrainArguments` (data and model) beside every `TrainingArguments` option,
with the reference's recipe as the defaults."""

from __future__ import annotations

import argparse
import copy
import dataclasses
import json
import os
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from transformers import HfArgumentParser, TrainingArguments

from ..common.constants import VIDEOCLIP_BASE
from ..common.errors import CommandError
from ..common.models import TOKENIZER_FROM_DATA
from .lora import DEFAULT_TEXT_MODULES, MERGED_FOLDER


def _option(default: Any, help: str) -> Any:
    return field(default=default, metadata={"help": help})


@dataclass
class VideoCLIPTrainArguments:
    """What to train on and from (each field's `help` says where its default comes from); the optimisation
    settings are `transformers.TrainingArguments`. `data` is not needed when `train` is given datasets."""

    data: str | None = _option(None, "MUGEN data folder, save_to_disk folder or Hub dataset with text/video columns")
    assets: str | None = _option(None, "MUGEN sprite folder (default: load_mugen's)")
    init: str = _option(VIDEOCLIP_BASE, f"{VIDEOCLIP_BASE} (pretrained DistilBERT + Kinetics-400 S3D, fresh "
                        "projections; default), random, or a saved VideoCLIP folder/Hub id to finetune")
    freeze_text: bool = _option(False, "freeze DistilBERT (the MUGEN recipe does)")
    freeze_video: bool = _option(False, "freeze S3D, BatchNorm statistics included")
    tokenizer: str | None = _option(None, f"vocab.txt, tokenizer folder/Hub id, or {TOKENIZER_FROM_DATA} (default: "
                                    "the model's, else distilbert-base-uncased)")
    model_config: str | None = _option(None, "JSON (or JSON file) of VideoCLIPConfig arguments for --init random")
    num_frames: int | None = _option(None, "frames per clip (default 32, the reference's)")
    text_column: str | None = _option(None, "caption column (default: text, caption, ... or the one string column)")
    video_column: str | None = _option(None, "video column (default: the Video() column, or video)")
    train_split: str = _option("train", "training split (default train)")
    eval_split: str = _option("val", "validation split, '' for none (default val)")
    max_train_samples: int | None = _option(None, "use the first N training rows")
    max_eval_samples: int | None = _option(None, "use the first N validation rows")
    lora: bool = _option(False, "train LoRA adapters (peft) on the towers instead of the weights; saves "
                         "adapter_config.json + adapter_model.safetensors")
    lora_rank: int = _option(8, "LoRA rank (default 8, peft's)")
    lora_alpha: float = _option(8.0, "LoRA alpha; the update is alpha/rank * B@A (default 8, peft's)")
    lora_dropout: float = _option(0.0, "dropout on the adapters' input (default 0.0, peft's)")
    lora_text_modules: str = _option(",".join(DEFAULT_TEXT_MODULES), "comma-separated DistilBERT modules to adapt "
                                     "(default q_lin,v_lin: query and value, as the LoRA paper); '' for none")
    lora_video_modules: str = _option("", "comma-separated S3D modules to adapt, e.g. branch1.1.0.0 (the Inception "
                                      "blocks' (1,3,3) convolutions) or features.15.branch1.1.0.0 (default: none)")
    merge: bool = _option(False, f"with --lora: also write the adapters merged into the weights, a plain VideoCLIP "
                          f"folder, to OUTPUT_DIR/{MERGED_FOLDER}")


def mugen_training_defaults() -> dict[str, Any]:
    """`TrainingArguments` values of the reference's recipe (torchmultimodal ``examples/mugen/retrieval``:
    ``configs/train.yaml``, ``model.py``, ``train.py``), the command line's defaults."""
    return dict(
        learning_rate=1e-3, weight_decay=1e-3, optim="adamw_torch",  # model.py: AdamW(self.parameters(), lr=1e-3, ...)
        lr_scheduler_type="constant", warmup_steps=0,  # no scheduler
        max_grad_norm=0.0,  # Lightning's default: no clipping
        per_device_train_batch_size=16, per_device_eval_batch_size=16,  # train.yaml: batch_size 16
        num_train_epochs=20,  # train.yaml: max_epochs 20
        eval_strategy="epoch",  # validation Recall@K every epoch
        save_strategy="epoch",  # ModelCheckpoint(save_top_k=-1)
        logging_strategy="steps", logging_steps=100,  # train.yaml: log_every_n_steps 100
        dataloader_num_workers=4,  # train.yaml: num_workers 4
        remove_unused_columns=False,  # the collator reads the text/video columns
        ddp_find_unused_parameters=False,  # ddp_find_unused_parameters_false; frozen towers need no gradients
        report_to="none",
    )


_DATACLASSES = (VideoCLIPTrainArguments, TrainingArguments)


def add_train_arguments(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
    """Adds `videoclip train`'s options to `parser` (an argparse parser or sub-parser, returned):
    `VideoCLIPTrainArguments`' fields, then every `TrainingArguments` option, defaulting to
    `mugen_training_defaults`."""
    titles = ("data and model", "Trainer options (transformers.TrainingArguments; MUGEN defaults)")
    for title, arguments in zip(titles, _DATACLASSES):
        group = parser.add_argument_group(title)
        type_hints = typing.get_type_hints(arguments)
        for argument in [f for f in dataclasses.fields(arguments) if f.init]:
            # HfArgumentParser's own per-field parser (it rewrites the field's type, hence the copy).
            argument = copy.copy(argument)
            argument.type = type_hints[argument.name]
            HfArgumentParser._parse_dataclass_field(group, argument)
    parser.set_defaults(**mugen_training_defaults())
    return parser


def split_namespace(namespace: argparse.Namespace) -> tuple[VideoCLIPTrainArguments, TrainingArguments]:
    """Splits parsed `videoclip train` options into `(VideoCLIPTrainArguments, TrainingArguments)`."""
    values = vars(namespace)
    own, training_args = (
        {f.name: values[f.name] for f in dataclasses.fields(arguments) if f.init and f.name in values}
        for arguments in _DATACLASSES
    )
    if not training_args.get("output_dir"):
        raise CommandError("--output-dir is required.")
    return VideoCLIPTrainArguments(**own), TrainingArguments(**training_args)


def read_model_config(model_config: str | None) -> dict[str, Any] | None:
    """`--model-config` (JSON text or a JSON file) as `VideoCLIPConfig` keyword arguments; None when not given."""
    if model_config is None:
        return None
    text = Path(model_config).read_text(encoding="utf-8") if os.path.isfile(model_config) else model_config
    try:
        value = json.loads(text)
    except json.JSONDecodeError as error:
        raise CommandError(f"--model-config must be JSON or a JSON file, got {model_config!r}: {error}") from None
    if not isinstance(value, dict):
        raise CommandError("--model-config must be a JSON object of VideoCLIPConfig arguments.")
    return value
