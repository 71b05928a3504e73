"""VideoCLIPModel: outputs, loss, initialisation, save/load, dtypes, input checks."""

import math

import pytest
import torch
import torch.nn.functional as F
from safetensors.torch import load_file, save_file
from tiny_videoclip import CAPTIONS, random_videos, tiny_config, tiny_model, tiny_processor
from torchmultimodal.modules.losses.contrastive_loss_with_temperature import ContrastiveLossWithTemperature

from modeling_videoclip import (
    VideoCLIPModel,
    VideoCLIPTextModelWithProjection,
    VideoCLIPVideoModelWithProjection,
)
from modeling_videoclip.modeling_videoclip import VideoCLIPCheckpointError


@pytest.fixture(scope="module")
def model():
    return tiny_model()


@pytest.fixture(scope="module")
def inputs():
    return tiny_processor()(text=CAPTIONS[:2], videos=random_videos(2, frames=16, size=224))


@pytest.fixture(scope="module")
def outputs(model, inputs):
    with torch.no_grad():
        return model(**inputs, return_loss=True)


def test_output_fields(model, inputs, outputs):
    assert outputs.logits_per_text.shape == outputs.logits_per_video.shape == (2, 2)
    assert torch.allclose(outputs.text_embeds.norm(dim=-1), torch.ones(2))
    assert torch.allclose(outputs.video_embeds.norm(dim=-1), torch.ones(2))
    cosine = outputs.text_embeds @ outputs.video_embeds.T
    assert torch.allclose(outputs.logits_per_text, cosine * math.exp(0.07))
    assert torch.equal(outputs.logits_per_video, outputs.logits_per_text.T)
    assert outputs.text_model_output.pooler_output.shape == (2, 256)
    assert outputs.video_model_output.last_hidden_state.shape[1] == 1024
    assert len(outputs.to_tuple()) == 7


def test_loss_equals_torchmultimodal_loss(model, outputs):
    reference = ContrastiveLossWithTemperature(logit_scale=0.07, logit_scale_min=None, logit_scale_max=100.0)
    expected = reference(outputs.text_embeds, outputs.video_embeds)
    assert torch.allclose(outputs.loss, expected, atol=1e-6)


def test_get_features_are_projected_not_normalised(model, inputs, outputs):
    with torch.no_grad():
        text = model.get_text_features(input_ids=inputs["input_ids"], attention_mask=inputs["attention_mask"])
        video = model.get_video_features(pixel_values_videos=inputs["pixel_values_videos"])
    assert torch.allclose(F.normalize(text.pooler_output), outputs.text_embeds, atol=1e-6)
    assert torch.allclose(F.normalize(video.pooler_output), outputs.video_embeds, atol=1e-6)
    assert not torch.allclose(text.pooler_output.norm(dim=-1), torch.ones(2))


def test_attention_mask_defaults_to_pad_id(model, inputs):
    with torch.no_grad():
        derived = model.get_text_features(inputs["input_ids"]).pooler_output
        explicit = model.get_text_features(inputs["input_ids"], inputs["attention_mask"]).pooler_output
    assert inputs["attention_mask"].min() == 0  # the batch has padding
    assert torch.equal(derived, explicit)


def test_logit_scale_is_clamped_in_log_space_before_the_loss(inputs):
    model = tiny_model()
    with torch.no_grad():
        model.logit_scale.fill_(150.0)
        out = model(**inputs)
        assert model.logit_scale.item() == 150.0  # inference does not modify the parameter
        cosine = out.text_embeds @ out.video_embeds.T
        assert torch.allclose(out.logits_per_text, cosine * math.exp(100.0), rtol=1e-5)
        model(**inputs, return_loss=True)
    assert model.logit_scale.item() == 100.0  # the reference clamps the parameter itself


