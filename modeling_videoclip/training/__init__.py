"""Training and finetuning VideoCLIP with the Hugging Face `Trainer`, from one process to many GPUs, by
torchmultimodal's MUGEN recipe (``examples/mugen/retrieval`` in facebookresearch/multimodal; see the README)."""

from ..common.models import PretrainedWeightsUnavailableError, build_model
from ..data import VideoCLIPDataCollator
from .arguments import VideoCLIPTrainArguments, add_train_arguments, mugen_training_defaults, split_namespace
from .entry import main, run_train, train
from .initialization import freeze_towers, initial_processor, initialize_model
from .lora import LoraOptions, apply_lora, save_merged
from .trainer import DatasetEpochCallback, VideoCLIPTrainer, retrieval_compute_metrics

__all__ = [
    "DatasetEpochCallback", "LoraOptions", "PretrainedWeightsUnavailableError", "VideoCLIPDataCollator",
    "VideoCLIPTrainArguments", "VideoCLIPTrainer", "add_train_arguments", "apply_lora", "build_model", "freeze_towers",
    "initial_processor", "initialize_model", "main", "mugen_training_defaults", "retrieval_compute_metrics",
    "run_train", "save_merged", "split_namespace", "train",
]
