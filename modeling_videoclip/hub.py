"""Turning VideoCLIP checkpoints into Hugging Face Hub repositories: the library behind ``upload.py``.

The pipeline, in the order [`convert_and_publish`] runs it:

1. check the output folder (never clobber a folder that ``upload.py`` did not write) and, with a repo id, the Hub
   credentials (before any slow work);
2. fetch the checkpoint (a local file, or a URL downloaded once into a cache with a progress bar and verified by
   size and, where known, sha256);
3. convert it with the strict torchmultimodal converter (or, for ``videoclip-base``, assemble the pretrained
   encoders with fresh projections);
4. write a complete Hub folder (config with ``auto_map``, ``model.safetensors``, remote-code files, tokenizer,
   processor config, model card) into a staging folder;
5. reload the staged folder with ``AutoModel``/``AutoProcessor`` and ``trust_remote_code=True`` in a fresh Python
   process that cannot import this package, and compare weights, processor outputs and embeddings with the
   in-memory model; only a folder that passes is moved into the output folder;
6. with a repo id: create the repo (and branch), upload the folder in one commit (retried with backoff on
   transient failures; unchanged files are skipped, so an unchanged folder makes no commit).

Errors are [`UploadError`]s carrying a one-line message and an [`ExitCode`].
"""

from __future__ import annotations

import enum
import hashlib
import inspect
import json
import os
import pickle
import re
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import torch

from .configuration_videoclip import VideoCLIPConfig
from .convert_torchmultimodal import (
    MUGEN_CHECKPOINT_URL,
    MUGEN_LIGHTNING_CHECKPOINT_URL,
    CheckpointConversionError,
    KeyMismatchError,
    PickleRequiredError,
    convert_torchmultimodal_checkpoint,
    load_checkpoint,
)
from .modeling_videoclip import VideoCLIPModel
from .processing_videoclip import MAX_TEXT_TOKENS, VideoCLIPProcessor
from .video_processing_videoclip import VideoCLIPVideoProcessor

T = TypeVar("T")
Log = Callable[[str], None]

#: Written into every output folder; identifies it as ours and records what was verified. Never uploaded.
MARKER_FILE = ".videoclip_upload.json"
S3D_KINETICS400_URL = "https://download.pytorch.org/models/s3d-d76dad2f.pth"
DEFAULT_CACHE_DIR = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "videoclip-hf" / "checkpoints"
TRANSIENT_STATUS = (408, 429, 500, 502, 503, 504)
VERIFY_TEXTS = ("Mugen jumps onto a ledge.", "A snail kills Mugen.")
VERIFY_FRAMES = 16  # frames of the verification clip: the least S3D takes comfortably, to keep the check fast


class ExitCode(enum.IntEnum):
    """Exit status of ``upload.py`` (also listed in its ``--help``)."""

    OK = 0
    UNEXPECTED = 1
    USAGE = 2
    CHECKPOINT_UNREADABLE = 3
    KEY_MISMATCH = 4
    NEEDS_PICKLE = 5
    NETWORK = 6
    DOWNLOAD_FAILED = 7
    RELOAD_MISMATCH = 8
    AUTH = 9
    FORBIDDEN = 10
    OUTPUT_DIR = 11
    HUB_ERROR = 12
    BAD_INPUT = 13


class UploadError(Exception):
    """A failure with a one-line, user-facing reason and the exit code it maps to."""

    def __init__(self, message: str, exit_code: ExitCode, details: str | None = None):
        super().__init__(message)
        self.message = message.replace("\n", " ")
        self.exit_code = exit_code
        self.details = details


@dataclass(frozen=True)
class KnownFile:
    """What is known in advance about a downloadable file; None where it is not known."""

    size: int | None = None
    sha256: str | None = None
    sha256_prefix: str | None = None


#: Expected sizes / digests of the public files. The torchmultimodal S3 checkpoints could not be reached when this
#: was written, so their size and sha256 are unknown (None): downloads are then checked against the size the server
#: announces, and the sha256 is printed so that it can be pinned here or with ``--sha256``.
KNOWN_FILES: dict[str, KnownFile] = {
    MUGEN_CHECKPOINT_URL: KnownFile(size=None, sha256=None),  # unknown: S3 unreachable here; pin with --sha256
    MUGEN_LIGHTNING_CHECKPOINT_URL: KnownFile(size=None, sha256=None),  # unknown, as above
    # torchvision names its weight files after the first hex digits of their sha256 (and checks them on download).
    S3D_KINETICS400_URL: KnownFile(sha256_prefix="d76dad2f"),
}


# ------------------------------------------------------------------------------------------------------------------
# Variants (hub_configs/<variant>/)
# ------------------------------------------------------------------------------------------------------------------


@dataclass
class Variant:
    """One published variant, read from ``hub_configs/<name>/``.

    Files there: ``variant.json`` (card metadata, defaults, known results), ``config.json`` (the
    `VideoCLIPConfig`), ``video_preprocessor_config.json`` (the `VideoCLIPVideoProcessor` settings) and
    ``README.md.jinja`` (the model-card template).
    """

    name: str
    directory: Path
    spec: dict[str, Any]
    config: dict[str, Any]
    video_processor: dict[str, Any]

    @property
    def template_path(self) -> Path:
        return self.directory / "README.md.jinja"

    @property
    def default_checkpoint(self) -> str | None:
        return self.spec.get("default_checkpoint")

    @property
    def official_checkpoints(self) -> list[str]:
        """Checkpoints whose published results may go on the card (the variant's own files)."""
        return list(self.spec.get("official_checkpoints") or [c for c in [self.default_checkpoint] if c])


def load_variant(name_or_dir: str | os.PathLike, configs_dir: str | os.PathLike) -> Variant:
    """Reads a variant folder.

    Args:
        name_or_dir: a variant name (a folder of `configs_dir`) or a path to a variant folder.
        configs_dir: where named variants live (``hub_configs/`` next to ``upload.py``).

    Returns:
        The [`Variant`].
    """
    directory = Path(name_or_dir)
    if not directory.is_dir():
        directory = Path(configs_dir) / str(name_or_dir)
    if not (directory / "variant.json").is_file():
        known = sorted(p.name for p in Path(configs_dir).iterdir() if (p / "variant.json").is_file())
        raise UploadError(f"unknown variant {str(name_or_dir)!r}; known variants: {', '.join(known)}", ExitCode.USAGE)
    spec = _read_json(directory / "variant.json")
    return Variant(
        name=spec.get("name", directory.name),
        directory=directory,
        spec=spec,
        config=_read_json(directory / "config.json"),
        video_processor=_read_json(directory / "video_preprocessor_config.json"),
    )


