"""MUGEN_baseline's layouts: its S3D (``base.N``, ``conv_s/bn_s/conv_t/bn_t``) and its VideoCLIP ``CLIPModel``.

MUGEN_baseline's code cannot be installed (no package, hard-coded CUDA and checkpoint paths), so its architecture is
re-expressed below from the definitions in its ``lib/models/videoclip/s3d.py`` (module names, channel sizes, the
forward's pooling) and ``modules.py`` / ``clip.py`` (``VideoEncoder.model``, ``Projection``, ``TextEncoder.model``,
``temperature``, ``max_temperature``) with torch/transformers modules. Every weight is random: no one's weights are
used. Test files in each layout are made from these modules, and converted checkpoints must give the same numbers.
"""

from __future__ import annotations

import inspect

import pytest
import torch
import torch.nn.functional as F
from torch import nn
from torchvision.models.video import S3D
from transformers import DistilBertConfig, DistilBertModel

from benchmarks.reference import randomize_batch_norm_stats
from modeling_videoclip import VideoCLIPConfig
from modeling_videoclip.common import downloads, models
from modeling_videoclip.common.constants import PRETRAINED_VIDEO_ENCODER_URL
from modeling_videoclip.common.errors import ExitCode, VideoCLIPError
from modeling_videoclip.convert_torchmultimodal import (
    KeyMismatchError,
    S3DKeyMismatchError,
    convert_s3d_state_dict,
    convert_torchmultimodal_checkpoint,
    extract_state_dict,
)
from modeling_videoclip.publish import variants

TINY_TEXT = dict(vocab_size=50, dim=32, n_layers=2, n_heads=2, hidden_dim=37, max_position_embeddings=64)


# MUGEN_baseline's S3D, from its s3d.py: BatchNorm3d(eps=1e-3, momentum=1e-3) everywhere.
def _batch_norm(channels: int) -> nn.BatchNorm3d:
    return nn.BatchNorm3d(channels, eps=1e-3, momentum=1e-3)


class MugenBasicConv3d(nn.Module):
    def __init__(self, cin: int, cout: int):
        super().__init__()
        self.conv = nn.Conv3d(cin, cout, kernel_size=1, bias=False)
        self.bn = _batch_norm(cout)

    def forward(self, x):
        return F.relu(self.bn(self.conv(x)))


class MugenSepConv3d(nn.Module):
    def __init__(self, cin: int, cout: int, kernel: int, stride: int, padding: int):
        super().__init__()
        self.conv_s = nn.Conv3d(cin, cout, (1, kernel, kernel), (1, stride, stride), (0, padding, padding), bias=False)
        self.bn_s = _batch_norm(cout)
        self.conv_t = nn.Conv3d(cout, cout, (kernel, 1, 1), (stride, 1, 1), (padding, 0, 0), bias=False)
        self.bn_t = _batch_norm(cout)

    def forward(self, x):
        return F.relu(self.bn_t(self.conv_t(F.relu(self.bn_s(self.conv_s(x))))))


# Mixed_3b ... Mixed_5c: input channels, branch0, branch1 (1x1, separable 3x3), branch2 (1x1, separable), branch3.
MIXED_CHANNELS = {
    "3b": (192, 64, 96, 128, 16, 32, 32), "3c": (256, 128, 128, 192, 32, 96, 64),
    "4b": (480, 192, 96, 208, 16, 48, 64), "4c": (512, 160, 112, 224, 24, 64, 64),
    "4d": (512, 128, 128, 256, 24, 64, 64), "4e": (512, 112, 144, 288, 32, 64, 64),
    "4f": (528, 256, 160, 320, 32, 128, 128), "5b": (832, 256, 160, 320, 32, 128, 128),
    "5c": (832, 384, 192, 384, 48, 128, 128),
}


class MugenMixed(nn.Module):
    def __init__(self, cin: int, b0: int, b1a: int, b1b: int, b2a: int, b2b: int, b3: int):
        super().__init__()
        self.branch0 = nn.Sequential(MugenBasicConv3d(cin, b0))
        self.branch1 = nn.Sequential(MugenBasicConv3d(cin, b1a), MugenSepConv3d(b1a, b1b, 3, 1, 1))
        self.branch2 = nn.Sequential(MugenBasicConv3d(cin, b2a), MugenSepConv3d(b2a, b2b, 3, 1, 1))
        self.branch3 = nn.Sequential(nn.MaxPool3d(3, stride=1, padding=1), MugenBasicConv3d(cin, b3))

    def forward(self, x):
        return torch.cat([self.branch0(x), self.branch1(x), self.branch2(x), self.branch3(x)], 1)


