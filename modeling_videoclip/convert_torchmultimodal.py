"""Converts torchmultimodal MUGEN VideoCLIP checkpoints (``examples/mugen/retrieval``) into [`VideoCLIPModel`].

``videoclip_mugen.pt`` is the ``CLIP`` module's state dict (``encoder_a.*`` text, ``encoder_b.*`` video, no logit
scale); ``videoclip_lightning_mugen.pt`` has the same keys under ``model.`` plus ``contrastive_loss.logit_scale``.
Conversion is strict; only DistilBERT's obsolete ``embeddings.position_ids`` buffer is dropped silently.
"""

from __future__ import annotations

import os
import pickle
from collections.abc import Mapping

import torch

from .common.errors import ExitCode, VideoCLIPError
from .configuration_videoclip import VideoCLIPConfig
from .modeling_videoclip import VideoCLIPModel

# Reference prefix -> our prefix, first match wins.
KEY_PREFIXES = (
    ("encoder_a.0.model.", "text_model."),
    ("encoder_a.1.", "text_projection."),
    ("encoder_b.0.model.features.", "video_model.features."),
    ("encoder_b.1.", "video_projection."),
    ("contrastive_loss.logit_scale", "logit_scale"),
)
OBSOLETE_KEYS = ("encoder_a.0.model.embeddings.position_ids",)


class CheckpointConversionError(VideoCLIPError, ValueError):
    """A checkpoint is not a torchmultimodal VideoCLIP checkpoint of the expected architecture."""

    exit_code = ExitCode.CHECKPOINT_UNREADABLE


class UnreadableCheckpointError(CheckpointConversionError):
    """The file is not a readable torch checkpoint, or not a VideoCLIP state dict."""


class PickleRequiredError(CheckpointConversionError):
    """The file holds objects other than tensors; loading it needs pickle (``allow_pickle=True``)."""

    exit_code = ExitCode.NEEDS_PICKLE


class KeyMismatchError(CheckpointConversionError):
    """The state dict's keys or shapes do not match the VideoCLIP architecture."""

    exit_code = ExitCode.KEY_MISMATCH


def load_checkpoint(path: str | os.PathLike, allow_pickle: bool = False) -> dict[str, torch.Tensor]:
    """Reads a torchmultimodal VideoCLIP checkpoint file into a flat reference-layout state dict.

    Args:
        path: a ``.pt`` file in either layout.
        allow_pickle: load with ``weights_only=False``, which runs arbitrary code from the file: only for files you
            trust. False by default, which refuses Lightning checkpoints whose extra entries need pickle.

    Returns:
        The state dict with reference keys (``encoder_a.*``, ``encoder_b.*``, maybe ``contrastive_loss.logit_scale``).
    """
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise FileNotFoundError(f"Checkpoint not found: {path!r}.")
    try:
        checkpoint = torch.load(path, map_location="cpu", weights_only=not allow_pickle)
    except pickle.UnpicklingError as error:
        # A well-formed pickle naming a class outside torch's allowlist needs pickle; other failures are garbage.
        if allow_pickle or "unsupported global" not in str(error).lower():
            raise UnreadableCheckpointError(f"Cannot read checkpoint {path!r}: {error}") from error
        raise PickleRequiredError(
            f"{path!r} needs pickle to load (it holds more than tensors: {str(error).splitlines()[0]}). If you "
            f"trust the file, opt in with allow_pickle=True (upload.py: --allow-pickle)."
        ) from error
    except Exception as error:  # torch.load fails in many ways (IndexError, RuntimeError...) on non-checkpoints
        raise UnreadableCheckpointError(
            f"Cannot read checkpoint {path!r}: {type(error).__name__}: {error} (not a torch.save file?)"
        ) from error
    return extract_state_dict(checkpoint, source=path)


