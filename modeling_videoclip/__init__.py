"""VideoCLIP (torchmultimodal's MUGEN video-text retrieval model) for the Hugging Face ecosystem.

Importing the package registers the `videoclip` model type with transformers' Auto classes and marks the classes for
remote code, so `save_pretrained` writes the code files and `auto_map` that `trust_remote_code=True` loading needs.
"""

from transformers import AutoConfig, AutoModel, AutoProcessor, AutoTokenizer, AutoVideoProcessor, DistilBertTokenizer
from transformers.pipelines import PIPELINE_REGISTRY

from .configuration_videoclip import VideoCLIPConfig, VideoCLIPVideoConfig
from .modeling_videoclip import (
    VideoCLIPModel,
    VideoCLIPOutput,
    VideoCLIPPreTrainedModel,
    VideoCLIPTextModelWithProjection,
    VideoCLIPVideoModelWithProjection,
    contrastive_loss,
)
from .pipeline_videoclip import ZERO_SHOT_VIDEO_CLASSIFICATION, VideoCLIPZeroShotVideoClassificationPipeline
from .processing_videoclip import VideoCLIPProcessor
from .video_processing_videoclip import VideoCLIPVideoProcessor

AutoConfig.register(VideoCLIPConfig.model_type, VideoCLIPConfig, exist_ok=True)
AutoConfig.register(VideoCLIPVideoConfig.model_type, VideoCLIPVideoConfig, exist_ok=True)
AutoModel.register(VideoCLIPConfig, VideoCLIPModel, exist_ok=True)
AutoProcessor.register(VideoCLIPConfig, VideoCLIPProcessor, exist_ok=True)
AutoVideoProcessor.register(VideoCLIPConfig, VideoCLIPVideoProcessor, exist_ok=True)
AutoTokenizer.register(VideoCLIPConfig, fast_tokenizer_class=DistilBertTokenizer, exist_ok=True)
VideoCLIPConfig.register_for_auto_class()
VideoCLIPModel.register_for_auto_class("AutoModel")
VideoCLIPProcessor.register_for_auto_class("AutoProcessor")
VideoCLIPVideoProcessor.register_for_auto_class("AutoVideoProcessor")
# In this process `pipeline(task, model=<VideoCLIPModel object>, processor=...)` finds the pipeline too.
PIPELINE_REGISTRY.register_pipeline(
    ZERO_SHOT_VIDEO_CLASSIFICATION, pipeline_class=VideoCLIPZeroShotVideoClassificationPipeline, pt_model=AutoModel,
    type="multimodal",
)

__all__ = [
    "VideoCLIPConfig", "VideoCLIPVideoConfig", "VideoCLIPModel", "VideoCLIPOutput", "VideoCLIPPreTrainedModel",
    "VideoCLIPProcessor", "VideoCLIPTextModelWithProjection", "VideoCLIPVideoModelWithProjection",
    "VideoCLIPVideoProcessor", "VideoCLIPZeroShotVideoClassificationPipeline", "contrastive_loss",
]
