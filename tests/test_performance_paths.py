"""The model's performance paths compute what the plain paths compute.

* text: in eval mode with SDPA, padded batches skip the padding in DistilBERT's per-token layers, and any
  DistilBERT laid out otherwise than the fast path expects takes the plain path;
* video: on CPU, S3D runs on channels_last_3d activations.
"""

import pytest
import torch
from tiny_videoclip import TINY_NUM_FRAMES, tiny_model

import modeling_videoclip.modeling_videoclip as modeling


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


class WrappedLinear(torch.nn.Module):
    """Stands in for an adapter around a linear layer: the same numbers, another module type."""

    def __init__(self, linear: torch.nn.Linear):
        super().__init__()
        self.linear = linear

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.linear(x)


def take_structure_away(model, change: str) -> None:
    """Changes the tiny model's DistilBERT so that it no longer matches what the fast path restates; the plain
    DistilBERT forward still runs on it."""
    layer = model.text_model.transformer.layer[1]
    if change == "missing attribute":
        del layer.attention.n_heads  # read by the fast path only
    elif change == "changed signature":
        # An Embeddings that needs two arguments: the fast path passes one, DistilBERT three.
        embeddings = model.text_model.embeddings
        embeddings.forward = lambda input_ids, inputs_embeds, position_ids=None: type(embeddings).forward(
            embeddings, input_ids, inputs_embeds, position_ids
        )
    elif change == "wrapped linear":
        layer.ffn.lin1 = WrappedLinear(layer.ffn.lin1)
    elif change == "layer subclass":
        layer.__class__ = type("CustomBlock", (type(layer),), {})
    elif change == "forward hook":
        layer.register_forward_hook(lambda module, args, output: output * 2)
    elif change == "instance forward":
        layer.attention.forward = lambda *args, original=layer.attention.forward, **kwargs: original(*args, **kwargs)
    else:
        raise AssertionError(change)


@pytest.mark.parametrize("change", ["wrapped linear", "layer subclass", "forward hook", "instance forward"])
def test_text_plain_path_when_distilbert_is_laid_out_otherwise(monkeypatch, change):
    """The layout check sees the change: the fast path is not even tried."""
    model = tiny_model(seed=2)
    take_structure_away(model, change)
    input_ids, attention_mask = padded_batch()
    monkeypatch.setattr(modeling, "_distilbert_without_padding", lambda *args: pytest.fail("fast path taken"))
    with torch.inference_mode():
        got = model.get_text_features(input_ids, attention_mask)
        plain = model.text_model(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state
        plain_pooled = model.text_projection(plain[:, 0])
    assert torch.equal(got.last_hidden_state, plain)
    assert torch.equal(got.pooler_output, plain_pooled)


@pytest.mark.parametrize("change", ["missing attribute", "changed signature"])
def test_text_fast_path_failure_falls_back_to_plain(monkeypatch, change):
    """A change the layout check does not look for (it is forced to pass for the signature, whose per-instance
    `forward` it would see) makes the fast path fail: the plain path's numbers come out."""
    model = tiny_model(seed=3)
    take_structure_away(model, change)
    if change == "changed signature":
        monkeypatch.setattr(modeling, "_has_distilbert_layout", lambda text_model: True)
    used = []
    original = modeling._distilbert_without_padding
    monkeypatch.setattr(modeling, "_distilbert_without_padding", lambda *args: used.append(1) or original(*args))
    input_ids, attention_mask = padded_batch()
    with torch.inference_mode():
        got = model.get_text_features(input_ids, attention_mask)
        plain = model.text_model(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state
    assert used, "the fast path was not tried"
    assert torch.equal(got.last_hidden_state, plain)


def test_text_fast_path_survives_transformers_output_capturing_hooks(monkeypatch):
    """Requesting hidden states once makes transformers install (idle) output-capturing hooks on the layers; later
    calls still take the fast path."""
    model = tiny_model(seed=4)
    input_ids, attention_mask = padded_batch()
    with torch.inference_mode():
        model.get_text_features(input_ids, attention_mask, output_hidden_states=True)
        assert any(layer._forward_hooks for layer in model.text_model.transformer.layer)
        used = []
        original = modeling._distilbert_without_padding
        monkeypatch.setattr(modeling, "_distilbert_without_padding", lambda *args: used.append(1) or original(*args))
        model.get_text_features(input_ids, attention_mask)
    assert used, "the padding-free path was not taken"


def test_video_channels_last_equals_contiguous():
    model = tiny_model()
    pixels = torch.randn(1, TINY_NUM_FRAMES, 3, 224, 224, generator=torch.Generator().manual_seed(0))
    with torch.inference_mode():
        fast = model.get_video_features(pixels).pooler_output
        features = model.video_model.features(pixels.transpose(1, 2).contiguous())  # contiguous layout
        plain = model.video_projection(model.video_model.avgpool(features).mean(dim=(2, 3, 4)))
    assert torch.allclose(fast, plain, atol=1e-5)
