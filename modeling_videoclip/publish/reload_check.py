"""The fresh-process reload check, ``python -m reload_check FOLDER INPUTS OUTPUTS OPTIONS`` with this folder as
the only ``PYTHONPATH`` (`publish.folder.verify_folder`): it blocks the package (`block_package`), so the Auto classes
can only use FOLDER's remote code, and saves `model_outputs`; free of package imports, the parent imports it too."""

from __future__ import annotations

import hashlib
import importlib.util
import json
import os
import sys
from collections.abc import Sequence
from typing import Any

BLOCKED = ("modeling_videoclip", "upload")  # the package, and ``upload.py`` next to it


class _Refusing:
    """Wraps a meta-path finder so that it never finds the `BLOCKED` names."""

    def __init__(self, finder):
        self.finder = finder

    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in BLOCKED or not hasattr(self.finder, "find_spec"):
            return None
        return self.finder.find_spec(name, path, target)

    def __getattr__(self, name):  # invalidate_caches, find_distributions (asked of every finder), ...
        return getattr(self.finder, name)


def block_package() -> None:
    """Makes the `BLOCKED` names unimportable however the package is installed (editable finders, path entries):
    every meta-path finder refuses them, imported copies are dropped, and this folder (package modules) leaves
    ``sys.path``."""
    here = os.path.dirname(os.path.abspath(__file__))
    sys.path[:] = [entry for entry in sys.path if os.path.abspath(entry or os.curdir) != here]
    sys.meta_path[:] = [_Refusing(finder) for finder in sys.meta_path]
    for name in list(sys.modules):
        if name.split(".")[0] in BLOCKED:
            del sys.modules[name]
    if importlib.util.find_spec("modeling_videoclip") is not None:
        raise RuntimeError("modeling_videoclip is still importable")


def state_digest(model) -> str:
    """sha256 over every tensor of the state dict (names, dtypes, shapes, bytes)."""
    import torch

    digest = hashlib.sha256()
    for name, tensor in sorted(model.state_dict().items()):
        tensor = tensor.detach().cpu().contiguous()
        digest.update(f"{name}|{tensor.dtype}|{tuple(tensor.shape)}\n".encode())
        digest.update(tensor.reshape(-1).view(torch.uint8).numpy().tobytes() if tensor.numel() else b"")
    return digest.hexdigest()


def model_outputs(model, processor, video, texts: Sequence[str], num_frames: int) -> dict[str, Any]:
    """What a reload must reproduce: processed inputs, embeddings, weights' digest, video-processor settings; and
    the module the model class came from."""
    import torch

    inputs = processor(text=list(texts), videos=[video], num_frames=num_frames, return_tensors="pt")
    with torch.no_grad():
        text = model.get_text_features(input_ids=inputs["input_ids"], attention_mask=inputs["attention_mask"])
        video_embeds = model.get_video_features(pixel_values_videos=inputs["pixel_values_videos"])
    return {
        **{key: inputs[key] for key in ("input_ids", "attention_mask", "pixel_values_videos")},
        "text_embeds": text.pooler_output,
        "video_embeds": video_embeds.pooler_output,
        "state_digest": state_digest(model),
        "video_processor": processor.video_processor.to_dict(),
        "model_module": type(model).__module__,
    }


def main(argv: Sequence[str] | None = None) -> None:
    """Reloads FOLDER through the Auto classes and saves `model_outputs` of the video in INPUTS to OUTPUTS; `argv`
    (default ``sys.argv[1:]``): FOLDER, INPUTS (``torch.save``d ``{"video": frames}``), OUTPUTS, and OPTIONS (JSON
    ``{"texts": [...], "num_frames": N}``)."""
    block_package()
    import torch
    from transformers import AutoModel, AutoProcessor

    folder, inputs_path, outputs_path, options = argv if argv is not None else sys.argv[1:]
    options = json.loads(options)
    model = AutoModel.from_pretrained(folder, trust_remote_code=True).eval()
    processor = AutoProcessor.from_pretrained(folder, trust_remote_code=True)
    video = torch.load(inputs_path, weights_only=True)["video"]
    torch.save(model_outputs(model, processor, video, options["texts"], options["num_frames"]), outputs_path)


if __name__ == "__main__":
    main()