def extract_state_dict(checkpoint, source: str = "checkpoint") -> dict[str, torch.Tensor]:
    """Returns the reference-layout state dict of a loaded checkpoint object (plain or Lightning)."""
    if not isinstance(checkpoint, Mapping):
        raise UnreadableCheckpointError(
            f"{source} holds a {type(checkpoint).__name__}, not a state dict; expected torchmultimodal's "
            f"videoclip_mugen.pt or videoclip_lightning_mugen.pt."
        )
    state = checkpoint["state_dict"] if isinstance(checkpoint.get("state_dict"), Mapping) else checkpoint
    flat = {}
    for key, value in state.items():
        if not isinstance(value, torch.Tensor):
            raise UnreadableCheckpointError(f"{source}: entry {key!r} is a {type(value).__name__}, not a tensor.")
        flat[key[len("model."):] if key.startswith("model.") else key] = value
    if not any(k.startswith(("encoder_a.", "encoder_b.")) for k in flat):
        raise UnreadableCheckpointError(
            f"{source} is not a torchmultimodal VideoCLIP checkpoint: no 'encoder_a.*' / 'encoder_b.*' keys "
            f"(found e.g. {sorted(flat)[:5]})."
        )
    return flat


def convert_state_dict(reference_state: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Renames reference keys to VideoCLIPModel keys; unknown keys are an error."""
    renamed = {key: _rename(key) for key in reference_state if key not in OBSOLETE_KEYS}
    unexpected = [key for key, new_key in renamed.items() if new_key is None]
    if unexpected:
        raise KeyMismatchError(_key_report("Unexpected keys", unexpected))
    return {new_key: reference_state[key] for key, new_key in renamed.items()}


def _rename(key: str) -> str | None:
    return next((new + key[len(old):] for old, new in KEY_PREFIXES if key.startswith(old)), None)


def _key_report(title: str, keys: list[str], limit: int = 20) -> str:
    shown = "\n  ".join(keys[:limit])
    more = f"\n  ... and {len(keys) - limit} more" if len(keys) > limit else ""
    return f"{title} ({len(keys)}):\n  {shown}{more}"


def convert_torchmultimodal_checkpoint(
    checkpoint: str | os.PathLike | Mapping[str, torch.Tensor], config: VideoCLIPConfig | None = None,
    allow_pickle: bool = False,
) -> VideoCLIPModel:
    """Builds a [`VideoCLIPModel`] holding exactly the weights of a torchmultimodal VideoCLIP checkpoint.

    Args:
        checkpoint: a path to either checkpoint layout, or an already loaded state dict (plain or Lightning).
        config: the architecture; defaults to `VideoCLIPConfig()`, the reference's.
        allow_pickle: see [`load_checkpoint`].

    Returns:
        The model in eval mode.

    Raises:
        CheckpointConversionError: missing, unexpected or mis-shaped keys (all of them are listed).
    """
    if isinstance(checkpoint, Mapping):
        reference_state = extract_state_dict(checkpoint)
    else:
        reference_state = load_checkpoint(checkpoint, allow_pickle=allow_pickle)
    state = convert_state_dict(reference_state)
    model = VideoCLIPModel(config or VideoCLIPConfig())
    _check_keys_and_shapes(model, state)
    model.load_state_dict(state, strict=False)  # completeness was checked above, logit_scale may be absent
    return model.eval()


def _check_keys_and_shapes(model: VideoCLIPModel, state: Mapping[str, torch.Tensor]) -> None:
    expected = model.state_dict()
    optional = {"logit_scale"}  # absent from the plain videoclip_mugen.pt
    missing = sorted(set(expected) - set(state) - optional)
    unexpected = sorted(set(state) - set(expected))
    mis_shaped = sorted(
        f"{k}: checkpoint {tuple(state[k].shape)} vs model {tuple(expected[k].shape)}"
        for k in set(state) & set(expected) if state[k].shape != expected[k].shape
    )
    reports = (("Missing keys", missing), ("Unexpected keys", unexpected), ("Mis-shaped keys", mis_shaped))
    problems = [_key_report(title, keys) for title, keys in reports if keys]
    if problems:
        raise KeyMismatchError("The checkpoint does not match the VideoCLIP architecture:\n" + "\n".join(problems))


__all__ = [
    "CheckpointConversionError", "KeyMismatchError", "PickleRequiredError", "UnreadableCheckpointError",
    "convert_state_dict", "convert_torchmultimodal_checkpoint", "extract_state_dict", "load_checkpoint",
]
