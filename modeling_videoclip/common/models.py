"""Building VideoCLIP models, tokenizers and processors: the one place every entry point gets them from
(`build_model`, `convert_checkpoint`, `load_pretrained`, `load_tokenizer`, `build_processor`)."""

from __future__ import annotations

import functools
import os
import pickle
import re
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import torch

from .. import convert_torchmultimodal as convert
from ..configuration_videoclip import VideoCLIPConfig
from ..modeling_videoclip import VideoCLIPModel
from ..processing_videoclip import MAX_TEXT_TOKENS, VideoCLIPProcessor
from ..video_processing_videoclip import VideoCLIPVideoProcessor
from .constants import DISTILBERT_ID, PRETRAINED_VIDEO_ENCODER_URL, VIDEOCLIP_BASE
from .downloads import CheckpointFile, DownloadError, Log, fetch_checkpoint, from_hub_or_cache, looks_offline
from .errors import ExitCode, InputError, VideoCLIPError, first_line
from .paths import looks_like_local_path

RANDOM_INIT = "random"  # `build_model`'s name for a freshly initialised model
TOKENIZER_FROM_DATA = "from-data"  # `load_tokenizer`'s name for a small vocabulary built from the training captions


class PretrainedWeightsUnavailableError(VideoCLIPError):
    """The pretrained DistilBERT or S3D weights of ``videoclip-base`` could not be obtained or do not fit."""

    exit_code = ExitCode.BAD_INPUT


def load_state_strict(
    module: torch.nn.Module, state: Mapping[str, torch.Tensor], what: str, ignore: str | None = None
) -> list[str]:
    """Loads `state` into `module` only if every key and shape matches; returns the problems (missing, unexpected,
    mis-shaped keys, each prefixed with `what`), empty when loaded. `ignore`: a regex of keys to drop first."""
    state = {k: v for k, v in state.items() if not (ignore and re.search(ignore, k))}
    expected = module.state_dict()
    problems = [f"{what}: missing {k}" for k in sorted(set(expected) - set(state))]
    problems += [f"{what}: unexpected {k}" for k in sorted(set(state) - set(expected))]
    problems += [
        f"{what}: {k} has shape {tuple(state[k].shape)}, model {tuple(expected[k].shape)}"
        for k in sorted(set(state) & set(expected))
        if state[k].shape != expected[k].shape
    ]
    if not problems:
        module.load_state_dict(state, strict=True)
    return problems


def convert_checkpoint(
    checkpoint: CheckpointFile, config: VideoCLIPConfig, allow_pickle: bool = False
) -> VideoCLIPModel:
    """Converts a torchmultimodal checkpoint strictly (every key must match the architecture in `config`).

    Raises:
        CheckpointConversionError: one line naming `checkpoint` and the fix, with the failure's exit code
            (`CHECKPOINT_UNREADABLE`, `NEEDS_PICKLE`, `KEY_MISMATCH`; the latter keeps the key report in `details`).
    """
    try:
        state = convert.load_checkpoint(checkpoint.path, allow_pickle)
        return convert.convert_torchmultimodal_checkpoint(state, config=config)
    except convert.CheckpointConversionError as error:
        report = str(error)
        details = report if isinstance(error, convert.KeyMismatchError) else None
        if isinstance(error, convert.PickleRequiredError):
            message = (f"checkpoint {checkpoint.source} holds objects other than tensors and needs pickle to load; if "
                       f"you trust the file, re-run with --allow-pickle")
        elif details is not None:  # one line from the multi-line key report: the counts and two example keys
            counts = re.findall(r"^(Missing|Unexpected|Mis-shaped) keys \((\d+)\):", report, flags=re.MULTILINE)
            examples = [line.strip() for line in report.splitlines() if line.startswith("  ") and "..." not in line]
            summary = ", ".join(f"{n} {kind.lower()}" for kind, n in counts) or "keys differ"
            message = (f"checkpoint {checkpoint.source} does not match the VideoCLIP architecture ({summary} keys; "
                       f"e.g. {'; '.join(examples[:2])}); if it has another text tower, pass its config with --config "
                       f"(run with --verbose for the full list)")
        else:
            message = f"{checkpoint.source}: {first_line(error)}"
        raise type(error)(message, details=details) from error