class MugenS3D(nn.Module):
    def __init__(self, num_classes: int = 400):
        super().__init__()
        mixed = {name: MugenMixed(*channels) for name, channels in MIXED_CHANNELS.items()}
        self.base = nn.Sequential(
            MugenSepConv3d(3, 64, 7, 2, 3), nn.MaxPool3d((1, 3, 3), (1, 2, 2), (0, 1, 1)),
            MugenBasicConv3d(64, 64), MugenSepConv3d(64, 192, 3, 1, 1), nn.MaxPool3d((1, 3, 3), (1, 2, 2), (0, 1, 1)),
            mixed["3b"], mixed["3c"], nn.MaxPool3d(3, 2, 1),
            mixed["4b"], mixed["4c"], mixed["4d"], mixed["4e"], mixed["4f"], nn.MaxPool3d(2, 2, 0),
            mixed["5b"], mixed["5c"],
        )
        self.fc = nn.Sequential(nn.Conv3d(1024, num_classes, kernel_size=1))

    def forward(self, x):  # MUGEN pools (2, H, W) with stride 1, then averages over time
        y = self.base(x)
        y = self.fc(F.avg_pool3d(y, (2, y.size(3), y.size(4)), stride=1))
        return y.view(y.size(0), y.size(1), y.size(2)).mean(2)


class MugenProjection(nn.Module):  # modules.py's Projection
    def __init__(self, d_in: int, d_out: int = 256):
        super().__init__()
        self.linear1 = nn.Linear(d_in, d_out, bias=False)
        self.linear2 = nn.Linear(d_out, d_out, bias=False)
        self.layer_norm = nn.LayerNorm(d_out)
        self.drop = nn.Dropout(0.1)

    def forward(self, x):
        embed1 = self.linear1(x)
        return self.layer_norm(embed1 + self.drop(self.linear2(F.gelu(embed1))))


class MugenClip(nn.Module):
    """clip.py's ``CLIPModel(video_enc=True, text_enc=True)``, with ``VideoEncoder.model.fc`` replaced by Identity."""

    def __init__(self, s3d: MugenS3D, text_config: DistilBertConfig, temperature: float):
        super().__init__()
        s3d.fc = nn.Identity()
        self.visual_encoder = nn.Module()
        self.visual_encoder.model = s3d
        self.image_projection = MugenProjection(1024)
        self.text_encoder = nn.Module()
        self.text_encoder.model = DistilBertModel(text_config)
        self.text_projection = MugenProjection(text_config.dim)
        self.temperature = nn.Parameter(torch.tensor(temperature))
        self.max_temperature = nn.Parameter(torch.tensor(100.0), requires_grad=False)

    def embeddings(self, input_ids: torch.Tensor, videos: torch.Tensor):
        """(text, video, similarity) as ``get_text_embedding`` / ``get_video_embedding`` / ``compute_similarities``
        give them; `videos` are preprocessed (B, C, T, H, W)."""
        hidden = self.text_encoder.model(input_ids=input_ids, attention_mask=(input_ids != 0).long()).last_hidden_state
        text = F.normalize(self.text_projection(hidden[:, 0]), dim=-1)
        video = F.normalize(self.image_projection(self.visual_encoder.model(videos)), dim=-1)
        return text, video, text @ video.T * torch.exp(torch.min(self.temperature, self.max_temperature))


@pytest.fixture(scope="module")
def layouts():
    """A random torchvision S3D (non-trivial BatchNorm statistics) and a MUGEN_baseline S3D holding the same weights,
    copied position by position (both register their weights in the same order; every pair's shape is checked)."""
    torch.manual_seed(0)
    torchvision_s3d = S3D().eval()
    with torch.no_grad():
        randomize_batch_norm_stats(torchvision_s3d)
    torchvision_state = {k: v for k, v in torchvision_s3d.state_dict().items() if k.startswith("features.")}
    mugen_s3d = MugenS3D().eval()
    mugen_keys = [k for k in mugen_s3d.state_dict() if k.startswith("base.")]
    assert len(mugen_keys) == len(torchvision_state)
    mugen_state = dict(mugen_s3d.state_dict())
    for mugen_key, (key, value) in zip(mugen_keys, torchvision_state.items()):
        assert mugen_state[mugen_key].shape == value.shape, (mugen_key, key)
        mugen_state[mugen_key] = value.clone()
    mugen_s3d.load_state_dict(mugen_state, strict=True)
    return torchvision_state, mugen_s3d


