"""`train` and its command lines: ``videoclip train`` and ``python -m modeling_videoclip.training`` (which
``torchrun`` and ``accelerate launch`` start)."""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from collections.abc import Sequence

from transformers import TrainingArguments
from transformers.trainer_utils import IntervalStrategy

from ..common.errors import CommandError, writing
from ..common.models import TOKENIZER_FROM_DATA, PretrainedWeightsUnavailableError
from ..data import VideoCLIPDataCollator, captions, epoch_setter, load_split, numpy_video_format
from ..modeling_videoclip import VideoCLIPModel
from ..processing_videoclip import VideoCLIPProcessor
from .arguments import VideoCLIPTrainArguments, read_model_config, split_namespace
from .initialization import initial_processor, initialize_model
from .lora import MERGED_FOLDER, LoraOptions, apply_lora, save_merged
from .trainer import DatasetEpochCallback, VideoCLIPTrainer


def train(
    args: VideoCLIPTrainArguments, training_args: TrainingArguments, train_dataset=None, eval_dataset=None,
    model: VideoCLIPModel | None = None, processor: VideoCLIPProcessor | None = None,
    resume_from_checkpoint: str | bool | None = None,
) -> VideoCLIPTrainer:
    """Builds what is not given from `args` and trains; the final model and processor are saved in `output_dir`.

    Args:
        training_args: see `mugen_training_defaults` for the reference's values.
        train_dataset / eval_dataset: text and video columns. Default: `args.data`'s splits (no eval for "").
        model / processor: Default: `initialize_model` / `initial_processor` from `args`. With `args.lora` the
            model is wrapped in LoRA adapters (`lora.apply_lora`) and `output_dir` gets the adapters, not weights.
        resume_from_checkpoint: a checkpoint, or True for `output_dir`'s last. Defaults to `training_args`'.

    Returns:
        The `VideoCLIPTrainer` after training.
    """
    text_column, video_column = args.text_column or "text", args.video_column or "video"
    if train_dataset is None:
        if not args.data:
            raise CommandError("Pass --data (or datasets to train()).")
        columns = dict(text_column=args.text_column, video_column=args.video_column)
        train_dataset = load_split(args.data, args.train_split, args.assets, args.num_frames, training=True, **columns)
        if eval_dataset is None and args.eval_split:
            eval_dataset = load_split(args.data, args.eval_split, args.assets, args.num_frames, training=True,
                                      **columns)
        text_column, video_column = "text", "video"  # as load_split names them
    train_dataset = numpy_video_format(_first(train_dataset, args.max_train_samples), video_column)
    if eval_dataset is not None:
        eval_dataset = numpy_video_format(_first(eval_dataset, args.max_eval_samples), video_column)
    model_config = read_model_config(args.model_config)
    if processor is None:
        from_data = args.tokenizer == TOKENIZER_FROM_DATA
        texts = captions(train_dataset, text_column) if from_data else None
        processor = initial_processor(args.init, args.tokenizer, args.num_frames, texts)
        if from_data:
            model_config = dict(model_config or {})
            text_config = {**(model_config.get("text_config") or {}), "vocab_size": len(processor.tokenizer)}
            model_config["text_config"] = text_config
    if args.merge and not args.lora:
        raise CommandError("--merge merges LoRA adapters: pass it with --lora.")
    if model is None:
        freeze = dict(freeze_text=args.freeze_text, freeze_video=args.freeze_video)
        model = initialize_model(args.init, model_config, **freeze, seed=training_args.seed)
    if args.lora:
        model = apply_lora(model, LoraOptions.from_arguments(args), merge=args.merge)
    if eval_dataset is None:
        training_args.eval_strategy = IntervalStrategy.NO  # nothing to evaluate on
    if training_args.should_save:  # as Trainer does first, but with a one-line error
        with writing(training_args.output_dir):
            os.makedirs(training_args.output_dir, exist_ok=True)
            tempfile.TemporaryFile(dir=training_args.output_dir).close()
    set_epoch = epoch_setter(train_dataset)
    trainer = VideoCLIPTrainer(
        model=model, args=training_args, train_dataset=train_dataset, eval_dataset=eval_dataset,
        # On CUDA the DataLoader workers only decode and sample frames; resizing runs on the GPU (`_prepare_inputs`).
        data_collator=VideoCLIPDataCollator(processor, text_column, video_column,
                                            defer_video_resize=training_args.device.type == "cuda"),
        processing_class=processor, callbacks=[DatasetEpochCallback(set_epoch)] if set_epoch is not None else None,
    )
    if resume_from_checkpoint is None:
        resume_from_checkpoint = training_args.resume_from_checkpoint
    trainer.train(resume_from_checkpoint=resume_from_checkpoint)
    trainer.save_model()
    trainer.save_state()
    if args.merge and trainer.is_world_process_zero():
        save_merged(trainer.model, processor, os.path.join(training_args.output_dir, MERGED_FOLDER))
    if training_args.push_to_hub:
        trainer.push_to_hub()
    return trainer


def _first(dataset, count: int | None):
    return dataset if count is None else dataset.select(range(min(count, len(dataset))))


def run_train(namespace: argparse.Namespace) -> int:
    """Runs `videoclip train` from parsed options (`add_train_arguments`) and returns the exit status: 0, or 1
    when pretrained weights or a tokenizer cannot be obtained (the reason printed in one line). Other user errors
    raise `VideoCLIPError`."""
    own, training_args = split_namespace(namespace)
    try:
        trainer = train(own, training_args)
    except PretrainedWeightsUnavailableError as error:
        print(f"error: {error.message}", file=sys.stderr)
        return 1
    if trainer.is_world_process_zero():
        print(f"Saved the trained model and processor to {training_args.output_dir}")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """`python -m modeling_videoclip.training ...` (as ``torchrun`` starts it): ``videoclip train`` with `argv`
    (default `sys.argv[1:]`)."""
    from ..cli import main as cli_main

    return cli_main(["train", *(sys.argv[1:] if argv is None else argv)])