def _read_json(path: Path) -> dict[str, Any]:
    try:
        with open(path, encoding="utf-8") as handle:
            return json.load(handle)
    except (OSError, json.JSONDecodeError) as error:
        raise UploadError(f"cannot read {path}: {error}", ExitCode.BAD_INPUT) from error


def load_config(variant: Variant, override: str | os.PathLike | None = None) -> VideoCLIPConfig:
    """The model configuration.

    Args:
        variant: its ``config.json`` is the default.
        override: a ``config.json`` (or a folder holding one) to use instead, e.g. for a checkpoint with another
            text tower; it must describe a VideoCLIP model.

    Returns:
        A `VideoCLIPConfig`.
    """
    if override is None:
        values = dict(variant.config)
    else:
        path = Path(override)
        path = path / "config.json" if path.is_dir() else path
        if not path.is_file():
            raise UploadError(f"--config {str(override)!r}: no such file", ExitCode.BAD_INPUT)
        values = _read_json(path)
    model_type = values.pop("model_type", VideoCLIPConfig.model_type)
    if model_type != VideoCLIPConfig.model_type:
        raise UploadError(f"config {override or variant.name} is a {model_type!r} config, not 'videoclip'", ExitCode.BAD_INPUT)
    for key in ("architectures", "auto_map", "transformers_version", "dtype", "torch_dtype"):
        values.pop(key, None)
    return VideoCLIPConfig(**values)


# ------------------------------------------------------------------------------------------------------------------
# Output folder policy
# ------------------------------------------------------------------------------------------------------------------


def read_marker(output_dir: Path) -> dict[str, Any] | None:
    """The marker of a previous ``upload.py`` output in `output_dir`, or None."""
    path = output_dir / MARKER_FILE
    if not path.is_file():
        return None
    try:
        marker = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError):
        return None
    return marker if isinstance(marker, dict) and marker.get("tool") == "upload.py" else None


def check_output_dir(output_dir: str | os.PathLike, overwrite: bool) -> None:
    """Refuses an output folder that holds anything but a previous ``upload.py`` output, unless `overwrite`.

    Raises:
        UploadError: (`ExitCode.OUTPUT_DIR`) the folder is a file, or non-empty and not ours.
    """
    path = Path(output_dir)
    if path.exists() and not path.is_dir():
        raise UploadError(f"--output-dir {path} exists and is not a folder", ExitCode.OUTPUT_DIR)
    if overwrite or not path.exists():
        return
    present = _relative_files(path)
    if not present:
        return
    marker = read_marker(path)
    listed = set(marker.get("files", {})) if marker else set()
    foreign = sorted(set(present) - listed - {MARKER_FILE})
    if marker is None or foreign:
        shown = ", ".join(foreign[:3]) + (" ..." if len(foreign) > 3 else "")
        raise UploadError(
            f"--output-dir {path} is not empty and was not written by upload.py (e.g. {shown}); choose an empty "
            f"folder or pass --overwrite to replace its contents",
            ExitCode.OUTPUT_DIR,
        )


def _relative_files(root: Path) -> list[str]:
    return sorted(p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file() or p.is_symlink())


# ------------------------------------------------------------------------------------------------------------------
# Checkpoint files: local paths and cached, verified downloads
# ------------------------------------------------------------------------------------------------------------------


@dataclass
class CheckpointFile:
    """A checkpoint on local disk, where it came from and its sha256."""

    path: Path
    sha256: str
    source: str
    url: str | None = None

    @property
    def name(self) -> str:
        return Path(urllib.parse.urlparse(self.url).path).name if self.url else self.path.name


def is_url(value: str) -> bool:
    return urllib.parse.urlparse(value).scheme in ("http", "https")


def file_sha256(path: str | os.PathLike, chunk_size: int = 1 << 22) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(chunk_size), b""):
            digest.update(chunk)
    return digest.hexdigest()


def fetch_checkpoint(
    source: str,
    cache_dir: str | os.PathLike = DEFAULT_CACHE_DIR,
    sha256: str | None = None,
    progress: bool = True,
    log: Log = print,
) -> CheckpointFile:
    """A local path as is, or a URL downloaded into `cache_dir` (reused when it verifies).

    Args:
        source: a file path or an http(s) URL.
        cache_dir: the download cache; defaults to ``$XDG_CACHE_HOME/videoclip-hf/checkpoints``.
        sha256: the expected sha256 (``--sha256``); defaults to the digest in `KNOWN_FILES` for known URLs, else
            unchecked (the computed digest is printed so it can be pinned).
        progress: show a tqdm progress bar while downloading.

    Returns:
        The [`CheckpointFile`].

    Raises:
        UploadError: missing file, no network, HTTP error, or a size/sha256 mismatch.
    """
    expected = KNOWN_FILES.get(source, KnownFile())
    sha256 = (sha256 or expected.sha256 or "").lower() or None
    if sha256 is not None and not re.fullmatch(r"[0-9a-f]{64}", sha256):
        raise UploadError(f"--sha256 must be 64 hex digits, got {sha256!r}", ExitCode.USAGE)
    if not is_url(source):
        path = Path(source).expanduser()
        if not path.is_file():
            raise UploadError(f"checkpoint {source!r} does not exist (pass a file path or an http(s) URL)", ExitCode.CHECKPOINT_UNREADABLE)
        digest = file_sha256(path)
        _check_digest(source, digest, sha256, expected)
        return CheckpointFile(path=path, sha256=digest, source=source)
    target = Path(cache_dir).expanduser() / hashlib.sha256(source.encode()).hexdigest()[:16] / _url_filename(source)
    if target.is_file():
        digest = _cached_digest(target)
        if _matches(target.stat().st_size, digest, sha256, expected):
            log(f"Using cached download {target}")
            return CheckpointFile(path=target, sha256=digest, source=source, url=source)
        log(f"Cached {target} does not verify; downloading again")
        target.unlink()
    digest = _download(source, target, expected, progress)
    _check_digest(source, digest, sha256, expected, downloaded=target)
    Path(str(target) + ".sha256").write_text(digest + "\n")
    log(f"Downloaded {source} ({target.stat().st_size} bytes, sha256 {digest})")
    return CheckpointFile(path=target, sha256=digest, source=source, url=source)


def _url_filename(url: str) -> str:
    return Path(urllib.parse.urlparse(url).path).name or "checkpoint.pt"


def _cached_digest(path: Path) -> str:
    sidecar = Path(str(path) + ".sha256")
    if sidecar.is_file() and sidecar.stat().st_mtime >= path.stat().st_mtime:
        return sidecar.read_text().strip()
    return file_sha256(path)


def _matches(size: int, digest: str, sha256: str | None, expected: KnownFile) -> bool:
    return (
        (expected.size is None or size == expected.size)
        and (sha256 is None or digest == sha256)
        and (expected.sha256_prefix is None or digest.startswith(expected.sha256_prefix))
    )


