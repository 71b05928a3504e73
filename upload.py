#!/usr/bin/env python
"""Convert a torchmultimodal VideoCLIP checkpoint into a Hugging Face Hub folder and, optionally, publish it.

A thin command line over `modeling_videoclip.publish` (steps: `publish.pipeline`; examples: the README), e.g.
``python upload.py --output-dir out/videoclip-mugen --repo-id <org>/videoclip-mugen`` for the MUGEN weights.
"""

from __future__ import annotations

import argparse
import importlib.util
import sys
from collections.abc import Sequence
from pathlib import Path
from types import ModuleType


def _standalone(name: str) -> ModuleType:
    """``modeling_videoclip/common/<name>.py`` (standard library only) run without the package, whose ``__init__``
    imports torch and transformers: ``--help`` and argument errors then answer in a fraction of a second."""
    package = importlib.util.find_spec("modeling_videoclip").submodule_search_locations[0]
    spec = importlib.util.spec_from_file_location(f"_upload_{name}", Path(package, "common", f"{name}.py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


constants, errors = _standalone("constants"), _standalone("errors")

EPILOG = errors.exit_codes_help() + """

The token comes from the usual huggingface_hub sources (HF_TOKEN, or `hf auth login`) and is never printed.
A failed upload never modifies or deletes the output folder; re-running the same command completes it."""

#: The options by help-section; each dest is the `UploadOptions` field it sets (``--verbose`` aside).
OPTIONS: dict[str, dict[str, dict]] = {
    "what to convert": {
        "--checkpoint": dict(metavar="PATH_OR_URL", help=(
            "torchmultimodal checkpoint: a plain state dict (videoclip_mugen.pt) or a Lightning checkpoint "
            "(videoclip_lightning_mugen.pt); or a MUGEN_baseline video-text CLIPModel checkpoint (its "
            "retrieval/train.py's epoch=N.pt); as a file or an http(s) URL. URLs are downloaded once into --cache-dir "
            "with a progress bar and verified (size; sha256 where known or given with --sha256). Default: the "
            f"variant's checkpoint; for videoclip-mugen the public MUGEN weights, {constants.MUGEN_CHECKPOINT_URL}. "
            "For videoclip-base, leave it out to assemble the pretrained encoders (see "
            "--text-encoder/--video-encoder).")),
        "--variant": dict(default=constants.VIDEOCLIP_MUGEN, metavar="NAME_OR_DIR", help=(
            "which hub_configs/ folder supplies the config, processor settings and model card: videoclip-mugen "
            "(finetuned on MUGEN; default) or videoclip-base (pretrained encoders, fresh projections), or a path "
            "to a folder laid out the same way.")),
        "--config": dict(metavar="PATH", help=(
            "a VideoCLIP config.json (or a folder holding one) describing the checkpoint's architecture, for "
            "checkpoints whose text tower differs from distilbert-base-uncased. Default: the variant's config.json. "
            "Conversion is strict: every key and shape must match it.")),
        "--tokenizer": dict(metavar="PATH_OR_REPO", help=(
            "the text tokenizer: a bert-base-uncased style vocab.txt, a folder holding one or a saved tokenizer "
            f"(tokenizer.json / tokenizer_config.json), or a Hub repo id. Default: the variant's, "
            f"{constants.DISTILBERT_ID} from the Hub.")),
        "--text-encoder": dict(metavar="PATH_OR_REPO", help=(
            f"videoclip-base only: the DistilBERT weights (folder or Hub repo). Default: {constants.DISTILBERT_ID}.")),
        "--video-encoder": dict(metavar="PATH_OR_URL", help=(
            "videoclip-base only: an S3D state dict in torchvision's layout or MUGEN_baseline's (bare, or under "
            "module./model.), as a file or an http(s) URL. Default: the Kinetics-400 S3D MUGEN started from, "
            f"{constants.PRETRAINED_VIDEO_ENCODER_URL} (sha256 prefix checked); torchvision's own, "
            f"{constants.S3D_KINETICS400_URL}, also works.")),
        "--seed": dict(type=int, default=0, help=(
            "videoclip-base only: seed of the fresh projection heads (default 0).")),
        "--sha256": dict(metavar="HEX", help=(
            "expected sha256 of the checkpoint (or, for videoclip-base, of the video encoder); a mismatch stops. "
            "Default: the known digest, if any.")),
        "--allow-pickle": dict(action="store_true", help=(
            "load the checkpoint with full pickle (torch.load weights_only=False). Lightning checkpoints with extra "
            "entries (hyper-parameters, optimizer objects) need it. Pickle runs code from the file: only for files "
            "you trust. Default: off, tensors only.")),
        "--cache-dir": dict(type=Path, metavar="DIR", help=(
            f"download cache for checkpoint URLs. Default: {constants.cache_root() / 'checkpoints'} (the project's "
            "cache: $VIDEOCLIP_CACHE, else $XDG_CACHE_HOME/videoclip, else ~/.cache/videoclip).")),
    },
    "the Hub folder": {
        "--output-dir": dict(required=True, type=Path, metavar="DIR", help=(
            "where the Hub folder is written (required).")),
        "--overwrite": dict(action="store_true", help=(
            "replace the contents of a non-empty --output-dir that upload.py did not write. Without it such a folder "
            "is refused; a previous upload.py output is always updated in place (unchanged files stay untouched).")),
        "--base-model": dict(nargs="+", metavar="REPO_ID", help=(
            "the model card's base_model (what this checkpoint was finetuned from). Default: the variant's, "
            f"{constants.DISTILBERT_ID}.")),
        "--card-results": dict(choices=("auto", "yes", "no"), default="auto", help=(
            "put the variant's published Recall@K into the card's model-index: auto (default) only when the "
            "checkpoint is the file they were measured on (its URL, or its sha256 when known; for videoclip-mugen "
            "videoclip_lightning_mugen.pt); yes/no force it. The card's text shows them either way, naming that "
            "file and its evaluation protocol.")),
        "--reverify": dict(action="store_true", help=(
            "always reload the folder in a fresh process. Default: skip it when --output-dir already holds exactly "
            "these bytes and recorded a passed check with the same torch/transformers versions.")),
    },
    "publishing (only with --repo-id)": {
        "--repo-id": dict(metavar="ORG/NAME", help=(
            "upload the folder to this model repo, created if missing (idempotent). Without it nothing is uploaded.")),
        "--private": dict(action="store_true", help=(
            "create the repo private (default: public; an existing repo keeps its visibility).")),
        "--revision": dict(metavar="BRANCH", help=(
            "commit to this branch, created from main if missing (default: main).")),
        "--commit-message": dict(metavar="TEXT", help=(
            "commit title. Default: 'Upload <variant> converted from <checkpoint file> with upload.py'.")),
        "--retries": dict(type=int, default=5, metavar="N", help=(
            "retries of each Hub call on transient failures (connection errors, HTTP 408/429/5xx), default 5.")),
        "--retry-wait": dict(type=float, default=1.0, metavar="SECONDS", help=(
            "first backoff delay, doubled after each retry up to 30 s (default 1.0).")),
    },
    "output": {
        "--no-progress": dict(dest="progress", action="store_false", help="no download progress bar."),
        "--verbose": dict(action="store_true", help="print details (full key lists) after an error."),
    },
}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="upload.py",
        description=(
            "Convert a torchmultimodal MUGEN VideoCLIP checkpoint (S3D + DistilBERT) into a complete Hugging Face "
            "Hub folder (config.json with auto_map, model.safetensors, remote-code files, tokenizer, processor "
            "config, model card), check that the folder reloads with AutoModel/AutoProcessor(trust_remote_code=True) "
            "in a fresh process and gives the same embeddings, and with --repo-id upload it in one commit."
        ),
        epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    for title, options in OPTIONS.items():
        group = parser.add_argument_group(title)
        for flag, keywords in options.items():
            group.add_argument(flag, **keywords)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Runs the CLI; returns the exit status (see `EPILOG`). A bug is raised with its traceback."""
    args = build_parser().parse_args(argv)
    from modeling_videoclip.common.errors import ExitCode, VideoCLIPError
    from modeling_videoclip.publish.client import scrub
    from modeling_videoclip.publish.pipeline import UploadOptions, convert_and_publish

    options = UploadOptions(**{name: value for name, value in vars(args).items() if name != "verbose"})

    def log(message: str) -> None:
        print(scrub(str(message)), flush=True)

    try:
        result = convert_and_publish(options, log=log)
    except VideoCLIPError as error:
        if args.verbose and error.details:
            print(scrub(error.details.rstrip()), file=sys.stderr)
        print(scrub(f"error: {error.message}"), file=sys.stderr, flush=True)
        return int(error.exit_code)
    except KeyboardInterrupt:
        print("error: interrupted", file=sys.stderr, flush=True)
        return int(ExitCode.INTERRUPTED)
    if result is not None and result.committed:
        log(f"Uploaded to {result.url}")
        log(f"Commit {result.commit_id}: {result.commit_url}")
    elif result is not None:
        log(f"No changes: {result.repo_id}@{result.revision} already holds these files; nothing committed")
        log(f"Repo {result.url} at commit {result.commit_id}")
    return int(ExitCode.OK)


if __name__ == "__main__":
    sys.exit(main())
