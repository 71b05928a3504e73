"""Half precision as documented: a model loaded with ``dtype=torch.bfloat16`` / ``torch.float16`` runs on the
processor's float32 output (the model casts it to its own dtype) and embeds like the float32 model."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from tiny_videoclip import CAPTIONS, TINY_NUM_FRAMES, random_videos, tiny_model, tiny_processor

from modeling_videoclip import VideoCLIPModel
from modeling_videoclip.retrieval import embed_dataset


@pytest.fixture(scope="module")
def saved(tmp_path_factory):
    folder = tmp_path_factory.mktemp("tiny-videoclip")
    model = tiny_model()
    model.save_pretrained(folder)
    return folder, model


@pytest.fixture(scope="module")
def inputs():
    # One clip: bfloat16 3D convolutions are emulated on CPUs without native bf16 (slow).
    return tiny_processor()(text=CAPTIONS[:2], videos=random_videos(1, frames=TINY_NUM_FRAMES, size=224, seed=5))


def test_bfloat16_model_runs_on_the_processor_output(saved, inputs):
    folder, fp32 = saved
    model = VideoCLIPModel.from_pretrained(folder, dtype=torch.bfloat16).eval()
    assert inputs["pixel_values_videos"].dtype == torch.float32
    with torch.inference_mode():
        half, full = model(**inputs), fp32(**inputs)
    assert half.video_embeds.dtype == half.text_embeds.dtype == torch.bfloat16
    for side in ("text_embeds", "video_embeds"):
        cosine = F.cosine_similarity(getattr(half, side).float(), getattr(full, side), dim=-1)
        assert cosine.min() > 0.99, (side, cosine)

    rows = [{"text": CAPTIONS[2], "video": random_videos(1, frames=TINY_NUM_FRAMES, size=224, seed=6)[0]}]
    text_embeds, video_embeds = embed_dataset(model, tiny_processor(), rows, progress=False)
    assert text_embeds.dtype == video_embeds.dtype == torch.float32  # unit-norm float32 rows, whatever the model
    torch.testing.assert_close(video_embeds.norm(dim=-1), torch.ones(1))


class _ReachedS3D(Exception):
    pass


def test_float16_model_casts_videos_to_its_dtype(saved, inputs):
    """float16: the text tower end to end; the video tower up to its first convolution (float16 3D convolutions
    are emulated on CPU, ~1 min for one tiny clip), which must receive float16 pixels."""
    folder, fp32 = saved
    model = VideoCLIPModel.from_pretrained(folder, dtype=torch.float16).eval()
    with torch.inference_mode():
        half = model.get_text_features(inputs["input_ids"], inputs["attention_mask"]).pooler_output
        full = fp32.get_text_features(inputs["input_ids"], inputs["attention_mask"]).pooler_output
    assert half.dtype == torch.float16
    assert F.cosine_similarity(half.float(), full, dim=-1).min() > 0.99

    seen = []

    def stop_at_first_layer(module, args):
        seen.append(args[0].dtype)
        raise _ReachedS3D

    model.video_model.features[0].register_forward_pre_hook(stop_at_first_layer)
    with pytest.raises(_ReachedS3D), torch.inference_mode():
        model.get_video_features(inputs["pixel_values_videos"])
    assert seen == [torch.float16]