def _check_digest(source: str, digest: str, sha256: str | None, expected: KnownFile, downloaded: Path | None = None) -> None:
    problem = None
    if sha256 is not None and digest != sha256:
        problem = f"sha256 {digest} differs from the expected {sha256}"
    elif expected.sha256_prefix is not None and not digest.startswith(expected.sha256_prefix):
        problem = f"sha256 {digest} does not start with the expected {expected.sha256_prefix}"
    if problem:
        if downloaded is not None:
            downloaded.unlink(missing_ok=True)
        raise UploadError(f"checkpoint {source}: {problem}", ExitCode.DOWNLOAD_FAILED)


def _download(url: str, target: Path, expected: KnownFile, progress: bool, timeout: float = 60) -> str:
    """Streams `url` into `target` through a ``.incomplete`` file; returns the sha256. Verifies the size."""
    from tqdm.auto import tqdm

    target.parent.mkdir(parents=True, exist_ok=True)
    partial = Path(str(target) + ".incomplete")
    digest, received = hashlib.sha256(), 0
    try:
        request = urllib.request.Request(url, headers={"User-Agent": "videoclip-hf-upload"})
        with urllib.request.urlopen(request, timeout=timeout) as response, open(partial, "wb") as handle:
            announced = response.headers.get("Content-Length")
            total = int(announced) if announced and announced.isdigit() else expected.size
            with tqdm(total=total, unit="B", unit_scale=True, unit_divisor=1024, desc=target.name, disable=not progress) as bar:
                for chunk in iter(lambda: response.read(1 << 20), b""):
                    handle.write(chunk)
                    digest.update(chunk)
                    received += len(chunk)
                    bar.update(len(chunk))
    except urllib.error.HTTPError as error:
        partial.unlink(missing_ok=True)
        raise UploadError(f"cannot download {url}: HTTP {error.code} {error.reason}", ExitCode.DOWNLOAD_FAILED) from error
    except (urllib.error.URLError, OSError) as error:
        partial.unlink(missing_ok=True)
        reason = getattr(error, "reason", error)
        raise UploadError(f"cannot download {url}: no network connection ({reason})", ExitCode.NETWORK) from error
    for what, want in (("announced", int(announced) if announced and announced.isdigit() else None), ("expected", expected.size)):
        if want is not None and received != want:
            partial.unlink(missing_ok=True)
            raise UploadError(f"download of {url} is incomplete: got {received} bytes, {what} {want}", ExitCode.DOWNLOAD_FAILED)
    os.replace(partial, target)
    return digest.hexdigest()


# ------------------------------------------------------------------------------------------------------------------
# Building the model and processor
# ------------------------------------------------------------------------------------------------------------------


def convert_checkpoint(checkpoint: CheckpointFile, config: VideoCLIPConfig, allow_pickle: bool = False) -> VideoCLIPModel:
    """Converts a torchmultimodal checkpoint strictly (every key must match the architecture in `config`).

    Raises:
        UploadError: unreadable / not VideoCLIP (`CHECKPOINT_UNREADABLE`), needs pickle (`NEEDS_PICKLE`), or keys
            that do not match (`KEY_MISMATCH`).
    """
    try:
        state = load_checkpoint(checkpoint.path, allow_pickle=allow_pickle)
        return convert_torchmultimodal_checkpoint(state, config=config)
    except PickleRequiredError as error:
        raise UploadError(
            f"checkpoint {checkpoint.source} holds objects other than tensors and needs pickle to load; if you "
            f"trust the file, re-run with --allow-pickle",
            ExitCode.NEEDS_PICKLE,
        ) from error
    except KeyMismatchError as error:
        text = str(error)
        raise UploadError(_key_mismatch_summary(checkpoint.source, text), ExitCode.KEY_MISMATCH, details=text) from error
    except CheckpointConversionError as error:
        raise UploadError(f"{checkpoint.source}: {_first_line(error)}", ExitCode.CHECKPOINT_UNREADABLE) from error


def _first_line(error: BaseException) -> str:
    return str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__


def _key_mismatch_summary(source: str, report: str) -> str:
    """One line from the converter's multi-line key report: the counts and a few example keys."""
    counts = re.findall(r"^(Missing|Unexpected|Mis-shaped) keys \((\d+)\):", report, flags=re.MULTILINE)
    examples = [line.strip() for line in report.splitlines() if line.startswith("  ") and "..." not in line][:2]
    summary = ", ".join(f"{n} {kind.lower()}" for kind, n in counts) or "keys differ"
    return (
        f"checkpoint {source} does not match the VideoCLIP architecture ({summary} keys; e.g. {'; '.join(examples)}); "
        f"if it has another text tower, pass its config with --config (run with --verbose for the full list)"
    )


def build_base_model(
    config: VideoCLIPConfig, text_encoder: str, video_encoder: CheckpointFile, seed: int = 0
) -> VideoCLIPModel:
    """The ``videoclip-base`` model: pretrained encoders, freshly initialised projections (seeded).

    Args:
        config: the architecture; its text tower must match the DistilBERT weights.
        text_encoder: a DistilBERT folder or Hub repo id (``distilbert/distilbert-base-uncased`` by default).
        video_encoder: a torchvision S3D state dict (``features.*`` and ``classifier.*`` keys), e.g. the
            Kinetics-400 weights.
        seed: seeds the projection heads' initialisation.
    """
    from transformers import DistilBertModel

    try:
        text_model = from_hub_or_cache(DistilBertModel.from_pretrained, text_encoder, "text encoder")
    except OSError as error:
        code = ExitCode.NETWORK if _looks_offline(error) else ExitCode.BAD_INPUT
        raise UploadError(f"cannot load the text encoder {text_encoder!r}: {_first_line(error)}", code) from error
    try:
        s3d_state = torch.load(video_encoder.path, map_location="cpu", weights_only=True)
    except (pickle.UnpicklingError, RuntimeError, EOFError, OSError) as error:
        raise UploadError(f"cannot read the video encoder {video_encoder.source}: {_first_line(error)}", ExitCode.CHECKPOINT_UNREADABLE) from error
    torch.manual_seed(seed)
    model = VideoCLIPModel(config)
    problems = _load_strict(model.text_model, text_model.state_dict(), "text encoder", ignore=r"position_ids$")
    features = {k[len("features."):]: v for k, v in s3d_state.items() if k.startswith("features.")}
    extra = sorted(k for k in s3d_state if not k.startswith(("features.", "classifier.")))
    problems += [f"video encoder: unexpected key {k}" for k in extra]
    problems += _load_strict(model.video_model.features, features, "video encoder")
    if problems:
        raise UploadError(f"pretrained encoders do not match the architecture: {'; '.join(problems[:3])}", ExitCode.KEY_MISMATCH, details="\n".join(problems))
    return model.eval()


