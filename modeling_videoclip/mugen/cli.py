"""Command-line entry points (wired into ``videoclip`` by the package's CLI):

* ``videoclip mugen-sample OUT_DIR`` -> :func:`main_sample`
* ``videoclip mugen-push REPO_ID DATA_DIR`` -> :func:`main_push`
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import List, Optional

__all__ = ["main_sample", "main_push"]


def main_sample(argv: Optional[List[str]] = None) -> int:
    """Write the synthetic MUGEN sample, and optionally preview clips as mp4/GIF. Returns the exit code."""
    parser = argparse.ArgumentParser(
        prog="videoclip mugen-sample",
        description="Write a small synthetic dataset in MUGEN's format (release JSONs, game JSONs, wavs, "
                    "stand-in sprites), loadable with modeling_videoclip.mugen.load_mugen(OUT_DIR).",
    )
    parser.add_argument("out_dir", type=Path, help="folder to write")
    parser.add_argument("--num-clips", type=int, default=16, help="number of 96-frame clips (16)")
    parser.add_argument("--seed", type=int, default=0, help="random seed (0)")
    parser.add_argument("--preview", choices=["mp4", "gif"], default=None,
                        help="also render the test clips to OUT_DIR/preview/<id>.<mp4|gif>")
    parser.add_argument("--resolution", type=int, default=256, help="preview resolution (256)")
    args = parser.parse_args(argv)
    if args.num_clips < 1:
        parser.error("--num-clips must be >= 1")

    from .dataset import load_mugen
    from .sample import make_mugen_sample
    from .video import render_clip_to_gif, render_clip_to_mp4

    root = make_mugen_sample(args.out_dir, num_clips=args.num_clips, seed=args.seed)
    print(f"wrote a MUGEN sample with {args.num_clips} clips to {root}")
    if args.preview:
        ds = load_mugen(root, "test", annotation="auto", resolution=args.resolution)
        write = render_clip_to_mp4 if args.preview == "mp4" else render_clip_to_gif
        for row in ds:
            path = write(row["video"], root / "preview" / f"{row['id']}.{args.preview}")
            print(f"{path}: {row['text']}")
    return 0


def main_push(argv: Optional[List[str]] = None) -> int:
    """Publish a MUGEN-format folder's metadata (and optionally mp4 clips) to a Hub dataset repo."""
    parser = argparse.ArgumentParser(
        prog="videoclip mugen-push",
        description="Upload MUGEN metadata as Parquet plus a dataset card (and optionally rendered mp4 clips) "
                    "to a Hugging Face dataset repo, in one commit.",
    )
    parser.add_argument("repo_id", help="dataset repo, e.g. user/mugen-sample")
    parser.add_argument("data_dir", type=Path, help="folder holding coinrun_dataset_jsons/")
    parser.add_argument("--asset-dir", type=Path, default=None, help="sprites for --render-mp4 (DATA_DIR/assets)")
    parser.add_argument("--render-mp4", action="store_true", help="also upload each clip rendered as mp4")
    parser.add_argument("--resolution", type=int, default=256, help="mp4 resolution (256)")
    parser.add_argument("--private", action="store_true", help="create the repo as private")
    parser.add_argument("--revision", default=None, help="branch to commit to (main)")
    args = parser.parse_args(argv)

    from .hub import push_mugen_to_hub

    url = push_mugen_to_hub(args.repo_id, args.data_dir, asset_dir=args.asset_dir, render_mp4=args.render_mp4,
                            resolution=args.resolution, private=args.private, revision=args.revision)
    print(url)
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main_sample())
