#!/usr/bin/env python
"""Convert a torchmultimodal VideoCLIP checkpoint into a Hugging Face Hub folder and, optionally, publish it.

A thin command line over `modeling_videoclip.hub` (see its docstring for the pipeline). Examples:

    # the MUGEN weights, downloaded from torchmultimodal's S3 bucket, published as <org>/videoclip-mugen
    python upload.py --output-dir out/videoclip-mugen --repo-id <org>/videoclip-mugen

    # your own finetune, to a branch, with the tokenizer from a local vocab.txt
    python upload.py --checkpoint my_videoclip.pt --output-dir out/mine --tokenizer vocab.txt \\
        --repo-id <org>/videoclip-mine --revision v2 --base-model <org>/videoclip-mugen
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

CONFIGS_DIR = Path(__file__).resolve().parent / "hub_configs"
MUGEN_CHECKPOINT_URL = "https://pytorch.s3.amazonaws.com/models/multimodal/mugen/videoclip_mugen.pt"

EXIT_CODES_HELP = """exit codes:
  0   success (folder written; uploaded, or nothing to commit because the repo already holds it)
  1   unexpected error (run with --verbose for the traceback)
  2   bad command line
  3   checkpoint missing, unreadable, or not a torchmultimodal VideoCLIP checkpoint
  4   checkpoint keys do not match the architecture (see --config)
  5   checkpoint needs pickle to load and --allow-pickle was not given
  6   no network connection (checkpoint download, tokenizer, or the Hub)
  7   download failed or did not verify (HTTP error, size or sha256 mismatch)
  8   the written folder, reloaded in a fresh process, does not reproduce the converted model (nothing uploaded)
  9   Hub authentication failed (no token, or HTTP 401)
  10  the Hub refused the write (HTTP 403: a repo or namespace this token may not write)
  11  --output-dir is not empty and was not written by upload.py (see --overwrite)
  12  other Hub error (after retries)
  13  bad input (tokenizer, --config)