def _load_strict(module: torch.nn.Module, state: Mapping[str, torch.Tensor], what: str, ignore: str | None = None) -> list[str]:
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


def hub_reachable(timeout: float = 5.0) -> bool:
    """Whether the Hub endpoint (``HF_ENDPOINT``) can be reached: a quick check, so that a machine without
    network fails in seconds instead of after huggingface_hub's retries. False in offline mode."""
    from huggingface_hub import constants

    return not constants.HF_HUB_OFFLINE and host_reachable(constants.ENDPOINT, timeout)


def host_reachable(url: str, timeout: float = 5.0) -> bool:
    """Whether a TCP connection to `url`'s host opens within `timeout` seconds (assumed true behind an HTTP(S)
    proxy, which this probe cannot go through)."""
    import socket
    import urllib.parse

    if any(os.environ.get(name) for name in ("HTTPS_PROXY", "https_proxy", "ALL_PROXY", "all_proxy")):
        return True
    parsed = urllib.parse.urlparse(url)
    port = parsed.port or (443 if parsed.scheme == "https" else 80)
    try:
        with socket.create_connection((parsed.hostname, port), timeout=timeout):
            return True
    except OSError:
        return False


def from_hub_or_cache(load: Callable[..., T], source: str, what: str) -> T:
    """``load(source)`` for a local folder; for a Hub repo id, from the Hub when it is reachable, else from the local
    cache (``local_files_only``), else an `ExitCode.NETWORK` error."""
    if Path(source).expanduser().exists() or hub_reachable():
        return load(source)
    try:
        return load(source, local_files_only=True)
    except (OSError, ValueError) as error:
        raise UploadError(
            f"cannot load the {what} {source!r}: no network connection to the Hub and it is not in the local cache "
            f"(pass a local folder or file instead)",
            ExitCode.NETWORK,
        ) from error


def _looks_offline(error: BaseException) -> bool:
    text = f"{error!r} {error.__cause__!r}".lower()
    return any(word in text for word in ("connect", "offline", "network", "resolve", "timed out", "timeout"))


def load_tokenizer(source: str, config: VideoCLIPConfig):
    """The text tokenizer.

    Args:
        source: a ``vocab.txt`` file, a folder holding ``tokenizer.json``/``tokenizer_config.json`` or a
            ``vocab.txt``, or a Hub repo id (default of the CLI: ``distilbert/distilbert-base-uncased``).
        config: its text vocabulary must cover the tokenizer's ids; its `pad_token_id` must be the tokenizer's.

    Returns:
        A `DistilBertTokenizer` (or whatever `AutoTokenizer` gives for a folder / repo).
    """
    from transformers import AutoTokenizer

    from .tokenization import tokenizer_from_vocab

    path = Path(source).expanduser()
    try:
        if path.is_file():
            tokenizer = tokenizer_from_vocab(path)
        elif path.is_dir() and not any((path / f).is_file() for f in ("tokenizer.json", "tokenizer_config.json")):
            tokenizer = tokenizer_from_vocab(path)
        else:
            load = lambda name, **kwargs: AutoTokenizer.from_pretrained(name, model_max_length=MAX_TEXT_TOKENS, **kwargs)  # noqa: E731
            tokenizer = from_hub_or_cache(load, source, "tokenizer")
    except (OSError, ValueError) as error:
        code = ExitCode.NETWORK if not path.exists() and _looks_offline(error) else ExitCode.BAD_INPUT
        raise UploadError(f"cannot load the tokenizer {source!r}: {_first_line(error)}", code) from error
    vocab_size = config.text_config.vocab_size
    if len(tokenizer) > vocab_size:
        raise UploadError(
            f"tokenizer {source!r} has {len(tokenizer)} tokens but the text tower's vocabulary has {vocab_size}",
            ExitCode.BAD_INPUT,
        )
    if tokenizer.pad_token_id != config.pad_token_id:
        raise UploadError(
            f"tokenizer {source!r} pads with id {tokenizer.pad_token_id}, the model with {config.pad_token_id}",
            ExitCode.BAD_INPUT,
        )
    return tokenizer


def build_processor(variant: Variant, tokenizer) -> VideoCLIPProcessor:
    """The processor: the variant's video-processor settings plus `tokenizer`."""
    return VideoCLIPProcessor(video_processor=VideoCLIPVideoProcessor(**variant.video_processor), tokenizer=tokenizer)


# ------------------------------------------------------------------------------------------------------------------
# Model card
# ------------------------------------------------------------------------------------------------------------------


def usage_code(repo_id: str, revision: str | None = None) -> str:
    """Python that loads the published model and scores texts against a video; runs as pasted."""
    revision_arg = f', revision="{revision}"' if revision and revision != "main" else ""
    return f'''import numpy as np
import torch
from transformers import AutoModel, AutoProcessor

repo_id = "{repo_id}"
model = AutoModel.from_pretrained(repo_id, trust_remote_code=True{revision_arg}).eval()
processor = AutoProcessor.from_pretrained(repo_id, trust_remote_code=True{revision_arg})

texts = ["Mugen jumps onto a ledge.", "A snail kills Mugen."]
# A clip as uint8 RGB frames (T, H, W, 3); a video file path works too (decoded with PyAV).
video = np.random.default_rng(0).integers(0, 256, (32, 256, 256, 3), dtype=np.uint8)

inputs = processor(text=texts, videos=[video], return_tensors="pt")
with torch.no_grad():
    outputs = model(**inputs)
print(outputs.logits_per_video.softmax(dim=-1))  # (videos, texts)'''


def results_table(results: list[dict[str, Any]]) -> str:
    """A markdown table (rows: retrieval direction, columns: metric) of the variant's results."""
    rows: dict[str, dict[str, Any]] = {}
    columns: list[str] = []
    for result in results:
        rows.setdefault(result["task_name"], {})[result["metric_name"]] = result["value"]
        if result["metric_name"] not in columns:
            columns.append(result["metric_name"])
    lines = ["| Direction | " + " | ".join(columns) + " |", "|---|" + "---|" * len(columns)]
    for task, values in rows.items():
        lines.append(f"| {task} | " + " | ".join(f"{values[c]:.2f}" if c in values else "" for c in columns) + " |")
    return "\n".join(lines)