def build_model(
    init: str = VIDEOCLIP_BASE, config: VideoCLIPConfig | Mapping[str, Any] | None = None, *,
    text_encoder: str = DISTILBERT_ID, video_encoder: str | CheckpointFile = PRETRAINED_VIDEO_ENCODER_URL,
    seed: int = 0, cache_dir: str | os.PathLike | None = None, log: Log = print,
) -> VideoCLIPModel:
    """A VideoCLIP model, in eval mode.

    Args:
        init: ``"videoclip-base"`` (pretrained towers loaded strictly, fresh projections), ``"random"`` or a saved
            VideoCLIP (folder or Hub id). Defaults to ``"videoclip-base"``, the reference's training start.
        config: a `VideoCLIPConfig` or its kwargs; must be None for a saved model. Defaults to `VideoCLIPConfig()`.
        text_encoder: ``"videoclip-base"``'s DistilBERT (folder or Hub id). Defaults to `DISTILBERT_ID`.
        video_encoder: its S3D state dict (path, URL or fetched file) in torchvision's or MUGEN_baseline's layout
            (`convert_s3d_state_dict`). Defaults to `PRETRAINED_VIDEO_ENCODER_URL`, MUGEN's Kinetics-400 S3D, the
            reference's start.
        seed: seeds the fresh weights (``torch.manual_seed``). Defaults to 0.
        cache_dir, log: for a `video_encoder` URL, see `fetch_checkpoint`.

    Raises:
        PretrainedWeightsUnavailableError: the towers cannot be obtained (`NETWORK` offline) or do not fit `config`.
        InputError: a `config` with a saved model.
    """
    if isinstance(config, Mapping):
        config = VideoCLIPConfig(**config)
    if init not in (VIDEOCLIP_BASE, RANDOM_INIT):
        if config is not None:
            raise InputError(f"a model config applies to --init {VIDEOCLIP_BASE} or {RANDOM_INIT}, "
                             f"not to a saved model ({init})")
        return _load_saved(VideoCLIPModel.from_pretrained, init).eval()
    towers = _pretrained_towers(text_encoder, video_encoder, cache_dir, log) if init == VIDEOCLIP_BASE else None
    torch.manual_seed(seed)
    model = VideoCLIPModel(config if config is not None else VideoCLIPConfig())
    if towers is not None:
        text_state, s3d_state, video_source = towers
        problems = load_state_strict(model.text_model, text_state, "text encoder", ignore=r"position_ids$")
        try:
            s3d_state = convert.convert_s3d_state_dict(s3d_state)
        except convert.S3DKeyMismatchError as error:
            summary, *report = str(error).splitlines()  # the counts, then the keys under their headings
            problems.append(f"video encoder: {summary.rstrip(':')}")
            problems += [f"video encoder: {line.strip()}" for line in report if not line.endswith(":")]
        else:
            features = {k.removeprefix("features."): v for k, v in s3d_state.items()}
            problems += load_state_strict(model.video_model.features, features, "video encoder")
        if problems:
            raise PretrainedWeightsUnavailableError(
                f"pretrained encoders ({text_encoder}, {video_source}) do not match the architecture: "
                f"{'; '.join(problems[:3])}",
                ExitCode.KEY_MISMATCH, details="\n".join(problems),
            )
    return model.eval()


def _pretrained_towers(
    text_encoder: str, video_encoder: str | CheckpointFile, cache_dir, log
) -> tuple[dict[str, torch.Tensor], dict[str, torch.Tensor], str]:
    """DistilBERT's state dict, the S3D state dict and where S3D came from; text first, the cheaper fetch."""
    from transformers import DistilBertModel

    hint = "connect to the Hugging Face Hub or fill its cache, pass a local folder, or use --init random"
    try:
        text_state = from_hub_or_cache(DistilBertModel.from_pretrained, text_encoder, "text encoder").state_dict()
    except (OSError, ValueError, DownloadError) as error:
        reason = f"{type(error).__name__}: {first_line(error)}"
        if isinstance(error, DownloadError):
            reason = "not in the local cache, and the Hub cannot be reached"
        raise PretrainedWeightsUnavailableError(
            f"Cannot load the pretrained DistilBERT {text_encoder!r} for {VIDEOCLIP_BASE} ({reason}); {hint}",
            ExitCode.NETWORK if looks_offline(error) else ExitCode.BAD_INPUT,
        ) from error
    if not isinstance(video_encoder, CheckpointFile):
        try:
            video_encoder = fetch_checkpoint(video_encoder, cache_dir, log=log)
        except DownloadError as error:
            raise PretrainedWeightsUnavailableError(
                f"Cannot get the pretrained S3D for {VIDEOCLIP_BASE}: {error.message}; connect to the network or "
                f"pass a local file, or use --init random", error.exit_code,
            ) from error
    try:
        s3d_state = torch.load(video_encoder.path, map_location="cpu", weights_only=True)
    except (pickle.UnpicklingError, RuntimeError, EOFError, OSError) as error:
        raise convert.UnreadableCheckpointError(
            f"cannot read the video encoder {video_encoder.source}: {first_line(error)}"
        ) from error
    return text_state, s3d_state, video_encoder.source


