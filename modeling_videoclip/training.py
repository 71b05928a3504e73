"""Training and finetuning VideoCLIP with the Hugging Face `Trainer`, from one process to many GPUs.

The recipe is torchmultimodal's MUGEN VideoCLIP training (``examples/mugen/retrieval/{train.py, model.py,
configs/train.yaml}`` in facebookresearch/multimodal): pretrained DistilBERT (frozen) and Kinetics-400 S3D
(trainable) with fresh projection heads, the symmetric contrastive loss gathered across processes, AdamW with
learning rate 1e-3 and weight decay 1e-3 on every parameter, a constant learning rate, no gradient clipping,
batch 16 per device, 20 epochs, validation Recall@1/5/10 each epoch and a checkpoint each epoch.

Pieces, usable on their own:

* `VideoCLIPDataCollator`: dataset rows with a text and a video column -> model inputs, through the processor.
* `build_model` / `build_processor`: the ``videoclip-base`` initialisation, random initialisation, or a saved
  VideoCLIP (local folder or Hub id); `freeze_towers` freezes the text and/or video backbone.
* `VideoCLIPTrainer`: a `Trainer` that computes the contrastive loss, evaluates Recall@K over the whole
  validation set, keeps the text/video columns the collator needs, and decays every parameter as the reference.
* `train` and the command line (`add_train_arguments`, `run_train`; ``videoclip train`` or
  ``python -m modeling_videoclip.training``, which ``torchrun`` and ``accelerate launch`` can start unchanged).
"""

from __future__ import annotations

import argparse
import contextlib
import copy
import dataclasses
import json
import logging
import math
import os
import random
import sys
import typing
import warnings
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from torch import nn
from transformers import HfArgumentParser, Trainer, TrainerCallback, TrainingArguments, set_seed
from transformers.trainer_utils import IntervalStrategy

from .configuration_videoclip import VideoCLIPConfig
from .modeling_videoclip import VideoCLIPModel
from .processing_videoclip import VideoCLIPProcessor
from .video_processing_videoclip import VideoCLIPVideoProcessor

logger = logging.getLogger(__name__)

VIDEOCLIP_BASE = "videoclip-base"
"""`build_model`'s name for the reference's training initialisation (pretrained towers, fresh projections)."""
RANDOM_INIT = "random"
TOKENIZER_FROM_DATA = "from-data"
DISTILBERT_NAME = "distilbert-base-uncased"
"""The reference's ``text_model_name``: the Hub DistilBERT loaded by the ``videoclip-base`` initialisation."""

# The reference's training hyper-parameters (examples/mugen/retrieval/configs/train.yaml and model.py).
MUGEN_LEARNING_RATE = 1e-3
MUGEN_WEIGHT_DECAY = 1e-3
MUGEN_BATCH_SIZE = 16
MUGEN_EPOCHS = 20
MUGEN_LOG_EVERY = 100
MUGEN_NUM_WORKERS = 4


class PretrainedWeightsUnavailableError(RuntimeError):
    """The pretrained DistilBERT or S3D weights of ``videoclip-base`` could not be obtained."""


# ------------------------------------------------------------------------------------------------------------
# Data
# ------------------------------------------------------------------------------------------------------------


