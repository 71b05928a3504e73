"""What the ``videoclip`` commands share: the parser class, common options and checks, device and model loading."""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import tempfile
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from ..common.errors import EXIT_CODE_MEANINGS, CommandError, ExitCode, first_line, writing
from ..common.paths import looks_like_local_path

PROG = "videoclip"
_EPILOG_CODES = (ExitCode.OK, ExitCode.FAILURE, ExitCode.USAGE, ExitCode.INTERRUPTED)
EPILOG = "exit status: " + "; ".join(f"{int(code)} {EXIT_CODE_MEANINGS[code]}" for code in _EPILOG_CODES) + (
    ". Errors are one line; add --debug (before or after the command) for the traceback."
)
SPLITS = ("train", "val", "test")
EVAL_BATCH_SIZE = 16  # the reference's evaluation batch size (datamodule_args.batch_size in configs/eval.yaml)


class Parser(argparse.ArgumentParser):
    """argparse with one-line errors: ``videoclip <command>: error: ...`` and exit status 2, no usage dump."""

    def error(self, message: str) -> None:  # type: ignore[override]
        self.exit(ExitCode.USAGE, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def _bounded_int(low: int, what: str):
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected {what}, got {text!r}") from None
        if value < low:
            raise argparse.ArgumentTypeError(f"expected {what}, got {value}")
        return value

    return parse


positive_int = _bounded_int(1, "a positive integer")
non_negative_int = _bounded_int(0, "an integer >= 0")


def add_command(subparsers, name: str, help: str, description: str | None = None) -> argparse.ArgumentParser:
    """A subcommand's parser with the shared epilog and ``--debug``."""
    parser = subparsers.add_parser(name, help=help, description=description or help, epilog=EPILOG)
    add_debug_option(parser)
    return parser


def add_debug_option(parser: argparse.ArgumentParser, top_level: bool = False) -> None:
    # Subcommands use SUPPRESS so that an omitted --debug does not reset one given before the command.
    parser.add_argument(
        "--debug", dest="show_traceback", action="store_true",
        default=False if top_level else argparse.SUPPRESS, help="show the full traceback on errors",
    )


def add_data_options(parser: argparse.ArgumentParser) -> argparse._ArgumentGroup:
    """``--data`` and ``--assets``, in a "data" group (returned)."""
    group = parser.add_argument_group("data")
    group.add_argument(
        "--data", metavar="DIR_OR_HUB_ID",
        help="MUGEN folder (holding coinrun_dataset_jsons/), a save_to_disk folder, a video folder (videos plus "
        "metadata.csv/.jsonl with file_name and a caption) or a Hub dataset with a caption and a Video() column. "
        "Default: the synthetic MUGEN sample, generated into $XDG_CACHE_HOME/videoclip/mugen-sample (or "
        "$VIDEOCLIP_CACHE) on first use",
    )
    group.add_argument(
        "--assets", metavar="DIR",
        help="MUGEN sprite folder (MUGEN_baseline's lib/data/coinrun/assets). Default: <data>/assets",
    )
    group.add_argument("--text-column", help="caption column of non-MUGEN data. Default: text, caption, ... or the "
                       "only string column")
    group.add_argument("--video-column", help="video column of non-MUGEN data. Default: its Video() column, or video")
    return group


def add_pool_options(parser: argparse.ArgumentParser, verb: str) -> None:
    """``--model``, the data options with ``--split``, ``--limit``, ``--batch-size`` and ``--num-workers``, and
    ``--device``: the options of a command that embeds a pool of clips (to `verb` them)."""
    parser.add_argument("--model", required=True, metavar="HUB_ID_OR_DIR", help="a saved VideoCLIP (folder or Hub id)")
    group = add_data_options(parser)
    group.add_argument("--split", choices=SPLITS, default="test", help="Default: test, the reference's")
    group.add_argument("--limit", type=positive_int, metavar="N", help=f"{verb} the first N clips only")
    group.add_argument(
        "--batch-size", type=positive_int, default=EVAL_BATCH_SIZE,
        help=f"clips per batch. Default: {EVAL_BATCH_SIZE}, the reference's evaluation batch size",
    )
    group.add_argument(
        "--num-workers", type=non_negative_int, default=0,
        help="DataLoader workers rendering clips. Default: 0 (render in this process)",
    )
    add_device_option(parser)


def add_device_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--device", help="cpu, cuda or cuda:N. Default: cuda when available, else cpu")


def check_data_args(args: argparse.Namespace) -> None:
    """Fails on an ``--assets`` that is not a folder, or a ``--data`` path (not a Hub id) that is not one (exit
    status 2)."""
    data, assets = getattr(args, "data", None), getattr(args, "assets", None)
    if data is not None and not os.path.isdir(data) and looks_like_local_path(data):
        raise CommandError(f"--data {data!r} is not a folder", ExitCode.USAGE)
    if assets is not None and not os.path.isdir(assets):
        raise CommandError(f"--assets {assets!r} is not a folder", ExitCode.USAGE)


def add_overwrite_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--overwrite", action="store_true",
                        help="replace files of the same names in --out (default: refuse, before any work)")


