"""The model's performance paths compute what the plain paths compute.

* text: in eval mode with SDPA, padded batches skip the padding in DistilBERT's per-token layers;
* video: on CPU, S3D runs on channels_last_3d activations.
"""

import pytest
import torch

import modeling_videoclip.modeling_videoclip as modeling
from tiny_videoclip import TINY_NUM_FRAMES, tiny_model


def padded_batch() -> tuple[torch.Tensor, torch.Tensor]:
    generator = torch.Generator().manual_seed(0)
    lengths = [9, 3, 6, 1]
    input_ids = torch.zeros((len(lengths), max(lengths) + 2), dtype=torch.long)
    for row, length in enumerate(lengths):
        input_ids[row, : length + 2] = torch.randint(5, 20, (length + 2,), generator=generator)
    return input_ids, (input_ids != 0).long()


def test_text_without_padding_equals_distilbert(monkeypatch):
    model = tiny_model()
    input_ids, attention_mask = padded_batch()
    used = []
    original = modeling._distilbert_without_padding
    monkeypatch.setattr(modeling, "_distilbert_without_padding", lambda *args: used.append(1) or original(*args))
    with torch.inference_mode():
        fast = model.get_text_features(input_ids, attention_mask)
        plain = model.text_model(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state
        plain_pooled = model.text_projection(plain[:, 0])
    assert used, "the padding-free path was not taken"
    real = attention_mask.bool()
    assert torch.allclose(fast.last_hidden_state[real], plain[real], atol=1e-6)
    assert torch.count_nonzero(fast.last_hidden_state[~real]) == 0
    assert torch.allclose(fast.pooler_output, plain_pooled, atol=1e-6)


@pytest.mark.parametrize("reason", ["training", "eager", "no padding", "hidden states"])
def test_text_plain_path_when_the_fast_one_does_not_apply(monkeypatch, reason):
    model = tiny_model(seed=1)
    input_ids, attention_mask = padded_batch()
    kwargs = {}
    if reason == "training":
        model.train()
    elif reason == "eager":
        model.text_model.config._attn_implementation = "eager"
    elif reason == "no padding":
        attention_mask = torch.ones_like(attention_mask)
    else:
        kwargs = {"output_hidden_states": True}
    monkeypatch.setattr(modeling, "_distilbert_without_padding", lambda *args: pytest.fail("fast path taken"))
    model.get_text_features(input_ids, attention_mask, **kwargs)


def test_video_channels_last_equals_contiguous():
    model = tiny_model()
    pixels = torch.randn(1, TINY_NUM_FRAMES, 3, 224, 224, generator=torch.Generator().manual_seed(0))
    with torch.inference_mode():
        fast = model.get_video_features(pixels).pooler_output
        features = model.video_model.features(pixels.transpose(1, 2).contiguous())  # contiguous layout
        plain = model.video_projection(model.video_model.avgpool(features).mean(dim=(2, 3, 4)))
    assert torch.allclose(fast, plain, atol=1e-5)
