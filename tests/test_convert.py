"""Conversion of torchmultimodal checkpoints, and exact parity with the reference model."""

import argparse
import re

import pytest
import torch
import torch.nn.functional as F
from transformers import DistilBertConfig

from benchmarks.reference import build_reference_videoclip, randomize_batch_norm_stats
from modeling_videoclip import VideoCLIPConfig
from modeling_videoclip.common.errors import ExitCode, VideoCLIPError
from modeling_videoclip.convert_torchmultimodal import (
    CheckpointConversionError,
    KeyMismatchError,
    PickleRequiredError,
    UnreadableCheckpointError,
    convert_torchmultimodal_checkpoint,
    load_checkpoint,
)

TINY_TEXT = dict(vocab_size=50, dim=32, n_layers=2, n_heads=2, hidden_dim=37, max_position_embeddings=64)


@pytest.fixture(scope="module")
def tiny_reference():
    torch.manual_seed(0)
    reference = build_reference_videoclip(DistilBertConfig(**TINY_TEXT)).eval()
    with torch.no_grad():
        randomize_batch_norm_stats(reference)
    return reference


def tiny_config() -> VideoCLIPConfig:
    return VideoCLIPConfig(text_config=TINY_TEXT)


def test_full_size_parity_with_reference():
    """The reference architecture at its default sizes, random weights: embeddings agree to 1e-5."""
    torch.manual_seed(1)
    reference = build_reference_videoclip().eval()
    with torch.no_grad():
        randomize_batch_norm_stats(reference)
    model = convert_torchmultimodal_checkpoint(reference.state_dict())
    input_ids = torch.randint(1000, 30522, (3, 14))
    input_ids[:, 0], input_ids[1, 9:], input_ids[2, 5:] = 101, 0, 0
    videos = torch.randn(2, 3, 16, 224, 224)
    with torch.no_grad():
        expected = reference(input_ids, videos)
        text = F.normalize(model.get_text_features(input_ids).pooler_output)
        video = F.normalize(model.get_video_features(videos.transpose(1, 2)).pooler_output)
    assert (text - expected.embeddings_a).abs().max().item() <= 1e-5
    assert (video - expected.embeddings_b).abs().max().item() <= 1e-5


def test_plain_checkpoint_file(tmp_path, tiny_reference):
    path = tmp_path / "videoclip_mugen.pt"
    state = dict(tiny_reference.state_dict())
    state["encoder_a.0.model.embeddings.position_ids"] = torch.arange(64).unsqueeze(0)  # older transformers
    torch.save(state, path)
    model = convert_torchmultimodal_checkpoint(path, config=tiny_config())
    converted = model.state_dict()
    assert torch.equal(converted["text_projection.linear1.weight"], state["encoder_a.1.linear1.weight"])
    assert torch.equal(
        converted["video_model.features.0.0.1.running_mean"], state["encoder_b.0.model.features.0.0.1.running_mean"]
    )
    assert model.logit_scale.item() == pytest.approx(0.07)
    assert not model.training


def test_lightning_checkpoint_with_logit_scale(tmp_path, tiny_reference):
    path = tmp_path / "videoclip_lightning_mugen.pt"
    state = {"model." + k: v for k, v in tiny_reference.state_dict().items()}
    state["contrastive_loss.logit_scale"] = torch.tensor(3.5)
    torch.save({"state_dict": state, "epoch": 7, "global_step": 100}, path)
    model = convert_torchmultimodal_checkpoint(path, config=tiny_config())
    assert model.logit_scale.item() == pytest.approx(3.5)


def test_pickle_needing_file_is_refused_without_opt_in(tmp_path, tiny_reference):
    path = tmp_path / "lightning.pt"
    state = {"model." + k: v for k, v in tiny_reference.state_dict().items()}
    torch.save({"state_dict": state, "hyper_parameters": argparse.Namespace(lr=1e-3)}, path)
    with pytest.raises(PickleRequiredError, match="allow_pickle=True"):
        load_checkpoint(path)
    model = convert_torchmultimodal_checkpoint(path, config=tiny_config(), allow_pickle=True)
    assert model.text_projection.linear1.weight.shape == (256, 32)


def test_missing_unexpected_and_misshaped_keys_are_listed(tiny_reference):
    state = dict(tiny_reference.state_dict())
    del state["encoder_b.1.linear2.weight"]
    state["encoder_a.1.linear1.weight"] = torch.zeros(256, 16)
    with pytest.raises(KeyMismatchError) as error:
        convert_torchmultimodal_checkpoint(state, config=tiny_config())
    message = str(error.value)
    assert "Missing keys (1)" in message and "video_projection.linear2.weight" in message
    assert "Mis-shaped" in message and re.search(r"text_projection.linear1.weight: checkpoint \(256, 16\)", message)

    state = dict(tiny_reference.state_dict())
    state["encoder_c.extra"] = torch.zeros(1)
    with pytest.raises(CheckpointConversionError, match=r"Unexpected keys \(1\):\n  encoder_c.extra"):
        convert_torchmultimodal_checkpoint(state, config=tiny_config())


def test_wrong_architecture_is_reported(tiny_reference):
    with pytest.raises(CheckpointConversionError, match="Mis-shaped"):
        convert_torchmultimodal_checkpoint(tiny_reference.state_dict())  # default (full-size) config


def test_conversion_errors_carry_their_exit_codes():
    for error, code in ((UnreadableCheckpointError, ExitCode.CHECKPOINT_UNREADABLE),
                        (PickleRequiredError, ExitCode.NEEDS_PICKLE), (KeyMismatchError, ExitCode.KEY_MISMATCH)):
        assert issubclass(error, VideoCLIPError) and issubclass(error, ValueError)
        assert error("x").exit_code == code


def test_not_a_videoclip_checkpoint(tmp_path):
    path = tmp_path / "other.pt"
    torch.save({"conv.weight": torch.zeros(2)}, path)
    with pytest.raises(CheckpointConversionError, match="not a torchmultimodal VideoCLIP checkpoint"):
        load_checkpoint(path)
    garbage = tmp_path / "garbage.pt"
    garbage.write_bytes(b"\x00" * 100)
    with pytest.raises(UnreadableCheckpointError, match="Cannot read"):
        load_checkpoint(garbage)
    truncated = tmp_path / "truncated.pt"
    torch.save({"encoder_a.1.linear1.weight": torch.zeros(64, 64)}, truncated)
    truncated.write_bytes(truncated.read_bytes()[:200])
    with pytest.raises(UnreadableCheckpointError, match="Cannot read"):
        load_checkpoint(truncated)
    with pytest.raises(FileNotFoundError):
        load_checkpoint(tmp_path / "missing.pt")
