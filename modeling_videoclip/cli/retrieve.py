"""``videoclip retrieve``: the videos for a text (``--query``), or the texts for a video file (``--video``)."""

from __future__ import annotations

import argparse
import os
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ..common.errors import CommandError, ExitCode, writing
from . import shared


def register(subparsers) -> None:
    parser = shared.add_command(
        subparsers, "retrieve", "the videos for a text, or the texts for a video",
        "Rank the clips of a MUGEN split for a text query (--query), or their captions for a video file (--video).",
    )
    query = parser.add_mutually_exclusive_group(required=True)
    query.add_argument("--query", metavar="TEXT", help="a text: retrieve videos")
    query.add_argument("--video", metavar="PATH", help="a video file (mp4, ..., decoded with PyAV): retrieve texts")
    parser.add_argument("-k", "--top-k", type=shared.positive_int, default=5, help="results to show. Default: 5")
    shared.add_pool_options(parser, "search")
    parser.add_argument(
        "--embeddings", metavar="PATH.npz",
        help="search embeddings saved by `videoclip evaluate --save-embeddings` instead of embedding the split",
    )
    parser.add_argument("--json", metavar="PATH", help="also write the results as JSON")
    parser.add_argument("--out", metavar="DIR", help="also write a contact sheet (and, for --query, the clips as mp4)")
    shared.add_overwrite_option(parser)
    moments = parser.add_argument_group("moments in long videos (--moments)")
    moments.add_argument("--moments", action="store_true",
                         help="find the moments of the videos in --video-dir that match --query (sliding windows)")
    moments.add_argument("--video-dir", metavar="DIR", help="the video files to search, for --moments")
    moments.add_argument("--window", type=_positive_seconds, metavar="SECONDS",
                         help="window length. Default: the model's clip at MUGEN's rate (3.2 s for 32 frames)")
    moments.add_argument("--stride", type=_positive_seconds, metavar="SECONDS", help="Default: half a window")
    parser.set_defaults(handler=_run)


VIDEO_SUFFIXES = (".mp4", ".m4v", ".mov", ".mkv", ".webm", ".avi", ".mpg", ".mpeg", ".gif")


def _positive_seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected seconds, got {text!r}") from None
    if not value > 0 or value == float("inf"):
        raise argparse.ArgumentTypeError(f"expected a positive number of seconds, got {text!r}")
    return value


def _run(args: argparse.Namespace) -> int:
    from ..retrieval import embed_texts, embed_videos, search
    from ..video_processing_videoclip import read_video_frames

    if args.video is not None and not os.path.isfile(args.video):
        raise CommandError(f"--video {args.video!r} does not exist", ExitCode.USAGE)
    if args.query is not None and not args.query.strip():
        raise CommandError("--query is empty; give a caption to search for", ExitCode.USAGE)
    if args.moments or args.video_dir is not None:
        return _run_moments(args)
    if args.out:  # before any work: a folder we may write, without files of ours from an earlier run
        names = [f"rank{rank}_*.mp4" for rank in range(1, args.top_k + 1)] if args.query is not None else []
        shared.prepare_out_folder(args.out, ["contact_sheet.png", *names], args.overwrite)
    loaded = shared.load_pool_model(args, "json")
    query_frames = None
    if args.query is not None:
        pool, ids, texts, dataset = _pool_embeddings(args, loaded, "video")
        query = embed_texts(loaded.model, loaded.processor, [args.query], progress=False)[0]
    else:
        with shared.reading_data():  # the processor decodes only the frames it samples; the sheet shows those
            query_frames = read_video_frames(args.video, loaded.processor.video_processor.num_frames)
        pool, ids, texts, dataset = _pool_embeddings(args, loaded, "text")
        query = embed_videos(loaded.model, loaded.processor, [query_frames], progress=False)[0]
    if pool.shape[1] != query.shape[0]:
        raise CommandError(f"--embeddings has {pool.shape[1]}-d embeddings but the model gives {query.shape[0]}-d")
    # Exact cosine top-k (order among exact ties unspecified); -k larger than the pool shows the whole pool.
    top = search(pool, query, min(args.top_k, len(pool)))
    results = [
        {"rank": rank + 1, "index": int(i), "score": float(s), "id": ids[i], "text": texts[i]}
        for rank, (s, i) in enumerate(zip(top.scores.tolist(), top.indices.tolist()))
    ]
    what = "videos" if args.query is not None else "texts"
    print(f"Query: {args.query!r}" if args.query is not None else f"Query video: {args.video}")
    print(f"Top {len(results)} {what} of {len(ids)} (cosine similarity):")
    for r in results:
        label = f"clip {r['id']}" if args.query is not None else f"text {r['index']} (clip {r['id']})"
        print(f"{r['rank']:>4}. {r['score']:.3f}  {label}: {r['text']}")
    if args.json:
        record = {"model": args.model, "query": args.query, "video": args.video}
        shared.write_json(args.json, {**record, "results": results})
    if args.out:
        files = _write_outputs(args, results, dataset, query_frames)
        print(f"Wrote {len(files)} files to {args.out}: " + ", ".join(Path(f).name for f in files))
    return 0