def render_model_card(
    variant: Variant,
    repo_id: str,
    config: VideoCLIPConfig,
    provenance: str,
    include_results: bool,
    revision: str | None = None,
    base_model: list[str] | None = None,
) -> str:
    """The README.md: YAML metadata (library, licence, tags, datasets, base_model, model-index) and the template.

    Args:
        variant: supplies the template, the metadata defaults and the known results.
        repo_id: used in the usage code (a placeholder when the folder is not uploaded).
        include_results: put the variant's published Recall@K in the model-index and the card.
        base_model: overrides the variant's ``base_model`` (``--base-model``, for finetunes of a published model).
    """
    from huggingface_hub import EvalResult, ModelCard, ModelCardData

    card = dict(variant.spec.get("card", {}))
    results = list(variant.spec.get("results") or []) if include_results else []
    dataset = variant.spec.get("results_dataset", {})
    source = variant.spec.get("results_source", {})
    eval_results = [
        EvalResult(
            task_type=r["task_type"],
            task_name=r["task_name"],
            dataset_type=dataset.get("type", "mugen"),
            dataset_name=dataset.get("name", "MUGEN"),
            dataset_split=dataset.get("split"),
            metric_type=r["metric_type"],
            metric_name=r["metric_name"],
            metric_value=r["value"],
            source_name=source.get("name"),
            source_url=source.get("url"),
        )
        for r in results
    ]
    card_data = ModelCardData(
        library_name=card.pop("library_name", "transformers"),
        license=card.pop("license", None),
        tags=card.pop("tags", None),
        datasets=card.pop("datasets", None),
        base_model=base_model if base_model is not None else card.pop("base_model", None),
        model_name=repo_id.split("/")[-1],
        eval_results=eval_results or None,
        **{k: v for k, v in card.items() if k != "base_model"},
    )
    processor = variant.video_processor
    rendered = ModelCard.from_template(
        card_data,
        template_path=str(variant.template_path),
        title=variant.spec.get("title", variant.name),
        summary=variant.spec.get("summary", ""),
        usage_code=usage_code(repo_id, revision),
        projection_dim=config.projection_dim,
        num_frames=processor.get("num_frames", 32),
        height=processor.get("size", {}).get("height", 224),
        width=processor.get("size", {}).get("width", 224),
        results_table=results_table(results) if results else "",
        results_source_url=source.get("url", ""),
        provenance=provenance,
    )
    return str(rendered).rstrip() + "\n"


# ------------------------------------------------------------------------------------------------------------------
# Writing, verifying and installing the folder
# ------------------------------------------------------------------------------------------------------------------


def write_folder(folder: Path, model: VideoCLIPModel, processor: VideoCLIPProcessor, card: str) -> dict[str, str]:
    """Writes the Hub folder; returns ``{relative path: sha256}`` of every file."""
    folder.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(folder)
    processor.save_pretrained(folder)
    (folder / "README.md").write_text(card, encoding="utf-8")
    return {name: file_sha256(folder / name) for name in _relative_files(folder)}


def state_digest(model: torch.nn.Module) -> str:
    """sha256 over every tensor of the state dict (names, dtypes, shapes, bytes)."""
    digest = hashlib.sha256()
    for name, tensor in sorted(model.state_dict().items()):
        tensor = tensor.detach().cpu().contiguous()
        digest.update(f"{name}|{tensor.dtype}|{tuple(tensor.shape)}\n".encode())
        digest.update(tensor.reshape(-1).view(torch.uint8).numpy().tobytes() if tensor.numel() else b"")
    return digest.hexdigest()


#: Python prelude for a fresh process that must not see this package (nor ``upload.py``): every meta-path finder
#: refuses those top-level names, so only the remote code written next to a model can be used there.
PACKAGE_BLOCKER = r'''
import importlib.util, sys

BLOCKED = ("modeling_videoclip", "upload")

class _Refusing:
    """Wraps a meta-path finder so that it never finds the blocked top-level names."""
    def __init__(self, finder):
        self.finder = finder
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in BLOCKED:
            return None
        find_spec = getattr(self.finder, "find_spec", None)
        return find_spec(name, path, target) if find_spec else None
    def invalidate_caches(self):
        if hasattr(self.finder, "invalidate_caches"):
            self.finder.invalidate_caches()
    def __getattr__(self, name):  # e.g. find_distributions, which importlib.metadata asks every finder
        return getattr(self.finder, name)

sys.meta_path[:] = [_Refusing(finder) for finder in sys.meta_path]
for name in list(sys.modules):
    if name.split(".")[0] in BLOCKED:
        del sys.modules[name]
assert importlib.util.find_spec("modeling_videoclip") is None, "the package must not be importable here"
'''

#: Run as ``python -c`` in a fresh process: refuses to import this package, loads the folder through the Auto
#: classes with remote code, and saves what it computed for the parent to compare. :func:`state_digest` is
#: pasted in from its source, since that process cannot import this package.
VERIFY_SCRIPT = PACKAGE_BLOCKER + r'''
import hashlib, json
import torch
from transformers import AutoModel, AutoProcessor

folder, inputs_path, output_path, options = sys.argv[1], sys.argv[2], sys.argv[3], json.loads(sys.argv[4])

''' + inspect.getsource(state_digest) + r'''

model = AutoModel.from_pretrained(folder, trust_remote_code=True).eval()
processor = AutoProcessor.from_pretrained(folder, trust_remote_code=True)
video = torch.load(inputs_path, weights_only=True)["video"]
inputs = processor(text=options["texts"], videos=[video], num_frames=options["num_frames"], return_tensors="pt")
with torch.no_grad():
    text = model.get_text_features(input_ids=inputs["input_ids"], attention_mask=inputs["attention_mask"]).pooler_output
    video_embeds = model.get_video_features(pixel_values_videos=inputs["pixel_values_videos"]).pooler_output
torch.save(
    {
        "input_ids": inputs["input_ids"],
        "attention_mask": inputs["attention_mask"],
        "pixel_values_videos": inputs["pixel_values_videos"],
        "text_embeds": text,
        "video_embeds": video_embeds,
        "state_digest": state_digest(model),
        "model_module": type(model).__module__,
        "processor_module": type(processor).__module__,
        "video_processor": processor.video_processor.to_dict(),
    },
    output_path,
)
'''


@dataclass
class VerificationReport:
    """What the fresh-process reload gave, compared with the in-memory model."""

    max_abs_diff: float
    model_module: str
    seconds: float


