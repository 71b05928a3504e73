"""The pipeline behind ``upload.py`` ([`convert_and_publish`]): check credentials and the output folder, fetch and
convert the checkpoint (or assemble ``videoclip-base``), write the Hub folder into staging, reload it in a fresh
process (`publish.reload_check`) and install it only if it reproduces the model, then upload it in one commit."""

from __future__ import annotations

import functools
import os
import re
import shutil
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from ..common.constants import DISTILBERT_ID, HUB_CONFIGS_DIR, VIDEOCLIP_BASE, VIDEOCLIP_MUGEN
from ..common.downloads import CheckpointFile, Log, fetch_checkpoint
from ..common.errors import ExitCode, UploadError
from ..common.models import build_model, build_processor, convert_checkpoint, load_tokenizer
from ..configuration_videoclip import VideoCLIPConfig
from ..modeling_videoclip import VideoCLIPModel
from .card import VERIFIED_NOTE, render_model_card, shows_results
from .client import PublishResult, check_credentials, publish_folder
from .folder import check_output_dir, install_folder, reusable_verification, verify_folder, write_folder
from .variants import Variant, load_config, load_variant


@dataclass
class UploadOptions:
    """Options of [`convert_and_publish`]; ``upload.py --help`` documents each under the same name."""

    output_dir: Path
    checkpoint: str | None = None
    variant: str = VIDEOCLIP_MUGEN
    configs_dir: Path = HUB_CONFIGS_DIR
    config: str | None = None
    tokenizer: str | None = None
    text_encoder: str | None = None
    video_encoder: str | None = None
    seed: int = 0
    sha256: str | None = None
    allow_pickle: bool = False
    cache_dir: Path | None = None  # None: common.downloads' default, cache_root() / "checkpoints"
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

    def __post_init__(self):
        self.retries, self.retry_wait = max(0, self.retries), max(0.0, self.retry_wait)


def convert_and_publish(options: UploadOptions, log: Log = print) -> PublishResult | None:
    """Runs the whole pipeline (see the module docstring); returns where the folder was published, None without
    a repo id."""
    if options.repo_id:
        check_credentials(options.repo_id, log)
    variant = load_variant(options.variant, options.configs_dir)
    output_dir = Path(options.output_dir)
    check_output_dir(output_dir, options.overwrite)
    config = load_config(variant, options.config)
    # The tokenizer before the slow conversion: it fails fast (offline, bad vocabulary).
    tokenizer_source = options.tokenizer or variant.spec.get("default_tokenizer", DISTILBERT_ID)
    processor = build_processor(load_tokenizer(tokenizer_source, config=config), **variant.video_processor)
    model, provenance, checkpoint = _build_model(variant, config, options, log)
    repo_id = options.repo_id or f"<your-namespace>/{variant.name}"
    results = shows_results(options.card_results, variant, checkpoint)
    card = render_model_card(variant, repo_id, config, provenance, results, options.revision, options.base_model)

    output_dir.parent.mkdir(parents=True, exist_ok=True)
    remove_stale_staging(output_dir.parent, log)
    with tempfile.TemporaryDirectory(prefix=STAGING_PREFIX, dir=output_dir.parent) as scratch:
        (Path(scratch) / STAGING_OWNER).write_text(str(os.getpid()))
        staging = Path(scratch) / re.sub(r"\W", "_", variant.name)
        files = write_folder(staging, model, processor, card)
        log(f"Wrote {len(files)} files: {', '.join(files)}")
        verification = None if options.reverify else reusable_verification(output_dir, files)
        if verification is not None:
            log("Output folder already holds these exact model/processor files, verified with these library "
                "versions: not re-verified (--reverify forces it)")
        else:
            log("Reloading the folder with AutoModel/AutoProcessor(trust_remote_code=True) in a fresh process ...")
            started = time.monotonic()
            verification = verify_folder(staging, model, processor)
            log(f"Reload check passed: same weights, processor outputs and embeddings (max abs diff "
                f"{verification['max_abs_diff']:.2g}, {time.monotonic() - started:.1f}s)")
        install_folder(staging, output_dir, files, verification)
    log(f"Hub folder ready: {output_dir}")
    if not options.repo_id:
        return None
    source = checkpoint.name if checkpoint else "pretrained encoders"
    message = options.commit_message or f"Upload {variant.name} converted from {source} with upload.py"
    return publish_folder(
        output_dir, options.repo_id, private=options.private, revision=options.revision, commit_message=message,
        retries=options.retries, retry_wait=options.retry_wait, log=log,
    )


STAGING_PREFIX = ".upload-staging-"
STAGING_OWNER = "owner.pid"  # the process that made a staging folder: alive means in use


def remove_stale_staging(parent: Path, log: Log = print) -> list[Path]:
    """Removes the staging folders that killed ``upload.py`` runs left in `parent` (their process is gone) and
    returns them; folders of running uploads, and anything that is not one of ours, are kept."""
    removed = []
    for folder in parent.glob(STAGING_PREFIX + "*"):
        try:
            pid = int((folder / STAGING_OWNER).read_text())
            os.kill(pid, 0)
            continue  # still running
        except ProcessLookupError:
            pass
        except (OSError, ValueError):  # no owner file: not ours (or not yet written); an owner we may not signal
            continue
        shutil.rmtree(folder, ignore_errors=True)
        removed.append(folder)
        log(f"Removed {folder.name}, staging left by an interrupted upload.py (process {pid})")
    return removed


def _build_model(
    variant: Variant, config: VideoCLIPConfig, options: UploadOptions, log: Log
) -> tuple[VideoCLIPModel, str, CheckpointFile | None]:
    """The model, the card's provenance paragraph, and the converted checkpoint (None for pretrained encoders)."""
    fetch = functools.partial(
        fetch_checkpoint, cache_dir=options.cache_dir, sha256=options.sha256, progress=options.progress, log=log
    )
    source = options.checkpoint or variant.default_checkpoint
    if source is None and variant.spec.get("source") == "pretrained-encoders":
        text = options.text_encoder or variant.spec["default_text_encoder"]
        video = fetch(options.video_encoder or variant.spec["default_video_encoder"])
        model = build_model(VIDEOCLIP_BASE, config, text_encoder=text, video_encoder=video, seed=options.seed)
        provenance = (
            f"Assembled with `upload.py`: text tower from `{text}`, video tower from `{video.name}` (sha256 "
            f"`{video.sha256}`), projection heads freshly initialised with seed {options.seed}."
        )
        return model, provenance + VERIFIED_NOTE, None
    if source is None:
        raise UploadError(f"variant {variant.name} has no default checkpoint; pass --checkpoint", ExitCode.USAGE)
    checkpoint = fetch(source)
    log(f"Converting {checkpoint.source} (sha256 {checkpoint.sha256}) ...")
    model = convert_checkpoint(checkpoint, config, allow_pickle=options.allow_pickle)
    where = f"[`{checkpoint.name}`]({checkpoint.url})" if checkpoint.url else f"`{checkpoint.name}`"
    provenance = f"Converted with `upload.py` from {where} (sha256 `{checkpoint.sha256}`), every key checked."
    return model, provenance + VERIFIED_NOTE, checkpoint