@dataclass
class VideoCLIPDataCollator:
    """Turns dataset rows holding a caption and a video into a `VideoCLIPModel` batch.

    Works with any dataset whose rows are mappings with a text column (a string; a list of strings uses its
    first) and a video column (uint8 `(frames, height, width, 3)` as a numpy array, torch tensor or nested
    lists), e.g. `load_mugen` rows or a `datasets.Array4D` column. Format such a column with
    `with_format("numpy")` (`train` and `numpy_video_format` do): as nested Python lists a clip takes seconds to
    convert. Other columns are ignored, so the dataset need not be pruned; `VideoCLIPTrainer` tells `Trainer` not
    to prune it, because `Trainer`'s default `remove_unused_columns=True` would drop `text` and `video` (they are
    not `forward` arguments) or the raw columns a rendering transform such as `load_mugen`'s reads.

    Args:
        processor: the `VideoCLIPProcessor` (tokenizer and video processor).
        text_column: name of the caption column. Defaults to `"text"`, `load_mugen`'s name.
        video_column: name of the video column. Defaults to `"video"`, `load_mugen`'s name.
        processor_kwargs: extra keyword arguments for the processor call, e.g. `{"num_frames": 16}`.

    Returns (when called on a list of rows):
        A dict with `input_ids`, `attention_mask`, `pixel_values_videos` and `return_loss=True` (so that a plain
        `Trainer` computes the contrastive loss too).
    """

    processor: VideoCLIPProcessor
    text_column: str = "text"
    video_column: str = "video"
    processor_kwargs: dict[str, Any] = field(default_factory=dict)

    def __call__(self, rows: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
        if len(rows) == 0:
            raise ValueError("VideoCLIPDataCollator got an empty batch.")
        texts = [_row_text(row, self.text_column, self.video_column) for row in rows]
        videos = [_row_video(row, self.video_column, self.text_column) for row in rows]
        batch = self.processor(text=texts, videos=videos, return_tensors="pt", **self.processor_kwargs)
        return {
            "input_ids": batch["input_ids"],
            "attention_mask": batch["attention_mask"],
            "pixel_values_videos": batch["pixel_values_videos"],
            "return_loss": True,
        }


def _missing_column(row: Mapping[str, Any], column: str, other: str) -> KeyError:
    return KeyError(
        f"Dataset row has no {column!r} column (it has {sorted(row)}). Name the caption and video columns with "
        f"text_column/video_column; if {column!r} and {other!r} disappeared, Trainer's remove_unused_columns "
        f"dropped them: use VideoCLIPTrainer or TrainingArguments(remove_unused_columns=False)."
    )


def _row_text(row: Mapping[str, Any], column: str, other: str) -> str:
    if column not in row:
        raise _missing_column(row, column, other)
    text = row[column]
    if isinstance(text, (list, tuple)) and text and all(isinstance(t, str) for t in text):
        text = text[0]
    if not isinstance(text, str):
        raise TypeError(f"Column {column!r} must hold strings (or lists of strings), got {type(text).__name__}.")
    return text


def _row_video(row: Mapping[str, Any], column: str, other: str) -> np.ndarray | torch.Tensor:
    if column not in row:
        raise _missing_column(row, column, other)
    video = row[column]
    if isinstance(video, torch.Tensor):
        return video
    if isinstance(video, (list, tuple)):
        video = np.asarray(video, dtype=np.uint8)
    if not isinstance(video, np.ndarray):
        raise TypeError(
            f"Column {column!r} must hold uint8 (frames, height, width, 3) arrays, got {type(video).__name__}."
        )
    if video.ndim != 4 or video.shape[-1] != 3:
        raise ValueError(f"Column {column!r} must hold (frames, height, width, 3) videos, got {video.shape}.")
    if video.dtype != np.uint8 and np.issubdtype(video.dtype, np.integer):
        # `datasets`' numpy formatting can widen uint8 Array4D columns; the processor expects uint8 pixels.
        if video.size and (video.min() < 0 or video.max() > 255):
            raise ValueError(f"Column {column!r} holds integer pixels outside [0, 255].")
        video = video.astype(np.uint8)
    return video


# ------------------------------------------------------------------------------------------------------------
# Model and processor
# ------------------------------------------------------------------------------------------------------------


def fetch_pretrained_tower_weights(
    text_model_name: str = DISTILBERT_NAME,
) -> tuple[dict[str, torch.Tensor], dict[str, torch.Tensor]]:
    """Downloads (or reads from the caches) the reference's pretrained towers.

    Args:
        text_model_name: Hub id or folder of the DistilBERT to load. Defaults to `"distilbert-base-uncased"`,
            the reference's `text_model_name`.

    Returns:
        `(text_state, video_state)`: DistilBERT's state dict, and the `features` of torchvision's
        `S3D_Weights.KINETICS400_V1` (its classifier dropped, as the reference replaces it with `nn.Identity`).

    Raises:
        PretrainedWeightsUnavailableError: when either cannot be obtained (e.g. offline), with a one-line reason.
    """
    from torchvision.models.video import S3D_Weights
    from transformers import DistilBertModel

    try:
        text_state = DistilBertModel.from_pretrained(text_model_name).state_dict()
    except Exception as error:  # noqa: BLE001 - any failure means the same thing to the user
        raise PretrainedWeightsUnavailableError(
            f"Cannot load the pretrained DistilBERT {text_model_name!r} for {VIDEOCLIP_BASE} ({type(error).__name__}: "
            f"{_first_line(error)}); connect to the Hugging Face Hub or fill its cache, or use --init random."
        ) from error
    try:
        s3d_state = S3D_Weights.KINETICS400_V1.get_state_dict(progress=False)
    except Exception as error:  # noqa: BLE001
        raise PretrainedWeightsUnavailableError(
            f"Cannot download torchvision's S3D Kinetics-400 weights for {VIDEOCLIP_BASE} ({type(error).__name__}: "
            f"{_first_line(error)}); connect to download.pytorch.org or fill the torch hub cache, or use --init random."
        ) from error
    video_state = {k.removeprefix("features."): v for k, v in s3d_state.items() if k.startswith("features.")}
    return text_state, video_state


def load_pretrained_towers(model: VideoCLIPModel, text_model_name: str = DISTILBERT_NAME) -> VideoCLIPModel:
    """Loads the reference's pretrained towers into `model` in place (projections and logit scale untouched).

    Args:
        model: a `VideoCLIPModel` whose text tower has DistilBERT's default shape.
        text_model_name: as `fetch_pretrained_tower_weights`. Defaults to `"distilbert-base-uncased"`.

    Returns:
        `model`, with DistilBERT's weights in `text_model` and Kinetics-400 S3D's in `video_model.features`.
    """
    text_state, video_state = fetch_pretrained_tower_weights(text_model_name)
    _load_towers(model, text_state, video_state)
    return model


def _load_towers(model: VideoCLIPModel, text_state: dict, video_state: dict) -> None:
    model.text_model.load_state_dict(text_state, strict=True)
    model.video_model.features.load_state_dict(video_state, strict=True)


def _first_line(error: BaseException) -> str:
    text = str(error).strip()
    return text.splitlines()[0] if text else "no message"


def build_model(
    init: str = VIDEOCLIP_BASE,
    config: VideoCLIPConfig | Mapping[str, Any] | None = None,
    freeze_text: bool = False,
    freeze_video: bool = False,
    text_model_name: str = DISTILBERT_NAME,
) -> VideoCLIPModel:
    """Builds the model to train.

    Args:
        init: `"videoclip-base"` (the reference's training start: pretrained DistilBERT from the Hub and
            torchvision's Kinetics-400 S3D, fresh projections, logit scale 0.07), `"random"` (everything
            freshly initialised) or a saved VideoCLIP to finetune (local folder or Hub id). Defaults to
            `"videoclip-base"`.
        config: `VideoCLIPConfig` or keyword arguments for it, for `"random"` (e.g. a smaller text tower) and
            `"videoclip-base"` (its text tower must keep DistilBERT's shape). Defaults to `VideoCLIPConfig()`, the
            reference's shapes. Ignored (with an error) for a saved model.
        freeze_text: freeze DistilBERT (the MUGEN recipe does: `text_trainable: False`). Defaults to False here;
            the command line's `--freeze-text` turns it on. Ignored, with a warning, for `"random"`, as the
            reference ignores `text_trainable=False` without pretrained weights.
        freeze_video: freeze S3D (the MUGEN recipe trains it). Defaults to False; ignored for `"random"` too.
        text_model_name: DistilBERT to load for `"videoclip-base"`. Defaults to `"distilbert-base-uncased"`.

    Returns:
        The `VideoCLIPModel`, in train mode, frozen towers applied (see `freeze_towers`).
    """
    if isinstance(config, Mapping):
        config = VideoCLIPConfig(**config)
    if init in (VIDEOCLIP_BASE, RANDOM_INIT):
        # Fetch first, so that a missing download fails before the model is built.
        weights = fetch_pretrained_tower_weights(text_model_name) if init == VIDEOCLIP_BASE else None
        model = VideoCLIPModel(config if config is not None else VideoCLIPConfig())
        if weights is not None:
            _load_towers(model, *weights)
    else:
        if config is not None:
            raise ValueError(f"A model config applies to --init {VIDEOCLIP_BASE} or random, not to a saved model ({init}).")
        model = VideoCLIPModel.from_pretrained(init)
    if init == RANDOM_INIT and (freeze_text or freeze_video):
        # The reference: "`text_trainable` acts as True when `text_pretrained` is False" (likewise for video).
        # A frozen random DistilBERT also maps every caption to nearly the same [CLS] embedding, which pins the
        # contrastive loss at log(batch size).
        warnings.warn("--freeze-text/--freeze-video are ignored with --init random (nothing pretrained to keep), "
                      "as in the reference.", stacklevel=2)
        freeze_text = freeze_video = False
    freeze_towers(model, text=freeze_text, video=freeze_video)
    return model.train()


def freeze_towers(model: VideoCLIPModel, text: bool = False, video: bool = False) -> list[str]:
    """Freezes the text backbone (DistilBERT) and/or the video backbone (S3D), as the reference's
    `text_trainable=False` / `video_trainable=False`: their parameters stop requiring gradients (so they are
    not in the optimizer and receive no weight decay); the projection heads and the logit scale stay trainable.

    A frozen S3D also keeps its BatchNorm running statistics: its BatchNorm layers are put in eval mode before
    every forward (the reference would keep updating them), so a frozen tower is bit-identical after training.
    A frozen DistilBERT keeps its dropout active in training, as in the reference.

    Args:
        model: the model, modified in place.
        text: freeze `model.text_model`. Defaults to False.
        video: freeze `model.video_model`. Defaults to False.

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


def build_processor(
    init: str = VIDEOCLIP_BASE,
    tokenizer: str | None = None,
    num_frames: int | None = None,
    texts: Sequence[str] | None = None,
) -> VideoCLIPProcessor:
    """The processor matching `build_model(init)`.

    Args:
        init: as `build_model`. A saved model brings its own processor (unless `tokenizer` is given).
        tokenizer: where the tokenizer comes from: a WordPiece `vocab.txt` (or a folder holding one), a Hub id
            or folder of a tokenizer, or `"from-data"` (a small vocabulary built from `texts`, for random
            initialisation without bert-base-uncased's vocabulary). Defaults to the saved model's processor,
            else `"distilbert-base-uncased"`'s tokenizer (the reference's bert-base-uncased vocabulary).
        num_frames: frames per clip. Defaults to the video processor's 32, the reference's clip length.
        texts: the training captions, for `tokenizer="from-data"`.

    Returns:
        A `VideoCLIPProcessor`.
    """
    from transformers import AutoProcessor

    if tokenizer is None and init not in (VIDEOCLIP_BASE, RANDOM_INIT):
        try:
            processor = AutoProcessor.from_pretrained(init)
        except Exception as error:  # noqa: BLE001
            raise PretrainedWeightsUnavailableError(
                f"Cannot load a processor from {init!r} ({type(error).__name__}: {_first_line(error)}); pass "
                f"--tokenizer (a vocab.txt or tokenizer) to build one."
            ) from error
        if num_frames is not None:
            processor.video_processor.num_frames = num_frames
        return processor
    video_kwargs = {} if num_frames is None else {"num_frames": num_frames}
    return VideoCLIPProcessor(
        video_processor=VideoCLIPVideoProcessor(**video_kwargs), tokenizer=load_tokenizer(tokenizer, texts)
    )


def load_tokenizer(tokenizer: str | None = None, texts: Sequence[str] | None = None):
    """Loads a tokenizer as `build_processor` describes its `tokenizer` argument."""
    from transformers import AutoTokenizer

    from .tokenization import tokenizer_from_vocab, vocab_from_texts

    if tokenizer == TOKENIZER_FROM_DATA:
        if not texts:
            raise ValueError(f"--tokenizer {TOKENIZER_FROM_DATA} needs the training captions.")
        return tokenizer_from_vocab(vocab_from_texts(texts))
    name = tokenizer or DISTILBERT_NAME
    if os.path.isfile(name) or os.path.isfile(os.path.join(name, "vocab.txt")):
        return tokenizer_from_vocab(name)
    try:
        return AutoTokenizer.from_pretrained(name)
    except Exception as error:  # noqa: BLE001
        raise PretrainedWeightsUnavailableError(
            f"Cannot load the tokenizer {name!r} ({type(error).__name__}: {_first_line(error)}); connect to the "
            f"Hugging Face Hub, pass --tokenizer with a vocab.txt, or --tokenizer {TOKENIZER_FROM_DATA} with --init random."
        ) from error


# ------------------------------------------------------------------------------------------------------------
# Trainer
# ------------------------------------------------------------------------------------------------------------


def retrieval_compute_metrics(eval_prediction, ks: Sequence[int] = (1, 5, 10)) -> dict[str, float]:
    """`Trainer` `compute_metrics`: Recall@K, median and mean rank in both directions over the whole evaluation
    set, from the `(text_embeds, video_embeds)` predictions `VideoCLIPTrainer.prediction_step` returns.

    Args:
        eval_prediction: `EvalPrediction` whose `predictions` are `(text_embeds, video_embeds)`, `(N, 256)` each,
            gathered over processes by `Trainer`.
        ks: Defaults to `(1, 5, 10)`, the reference's `recall_ks`.

    Returns:
        `{"text_to_video/R@1": ..., "video_to_text/MnR": ..., "num_pairs": N}` (Recall in percent); `Trainer`
        prefixes them with `eval_`.
    """
    from .retrieval import retrieval_metrics

    text_embeds, video_embeds = eval_prediction.predictions[:2]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # k > N (a small validation set): Recall@k is 100%, no need to warn each epoch
        metrics = retrieval_metrics(torch.as_tensor(np.asarray(text_embeds)), torch.as_tensor(np.asarray(video_embeds)), ks)
    return {key: value for key, value in metrics.to_dict().items() if not isinstance(value, str)}


@contextlib.contextmanager
def _preserved_rng_state() -> Iterator[None]:
    """Restores Python's, numpy's and torch's (CPU and initialised CUDA devices') RNG states on exit."""
    python_state, numpy_state, torch_state = random.getstate(), np.random.get_state(), torch.get_rng_state()
    cuda_states = torch.cuda.get_rng_state_all() if torch.cuda.is_available() and torch.cuda.is_initialized() else None
    try:
        yield
    finally:
        random.setstate(python_state)
        np.random.set_state(numpy_state)
        torch.set_rng_state(torch_state)
        if cuda_states is not None:
            torch.cuda.set_rng_state_all(cuda_states)


def _is_videoclip_collator(collator: Any) -> bool:
    return isinstance(collator, VideoCLIPDataCollator)


class VideoCLIPTrainer(Trainer):
    """`Trainer` for `VideoCLIPModel`'s contrastive training.

    Differences from `Trainer`:

    * the loss is the model's contrastive loss (`return_loss=True`), gathered across processes when distributed;
      no `num_items_in_batch` is passed to the model (it has no token-level loss to normalise);
    * evaluation returns `(text_embeds, video_embeds)` as predictions and, unless another `compute_metrics` is
      given, reports Recall@1/5/10, MdR and MnR over the whole evaluation set (`retrieval_compute_metrics`);
    * with a `VideoCLIPDataCollator`, dataset columns are never removed (`remove_unused_columns` would drop the
      `text` and `video` columns the collator reads, or the raw columns a lazy transform renders them from);
    * `decay_all_parameters=True` (default) applies weight decay to every trainable parameter, biases, LayerNorm
      and the logit scale included, as the reference's `AdamW(self.parameters(), ...)`; `False` keeps
      `Trainer`'s exclusions.

    Args:
        *args, **kwargs: as `Trainer`.
        decay_all_parameters: see above. Defaults to True (the reference's optimizer).
    """

    def __init__(self, *args, decay_all_parameters: bool = True, **kwargs):
        if kwargs.get("compute_metrics") is None:
            kwargs["compute_metrics"] = retrieval_compute_metrics
        self.decay_all_parameters = decay_all_parameters
        super().__init__(*args, **kwargs)
        self.model_accepts_loss_kwargs = False

    def compute_loss(
        self,
        model: nn.Module,
        inputs: dict[str, Any],
        return_outputs: bool = False,
        num_items_in_batch: torch.Tensor | int | None = None,
    ):
        outputs = model(
            input_ids=inputs["input_ids"],
            attention_mask=inputs.get("attention_mask"),
            pixel_values_videos=inputs["pixel_values_videos"],
            return_loss=True,
        )
        return (outputs.loss, outputs) if return_outputs else outputs.loss

    def prediction_step(
        self,
        model: nn.Module,
        inputs: dict[str, Any],
        prediction_loss_only: bool,
        ignore_keys: list[str] | None = None,
    ) -> tuple[torch.Tensor, tuple[torch.Tensor, torch.Tensor] | None, torch.Tensor | None]:
        inputs = self._prepare_inputs(inputs)
        with torch.no_grad(), self.compute_loss_context_manager():
            loss, outputs = self.compute_loss(model, inputs, return_outputs=True)
        loss = loss.detach()
        if prediction_loss_only:
            return loss, None, None
        embeds = (outputs.text_embeds.detach(), outputs.video_embeds.detach())
        # Trainer calls compute_metrics only when there are labels; pairs are (text i, video i), so they carry nothing.
        labels = torch.zeros(embeds[0].shape[0], dtype=torch.long, device=embeds[0].device)
        return loss, embeds, labels

    def evaluate(self, *args, **kwargs) -> dict[str, float]:
        """`Trainer.evaluate`, leaving the random number generators as it found them.

        Evaluation draws from the global generators (each DataLoader iterator takes a base seed from torch's),
        and `Trainer` may save a checkpoint's RNG state before the epoch-end evaluation: without this, a run
        resumed from that checkpoint would draw different dropout masks than the uninterrupted run. With it,
        evaluating (or not) never changes the training trajectory.
        """
        with _preserved_rng_state():
            return super().evaluate(*args, **kwargs)

    def _remove_unused_columns(self, dataset, description: str | None = None):
        if _is_videoclip_collator(self.data_collator):
            return dataset
        return super()._remove_unused_columns(dataset, description=description)

    def _get_collator_with_removed_columns(self, data_collator: Callable, description: str | None = None) -> Callable:
        if _is_videoclip_collator(data_collator):
            return data_collator
        return super()._get_collator_with_removed_columns(data_collator, description=description)

    def get_decay_parameter_names(self, model: nn.Module) -> list[str]:
        if self.decay_all_parameters:
            return [name for name, _ in model.named_parameters()]
        return super().get_decay_parameter_names(model)


# ------------------------------------------------------------------------------------------------------------
# Datasets
# ------------------------------------------------------------------------------------------------------------


def load_split(data: str, split: str, assets: str | None = None, num_frames: int | None = None):
    """Loads one split of the training data.

    Args:
        data: a MUGEN data folder (holding `coinrun_dataset_jsons/`; read with `modeling_videoclip.mugen.load_mugen`),
            a `datasets` folder written by `save_to_disk`, or a Hub dataset id / `load_dataset` path.
        split: the split name (`train`, `val`/`validation`, `test`).
        assets: MUGEN's sprite folder, for MUGEN data (defaults to `load_mugen`'s own default).
        num_frames: frames per clip for MUGEN rendering (defaults to `load_mugen`'s).

    Returns:
        A `datasets.Dataset` whose rows have a text and a video column.
    """
    import datasets

    if os.path.isdir(os.path.join(data, "coinrun_dataset_jsons")):
        return _load_mugen_split(data, split, assets, num_frames)
    if os.path.isdir(data) and (
        os.path.isfile(os.path.join(data, "dataset_dict.json")) or os.path.isfile(os.path.join(data, "state.json"))
    ):
        loaded = datasets.load_from_disk(data)
        if isinstance(loaded, datasets.DatasetDict):
            return loaded[_pick_split(split, list(loaded))]
        return loaded
    builder_splits = datasets.get_dataset_split_names(data)
    return datasets.load_dataset(data, split=_pick_split(split, builder_splits))


def _pick_split(split: str, available: Sequence[str]) -> str:
    synonyms = {"val": ("val", "validation", "valid", "dev"), "validation": ("validation", "val", "valid", "dev")}
    for candidate in synonyms.get(split, (split,)):
        if candidate in available:
            return candidate
    raise KeyError(f"Split {split!r} not found; the data has {list(available)}.")


def _load_mugen_split(data: str, split: str, assets: str | None, num_frames: int | None):
    """`load_mugen` with the reference's VideoCLIP training data settings: manual captions, 224x224 frames,
    32 frames (or `num_frames`) every 3rd game frame, a random start frame in training (a fixed one for
    validation, so that the per-epoch figures are comparable; the reference drew them at random too)."""
    from .mugen import load_mugen

    kwargs: dict[str, Any] = dict(resolution=224, annotation="manual", start="random" if split == "train" else "fixed")
    if assets is not None:
        kwargs["asset_dir"] = assets
    if num_frames is not None:
        kwargs["sequence_length"] = num_frames
    return load_mugen(data, "val" if split == "validation" else split, **kwargs)


def _epoch_setter(dataset) -> Callable[[int], None] | None:
    """The `set_epoch` of `dataset` or of its formatting transform (e.g. `load_mugen`'s `MugenTransform`, which
    draws random start frames and captions per epoch), if any."""
    for candidate in (dataset, getattr(dataset, "format", {}).get("format_kwargs", {}).get("transform")):
        if callable(getattr(candidate, "set_epoch", None)):
            return candidate.set_epoch
    return None


class DatasetEpochCallback(TrainerCallback):
    """Tells the training data which epoch begins, so per-epoch random draws (MUGEN's random start frames and
    captions) change every epoch and replay identically when training resumes from a checkpoint.

    Args:
        set_epoch: the dataset's (or its transform's) `set_epoch`.
    """

    def __init__(self, set_epoch: Callable[[int], None]):
        self.set_epoch = set_epoch

    def on_epoch_begin(self, args, state, control, **kwargs):
        # `state.epoch` is the whole number of epochs done when an epoch begins (also when resuming mid-epoch,
        # where the floor is the epoch being finished). DataLoader workers start afterwards and see it, unless
        # `dataloader_persistent_workers` keeps old workers.
        self.set_epoch(int(math.floor((state.epoch or 0.0) + 1e-9)))


# ------------------------------------------------------------------------------------------------------------
# Training entry points
# ------------------------------------------------------------------------------------------------------------


@dataclass
class VideoCLIPTrainArguments:
    """What to train on and from; the optimisation settings are `transformers.TrainingArguments`.

    Args:
        data: training data, as `load_split`'s `data`. Not needed when datasets are passed to `train` directly.
        assets: MUGEN sprite folder. Defaults to `load_mugen`'s default.
        init: `"videoclip-base"`, `"random"` or a saved VideoCLIP (see `build_model`). Defaults to `"videoclip-base"`.
        freeze_text: freeze DistilBERT. Defaults to False (the command line's `--freeze-text`; the MUGEN recipe
            freezes it).
        freeze_video: freeze S3D. Defaults to False, as the MUGEN recipe.
        tokenizer: see `build_processor`. Defaults to the saved model's or bert-base-uncased's.
        model_config: JSON text or a JSON file of `VideoCLIPConfig` arguments for `--init random` (e.g. a small
            text tower). Defaults to the reference's shapes.
        num_frames: frames per clip given to the model. Defaults to 32, the reference's.
        text_column / video_column: the dataset's column names. Default `"text"` / `"video"`, `load_mugen`'s.
        train_split / eval_split: split names. Default `"train"` / `"val"` (`"validation"` is accepted for it);
            `eval_split=""` trains without evaluation.
        max_train_samples / max_eval_samples: keep the first N rows (quick runs). Default: all.
    """

    data: str | None = None
    assets: str | None = None
    init: str = VIDEOCLIP_BASE
    freeze_text: bool = False
    freeze_video: bool = False
    tokenizer: str | None = None
    model_config: str | None = None
    num_frames: int | None = None
    text_column: str = "text"
    video_column: str = "video"
    train_split: str = "train"
    eval_split: str = "val"
    max_train_samples: int | None = None
    max_eval_samples: int | None = None


def mugen_training_defaults() -> dict[str, Any]:
    """`TrainingArguments` values of the reference's recipe, used as the command line's defaults.

    Returns:
        lr 1e-3 and weight decay 1e-3 (MUGEN's AdamW), batch 16 per device, 20 epochs, constant learning rate
        (the reference has no scheduler), no gradient clipping (Lightning's default), evaluation and a checkpoint
        every epoch (`ModelCheckpoint(save_top_k=-1)`), logging every 100 steps, 4 data-loading workers, the
        dataset's columns kept for the collator, DDP without the unused-parameter search (the reference's
        `ddp_find_unused_parameters_false`; frozen towers do not require gradients, so DDP ignores them), no
        reporting integrations.
    """
    return dict(
        learning_rate=MUGEN_LEARNING_RATE,
        weight_decay=MUGEN_WEIGHT_DECAY,
        per_device_train_batch_size=MUGEN_BATCH_SIZE,
        per_device_eval_batch_size=MUGEN_BATCH_SIZE,
        num_train_epochs=MUGEN_EPOCHS,
        lr_scheduler_type="constant",
        warmup_steps=0,
        max_grad_norm=0.0,
        optim="adamw_torch",
        eval_strategy="epoch",
        save_strategy="epoch",
        logging_strategy="steps",
        logging_steps=MUGEN_LOG_EVERY,
        dataloader_num_workers=MUGEN_NUM_WORKERS,
        remove_unused_columns=False,
        ddp_find_unused_parameters=False,
        report_to="none",
    )


def _read_model_config(model_config: str | None) -> dict[str, Any] | None:
    if model_config is None:
        return None
    text = model_config
    if os.path.isfile(model_config):
        with open(model_config, encoding="utf-8") as handle:
            text = handle.read()
    try:
        value = json.loads(text)
    except json.JSONDecodeError as error:
        raise ValueError(f"--model-config must be JSON or a JSON file, got {model_config!r}: {error}") from None
    if not isinstance(value, dict):
        raise ValueError("--model-config must be a JSON object of VideoCLIPConfig arguments.")
    return value


def numpy_video_format(dataset, video_column: str = "video"):
    """Returns `dataset` formatted so its fixed-shape video column (`Array3D`-`Array5D`) comes out as numpy.

    Without a format, `datasets` hands such a column over as nested Python lists, whose conversion costs seconds
    per clip; with numpy formatting it is a copy. Datasets with a format already (e.g. a rendering transform)
    and other video features are returned unchanged.

    Args:
        dataset: a `datasets.Dataset` (anything else is returned unchanged).
        video_column: Defaults to `"video"`.
    """
    import datasets

    if not isinstance(dataset, datasets.Dataset) or dataset.format["type"] is not None:
        return dataset
    feature = dataset.features.get(video_column)
    array_types = (datasets.Array3D, datasets.Array4D, datasets.Array5D)
    if not isinstance(feature, array_types):
        return dataset
    return dataset.with_format("numpy", columns=[video_column], output_all_columns=True)


def _first(dataset, count: int | None):
    return dataset if count is None else dataset.select(range(min(count, len(dataset))))


def _captions(dataset, column: str) -> list[str]:
    """The captions of `dataset`, read from the raw column when there is one (a rendering transform would
    otherwise render every video just to return the texts)."""
    raw = dataset.with_format(None) if hasattr(dataset, "with_format") else dataset
    source = raw if column in getattr(raw, "column_names", ()) else dataset
    return [_row_text({column: value}, column, "") for value in source[column]]


def train(
    args: VideoCLIPTrainArguments,
    training_args: TrainingArguments,
    train_dataset=None,
    eval_dataset=None,
    model: VideoCLIPModel | None = None,
    processor: VideoCLIPProcessor | None = None,
    resume_from_checkpoint: str | bool | None = None,
) -> VideoCLIPTrainer:
    """Builds everything from `args` (unless given) and trains.

    Args:
        args: `VideoCLIPTrainArguments`.
        training_args: `transformers.TrainingArguments` (see `mugen_training_defaults` for the reference's values).
        train_dataset / eval_dataset: datasets with text and video columns; loaded from `args.data` when None
            (`eval_dataset` from `args.eval_split`, skipped when that is empty).
        model / processor: built with `build_model` / `build_processor` from `args` when None.
        resume_from_checkpoint: a checkpoint folder, or True for the last one in `output_dir`. Defaults to
            `training_args.resume_from_checkpoint`.

    Returns:
        The `VideoCLIPTrainer` after training; the final model and processor are saved in `output_dir`.
    """
    if train_dataset is None:
        if not args.data:
            raise ValueError("Pass --data (or datasets to train()).")
        train_dataset = load_split(args.data, args.train_split, args.assets, args.num_frames)
        if eval_dataset is None and args.eval_split:
            eval_dataset = load_split(args.data, args.eval_split, args.assets, args.num_frames)
    train_dataset = numpy_video_format(_first(train_dataset, args.max_train_samples), args.video_column)
    if eval_dataset is not None:
        eval_dataset = numpy_video_format(_first(eval_dataset, args.max_eval_samples), args.video_column)
    model_config = _read_model_config(args.model_config)
    if processor is None:
        texts = _captions(train_dataset, args.text_column) if args.tokenizer == TOKENIZER_FROM_DATA else None
        processor = build_processor(args.init, args.tokenizer, args.num_frames, texts)
        if args.tokenizer == TOKENIZER_FROM_DATA:
            model_config = _with_vocab_size(model_config, len(processor.tokenizer))
    if model is None:
        set_seed(training_args.seed)  # reproducible fresh weights, as Trainer does for `model_init`
        model = build_model(args.init, model_config, args.freeze_text, args.freeze_video)
    if eval_dataset is None and training_args.eval_strategy != IntervalStrategy.NO:
        training_args.eval_strategy = IntervalStrategy.NO  # nothing to evaluate on
    set_epoch = _epoch_setter(train_dataset)
    trainer = VideoCLIPTrainer(
        model=model,
        args=training_args,
        train_dataset=train_dataset,
        eval_dataset=eval_dataset,
        data_collator=VideoCLIPDataCollator(processor, args.text_column, args.video_column),
        processing_class=processor,
        callbacks=[DatasetEpochCallback(set_epoch)] if set_epoch is not None else None,
    )
    if resume_from_checkpoint is None:
        resume_from_checkpoint = training_args.resume_from_checkpoint
    trainer.train(resume_from_checkpoint=resume_from_checkpoint)
    trainer.save_model()
    trainer.save_state()
    if training_args.push_to_hub:
        trainer.push_to_hub()
    return trainer


def _with_vocab_size(model_config: dict[str, Any] | None, vocab_size: int) -> dict[str, Any]:
    config = dict(model_config or {})
    text_config = config.get("text_config") or {}
    config["text_config"] = {**text_config, "vocab_size": vocab_size}
    return config


# ------------------------------------------------------------------------------------------------------------
# Command line
# ------------------------------------------------------------------------------------------------------------

_OWN_OPTIONS = {f.name for f in dataclasses.fields(VideoCLIPTrainArguments)}


def add_train_arguments(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
    """Adds `videoclip train`'s options to `parser`: this module's own, then every `TrainingArguments` option
    (`--output-dir`, `--learning-rate`, `--resume-from-checkpoint`, `--push-to-hub`, ...) with the reference's
    defaults (`mugen_training_defaults`).

    Args:
        parser: an `argparse` parser or sub-parser.

    Returns:
        `parser`.
    """
    group = parser.add_argument_group("data and model")
    group.add_argument("--data", help="MUGEN data folder, save_to_disk folder or Hub dataset with text/video columns")
    group.add_argument("--assets", help="MUGEN sprite folder (default: load_mugen's)")
    group.add_argument(
        "--init",
        default=VIDEOCLIP_BASE,
        help=f"{VIDEOCLIP_BASE} (pretrained DistilBERT + Kinetics-400 S3D, fresh projections; default), "
        "random, or a saved VideoCLIP folder/Hub id to finetune",
    )
    group.add_argument("--freeze-text", action="store_true", help="freeze DistilBERT (the MUGEN recipe does)")
    group.add_argument("--freeze-video", action="store_true", help="freeze S3D, BatchNorm statistics included")
    group.add_argument(
        "--tokenizer",
        help=f"vocab.txt, tokenizer folder/Hub id, or {TOKENIZER_FROM_DATA} (default: the model's, else {DISTILBERT_NAME})",
    )
    group.add_argument("--model-config", help="JSON (or JSON file) of VideoCLIPConfig arguments for --init random")
    group.add_argument("--num-frames", type=int, help="frames per clip (default 32, the reference's)")
    group.add_argument("--text-column", default="text", help="caption column (default text)")
    group.add_argument("--video-column", default="video", help="video column (default video)")
    group.add_argument("--train-split", default="train", help="training split (default train)")
    group.add_argument("--eval-split", default="val", help="validation split, '' for none (default val)")
    group.add_argument("--max-train-samples", type=int, help="use the first N training rows")
    group.add_argument("--max-eval-samples", type=int, help="use the first N validation rows")

    trainer_group = parser.add_argument_group("Trainer options (transformers.TrainingArguments; MUGEN defaults)")
    type_hints = typing.get_type_hints(TrainingArguments)
    for training_field in dataclasses.fields(TrainingArguments):
        if not training_field.init or training_field.name in _OWN_OPTIONS:
            continue
        # HfArgumentParser's own per-field parser (it rewrites the field's type, hence the copy).
        training_field = copy.copy(training_field)
        training_field.type = type_hints[training_field.name]
        HfArgumentParser._parse_dataclass_field(trainer_group, training_field)
    parser.set_defaults(**mugen_training_defaults())
    return parser


def split_namespace(namespace: argparse.Namespace) -> tuple[VideoCLIPTrainArguments, TrainingArguments]:
    """Splits parsed `videoclip train` options into `(VideoCLIPTrainArguments, TrainingArguments)`."""
    values = vars(namespace)
    own = VideoCLIPTrainArguments(**{name: values[name] for name in _OWN_OPTIONS if name in values})
    training_kwargs = {
        f.name: values[f.name] for f in dataclasses.fields(TrainingArguments) if f.init and f.name in values
    }
    if not training_kwargs.get("output_dir"):
        raise ValueError("--output-dir is required.")
    return own, TrainingArguments(**training_kwargs)


def run_train(namespace: argparse.Namespace) -> int:
    """Runs `videoclip train` from parsed options (see `add_train_arguments`).

    Args:
        namespace: the parsed options.

    Returns:
        The exit status: 0 on success, 1 when pretrained weights or a tokenizer cannot be obtained (the one-line
        reason is logged).
    """
    own, training_args = split_namespace(namespace)
    try:
        trainer = train(own, training_args)
    except PretrainedWeightsUnavailableError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    if trainer.is_world_process_zero():
        print(f"Saved the trained model and processor to {training_args.output_dir}")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """`python -m modeling_videoclip.training ...` (what `torchrun` / `accelerate launch` start)."""
    parser = argparse.ArgumentParser(
        prog="python -m modeling_videoclip.training",
        description="Train or finetune VideoCLIP with the Hugging Face Trainer (MUGEN's recipe by default).",
    )
    add_train_arguments(parser)
    return run_train(parser.parse_args(argv))


__all__ = [
    "DatasetEpochCallback",
    "PretrainedWeightsUnavailableError",
    "VideoCLIPDataCollator",
    "VideoCLIPTrainArguments",
    "VideoCLIPTrainer",
    "add_train_arguments",
    "build_model",
    "build_processor",
    "freeze_towers",
    "fetch_pretrained_tower_weights",
    "load_pretrained_towers",
    "load_split",
    "load_tokenizer",
    "mugen_training_defaults",
    "numpy_video_format",
    "retrieval_compute_metrics",
    "run_train",
    "split_namespace",
    "train",
]

if __name__ == "__main__":
    raise SystemExit(main())