def verify_folder(
    folder: Path, model: VideoCLIPModel, processor: VideoCLIPProcessor, atol: float = 1e-5, timeout: float = 600
) -> VerificationReport:
    """Reloads `folder` in a fresh process that cannot import this package and compares it with the in-memory
    `model` and `processor`: the state-dict digest, the video-processor settings, the processed inputs and the
    text and video embeddings (within `atol`).

    Raises:
        UploadError: (`RELOAD_MISMATCH`) the reload fails or differs.
    """
    started = time.monotonic()
    video = torch.from_numpy(_verification_video())
    options = {"texts": list(VERIFY_TEXTS), "num_frames": VERIFY_FRAMES}
    with tempfile.TemporaryDirectory(prefix="videoclip-verify-") as scratch:
        scratch_path = Path(scratch)
        torch.save({"video": video}, scratch_path / "inputs.pt")
        env = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_MODULES_CACHE": str(scratch_path / "modules"), "TOKENIZERS_PARALLELISM": "false"}
        for key in ("HF_TOKEN", "HUGGING_FACE_HUB_TOKEN", "PYTHONPATH"):
            env.pop(key, None)
        command = [sys.executable, "-c", VERIFY_SCRIPT, str(folder.resolve()), "inputs.pt", "outputs.pt", json.dumps(options)]
        stderr_path = scratch_path / "stderr.txt"
        with open(stderr_path, "w") as stderr:
            process = subprocess.Popen(command, cwd=scratch, env=env, stdout=subprocess.DEVNULL, stderr=stderr)
            try:
                expected = _in_memory_outputs(model, processor, video, options)  # meanwhile, in this process
                returncode = process.wait(timeout=timeout)
            except BaseException as error:
                process.kill()
                process.wait()
                if isinstance(error, subprocess.TimeoutExpired):
                    raise UploadError(f"reloading the written folder timed out after {timeout:.0f}s", ExitCode.RELOAD_MISMATCH) from error
                raise
        if returncode != 0:
            log_text = stderr_path.read_text(errors="replace")
            last = (log_text.strip().splitlines() or ["no output"])[-1]
            raise UploadError(
                f"reloading the written folder with AutoModel/AutoProcessor(trust_remote_code=True) failed: {last}",
                ExitCode.RELOAD_MISMATCH,
                details=log_text,
            )
        reloaded = torch.load(scratch_path / "outputs.pt", weights_only=True)
    return _compare_reload(reloaded, expected, atol, time.monotonic() - started)


def _verification_video() -> Any:
    import numpy as np

    return np.random.default_rng(1234).integers(0, 256, (VERIFY_FRAMES + 4, 96, 128, 3), dtype=np.uint8)


def _in_memory_outputs(model, processor, video, options) -> dict[str, Any]:
    """What the reload must reproduce, computed from the in-memory model and processor."""
    inputs = processor(text=options["texts"], videos=[video], num_frames=options["num_frames"], return_tensors="pt")
    with torch.no_grad():
        text = model.get_text_features(input_ids=inputs["input_ids"], attention_mask=inputs["attention_mask"]).pooler_output
        video_embeds = model.get_video_features(pixel_values_videos=inputs["pixel_values_videos"]).pooler_output
    return {
        **{key: inputs[key] for key in ("input_ids", "attention_mask", "pixel_values_videos")},
        "text_embeds": text,
        "video_embeds": video_embeds,
        "state_digest": state_digest(model),
        "video_processor": processor.video_processor.to_dict(),
    }


def _compare_reload(reloaded: Mapping[str, Any], expected: Mapping[str, Any], atol: float, seconds: float) -> VerificationReport:
    problems = []
    if not reloaded["model_module"].startswith("transformers_modules."):
        problems.append(f"the model class came from {reloaded['model_module']}, not from the folder's remote code")
    if reloaded["state_digest"] != expected["state_digest"]:
        problems.append("the reloaded weights differ from the converted ones")
    if _comparable(reloaded["video_processor"]) != _comparable(expected["video_processor"]):
        problems.append("the reloaded video-processor settings differ")
    for key in ("input_ids", "attention_mask", "pixel_values_videos"):
        if reloaded[key].shape != expected[key].shape or not torch.equal(reloaded[key], expected[key]):
            problems.append(f"the reloaded processor gives other {key}")
    diff = max(
        float((reloaded[key] - expected[key]).abs().max()) if reloaded[key].shape == expected[key].shape else float("inf")
        for key in ("text_embeds", "video_embeds")
    )
    if not diff <= atol:
        problems.append(f"embeddings differ by up to {diff:.3g} (> {atol})")
    if problems:
        raise UploadError("the written folder does not reproduce the converted model: " + "; ".join(problems), ExitCode.RELOAD_MISMATCH)
    return VerificationReport(max_abs_diff=diff, model_module=reloaded["model_module"], seconds=seconds)


def _comparable(settings: Mapping[str, Any]) -> dict[str, Any]:
    ignored = {"auto_map", "processor_class", "_processor_class"}
    return json.loads(json.dumps({k: v for k, v in settings.items() if k not in ignored}, sort_keys=True, default=str))


def environment_fingerprint() -> dict[str, str]:
    """Versions that decide whether a folder verified earlier would still load the same way."""
    import transformers

    return {"python": sys.version.split()[0], "torch": torch.__version__, "transformers": transformers.__version__}


def reusable_verification(output_dir: Path, files: Mapping[str, str]) -> dict[str, Any] | None:
    """The recorded verification of `output_dir` if it holds exactly `files` (same bytes; the model card may
    differ) and was verified with the current library versions; None otherwise."""
    marker = read_marker(output_dir)
    if not marker or marker.get("state") != "complete" or not marker.get("verification"):
        return None
    wanted = _loadable(files)
    if _loadable(marker.get("files", {})) != wanted or marker.get("environment") != environment_fingerprint():
        return None
    present = {name: file_sha256(output_dir / name) for name in _relative_files(output_dir) if name != MARKER_FILE}
    return marker["verification"] if _loadable(present) == wanted else None


def _loadable(files: Mapping[str, str]) -> dict[str, str]:
    """The files `from_pretrained` reads: all but the model card, which the reload check does not depend on."""
    return {name: sha for name, sha in files.items() if name != "README.md"}


def install_folder(staging: Path, output_dir: Path, files: Mapping[str, str], verification: Mapping[str, Any]) -> None:
    """Moves the verified `staging` files into `output_dir`: identical files are left untouched, changed and new
    ones replaced, files of a previous output (or, with ``--overwrite``, anything else) that are no longer
    produced are removed. The marker says ``installing`` until the folder is complete."""
    output_dir.mkdir(parents=True, exist_ok=True)
    old = set(_relative_files(output_dir)) - {MARKER_FILE}
    changed = [
        name
        for name, sha in files.items()
        if not ((output_dir / name).is_file() and not (output_dir / name).is_symlink() and file_sha256(output_dir / name) == sha)
    ]
    stale = sorted(old - set(files))
    marker = read_marker(output_dir)
    if not changed and not stale and marker and marker.get("state") == "complete" and marker.get("files") == dict(files):
        return  # already exactly this output: touch nothing
    _write_marker(output_dir, "installing", {**{name: "" for name in old}, **files}, verification)
    for name in changed:
        (output_dir / name).parent.mkdir(parents=True, exist_ok=True)
        os.replace(staging / name, output_dir / name)
    for name in stale:
        (output_dir / name).unlink(missing_ok=True)
    _remove_empty_dirs(output_dir)
    _write_marker(output_dir, "complete", files, verification)


