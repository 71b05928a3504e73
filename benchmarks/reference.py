"""torchmultimodal's reference side, for the benchmarks and the tests that compare against it.

The reference VideoCLIP is composed as ``examples/mugen/retrieval/video_clip.py`` of facebookresearch/multimodal
does; that module is not on PyPI, so its three small wrappers are restated here (attribute names included, so the
state dict has the reference's keys) around the real torchmultimodal ``CLIP``, torchvision ``S3D`` and transformers
``DistilBertModel``. `import_from_checkout` imports the reference's MUGEN renderer and dataset from a checkout.
"""

from __future__ import annotations

import functools
import importlib.machinery
import importlib.util
import sys
from pathlib import Path
from types import ModuleType

import torch
from torch import nn
from torchmultimodal.models.clip.model import CLIP
from torchvision.models.video import S3D
from transformers import DistilBertConfig, DistilBertModel


class ReferenceTextEncoder(nn.Module):
    def __init__(self, config: DistilBertConfig, padding_value: int = 0):
        super().__init__()
        self.padding_value = padding_value
        self.model = DistilBertModel(config)

    def forward(self, input_ids: torch.Tensor) -> torch.Tensor:
        attention_mask = (input_ids != self.padding_value).to(dtype=int)
        return self.model(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state[:, 0, :]


class ReferenceVideoEncoder(nn.Module):
    def __init__(self):
        super().__init__()
        self.model = S3D()
        self.model.classifier = nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.shape[1] != 3:
            raise ValueError("Channels must be at first (zero-indexed) dimension of input and of size 3.")
        return self.model(x)


class ReferenceProjection(nn.Module):
    def __init__(self, in_dim: int, out_dim: int = 256, dropout_prob: float = 0.1):
        super().__init__()
        self.linear1 = nn.Linear(in_dim, out_dim, bias=False)
        self.gelu = nn.GELU()
        self.linear2 = nn.Linear(out_dim, out_dim, bias=False)
        self.drop = nn.Dropout(dropout_prob)
        self.layer_norm = nn.LayerNorm(out_dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        embed1 = self.linear1(x)
        embed2 = self.drop(self.linear2(self.gelu(embed1)))
        return self.layer_norm(embed1 + embed2)


def build_reference_videoclip(text_config: DistilBertConfig | None = None, attn_implementation: str = "eager") -> CLIP:
    """Random-weight reference VideoCLIP (``videoclip(text_pretrained=False, video_pretrained=False)``)."""
    text_config = text_config or DistilBertConfig()
    text_config._attn_implementation = attn_implementation
    text = ReferenceTextEncoder(text_config)
    video = ReferenceVideoEncoder()
    return CLIP(
        encoder_a=nn.Sequential(text, ReferenceProjection(text_config.dim)),
        encoder_b=nn.Sequential(video, ReferenceProjection(1024)),
    )


def randomize_batch_norm_stats(module: nn.Module, seed: int = 0) -> None:
    """Gives every BatchNorm non-trivial running statistics, so a conversion that drops them is caught."""
    generator = torch.Generator().manual_seed(seed)
    for bn in module.modules():
        if isinstance(bn, nn.BatchNorm3d):
            bn.running_mean.copy_(torch.randn(bn.running_mean.shape, generator=generator) * 0.1)
            bn.running_var.copy_(torch.rand(bn.running_var.shape, generator=generator) + 0.5)
            bn.weight.data.copy_(torch.rand(bn.weight.shape, generator=generator) + 0.5)
            bn.bias.data.copy_(torch.randn(bn.bias.shape, generator=generator) * 0.1)


@functools.lru_cache(maxsize=1)
def model_pair(seed: int = 0) -> tuple[nn.Module, nn.Module]:
    """``(reference, ours)``: the random-weight reference with non-trivial BatchNorm statistics and ours converted
    from its state dict, in eval mode; built once per seed and process (the benchmarks share it, none modifies it)."""
    from modeling_videoclip.convert_torchmultimodal import convert_torchmultimodal_checkpoint

    torch.manual_seed(seed)
    reference = build_reference_videoclip(attn_implementation="eager").eval()
    randomize_batch_norm_stats(reference, seed=seed)
    return reference, convert_torchmultimodal_checkpoint(reference.state_dict()).eval()


def import_from_checkout(reference_dir: Path, module: str) -> ModuleType:
    """Imports `module` (e.g. ``"examples.mugen.data.mugen_dataset"``) from a facebookresearch/multimodal checkout.

    Only the top-level package is looked up, in `reference_dir`; its submodules (and the reference's own absolute
    ``examples.`` imports) resolve through its ``__path__``, so ``sys.path`` is not touched.

    Raises:
        FileNotFoundError: `reference_dir` does not hold `module`.
    """
    top = module.split(".")[0]
    location = Path(reference_dir).resolve()
    if top not in sys.modules:
        spec = importlib.machinery.PathFinder.find_spec(top, [str(location)])
        if spec is None:
            raise FileNotFoundError(f"--reference-dir {reference_dir}: no {top}/ package (a multimodal checkout?)")
        sys.modules[top] = package = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(package)
    elif not any(Path(path).resolve().parent == location for path in getattr(sys.modules[top], "__path__", ())):
        raise RuntimeError(f"a module {top!r} from elsewhere is already imported; cannot import {module}")
    try:
        return importlib.import_module(module)
    except ModuleNotFoundError as error:
        raise FileNotFoundError(f"--reference-dir {reference_dir}: cannot import {module} ({error})") from error