The token comes from the usual huggingface_hub sources (HF_TOKEN, or `hf auth login`) and is never printed.
A failed upload never modifies or deletes the output folder; re-running the same command completes it."""


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="upload.py",
        description=(
            "Convert a torchmultimodal MUGEN VideoCLIP checkpoint (S3D + DistilBERT) into a complete Hugging Face Hub "
            "folder (config.json with auto_map, model.safetensors, remote-code files, tokenizer, processor config, "
            "model card), check that the folder reloads with AutoModel/AutoProcessor(trust_remote_code=True) in a "
            "fresh process and gives the same embeddings, and with --repo-id upload it in one commit."
        ),
        epilog=EXIT_CODES_HELP,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    source = parser.add_argument_group("what to convert")
    source.add_argument(
        "--checkpoint",
        metavar="PATH_OR_URL",
        help=(
            "torchmultimodal checkpoint: a plain state dict (videoclip_mugen.pt) or a Lightning checkpoint "
            "(videoclip_lightning_mugen.pt), as a file or an http(s) URL. URLs are downloaded once into --cache-dir "
            "with a progress bar and verified (size; sha256 where known or given with --sha256). Default: the variant's "
            f"checkpoint; for videoclip-mugen the public MUGEN weights, {MUGEN_CHECKPOINT_URL}. For videoclip-base, "
            "leave it out to assemble the pretrained encoders (see --text-encoder/--video-encoder)."
        ),
    )
    source.add_argument(
        "--variant",
        default="videoclip-mugen",
        metavar="NAME_OR_DIR",
        help=(
            "which hub_configs/ folder supplies the config, processor settings and model card: videoclip-mugen "
            "(finetuned on MUGEN; default) or videoclip-base (pretrained encoders, fresh projections), or a path "
            "to a folder laid out the same way."
        ),
    )
    source.add_argument(
        "--config",
        metavar="PATH",
        help=(
            "a VideoCLIP config.json (or a folder holding one) describing the checkpoint's architecture, for "
            "checkpoints whose text tower differs from distilbert-base-uncased. Default: the variant's config.json. "
            "Conversion is strict: every key and shape must match it."
        ),
    )
    source.add_argument(
        "--tokenizer",
        metavar="PATH_OR_REPO",
        help=(
            "the text tokenizer: a bert-base-uncased style vocab.txt, a folder holding one or a saved tokenizer "
            "(tokenizer.json / tokenizer_config.json), or a Hub repo id. Default: the variant's, "
            "distilbert/distilbert-base-uncased from the Hub."
        ),
    )
    source.add_argument(
        "--text-encoder",
        metavar="PATH_OR_REPO",
        help="videoclip-base only: the DistilBERT weights (folder or Hub repo). Default: distilbert/distilbert-base-uncased.",
    )
    source.add_argument(
        "--video-encoder",
        metavar="PATH_OR_URL",
        help=(
            "videoclip-base only: a torchvision S3D state dict. Default: torchvision's Kinetics-400 weights, "
            "https://download.pytorch.org/models/s3d-d76dad2f.pth (sha256 prefix checked)."
        ),
    )
    source.add_argument("--seed", type=int, default=0, help="videoclip-base only: seed of the fresh projection heads (default 0).")
    source.add_argument(
        "--sha256",
        metavar="HEX",
        help="expected sha256 of the checkpoint (or, for videoclip-base, of the video encoder); a mismatch stops. Default: the known digest, if any.",
    )
    source.add_argument(
        "--allow-pickle",
        action="store_true",
        help=(
            "load the checkpoint with full pickle (torch.load weights_only=False). Lightning checkpoints with extra "
            "entries (hyper-parameters, optimizer objects) need it. Pickle runs code from the file: only for files "
            "you trust. Default: off, tensors only."
        ),
    )
    source.add_argument(
        "--cache-dir",
        type=Path,
        metavar="DIR",
        help="download cache for checkpoint URLs. Default: $XDG_CACHE_HOME/videoclip-hf/checkpoints (~/.cache/...).",
    )

    output = parser.add_argument_group("the Hub folder")
    output.add_argument("--output-dir", required=True, type=Path, metavar="DIR", help="where the Hub folder is written (required).")
    output.add_argument(
        "--overwrite",
        action="store_true",
        help=(
            "replace the contents of a non-empty --output-dir that upload.py did not write. Without it such a folder "
            "is refused; a previous upload.py output is always updated in place (unchanged files stay untouched)."
        ),
    )
    output.add_argument(
        "--base-model",
        nargs="+",
        metavar="REPO_ID",
        help="the model card's base_model (what this checkpoint was finetuned from). Default: the variant's, distilbert/distilbert-base-uncased.",
    )
    output.add_argument(
        "--card-results",
        choices=("auto", "yes", "no"),
        default="auto",
        help=(
            "put the variant's published Recall@K into the card's model-index: auto (default) only when the checkpoint "
            "is the variant's official file (its URL, or its sha256 when known); yes/no force it."
        ),
    )
    output.add_argument(
        "--reverify",
        action="store_true",
        help=(
            "always reload the folder in a fresh process. Default: skip it when --output-dir already holds exactly "
            "these bytes and recorded a passed check with the same torch/transformers versions."
        ),
    )

    hub = parser.add_argument_group("publishing (only with --repo-id)")
    hub.add_argument(
        "--repo-id",
        metavar="ORG/NAME",
        help="upload the folder to this model repo, created if missing (idempotent). Without it nothing is uploaded.",
    )
    hub.add_argument("--private", action="store_true", help="create the repo private (default: public; an existing repo keeps its visibility).")
    hub.add_argument("--revision", metavar="BRANCH", help="commit to this branch, created from main if missing (default: main).")
    hub.add_argument(
        "--commit-message",
        metavar="TEXT",
        help="commit title. Default: 'Upload <variant> converted from <checkpoint file> with upload.py'.",
    )
    hub.add_argument(
        "--retries",
        type=int,
        default=5,
        metavar="N",
        help="retries of each Hub call on transient failures (connection errors, HTTP 408/429/5xx), default 5.",
    )
    hub.add_argument(
        "--retry-wait",
        type=float,
        default=1.0,
        metavar="SECONDS",
        help="first backoff delay, doubled after each retry up to 30 s (default 1.0).",
    )

    misc = parser.add_argument_group("output")
    misc.add_argument("--no-progress", action="store_true", help="no download progress bar.")
    misc.add_argument("--verbose", action="store_true", help="print details (full key lists, tracebacks) after an error.")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Runs the CLI; returns the exit status (see `EXIT_CODES_HELP`)."""
    args = build_parser().parse_args(argv)
    if args.repo_id:
        failure = check_token(args.repo_id)  # before torch is imported: a bad token fails in a second
        if failure is not None:
            _error(failure[1])
            return failure[0]
    try:
        from modeling_videoclip import hub
    except ImportError as error:  # pragma: no cover - broken installation
        print(f"error: cannot import modeling_videoclip ({error}); install the project (pip install -e .)", file=sys.stderr)
        return 1
    options = hub.UploadOptions(
        output_dir=args.output_dir,
        configs_dir=CONFIGS_DIR,
        checkpoint=args.checkpoint,
        variant=args.variant,
        config=args.config,
        tokenizer=args.tokenizer,
        text_encoder=args.text_encoder,
        video_encoder=args.video_encoder,
        seed=args.seed,
        sha256=args.sha256,
        allow_pickle=args.allow_pickle,
        cache_dir=args.cache_dir or hub.DEFAULT_CACHE_DIR,
        repo_id=args.repo_id,
        private=args.private,
        revision=args.revision,
        commit_message=args.commit_message,
        base_model=args.base_model,
        card_results=args.card_results,
        overwrite=args.overwrite,
        reverify=args.reverify,
        retries=max(0, args.retries),
        retry_wait=max(0.0, args.retry_wait),
        progress=not args.no_progress,
        check_credentials=False,  # done above
    )
    log = _scrubbed(print)
    try:
        result = hub.convert_and_publish(options, log=log)
    except hub.UploadError as error:
        _error(error.message, error.details if args.verbose else None)
        return int(error.exit_code)
    except KeyboardInterrupt:
        _error("interrupted")
        return 130
    except Exception as error:  # noqa: BLE001 - anything unexpected still ends in one line
        import traceback

        _error(f"unexpected {type(error).__name__}: {error}", traceback.format_exc() if args.verbose else None)
        return int(hub.ExitCode.UNEXPECTED)
    if result is not None:
        if result.committed:
            log(f"Uploaded to {result.url}")
            log(f"Commit {result.commit_id}: {result.commit_url}")
        else:
            log(f"No changes: {result.repo_id}@{result.revision} already holds these files; nothing committed")
            log(f"Repo {result.url} at commit {result.commit_id}")
    return 0