def _write_marker(output_dir: Path, state: str, files: Mapping[str, str], verification: Mapping[str, Any]) -> None:
    marker = {
        "tool": "upload.py",
        "state": state,
        "files": dict(files),
        "environment": environment_fingerprint(),
        "verification": dict(verification),
    }
    temporary = output_dir / (MARKER_FILE + ".tmp")
    temporary.write_text(json.dumps(marker, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    os.replace(temporary, output_dir / MARKER_FILE)


def _remove_empty_dirs(root: Path) -> None:
    for path in sorted((p for p in root.rglob("*") if p.is_dir()), key=lambda p: len(p.parts), reverse=True):
        if not any(path.iterdir()):
            path.rmdir()


# ------------------------------------------------------------------------------------------------------------------
# Publishing
# ------------------------------------------------------------------------------------------------------------------


@dataclass
class PublishResult:
    """Where the folder went."""

    repo_id: str
    url: str
    revision: str
    commit_id: str
    commit_url: str | None
    committed: bool


def _transport_error_types() -> tuple[type[BaseException], ...]:
    types: list[type[BaseException]] = [ConnectionError, TimeoutError]
    for module_name in ("httpx2", "httpx", "requests"):
        try:
            module = __import__(module_name)
        except ImportError:
            continue
        for attr in ("TransportError", "ConnectionError", "Timeout"):
            if isinstance(getattr(module, attr, None), type):
                types.append(getattr(module, attr))
    return tuple(types)


def _status_of(error: BaseException) -> int | None:
    response = getattr(error, "response", None)
    return getattr(response, "status_code", None)


def is_transient(error: BaseException) -> bool:
    """Worth retrying: a connection failure or timeout, or HTTP 408/429/5xx (see `TRANSIENT_STATUS`)."""
    from huggingface_hub.errors import HfHubHTTPError

    if isinstance(error, HfHubHTTPError):
        return _status_of(error) in TRANSIENT_STATUS
    return isinstance(error, _transport_error_types())


def call_with_retries(
    action: Callable[[], T],
    what: str,
    retries: int = 5,
    wait: float = 1.0,
    max_wait: float = 30.0,
    log: Log = print,
    sleep: Callable[[float], None] = time.sleep,
) -> T:
    """Runs `action`, retrying transient failures (`is_transient`) up to `retries` times with exponential backoff
    starting at `wait` seconds (capped at `max_wait`). Other errors, and the last transient one, propagate."""
    attempt = 0
    while True:
        try:
            return action()
        except Exception as error:  # noqa: BLE001 - filtered just below
            if attempt >= retries or not is_transient(error):
                raise
            attempt += 1
            delay = min(max_wait, wait * 2 ** (attempt - 1))
            log(f"{what}: transient failure ({_short_error(error)}); retry {attempt}/{retries} in {delay:.3g}s")
            sleep(delay)


def _short_error(error: BaseException) -> str:
    status = _status_of(error)
    return f"HTTP {status}" if status else f"{type(error).__name__}: {_first_line(error)}"


def hub_error(error: BaseException, repo_id: str | None) -> UploadError:
    """Maps a huggingface_hub / transport error to an [`UploadError`] (never quoting the token)."""
    from huggingface_hub.errors import LocalTokenNotFoundError, OfflineModeIsEnabled

    where = f" for {repo_id}" if repo_id else ""
    status = _status_of(error)
    if isinstance(error, UploadError):
        return error
    if isinstance(error, LocalTokenNotFoundError):
        return UploadError("no Hugging Face token found: set HF_TOKEN or run `hf auth login`", ExitCode.AUTH)
    if status == 401:
        return UploadError(
            f"authentication failed{where} (HTTP 401): the Hugging Face token (HF_TOKEN or `hf auth login`) was rejected",
            ExitCode.AUTH,
        )
    if status == 403:
        return UploadError(
            f"permission denied{where} (HTTP 403): this token may not write to that repository or namespace",
            ExitCode.FORBIDDEN,
        )
    if isinstance(error, OfflineModeIsEnabled):
        return UploadError("cannot reach the Hub: HF_HUB_OFFLINE is set", ExitCode.NETWORK)
    if status is None and isinstance(error, _transport_error_types()):
        return UploadError(f"cannot reach the Hub{where}: no network connection ({_short_error(error)})", ExitCode.NETWORK)
    detail = _first_line(error)
    return UploadError(f"the Hub refused the upload{where}: {f'HTTP {status}: ' if status else ''}{detail}", ExitCode.HUB_ERROR)


def check_credentials(repo_id: str, log: Log = print) -> str:
    """Checks before any slow work that a token is configured and accepted; returns the account name."""
    from huggingface_hub import HfApi, get_token

    if get_token() is None:
        raise UploadError("no Hugging Face token found: set HF_TOKEN or run `hf auth login`", ExitCode.AUTH)
    try:
        user = call_with_retries(lambda: HfApi().whoami(), "checking the token", retries=2, log=log)
    except Exception as error:  # noqa: BLE001
        raise hub_error(error, repo_id) from error
    name = user.get("name", "?")
    log(f"Hub token accepted (account {name})")
    return name


def publish_folder(
    folder: Path,
    repo_id: str,
    private: bool = False,
    revision: str | None = None,
    commit_message: str | None = None,
    retries: int = 5,
    retry_wait: float = 1.0,
    log: Log = print,
) -> PublishResult:
    """Creates the repo (if missing) and the branch (if missing) and uploads `folder` in ONE commit.

    Every Hub call is retried on transient failures; the commit is retried as a whole (`upload_folder` is
    idempotent: files the repo already holds are skipped, so a retry after a lost reply makes no second commit).
    When nothing changed, no commit is made and the current head is returned (`committed` False).

    Raises:
        UploadError: 401 (`AUTH`), 403 (`FORBIDDEN`), no network (`NETWORK`), other Hub errors (`HUB_ERROR`).
    """
    from huggingface_hub import HfApi

    api = HfApi()
    revision = revision or "main"

    def retrying(action: Callable[[], T], what: str) -> T:
        return call_with_retries(action, what, retries=retries, wait=retry_wait, log=log)

    try:
        repo_url = retrying(lambda: api.create_repo(repo_id, private=private, exist_ok=True), "creating the repo")
        repo_id = repo_url.repo_id
        if revision != "main":
            retrying(lambda: api.create_branch(repo_id, branch=revision, exist_ok=True), f"creating branch {revision}")
        head = retrying(lambda: api.repo_info(repo_id, revision=revision).sha, "reading the repo head")
        info = retrying(
            lambda: api.upload_folder(
                repo_id=repo_id,
                folder_path=str(folder),
                revision=revision,
                commit_message=commit_message,
                ignore_patterns=[MARKER_FILE, MARKER_FILE + ".tmp"],
            ),
            "uploading",
        )
    except Exception as error:  # noqa: BLE001 - every failure becomes one line and an exit code
        raise hub_error(error, repo_id) from error
    url = str(repo_url) if revision == "main" else f"{repo_url}/tree/{urllib.parse.quote(revision, safe='')}"
    committed = info.oid != head
    return PublishResult(repo_id, url, revision, info.oid, info.commit_url if committed else None, committed)


# ------------------------------------------------------------------------------------------------------------------
# The whole pipeline
# ------------------------------------------------------------------------------------------------------------------


@dataclass
class UploadOptions:
    """Options of [`convert_and_publish`]; ``upload.py --help`` documents each (defaults are the CLI's)."""

    output_dir: Path
    configs_dir: Path
    checkpoint: str | None = None
    variant: str = "videoclip-mugen"
    config: str | None = None
    tokenizer: str | None = None
    text_encoder: str | None = None
    video_encoder: str | None = None
    seed: int = 0
    sha256: str | None = None
    allow_pickle: bool = False
    cache_dir: Path = DEFAULT_CACHE_DIR
    repo_id: str | None = None
    private: bool = False
    revision: str | None = None
    commit_message: str | None = None
    base_model: list[str] | None = None
    card_results: str = "auto"
    overwrite: bool = False
    reverify: bool = False
    retries: int = 5
    retry_wait: float = 1.0
    progress: bool = True
    check_credentials: bool = True


def convert_and_publish(options: UploadOptions, log: Log = print) -> PublishResult | None:
    """Runs the whole pipeline (see the module docstring); returns where it was published (None without a repo id).

    Raises:
        UploadError: every expected failure, with its exit code.
    """
    variant = load_variant(options.variant, options.configs_dir)
    output_dir = Path(options.output_dir)
    check_output_dir(output_dir, options.overwrite)
    if options.repo_id and options.check_credentials:
        check_credentials(options.repo_id, log)
    config = load_config(variant, options.config)
    tokenizer_source = options.tokenizer or variant.spec.get("default_tokenizer", "distilbert/distilbert-base-uncased")
    processor = build_processor(variant, load_tokenizer(tokenizer_source, config))  # before the slow conversion
    model, provenance, checkpoint = _build_model(variant, config, options, log)
    include_results = _include_results(options.card_results, variant, checkpoint)
    repo_id = options.repo_id or f"<your-namespace>/{variant.name}"
    card = render_model_card(variant, repo_id, config, provenance, include_results, options.revision, options.base_model)

    output_dir.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix=".upload-staging-", dir=output_dir.parent) as scratch:
        staging = Path(scratch) / re.sub(r"\W", "_", variant.name)
        files = write_folder(staging, model, processor, card)
        log(f"Wrote {len(files)} files: {', '.join(files)}")
        verification = None if options.reverify else reusable_verification(output_dir, files)
        if verification is not None:
            log(
                "Output folder already holds these exact model/processor files, verified with these library "
                "versions: not re-verified (--reverify forces it)"
            )
        else:
            log("Reloading the folder with AutoModel/AutoProcessor(trust_remote_code=True) in a fresh process ...")
            report = verify_folder(staging, model, processor)
            log(f"Reload check passed: same weights, processor outputs and embeddings (max abs diff {report.max_abs_diff:.2g}, {report.seconds:.1f}s)")
            verification = {"max_abs_diff": report.max_abs_diff, "model_module": report.model_module}
        install_folder(staging, output_dir, files, verification)
    log(f"Hub folder ready: {output_dir}")
    if not options.repo_id:
        return None
    message = options.commit_message or f"Upload {variant.name} converted from {checkpoint.name if checkpoint else 'pretrained encoders'} with upload.py"
    return publish_folder(
        output_dir,
        options.repo_id,
        private=options.private,
        revision=options.revision,
        commit_message=message,
        retries=options.retries,
        retry_wait=options.retry_wait,
        log=log,
    )


def _build_model(variant: Variant, config: VideoCLIPConfig, options: UploadOptions, log: Log) -> tuple[VideoCLIPModel, str, CheckpointFile | None]:
    source = options.checkpoint or variant.default_checkpoint
    if source is None and variant.spec.get("source") == "pretrained-encoders":
        text = options.text_encoder or variant.spec["default_text_encoder"]
        video = fetch_checkpoint(options.video_encoder or variant.spec["default_video_encoder"], options.cache_dir, options.sha256, options.progress, log)
        model = build_base_model(config, text, video, seed=options.seed)
        provenance = (
            f"Assembled with `upload.py`: text tower from `{text}`, video tower from `{video.name}` (sha256 "
            f"`{video.sha256}`), projection heads freshly initialised with seed {options.seed}."
        )
        return model, provenance + _VERIFIED_NOTE, None
    if source is None:
        raise UploadError(f"variant {variant.name} has no default checkpoint; pass --checkpoint", ExitCode.USAGE)
    checkpoint = fetch_checkpoint(source, options.cache_dir, options.sha256, options.progress, log)
    log(f"Converting {checkpoint.source} (sha256 {checkpoint.sha256}) ...")
    model = convert_checkpoint(checkpoint, config, allow_pickle=options.allow_pickle)
    where = f"[`{checkpoint.name}`]({checkpoint.url})" if checkpoint.url else f"`{checkpoint.name}`"
    provenance = f"Converted with `upload.py` from {where} (sha256 `{checkpoint.sha256}`), every key checked."
    return model, provenance + _VERIFIED_NOTE, checkpoint


_VERIFIED_NOTE = (
    " Before upload, this folder was reloaded with `AutoModel` / `AutoProcessor` (`trust_remote_code=True`) in a "
    "fresh process and gave the same weights and embeddings as the converted model."
)


def _include_results(mode: str, variant: Variant, checkpoint: CheckpointFile | None) -> bool:
    if mode in ("yes", "no"):
        return mode == "yes"
    if checkpoint is None:
        return False
    official = set(variant.official_checkpoints)
    known = {KNOWN_FILES[url].sha256 for url in official if url in KNOWN_FILES and KNOWN_FILES[url].sha256}
    return checkpoint.url in official or checkpoint.sha256 in known


__all__ = [
    "ExitCode",
    "KNOWN_FILES",
    "MARKER_FILE",
    "PublishResult",
    "UploadError",
    "UploadOptions",
    "Variant",
    "build_base_model",
    "call_with_retries",
    "check_output_dir",
    "convert_and_publish",
    "convert_checkpoint",
    "fetch_checkpoint",
    "is_transient",
    "load_config",
    "load_tokenizer",
    "load_variant",
    "publish_folder",
    "render_model_card",
    "usage_code",
    "verify_folder",
    "write_folder",
]
