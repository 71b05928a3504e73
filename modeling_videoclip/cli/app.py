"""``videoclip app``: the browser app (`modeling_videoclip.app`) on 127.0.0.1, or, with ``--write-space``, its
Hugging Face Space folder."""

from __future__ import annotations

import argparse

from ..common.errors import CommandError, ExitCode
from . import shared


def register(subparsers) -> None:
    parser = shared.add_command(
        subparsers, "app", "the browser app: text -> videos, video -> texts, zero-shot labels (Gradio)",
        "Serve a Gradio app on 127.0.0.1 with three tabs: search a pool of clips with text, rank texts for a video, "
        "and classify an uploaded video into your own labels (the zero-shot pipeline). The pool's embeddings are "
        "computed once at start. Weights: --model, else as `videoclip demo` (the MUGEN weights when obtainable, "
        "else random ones, labelled RANDOM WEIGHTS everywhere). With --write-space, write the Space folder instead.",
    )
    parser.add_argument("--model", metavar="HUB_ID_OR_DIR", help="a saved VideoCLIP (folder or Hub id)")
    parser.add_argument("--weights", choices=("auto", "mugen", "random"), default="auto",
                        help="without --model: auto (MUGEN weights if obtainable, else random; "
                        "default), mugen, random")
    parser.add_argument("--pool", metavar="DIR_OR_HUB_ID",
                        help="the clips to search: what --data of the other commands takes. Default: the synthetic "
                        "MUGEN sample")
    parser.add_argument("--split", choices=shared.SPLITS, default="test", help="the pool's split. Default: test")
    parser.add_argument("--limit", type=shared.positive_int, default=8, metavar="N",
                        help="the first N clips of the split. Default: 8, the tutorial's batch")
    parser.add_argument("--num-frames", type=shared.positive_int, metavar="N",
                        help="frames per clip for the model. Default: the processor's (32, MUGEN's)")
    parser.add_argument("--port", type=shared.positive_int, help="Default: Gradio's first free port from 7860")
    parser.add_argument("--clips-dir", metavar="DIR",
                        help="where the result mp4 files go. Default: a temporary folder")
    shared.add_device_option(parser)
    parser.add_argument("--write-space", metavar="DIR",
                        help="write the Hugging Face Space (app.py, requirements.txt, README.md, the package) "
                        "serving --model into DIR and exit; publish it with `hf upload ORG/NAME DIR . --repo-type "
                        "space`")
    parser.add_argument("--overwrite", action="store_true", help="with --write-space: replace a non-empty DIR")
    parser.set_defaults(handler=_run)


def _run(args: argparse.Namespace) -> int:
    if args.write_space is not None:
        from ..app import write_space

        if args.model is None:
            raise CommandError("--write-space needs --model, the Hub id the Space serves and links", ExitCode.USAGE)
        folder = write_space(args.write_space, args.model, args.weights, args.overwrite)
        print(f"Wrote the Space to {folder}; publish it with: hf upload ORG/NAME {folder} . --repo-type space")
        return 0
    if args.model is not None and args.weights != "auto":
        raise CommandError("--weights applies without --model only", ExitCode.USAGE)
    try:
        from ..app import AppOptions, VideoCLIPApp, launch
    except ImportError as error:
        raise CommandError(f"videoclip app needs gradio: pip install 'videoclip-hf[app]' ({error})") from error
    if args.model is not None:
        from ..common.models import check_model_path

        check_model_path(args.model)
    if args.pool is not None:
        shared.check_data_args(argparse.Namespace(data=args.pool, assets=None))
    options = AppOptions(model=args.model, weights=args.weights, pool=args.pool, split=args.split, limit=args.limit,
                         num_frames=args.num_frames, device=args.device, clips_dir=args.clips_dir)
    launch(VideoCLIPApp(options), port=args.port)
    return 0
