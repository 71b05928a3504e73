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
    """`Trainer` `compute_metrics`: `retrieval_metrics` (Recall@`ks` in percent, MdR, MnR, both directions) over
    the whole evaluation set, from the `(text_embeds, video_embeds)` that `VideoCLIPTrainer.prediction_step`
    returns; `ks` defaults to the reference's `recall_ks`. `Trainer` prefixes the keys with `eval_`."""
    text_embeds, video_embeds = (torch.as_tensor(np.asarray(e)) for e in eval_prediction.predictions[:2])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # k > N (a small validation set): Recall@k is 100%, no need to warn each epoch
        metrics = retrieval_metrics(text_embeds, video_embeds, ks)
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


class VideoCLIPTrainer(Trainer):
    """`Trainer` for `VideoCLIPModel`'s contrastive training.

    Differences from `Trainer`:

    * the loss is the model's contrastive loss (`return_loss=True`), gathered across processes when distributed;
      no `num_items_in_batch` is passed to the model (it has no token-level loss to normalise);
    * evaluation returns `(text_embeds, video_embeds)` as predictions and, unless another `compute_metrics` is
      given, reports Recall@1/5/10, MdR and MnR over the whole evaluation set (`retrieval_compute_metrics`);
      it leaves the random number generators as it found them, so evaluating (or not) never changes the
      training trajectory, and a run resumed from a checkpoint saved before the epoch-end evaluation draws the
      same dropout masks as the uninterrupted run;
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

    def compute_loss(self, model: nn.Module, inputs: dict[str, Any], return_outputs=False, num_items_in_batch=None):
        outputs = model(
            input_ids=inputs["input_ids"],
            attention_mask=inputs.get("attention_mask"),
            pixel_values_videos=inputs["pixel_values_videos"],
            return_loss=True,
        )
        return (outputs.loss, outputs) if return_outputs else outputs.loss

    def prediction_step(self, model: nn.Module, inputs: dict[str, Any], prediction_loss_only: bool, ignore_keys=None):
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
