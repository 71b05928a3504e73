"""`VideoCLIPTrainer`: the Hugging Face `Trainer` for the contrastive loss, with Recall@K evaluation."""

from __future__ import annotations

import contextlib
import math
import random
import warnings
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import numpy as np
import torch
from torch import nn
from transformers import Trainer, TrainerCallback

from ..data import VideoCLIPDataCollator
from ..retrieval.metrics import retrieval_metrics


def retrieval_compute_metrics(eval_prediction, ks: Sequence[int] = (1, 5, 10)) -> dict[str, float]:
    """`Trainer`'s `compute_metrics`: `retrieval_metrics` over the whole evaluation set, from the `(text_embeds,
    video_embeds)` of `VideoCLIPTrainer.prediction_step`; `ks` defaults to the reference's `recall_ks`."""
    text_embeds, video_embeds = (torch.as_tensor(np.asarray(e)) for e in eval_prediction.predictions[:2])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # k > N (a small validation set): Recall@k is 100%, no need to warn each epoch
        metrics = retrieval_metrics(text_embeds, video_embeds, ks)
    return {key: value for key, value in metrics.to_dict().items() if not isinstance(value, str)}


@contextlib.contextmanager
def _preserved_rng_state() -> Iterator[None]:
    """Restores Python's, numpy's and torch's (CPU, initialised CUDA) random states on exit."""
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


class VideoCLIPTrainer(Trainer):
    """`Trainer` for `VideoCLIPModel`'s contrastive training. Unlike `Trainer`:

    * the loss is the model's contrastive loss (gathered across processes), without `num_items_in_batch`;
    * evaluation predicts `(text_embeds, video_embeds)` and by default reports Recall@1/5/10, MdR and MnR
      (`retrieval_compute_metrics`); it restores the random generators, so evaluating never changes the training
      trajectory and a run resumed from a checkpoint saved before the epoch-end evaluation replays it exactly;
    * with a `VideoCLIPDataCollator`, dataset columns are never removed (the collator reads them, or a lazy
      transform renders from them).

    Args:
        *args, **kwargs: as `Trainer`.
        decay_all_parameters: weight decay on every trainable parameter (biases, LayerNorm, logit scale), as the
            reference's `AdamW(self.parameters(), ...)`, or False for `Trainer`'s exclusions. Defaults to True.
    """

    def __init__(self, *args, decay_all_parameters: bool = True, **kwargs):
        kwargs["compute_metrics"] = kwargs.get("compute_metrics") or retrieval_compute_metrics
        self.decay_all_parameters = decay_all_parameters
        super().__init__(*args, **kwargs)
        self.model_accepts_loss_kwargs = False

    def _prepare_inputs(self, inputs: dict[str, Any]) -> dict[str, Any]:
        # A `defer_video_resize` collator's uint8 clips are resized and normalised here, on the training device.
        if isinstance(self.data_collator, VideoCLIPDataCollator):
            inputs = self.data_collator.finish_videos(inputs, self.args.device)
        return super()._prepare_inputs(inputs)

    def compute_loss(self, model: nn.Module, inputs: dict[str, Any], return_outputs=False, num_items_in_batch=None):
        outputs = model(
            input_ids=inputs["input_ids"], attention_mask=inputs.get("attention_mask"),
            pixel_values_videos=inputs["pixel_values_videos"], return_loss=True,
        )
        return (outputs.loss, outputs) if return_outputs else outputs.loss

    def prediction_step(self, model: nn.Module, inputs: dict[str, Any], prediction_loss_only: bool, ignore_keys=None):
        inputs = self._prepare_inputs(inputs)
        with torch.no_grad(), self.compute_loss_context_manager():
            loss, outputs = self.compute_loss(model, inputs, return_outputs=True)
        if prediction_loss_only:
            return loss.detach(), None, None
        embeds = (outputs.text_embeds.detach(), outputs.video_embeds.detach())
        # Trainer calls compute_metrics only when there are labels; pairs are (text i, video i), so they carry nothing.
        return loss.detach(), embeds, torch.zeros(embeds[0].shape[0], dtype=torch.long, device=embeds[0].device)

    def evaluate(self, *args, **kwargs) -> dict[str, float]:
        # Evaluation draws from the global generators (each DataLoader iterator takes a base seed from torch's).
        with _preserved_rng_state():
            return super().evaluate(*args, **kwargs)

    def _remove_unused_columns(self, dataset, description: str | None = None):
        if isinstance(self.data_collator, VideoCLIPDataCollator):
            return dataset
        return super()._remove_unused_columns(dataset, description=description)

    def _get_collator_with_removed_columns(self, data_collator: Callable, description: str | None = None) -> Callable:
        if isinstance(data_collator, VideoCLIPDataCollator):
            return data_collator
        return super()._get_collator_with_removed_columns(data_collator, description=description)

    def get_decay_parameter_names(self, model: nn.Module) -> list[str]:
        if self.decay_all_parameters:
            return [name for name, _ in model.named_parameters()]
        return super().get_decay_parameter_names(model)


class DatasetEpochCallback(TrainerCallback):
    """Calls `set_epoch` (the dataset's or its transform's) as each epoch begins, so per-epoch random draws (MUGEN's
    start frames and captions) change every epoch and replay identically when training resumes."""

    def __init__(self, set_epoch: Callable[[int], None]):
        self.set_epoch = set_epoch

    def on_epoch_begin(self, args, state, control, **kwargs):
        # `state.epoch` is the whole number of epochs done when an epoch begins (also when resuming mid-epoch,
        # where the floor is the epoch being finished). DataLoader workers start afterwards and see it, unless
        # `dataloader_persistent_workers` keeps old workers.
        self.set_epoch(int(math.floor((state.epoch or 0.0) + 1e-9)))
