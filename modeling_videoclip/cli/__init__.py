"""The ``videoclip`` command: `main` and the one registry, `COMMANDS`, of modules whose ``register(subparsers)``
adds a parser with a ``handler`` (namespace -> exit status). A `VideoCLIPError` prints as one line (and its
traceback with ``--debug`` or ``VIDEOCLIP_DEBUG=1``); any other exception keeps its traceback."""

from __future__ import annotations

import argparse
import os
import sys
import traceback
from collections.abc import Sequence

from ..common.errors import ExitCode, VideoCLIPError
from . import app, demo, evaluate, export, mugen, retrieve, train
from .shared import EPILOG, PROG, Parser, add_debug_option

__all__ = ["COMMANDS", "build_parser", "main"]

COMMANDS = (demo, app, evaluate, retrieve, export, mugen, train)  # in the order ``videoclip --help`` lists them


def build_parser() -> argparse.ArgumentParser:
    """The ``videoclip`` parser, every command registered by its module."""
    parser = Parser(
        prog=PROG,
        description="VideoCLIP (torchmultimodal's MUGEN video-text retrieval model) on Hugging Face: the retrieval "
        "tutorial, evaluation, retrieval, the synthetic MUGEN sample and training.",
        epilog=EPILOG,
    )
    add_debug_option(parser, top_level=True)
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=Parser, required=True)
    for command in COMMANDS:
        command.register(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Runs ``videoclip``.

    Args:
        argv: the arguments, without the program name. Defaults to `sys.argv[1:]`.

    Returns:
        The exit status; argparse's own exits (``--help``, usage errors: 2) are returned too, not raised.
    """
    try:
        args = build_parser().parse_args(argv)
    except SystemExit as exit_:
        return exit_.code if isinstance(exit_.code, int) else (0 if exit_.code is None else ExitCode.USAGE)
    try:
        return int(args.handler(args) or 0)
    except KeyboardInterrupt:
        print(f"{PROG}: interrupted", file=sys.stderr)
        return ExitCode.INTERRUPTED
    except VideoCLIPError as error:
        if args.show_traceback or os.environ.get("VIDEOCLIP_DEBUG") == "1":
            traceback.print_exc()
        print(f"{PROG}: error: {error.message}", file=sys.stderr)
        return int(error.exit_code)