def _pool_embeddings(args: argparse.Namespace, loaded: shared.LoadedModel, side: str):
    """`(embeddings, ids, captions, dataset)` of the pool's `side` ("video" or "text"); the dataset is `None`
    with --embeddings."""
    from ..data import captions
    from ..retrieval import embed_texts, embed_videos

    if args.embeddings:
        path = args.embeddings
        if not os.path.isfile(path):
            raise CommandError(f"--embeddings {path!r} does not exist", ExitCode.USAGE)
        try:
            with np.load(path, allow_pickle=False) as stored:
                pool = {key: stored[key] for key in ("text_embeds", "video_embeds", "ids", "texts")}
        except (OSError, ValueError, KeyError) as error:
            raise CommandError(
                f"--embeddings {path!r} is not a file written by `videoclip evaluate --save-embeddings` ({error})"
            ) from error
        limit = args.limit or len(pool["ids"])
        ids, texts = ([str(x) for x in pool[key][:limit]] for key in ("ids", "texts"))
        return torch.from_numpy(pool[f"{side}_embeds"][:limit]).float(), ids, texts, None
    dataset, _ = shared.load_pool(args)
    ids, texts = captions(dataset, "id"), captions(dataset, "text")
    if side == "text":
        return embed_texts(loaded.model, loaded.processor, texts), ids, texts, dataset
    with shared.reading_data():
        videos = embed_videos(
            loaded.model, loaded.processor, dataset, batch_size=args.batch_size, num_workers=args.num_workers
        )
    return videos, ids, texts, dataset


def _write_outputs(
    args: argparse.Namespace, results: list[dict[str, Any]], dataset, query_frames: np.ndarray | None
) -> list[str]:
    """For a text query: the retrieved clips as mp4 and a contact sheet; for a video query: a contact sheet."""
    from ..common.paths import safe_file_stem
    from ..data import captions
    from ..mugen import render_clip_to_mp4
    from ..retrieval.visualize import SheetEntry, SheetSection, contact_sheet, save_png
    from ..video_processing_videoclip import read_video_frames

    out = Path(args.out)
    files: list[str] = []
    if args.query is not None:
        if dataset is None:
            dataset, _ = shared.load_pool(args)
        positions = {clip_id: i for i, clip_id in enumerate(captions(dataset, "id"))}
        missing = [r["id"] for r in results if r["id"] not in positions]
        if missing:
            raise CommandError(f"clips {missing} of --embeddings are not in the data; pass the --data they came from")
        entries = []
        for r in results:
            with shared.reading_data():
                frames = read_video_frames(dataset[positions[r["id"]]]["video"])
            with writing(out):
                name = f"rank{r['rank']}_{safe_file_stem(r['id'], 'clip')}.mp4"  # ids come from the data
                files.append(str(render_clip_to_mp4(frames, out / name)))
            entries.append(SheetEntry(f"#{r['rank']}  {r['id']}  score {r['score']:.3f}", frames=frames))
        query = SheetEntry("query text", text=args.query, is_query=True)
        section = SheetSection("Videos for the text", query, entries)
    else:
        query = SheetEntry(f"query: {Path(args.video).name}", frames=query_frames, is_query=True)
        entries = [
            SheetEntry(f"#{r['rank']}  text {r['index']}  score {r['score']:.3f}", text=r["text"]) for r in results
        ]
        section = SheetSection("Texts for the video", query, entries)
    sheet = contact_sheet([section], title="VideoCLIP retrieval", subtitle=f"model: {args.model}")
    with writing(out):
        files.append(str(save_png(sheet, out / "contact_sheet.png")))
    return files