def test_init_reproduces_torch_defaults_for_s3d_and_projections():
    model = VideoCLIPModel(tiny_config())
    assert model.logit_scale.item() == pytest.approx(0.07)
    for module in model.video_model.modules():
        if isinstance(module, torch.nn.Conv3d):
            bound = 1 / math.sqrt(module.weight[0].numel())  # kaiming_uniform(a=sqrt(5))
            assert module.weight.abs().max() <= bound
            assert module.weight.std() > bound / 2
        elif isinstance(module, torch.nn.BatchNorm3d):
            assert torch.equal(module.weight, torch.ones_like(module.weight))
            assert torch.equal(module.running_var, torch.ones_like(module.running_var))
            assert torch.equal(module.running_mean, torch.zeros_like(module.running_mean))
    linear = model.video_projection.linear1.weight
    assert linear.abs().max() <= 1 / math.sqrt(1024)


def test_save_load_round_trip_bit_identical(tmp_path, model, inputs, outputs):
    model.save_pretrained(tmp_path / "single")
    model.save_pretrained(tmp_path / "sharded", max_shard_size="2MB")
    assert sorted(p.name for p in (tmp_path / "single").iterdir() if p.suffix == ".safetensors") == [
        "model.safetensors"
    ]
    assert len(list((tmp_path / "sharded").glob("model-*.safetensors"))) > 1
    assert (tmp_path / "sharded" / "model.safetensors.index.json").exists()
    assert not list(tmp_path.rglob("*.bin"))
    for folder in ("single", "sharded"):
        loaded = VideoCLIPModel.from_pretrained(tmp_path / folder).eval()
        for key, value in model.state_dict().items():
            assert torch.equal(loaded.state_dict()[key], value), key
        with torch.no_grad():
            again = loaded(**inputs, return_loss=True)
        assert torch.equal(again.logits_per_text, outputs.logits_per_text)


def test_missing_weights_when_allowed_are_initialised_not_garbage(tmp_path, model):
    model.save_pretrained(tmp_path)
    weights = load_file(tmp_path / "model.safetensors")
    dropped = [k for k in weights if k.startswith("video_model.features.3.")]
    save_file(
        {k: v for k, v in weights.items() if k not in dropped},
        tmp_path / "model.safetensors",
        metadata={"format": "pt"},
    )
    with pytest.raises(VideoCLIPCheckpointError, match="uninitialised"):  # refused unless asked for
        VideoCLIPModel.from_pretrained(tmp_path)
    loaded = VideoCLIPModel.from_pretrained(tmp_path, allow_missing_weights=True)
    state = loaded.state_dict()
    for key in dropped:
        assert torch.isfinite(state[key].float()).all(), key
        if key.endswith("running_var") or (key.endswith(".weight") and state[key].dim() == 1):
            assert torch.equal(state[key], torch.ones_like(state[key])), key
        elif key.endswith(".weight"):
            assert state[key].abs().max() <= 1 / math.sqrt(state[key][0].numel()), key
    assert torch.equal(state["text_projection.linear1.weight"], weights["text_projection.linear1.weight"])


def test_bfloat16_loading(tmp_path, model, inputs, outputs):
    """bf16 casts every weight, BatchNorm statistics included. (A full bf16 S3D forward is slow on CPU, so the
    video tower is checked through its pooling on a bf16 feature map, the one op with no bf16 CPU kernel.)"""
    model.save_pretrained(tmp_path)
    loaded = VideoCLIPModel.from_pretrained(tmp_path, dtype=torch.bfloat16).eval()
    assert {p.dtype for p in loaded.parameters()} == {torch.bfloat16}
    assert loaded.video_model.features[0][0][1].running_var.dtype == torch.bfloat16
    with torch.no_grad():
        text = loaded.get_text_features(inputs["input_ids"]).pooler_output
        features = torch.randn(1, 1024, 2, 7, 7)
        loaded.video_model.features = torch.nn.Sequential()
        pooled = loaded.video_model(features.bfloat16()).pooler_output
    assert text.dtype == torch.bfloat16
    assert F.cosine_similarity(F.normalize(text.float()), outputs.text_embeds).min() > 0.98
    assert pooled.dtype == torch.bfloat16
    assert torch.allclose(pooled.float(), features.mean(dim=(2, 3, 4)), atol=2e-2)