def test_mugen_s3d_layout_converts_key_for_key_and_runs_as_torchvision_s3d(layouts):
    torchvision_state, mugen_s3d = layouts
    mugen_state = mugen_s3d.state_dict()  # with its 400-class fc, which is dropped
    for prefix in ("", "module.", "model.", "module.model."):
        converted = convert_s3d_state_dict({prefix + k: v for k, v in mugen_state.items()})
        assert list(converted) == list(torchvision_state), prefix
        assert all(torch.equal(converted[k], v) for k, v in torchvision_state.items())
    # torchvision's own layout, bare and as torchmultimodal's VideoEncoder saves it (model.features.*): unchanged.
    for prefix in ("", "model."):
        converted = convert_s3d_state_dict({prefix + k: v for k, v in torchvision_state.items()})
        assert list(converted) == list(torchvision_state)

    loaded = S3D()
    loaded.classifier = nn.Identity()  # the reference's video tower
    loaded.load_state_dict(convert_s3d_state_dict(mugen_state), strict=True)
    loaded.eval()
    mugen_s3d_features = MugenS3D().eval()
    mugen_s3d_features.load_state_dict(mugen_state)
    mugen_s3d_features.fc = nn.Identity()
    video = torch.randn(1, 3, 16, 224, 224, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        expected, actual = mugen_s3d_features(video), loaded(video)
    assert expected.shape == actual.shape == (1, 1024)
    assert (expected - actual).abs().max().item() <= 1e-5


def test_s3d_conversion_is_strict_with_a_typed_error(layouts):
    torchvision_state, mugen_s3d = layouts
    state = {"module." + k: v for k, v in mugen_s3d.state_dict().items()}
    del state["module.base.15.branch3.1.bn.running_var"]
    state["module.base.2.conv.weight"] = torch.zeros(64, 3, 1, 1, 1)
    state["module.base.3.conv_x.weight"] = torch.zeros(1)
    with pytest.raises(S3DKeyMismatchError) as error:
        convert_s3d_state_dict(state)
    assert isinstance(error.value, ValueError) and isinstance(error.value, VideoCLIPError)
    assert error.value.exit_code == ExitCode.KEY_MISMATCH
    message = str(error.value)
    assert "1 missing, 1 unexpected, 1 mis-shaped" in message
    assert "Missing keys (1):\n  features.15.branch3.1.1.running_var" in message
    assert "Unexpected keys (1):\n  module.base.3.conv_x.weight" in message
    assert "module.base.2.conv.weight: file (64, 3, 1, 1, 1) vs torchvision S3D (64, 64, 1, 1, 1)" in message

    partial = convert_s3d_state_dict(state, strict=False)  # maps what is there, drops what it cannot place
    assert len(partial) == len(torchvision_state) - 1 and "features.15.branch3.1.1.running_var" not in partial
    assert torch.equal(partial["features.0.0.0.weight"], torchvision_state["features.0.0.0.weight"])
    with pytest.raises(S3DKeyMismatchError, match="not match torchvision's S3D"):
        convert_s3d_state_dict({"encoder.weight": torch.zeros(1)})


def test_videoclip_base_starts_s3d_from_either_layout(layouts, tmp_path):
    """`build_model("videoclip-base")` (the path of `videoclip train --init videoclip-base` and `upload.py --variant
    videoclip-base`) loads an S3D file in MUGEN_baseline's layout (under ``module.``, as S3D_kinetics400.pt) strictly;
    its default is the reference's PRETRAINED_VIDEO_ENCODER_URL."""
    torchvision_state, mugen_s3d = layouts
    assert inspect.signature(models.build_model).parameters["video_encoder"].default == PRETRAINED_VIDEO_ENCODER_URL
    variant = variants.load_variant("videoclip-base")
    assert variant.spec["default_video_encoder"] == PRETRAINED_VIDEO_ENCODER_URL
    assert downloads.KNOWN_FILES[PRETRAINED_VIDEO_ENCODER_URL].sha256_prefix == "b0e27f13"

    config = VideoCLIPConfig(text_config=TINY_TEXT)
    DistilBertModel(config.text_config).save_pretrained(tmp_path / "distilbert")
    path = tmp_path / "S3D_kinetics400.pt"
    torch.save({"module." + k: v for k, v in mugen_s3d.state_dict().items()}, path)
    model = models.build_model("videoclip-base", config, text_encoder=str(tmp_path / "distilbert"),
                               video_encoder=str(path), log=lambda _: None)
    features = model.video_model.features.state_dict()
    assert all(torch.equal(features[k.removeprefix("features.")], v) for k, v in torchvision_state.items())

    cut = {k: v for k, v in mugen_s3d.state_dict().items() if not k.startswith("base.15.")}
    torch.save(cut, tmp_path / "cut.pt")
    counts = r"\(48 missing, 0 unexpected, 0 mis-shaped keys\); video encoder: features.15"
    with pytest.raises(VideoCLIPError, match=counts) as error:
        models.build_model("videoclip-base", config, text_encoder=str(tmp_path / "distilbert"),
                           video_encoder=str(tmp_path / "cut.pt"), log=lambda _: None)
    assert error.value.exit_code == ExitCode.KEY_MISMATCH


def test_mugen_baseline_videoclip_checkpoint_converts_with_the_same_embeddings(layouts, tmp_path):
    _, mugen_s3d = layouts
    s3d = MugenS3D()
    s3d.load_state_dict(mugen_s3d.state_dict())
    torch.manual_seed(2)
    text_config = DistilBertConfig(**TINY_TEXT)
    text_config._attn_implementation = "eager"
    theirs = MugenClip(s3d, text_config, temperature=2.25).eval()
    path = tmp_path / "epoch=15.pt"
    state = dict(theirs.state_dict())
    state["text_encoder.model.embeddings.position_ids"] = torch.arange(64).unsqueeze(0)  # an older transformers
    torch.save(state, path)  # as MUGEN_baseline's retrieval/train.py saves it: torch.save(model.state_dict(), ...)
    assert any(k.startswith("visual_encoder.model.base.") for k in state)

    config = VideoCLIPConfig(text_config=TINY_TEXT)
    # The converter's entry, and the path `upload.py --checkpoint` takes (common.models.convert_checkpoint).
    ours = convert_torchmultimodal_checkpoint(path, config=config)
    again = models.convert_checkpoint(downloads.fetch_checkpoint(str(path), log=lambda _: None), config)
    assert all(torch.equal(v, again.state_dict()[k]) for k, v in ours.state_dict().items())
    assert ours.logit_scale.item() == pytest.approx(2.25)

    input_ids = torch.randint(1, 50, (3, 9), generator=torch.Generator().manual_seed(3))
    input_ids[:, 0], input_ids[1, 6:], input_ids[2, 4:] = 2, 0, 0
    videos = torch.randn(1, 3, 16, 224, 224, generator=torch.Generator().manual_seed(4))  # S3D costs ~1 s a clip
    with torch.no_grad():
        text, video, similarity = theirs.embeddings(input_ids, videos)
        out = ours(input_ids=input_ids, pixel_values_videos=videos.transpose(1, 2))
    assert (out.text_embeds - text).abs().max().item() <= 1e-5
    assert (out.video_embeds - video).abs().max().item() <= 1e-5
    assert (out.logits_per_text - similarity).abs().max().item() <= 1e-4

    # DDP-saved (module.*) is the same checkpoint; a video-audio model and another clamp are refused by name.
    assert extract_state_dict({"module." + k: v for k, v in state.items()}).keys() == state.keys()
    with pytest.raises(KeyMismatchError, match="audial_encoder.model.conv1.weight"):
        convert_torchmultimodal_checkpoint({**state, "audial_encoder.model.conv1.weight": torch.zeros(1)}, config)
    with pytest.raises(KeyMismatchError, match="logit_scale_max=50.0"):
        convert_torchmultimodal_checkpoint({**state, "max_temperature": torch.tensor(50.0)}, config)