def check_token(repo_id: str) -> tuple[int, str] | None:
    """Asks the Hub whose token this is (huggingface_hub only, no torch): None when accepted, else (exit code, reason).

    Only the failures that make publishing impossible are reported here (no token, 401, no network); anything
    else is left to the publishing step, which maps every Hub error (see `modeling_videoclip.hub.hub_error`).
    """
    from huggingface_hub import HfApi, get_token
    from huggingface_hub.errors import HfHubHTTPError, HTTPError, OfflineModeIsEnabled

    if get_token() is None:
        return 9, "no Hugging Face token found: set HF_TOKEN or run `hf auth login`"
    try:
        user = HfApi().whoami()
    except HfHubHTTPError as error:
        status = getattr(getattr(error, "response", None), "status_code", None)
        if status == 401:
            return 9, f"authentication failed for {repo_id} (HTTP 401): the Hugging Face token (HF_TOKEN or `hf auth login`) was rejected"
        return None
    except OfflineModeIsEnabled:
        return 6, "cannot reach the Hub: HF_HUB_OFFLINE is set"
    except (HTTPError, ConnectionError, TimeoutError) as error:  # transport errors: refused, DNS, timeouts
        return 6, f"cannot reach the Hub for {repo_id}: no network connection ({type(error).__name__}: {error})"
    print(f"Hub token accepted (account {user.get('name', '?')})", flush=True)
    return None


def _token() -> str | None:
    try:
        from huggingface_hub import get_token

        return get_token()
    except Exception:  # noqa: BLE001
        return None


def _scrub(text: str) -> str:
    token = _token()
    return text.replace(token, "<token>") if token and len(token) >= 4 else text


def _scrubbed(write):
    return lambda message: write(_scrub(str(message)), flush=True)


def _error(message: str, details: str | None = None) -> None:
    if details:
        print(_scrub(details.rstrip()), file=sys.stderr)
    print(_scrub(f"error: {message}"), file=sys.stderr, flush=True)


if __name__ == "__main__":
    sys.exit(main())
