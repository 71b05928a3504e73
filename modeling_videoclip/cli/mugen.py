"""``videoclip mugen-sample`` (write the synthetic MUGEN sample) and ``videoclip mugen-push`` (publish a MUGEN
folder as a Hub dataset), over `modeling_videoclip.mugen`."""

from __future__ import annotations

import argparse
from pathlib import Path

from ..common.errors import CommandError, ExitCode, first_line, writing
from . import shared


def register(subparsers) -> None:
    sample = shared.add_command(
        subparsers, "mugen-sample",
        "write the synthetic MUGEN sample in MUGEN's on-disk format "
        "(OUT_DIR [--num-clips N] [--seed S] [--preview mp4])",
        "Write a small synthetic dataset in MUGEN's format (release JSONs, game JSONs, wavs, stand-in sprites), "
        "loadable with modeling_videoclip.mugen.load_mugen(OUT_DIR).",
    )
    sample.add_argument("out_dir", type=Path, help="folder to write")
    sample.add_argument("--num-clips", type=shared.positive_int, default=16, help="number of 96-frame clips (16)")
    sample.add_argument("--seed", type=int, default=0, help="random seed (0)")
    sample.add_argument(
        "--preview", choices=["mp4", "gif"], help="also render the test clips to OUT_DIR/preview/<id>.<mp4|gif>"
    )
    sample.add_argument("--resolution", type=shared.positive_int, default=256, help="preview resolution (256)")
    sample.add_argument("--overwrite", action="store_true",
                        help="write into a folder that already holds MUGEN files (replacing same-named ones)")
    sample.set_defaults(handler=_run_sample)

    push = shared.add_command(
        subparsers, "mugen-push",
        "publish a MUGEN-format folder to a Hugging Face dataset repo (REPO_ID DATA_DIR ...)",
        "Upload MUGEN metadata as Parquet plus a dataset card (and optionally rendered mp4 clips) to a Hugging Face "
        "dataset repo, in one commit.",
    )
    push.add_argument("repo_id", help="dataset repo, e.g. user/mugen-sample")
    push.add_argument("data_dir", type=Path, help="folder holding coinrun_dataset_jsons/")
    push.add_argument("--asset-dir", type=Path, help="sprites for --render-mp4 (DATA_DIR/assets)")
    push.add_argument("--render-mp4", action="store_true", help="also upload each clip rendered as mp4, in the "
                      "Hub's video layout (<split>/<id>.mp4 + <split>/metadata.jsonl: the dataset viewer plays them)")
    push.add_argument("--resolution", type=shared.positive_int, default=256, help="mp4 resolution (256)")
    push.add_argument("--private", action="store_true", help="create the repo as private")
    push.add_argument("--revision", help="branch to commit to (main)")
    push.set_defaults(handler=_run_push)


def _run_sample(args: argparse.Namespace) -> int:
    from ..mugen import load_mugen, make_mugen_sample, render_clip_to_gif, render_clip_to_mp4

    with writing(args.out_dir):
        try:
            root = make_mugen_sample(
                args.out_dir, num_clips=args.num_clips, seed=args.seed, overwrite=args.overwrite
            )
        except FileExistsError as error:  # an OSError, which `writing` would report as unwritable
            raise CommandError(str(error), ExitCode.USAGE) from error
    print(f"wrote a MUGEN sample with {args.num_clips} clips to {root}")
    if args.preview:
        write = render_clip_to_mp4 if args.preview == "mp4" else render_clip_to_gif
        for row in load_mugen(root, "test", annotation="auto", resolution=args.resolution):
            with writing(root / "preview"):
                path = write(row["video"], root / "preview" / f"{row['id']}.{args.preview}")
            print(f"{path}: {row['text']}")
    return 0


def _run_push(args: argparse.Namespace) -> int:
    from huggingface_hub.errors import HfHubHTTPError

    from ..mugen import push_mugen_to_hub

    try:
        with shared.reading_data():
            url = push_mugen_to_hub(
                args.repo_id, args.data_dir, asset_dir=args.asset_dir, render_mp4=args.render_mp4,
                resolution=args.resolution, private=args.private, revision=args.revision,
            )
    except (HfHubHTTPError, ConnectionError) as error:  # the Hub refused, or cannot be reached
        raise CommandError(first_line(error)) from error
    print(url)
    return 0