def prepare_out_folder(path: str | os.PathLike, names: Iterable[str], overwrite: bool) -> Path:
    """Before any work: ``--out`` `path` is made a writable folder and, unless `overwrite`, must hold none of the
    files this run would write (`names`, glob patterns allowed). Raises `CommandError` (`USAGE`) naming them."""
    folder = Path(path)
    if folder.exists() and not folder.is_dir():
        raise CommandError(f"--out {str(path)!r} is a file; give a folder", ExitCode.USAGE)
    with writing(folder):
        folder.mkdir(parents=True, exist_ok=True)
        tempfile.TemporaryFile(dir=folder).close()
    present = sorted({match.name for pattern in names for match in folder.glob(pattern)}) if not overwrite else []
    if present:
        shown = ", ".join(present[:3]) + (", ..." if len(present) > 3 else "")
        raise CommandError(f"--out {str(path)!r} already holds {shown}; pass --overwrite to replace them, or choose "
                           f"another folder", ExitCode.USAGE)
    return folder


def write_json(path: str | os.PathLike, record: dict[str, Any]) -> None:
    with writing(path):
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        Path(path).write_text(json.dumps(record, indent=1) + "\n")
    print(f"Wrote {path}")


@contextlib.contextmanager
def reading_data() -> Iterator[None]:
    """Shows a malformed or incomplete MUGEN folder found while rendering clips (`load_mugen` renders on access,
    after `data.load_split` has checked what it can), or a video file that cannot be decoded, as one line."""
    from ..mugen import MugenFormatError
    from ..video_processing_videoclip import VideoDecodeError

    try:
        yield
    except (MugenFormatError, VideoDecodeError, FileNotFoundError) as error:
        raise CommandError(first_line(error)) from error


def load_pool(args: argparse.Namespace, **load_options):
    """`(dataset, description)`: the ``--split`` of ``--data`` (`data.load_split`, given `load_options` such as
    ``start_seed``) cut to ``--limit``, and a "where from" line (`data.describe_split`)."""
    from ..data import describe_split, load_split

    dataset = load_split(args.data, args.split, args.assets, text_column=args.text_column,
                         video_column=args.video_column, **load_options)
    description = describe_split(args.data, args.split)
    if args.limit is not None and args.limit < len(dataset):
        dataset = dataset.select(range(args.limit))
        description += f", first {args.limit} clips"
    return dataset, description


def resolve_device(device: str | None) -> torch.device:
    """``--device`` ("cpu", "cuda", "cuda:1", ...; `None`: CUDA when available, else the CPU; under a launcher,
    `None` and "cuda" are this process's GPU, ``cuda:$LOCAL_RANK``). An unknown name, or CUDA where there is none,
    is a `CommandError` (`USAGE`)."""
    if device in (None, "cuda") and torch.cuda.is_available() and "LOCAL_RANK" in os.environ:
        return torch.device("cuda", int(os.environ["LOCAL_RANK"]))
    if device is None:
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        resolved = torch.device(device)
    except (RuntimeError, ValueError):
        raise CommandError(f"unknown device {device!r} (use cpu, cuda or cuda:N)", ExitCode.USAGE) from None
    if resolved.type == "cuda" and not torch.cuda.is_available():
        raise CommandError(
            f"device {device!r} asked for but CUDA is not available here; use --device cpu", ExitCode.USAGE
        )
    return resolved


@dataclass
class LoadedModel:
    """A `VideoCLIPModel` (eval mode, on its device), its processor, a one-line description, and whether the
    weights are random (untrained)."""

    model: Any
    processor: Any
    description: str
    random_weights: bool = False


def load_pool_model(args: argparse.Namespace, *outputs: str) -> LoadedModel:
    """Checks a pool command's ``--data``/``--assets`` and its file `outputs` (option names such as "json": a
    folder there is a `USAGE` error), then loads ``--model`` (`common.models.load_pretrained`) on ``--device``."""
    from ..common.models import load_pretrained

    check_data_args(args)
    for option in outputs:
        value = getattr(args, option)
        if value is not None and os.path.isdir(value):
            raise CommandError(f"--{option.replace('_', '-')} {value!r} is a folder; give a file path", ExitCode.USAGE)
    return LoadedModel(*load_pretrained(args.model, resolve_device(args.device)), description=args.model)