def test_sdpa_by_default_and_equal_to_eager(tmp_path, model, inputs):
    assert model.text_model.config._attn_implementation == "sdpa"
    model.save_pretrained(tmp_path)
    eager = VideoCLIPModel.from_pretrained(tmp_path, attn_implementation="eager").eval()
    assert eager.text_model.config._attn_implementation == "eager"
    with torch.no_grad():
        a = model.get_text_features(inputs["input_ids"]).pooler_output
        b = eager.get_text_features(inputs["input_ids"]).pooler_output
    assert torch.allclose(a, b, atol=1e-5)


def test_gradient_checkpointing_gives_the_same_gradients():
    pixel_values = torch.randn(1, 13, 3, 209, 209, generator=torch.Generator().manual_seed(0))  # S3D's minimum
    grads = []
    for checkpointing in (False, True):
        model = tiny_model(projection_dropout=0.0)
        model.train()
        for module in model.modules():  # BatchNorm in eval: the same statistics in both runs
            if isinstance(module, torch.nn.BatchNorm3d):
                module.eval()
        if checkpointing:
            model.activation_checkpointing_enable(activation_checkpointing_kwargs={"use_reentrant": False})
            assert model.video_model.gradient_checkpointing
        model.get_video_features(pixel_values).pooler_output.square().sum().backward()
        grads.append(model.video_model.features[0][0][0].weight.grad.clone())
    assert grads[0].abs().max() > 0
    assert torch.allclose(grads[0], grads[1], atol=1e-5)


def test_one_tower_models_load_from_a_full_checkpoint(tmp_path, model, inputs, outputs):
    model.save_pretrained(tmp_path)
    text_model = VideoCLIPTextModelWithProjection.from_pretrained(tmp_path).eval()
    video_model = VideoCLIPVideoModelWithProjection.from_pretrained(tmp_path).eval()
    with torch.no_grad():
        text = text_model(input_ids=inputs["input_ids"]).text_embeds
        video = video_model(pixel_values_videos=inputs["pixel_values_videos"]).video_embeds
    assert torch.equal(F.normalize(text), outputs.text_embeds)
    assert torch.equal(F.normalize(video), outputs.video_embeds)


@pytest.mark.parametrize(
    "kwargs, error, message",
    [
        (dict(input_ids=torch.tensor([[1, 999]])), ValueError, "outside the vocabulary"),
        (dict(input_ids=torch.tensor([[1, -3]])), ValueError, "outside the vocabulary"),
        (dict(input_ids=torch.zeros(1, 0, dtype=torch.long)), ValueError, "empty"),
        (dict(input_ids=torch.tensor([1, 2])), ValueError, r"\(batch, sequence\)"),
        (dict(input_ids=torch.ones(1, 65, dtype=torch.long)), ValueError, "at most 64"),
        (dict(input_ids=[[1, 2]]), TypeError, "torch.Tensor"),
    ],
)
def test_bad_text_inputs(model, kwargs, error, message):
    with pytest.raises(error, match=message):
        model.get_text_features(**kwargs)


@pytest.mark.parametrize(
    "pixel_values, error, message",
    [
        (torch.zeros(1, 16, 3, 112, 112), ValueError, "too small for S3D"),
        (torch.zeros(1, 8, 3, 224, 224), ValueError, "too small for S3D"),
        (torch.zeros(1, 16, 4, 224, 224), ValueError, "frames, 3, height, width"),
        (torch.zeros(16, 3, 224, 224), ValueError, "frames, 3, height, width"),
        (torch.zeros(0, 16, 3, 224, 224), ValueError, "batch size 0"),
        (torch.zeros(1, 16, 3, 224, 224, dtype=torch.uint8), TypeError, "floating point"),
    ],
)
def test_bad_video_inputs(model, pixel_values, error, message):
    with pytest.raises(error, match=message):
        model.get_video_features(pixel_values)


def test_loss_needs_as_many_texts_as_videos(model, inputs):
    with pytest.raises(ValueError, match="2 texts and 1 videos"):
        model(input_ids=inputs["input_ids"], pixel_values_videos=inputs["pixel_values_videos"][:1], return_loss=True)


def test_forward_needs_both_modalities(model, inputs):
    with pytest.raises(ValueError, match="get_text_features"):
        model(input_ids=inputs["input_ids"])
