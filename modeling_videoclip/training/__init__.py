"""Training and finetuning VideoCLIP with the Hugging Face `Trainer`, from one process to many GPUs.

The recipe is torchmultimodal's MUGEN VideoCLIP training (``examples/mugen/retrieval/{train.py, model.py,
configs/train.yaml}`` in facebookresearch/multimodal): pretrained DistilBERT (frozen) and Kinetics-400 S3D
(trainable) with fresh projection heads, the symmetric contrastive loss gathered across processes, AdamW with
learning rate 1e-3 and weight decay 1e-3 on every parameter, a constant learning rate, no gradient clipping,
batch 16 per device, 20 epochs, validation Recall@1/5/10 each epoch and a checkpoint each epoch.

Modules: `arguments` (options and the recipe's defaults), `initialization` (the model and processor to train),
`trainer` (`VideoCLIPTrainer`), `entry` (`train`, ``videoclip train``, ``python -m modeling_videoclip.training``,
which ``torchrun`` and ``accelerate launch`` start). `VideoCLIPDataCollator` (`modeling_videoclip.data`) and
`build_model` (`modeling_videoclip.common.models`) are re-exported here.
"""

from ..common.models import PretrainedWeightsUnavailableError, build_model
from ..data import VideoCLIPDataCollator
from .arguments import VideoCLIPTrainArguments, add_train_arguments, mugen_training_defaults, split_namespace
from .entry import main, run_train, train
from .initialization import freeze_towers, initial_processor, initialize_model
from .trainer import DatasetEpochCallback, VideoCLIPTrainer, retrieval_compute_metrics

__all__ = [
    "DatasetEpochCallback",
    "PretrainedWeightsUnavailableError",
    "VideoCLIPDataCollator",
    "VideoCLIPTrainArguments",
    "VideoCLIPTrainer",
    "add_train_arguments",
    "build_model",
    "freeze_towers",
    "initial_processor",
    "initialize_model",
    "main",
    "mugen_training_defaults",
    "retrieval_compute_metrics",
    "run_train",
    "split_namespace",
    "train",
]