def _run_moments(args: argparse.Namespace) -> int:
    """``--moments``: the `--top-k` windows of the videos in ``--video-dir`` for ``--query``."""
    from ..retrieval import search_moments

    if args.query is None or args.video_dir is None or not args.moments:
        raise CommandError("moment search takes --moments, --video-dir DIR and --query TEXT together", ExitCode.USAGE)
    folder = Path(args.video_dir)
    if not folder.is_dir():
        raise CommandError(f"--video-dir {args.video_dir!r} is not a folder", ExitCode.USAGE)
    if args.out:
        shared.prepare_out_folder(args.out, ["moments.png"], args.overwrite)
    files = sorted(p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in VIDEO_SUFFIXES)
    if not files:
        raise CommandError(f"--video-dir {args.video_dir!r} holds no video file ({', '.join(VIDEO_SUFFIXES)})",
                           ExitCode.USAGE)
    loaded = shared.load_pool_model(args, "json")
    with shared.reading_data():
        hits = search_moments(
            loaded.model, loaded.processor, [str(p) for p in files], [args.query], window_seconds=args.window,
            stride_seconds=args.stride, top_k=args.top_k, batch_size=args.batch_size,
        )[0]
    print(f"Query: {args.query!r}")
    print(f"Top {len(hits)} moments in {len(files)} videos of {args.video_dir} (cosine similarity):")
    for hit in hits:
        hit["file"] = Path(hit["video"]).relative_to(folder).as_posix()
        print(f"{hit['file']}  {hit['start']:.2f}-{hit['end']:.2f}  {hit['score']:.3f}")
    if args.json:
        shared.write_json(args.json, {"model": args.model, "query": args.query, "moments": hits})
    if args.out:
        path = _moments_sheet(args, hits)
        print(f"Wrote {path}")
    return 0


def _moments_sheet(args: argparse.Namespace, hits: list[dict[str, Any]]) -> Path:
    """A contact sheet: the query, then each moment's frames labelled with its file, time span and score."""
    from ..retrieval.visualize import SheetEntry, SheetSection, contact_sheet, save_png
    from ..video_processing_videoclip import open_video

    entries = []
    for rank, hit in enumerate(hits, 1):
        shown = hit["frames"][:: max(1, len(hit["frames"]) // 6)][:6]
        frames = open_video(hit["video"]).frames_at(shown).permute(0, 2, 3, 1).numpy()
        label = f"#{rank}  {hit['file']}  {hit['start']:.2f}-{hit['end']:.2f} s  score {hit['score']:.3f}"
        entries.append(SheetEntry(label, frames=frames))
    section = SheetSection("Moments for the text", SheetEntry("query text", text=args.query, is_query=True), entries)
    sheet = contact_sheet([section], title="VideoCLIP moment search", subtitle=f"model: {args.model}")
    with writing(args.out):
        return save_png(sheet, Path(args.out) / "moments.png")
