"""``videoclip train``: train or finetune VideoCLIP with the Hugging Face Trainer (`modeling_videoclip.training`)."""

from __future__ import annotations

from .shared import EPILOG


def register(subparsers) -> None:
    from ..training import add_train_arguments, run_train

    # No shared --debug here: after `train`, --debug is TrainingArguments' option; `videoclip --debug train` works.
    parser = subparsers.add_parser(
        "train", help="train or finetune VideoCLIP with the Hugging Face Trainer",
        description="Train VideoCLIP (MUGEN's recipe by default); see modeling_videoclip.training. "
        "Use `videoclip --debug train ...` for tracebacks (--debug after `train` is TrainingArguments').",
        epilog=EPILOG,
    )
    add_train_arguments(parser).set_defaults(handler=run_train)