def check_model_path(name_or_path: str) -> None:
    """Fails early (`InputError`, `USAGE`) when `name_or_path` is meant as a local folder (it has a path separator,
    starts with "." or "~", or exists) but is not one; Hub ids (``org/name``) pass."""
    if looks_like_local_path(name_or_path) and not os.path.isdir(os.path.expanduser(name_or_path)):
        raise InputError(f"model folder {name_or_path!r} does not exist", ExitCode.USAGE)


def _load_saved(load, name_or_path: str):
    """``load(name_or_path)`` after one path check and one Hub probe (`from_hub_or_cache`), errors as one line."""
    check_model_path(name_or_path)
    try:
        return from_hub_or_cache(load, os.path.expanduser(name_or_path), "VideoCLIP model")
    except (OSError, ValueError, KeyError, TypeError, RuntimeError) as error:
        raise VideoCLIPError(f"cannot load a VideoCLIP model from {name_or_path!r}: {first_line(error)}") from error


def load_pretrained(
    name_or_path: str, device: torch.device | str = "cpu"
) -> tuple[VideoCLIPModel, VideoCLIPProcessor]:
    """A saved VideoCLIP (a `save_pretrained` / ``upload.py`` folder, or a Hub id): the model (eval mode, on
    `device`, default CPU) and its processor. Raises `VideoCLIPError`: no such folder (`USAGE`), the Hub cannot be
    reached (`NETWORK`), or no readable model or processor (`FAILURE`)."""
    def load_both(source: str, **kwargs) -> tuple[VideoCLIPModel, VideoCLIPProcessor]:
        return VideoCLIPModel.from_pretrained(source, **kwargs), VideoCLIPProcessor.from_pretrained(source, **kwargs)

    model, processor = _load_saved(load_both, name_or_path)
    return model.eval().to(device), processor


def load_tokenizer(
    source: str | os.PathLike | None = None, *, texts: Sequence[str] | None = None,
    config: VideoCLIPConfig | None = None,
):
    """The text tokenizer.

    Args:
        source: a WordPiece ``vocab.txt`` or a folder holding only one, a saved tokenizer folder or Hub id, or
            ``"from-data"`` (a vocabulary built from `texts`). Defaults to `DISTILBERT_ID` (the reference's).
        texts: the captions, for ``"from-data"``.
        config: if given, must cover the tokenizer's ids and share its `pad_token_id`.

    Raises:
        InputError: the tokenizer cannot be loaded (`NETWORK` when offline) or does not fit `config`.
    """
    from transformers import AutoTokenizer

    from ..tokenization import tokenizer_from_vocab, vocab_from_texts

    source = os.fspath(source) if source is not None else DISTILBERT_ID
    path = Path(source).expanduser()
    vocab_folder = path.is_dir() and not any((path / f).is_file() for f in ("tokenizer.json", "tokenizer_config.json"))
    if source == TOKENIZER_FROM_DATA and not texts:
        raise InputError(f"--tokenizer {TOKENIZER_FROM_DATA} needs the training captions")
    looks_local = looks_like_local_path(source) or source.endswith(".txt")
    if source != TOKENIZER_FROM_DATA and looks_local and not path.exists():
        raise InputError(f"tokenizer {source!r} does not exist (a vocab.txt, a tokenizer folder or a Hub id)",
                         ExitCode.USAGE)
    try:
        if source == TOKENIZER_FROM_DATA:
            tokenizer = tokenizer_from_vocab(vocab_from_texts(texts))
        elif path.is_file() or vocab_folder:
            tokenizer = tokenizer_from_vocab(path)
        else:
            load = functools.partial(AutoTokenizer.from_pretrained, model_max_length=MAX_TEXT_TOKENS)
            tokenizer = from_hub_or_cache(load, source, "tokenizer")
    except (OSError, ValueError) as error:
        code = ExitCode.NETWORK if not path.exists() and looks_offline(error) else ExitCode.BAD_INPUT
        raise InputError(f"cannot load the tokenizer {source!r}: {first_line(error)}", code) from error
    if config is not None and len(tokenizer) > config.text_config.vocab_size:
        raise InputError(f"tokenizer {source!r} has {len(tokenizer)} tokens but the text tower's vocabulary has "
                         f"{config.text_config.vocab_size}")
    if config is not None and tokenizer.pad_token_id != config.pad_token_id:
        raise InputError(f"tokenizer {source!r} pads with id {tokenizer.pad_token_id}, "
                         f"the model with {config.pad_token_id}")
    return tokenizer


def build_processor(tokenizer, **video_processor_kwargs) -> VideoCLIPProcessor:
    """A `VideoCLIPProcessor` from `tokenizer` and a `VideoCLIPVideoProcessor(**video_processor_kwargs)` (its
    defaults: the reference's 32 frames at 224x224)."""
    return VideoCLIPProcessor(video_processor=VideoCLIPVideoProcessor(**video_processor_kwargs), tokenizer=tokenizer)
