"""``videoclip demo``: torchmultimodal's video-text retrieval tutorial (``examples/mugen/retrieval/tutorial.ipynb``
in facebookresearch/multimodal), end to end and offline: the data default to the synthetic sample, and without
``--model`` or the MUGEN checkpoint the weights are random, said in one line and labelled in every output."""

from __future__ import annotations

import argparse
import json
import os
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from tqdm.auto import tqdm

from ..common import downloads
from ..common.constants import MUGEN_CHECKPOINT_URL
from ..common.errors import CommandError, ExitCode, VideoCLIPError, writing
from ..common.models import check_model_path, load_pretrained
from ..retrieval.visualize import RANDOM_WEIGHTS_LABEL
from . import shared

Log = Callable[[str], None]

TUTORIAL_BATCH_SIZE = 8  # MUGENDataModule(..., batch_size=8): the pool the retrievals search
TUTORIAL_VIDEO_QUERY = 0  # the tutorial retrieves the text for video 0 ...
TUTORIAL_TEXT_QUERY = 6  # ... and the video for text 6
RANDOM_SEED = 0  # of the random-weight fallback, so that two runs print the same (meaningless) numbers
# Videos per forward pass: small, so the progress bar moves on a CPU (S3D takes seconds a clip); batch norm is in
# eval mode, so the embeddings do not depend on it.
VIDEO_CHUNK = 2
RANDOM_PREFIX = "RANDOM-WEIGHTS_"  # the mp4 files' label (an mp4 cannot show one as the PNG titles do)


def register(subparsers) -> None:
    parser = shared.add_command(
        subparsers, "demo", "the torchmultimodal retrieval tutorial, end to end (works offline)",
        "Embed one batch of MUGEN test clips and captions, print the similarity matrix, retrieve the "
        "text for video 0 and the video for text 6 (as torchmultimodal's tutorial), and write the clips (mp4), "
        "a contact sheet and a heatmap (PNG). Weights: --model, else the MUGEN weights converted from "
        "torchmultimodal's public checkpoint when cached or downloadable, else random weights (labelled "
        "RANDOM WEIGHTS everywhere).",
    )
    parser.add_argument(
        "--model", metavar="HUB_ID_OR_DIR", help="a saved VideoCLIP (folder or Hub id). Default: see above"
    )
    parser.add_argument(
        "--weights", choices=("auto", "mugen", "random"), default="auto",
        help="without --model: auto (MUGEN weights if obtainable, else random; default), mugen (or fail), random",
    )
    shared.add_data_options(parser)
    parser.add_argument(
        "--batch-size", type=shared.positive_int, default=TUTORIAL_BATCH_SIZE,
        help=f"clips in the pool (the first N test clips). Default: {TUTORIAL_BATCH_SIZE}, the tutorial's batch size",
    )
    parser.add_argument(
        "--out", metavar="DIR", default="videoclip-demo",
        help="output folder. Default: ./videoclip-demo (an earlier demo's output there is replaced; other files of "
        "the demo's names are kept unless --overwrite)",
    )
    shared.add_overwrite_option(parser)
    shared.add_device_option(parser)
    parser.set_defaults(handler=_run)


def _run(args: argparse.Namespace) -> int:
    if args.model is not None and args.weights != "auto":
        raise CommandError("--weights applies without --model only", ExitCode.USAGE)
    if args.model is not None:
        check_model_path(args.model)  # before the data: fail fast
    shared.check_data_args(args)
    run_demo(model=args.model, data=args.data, assets=args.assets, batch_size=args.batch_size, out=args.out,
             device=args.device, weights=args.weights, overwrite=args.overwrite)
    return 0


OUTPUT_NAMES = (
    "query_video_*.mp4", "retrieved_video_for_text_*.mp4", f"{RANDOM_PREFIX}*.mp4", "similarity_heatmap.png",
    "contact_sheet.png", "demo.json", "README.txt",
)  # every file the demo may write into --out


def _earlier_demo_output(out: Path) -> bool:
    """Whether `out` holds what an earlier demo wrote (its demo.json), which a new run may replace."""
    try:
        record = json.loads((out / "demo.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    return isinstance(record, dict) and {"similarity", "video_query", "text_query"} <= set(record)


def mugen_weights(device: torch.device | str = "cpu", log: Log = print) -> shared.LoadedModel:
    """torchmultimodal's MUGEN checkpoint (downloaded or cached) converted, with `load_tokenizer`'s default, uncased
    BERT WordPiece (fetched first: without it the text tower is useless, and it is cheaper). Raises VideoCLIPError."""
    from ..common.models import build_processor, convert_checkpoint, load_tokenizer
    from ..configuration_videoclip import VideoCLIPConfig

    config = VideoCLIPConfig()  # the reference's architecture, which the checkpoint has
    tokenizer = load_tokenizer(config=config)
    checkpoint = downloads.fetch_checkpoint(MUGEN_CHECKPOINT_URL, progress=True, log=log)
    model = convert_checkpoint(checkpoint, config)
    description = f"MUGEN weights (converted from {MUGEN_CHECKPOINT_URL})"
    return shared.LoadedModel(model.eval().to(device), build_processor(tokenizer), description)


def random_weights(texts: Iterable[str], device: torch.device | str = "cpu") -> shared.LoadedModel:
    """Randomly initialised VideoCLIP (the reference's shapes; seed `RANDOM_SEED`) with a vocabulary built from
    `texts`, so that they tokenize without unknown words (bert-base-uncased's vocabulary needs the network)."""
    from ..common.models import RANDOM_INIT, TOKENIZER_FROM_DATA, build_model, build_processor, load_tokenizer

    tokenizer = load_tokenizer(TOKENIZER_FROM_DATA, texts=list(texts))
    model = build_model(RANDOM_INIT, {"text_config": {"vocab_size": len(tokenizer)}}, seed=RANDOM_SEED)
    return shared.LoadedModel(model.to(device), build_processor(tokenizer), "random weights (seed 0)", True)


def load_demo_weights(
    model: str | None, texts: Sequence[str], device: torch.device | str = "cpu", weights: str = "auto", log=print
) -> shared.LoadedModel:
    """`model` (``--model``) when given; else by `weights`: "auto" (the default: the MUGEN weights when cached or
    downloadable, else random ones with a one-line note to `log`), "mugen" (or an error) or "random" (a vocabulary
    from `texts`)."""
    if model is not None:
        return shared.LoadedModel(*load_pretrained(model, device), description=model)
    if weights == "random":
        return random_weights(texts, device)
    try:
        return mugen_weights(device, log)
    except VideoCLIPError as error:
        if weights == "mugen":
            raise CommandError(f"cannot get the MUGEN weights: {error.message}") from error
        log(f"MUGEN weights unavailable ({error.message}); using RANDOM weights: the retrievals below are "
            "meaningless.")
        return random_weights(texts, device)


@dataclass
class DemoResult:
    """What `run_demo` computed and wrote: the `(texts, videos)` cosine similarities, the queries (the tutorial's,
    clamped to the batch), the indices ranked for each (best first) and the files by role."""

    similarity: np.ndarray
    texts: list[str]
    ids: list[str]
    video_query: int
    text_query: int
    texts_for_video: list[int]
    videos_for_text: list[int]
    weights: str
    random_weights: bool
    data: str
    files: dict[str, str] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        out = {k: v for k, v in self.__dict__.items() if k != "similarity"}
        return out | {"similarity": np.round(self.similarity, 6).tolist()}


def query_indices(n: int) -> tuple[int, int]:
    """The tutorial's queries, video 0 and text 6, clamped to a batch of `n` pairs (text n-1 when n <= 6)."""
    return min(TUTORIAL_VIDEO_QUERY, n - 1), min(TUTORIAL_TEXT_QUERY, n - 1)


def format_similarity(similarity: np.ndarray) -> str:
    """The similarity matrix as an aligned table: rows texts, columns videos, ``*`` on each text's best video."""
    best = similarity.argmax(axis=1)
    lines = ["        " + "".join(f"{f'video {j}':>10}" for j in range(similarity.shape[1]))]
    for i, row in enumerate(similarity):
        cells = "".join(f"{score:>9.3f}{'*' if j == best[i] else ' '}" for j, score in enumerate(row))
        lines.append(f"{f'text {i}':<8}{cells}")
    return "\n".join(lines)


def _describe(text: str, limit: int = 90) -> str:
    return text if len(text) <= limit else text[: limit - 3] + "..."


def run_demo(
    model: str | None = None, data: str | os.PathLike | None = None, assets: str | os.PathLike | None = None,
    batch_size: int = TUTORIAL_BATCH_SIZE, out: str | os.PathLike = "videoclip-demo", device: str | None = None,
    weights: str = "auto", top_k: int = 3, overwrite: bool = False, log: Log = print,
) -> DemoResult:
    """Runs the tutorial on the first `batch_size` test clips of `data` (`data.load_split`; default: the synthetic
    sample) with the weights `load_demo_weights` picks: prints the similarity matrix and the two retrievals to
    `log`, writes the mp4 files, the PNGs (`top_k` results a query), ``demo.json`` and ``README.txt`` into `out`
    (checked first: a file of those names that an earlier demo did not write is kept unless `overwrite`)."""
    from ..data import captions, describe_split, load_split
    from ..retrieval import embed_texts, embed_videos, similarity

    if batch_size < 1:
        raise CommandError(f"--batch-size must be at least 1, got {batch_size}", ExitCode.USAGE)
    torch_device = shared.resolve_device(device)
    shared.prepare_out_folder(out, OUTPUT_NAMES, overwrite or _earlier_demo_output(Path(out)))
    dataset = load_split(data, "test", assets, log=log)
    n = min(batch_size, len(dataset))
    if n < batch_size:
        log(f"Note: the test split has {len(dataset)} usable clips, fewer than --batch-size {batch_size}; using {n}.")
    batch = dataset.select(range(n))
    ids, texts = captions(batch, "id"), captions(batch, "text")
    loaded = load_demo_weights(model, texts, torch_device, weights, log)  # before rendering: fail fast
    with shared.reading_data():
        videos = [dataset[i]["video"] for i in tqdm(range(n), desc="render clips", unit="clip")]
    tag = " [RANDOM WEIGHTS]" if loaded.random_weights else ""

    text_embeds = embed_texts(loaded.model, loaded.processor, texts, progress=False)
    video_embeds = embed_videos(loaded.model, loaded.processor, videos, batch_size=VIDEO_CHUNK)
    scores = similarity(text_embeds, video_embeds).numpy()  # the tutorial's embeddings_a @ embeddings_b.T

    video_query, text_query = query_indices(n)
    result = DemoResult(
        similarity=scores, texts=texts, ids=ids, video_query=video_query, text_query=text_query,
        texts_for_video=np.argsort(-scores[:, video_query], kind="stable").tolist(),
        videos_for_text=np.argsort(-scores[text_query, :], kind="stable").tolist(),
        weights=loaded.description, random_weights=loaded.random_weights, data=describe_split(data, "test"),
    )
    _print_result(result, tag, log)
    with writing(out):
        _write_outputs(result, videos, Path(out), top_k)
    names = ", ".join(sorted(Path(path).name for path in result.files.values()))
    log(f"Wrote {len(result.files)} files to {out}/{tag}: {names}")
    return result


def _print_result(result: DemoResult, tag: str, log: Log) -> None:
    n, v, t = len(result.texts), result.video_query, result.text_query
    if result.random_weights:
        log(f"*** {RANDOM_WEIGHTS_LABEL} ***")
    log(f"Weights: {result.weights}")
    log(f"Data: {result.data}; the first {n} clips (the tutorial's batch)")
    log("")
    log(f"Similarity matrix{tag} (cosine; rows: texts, columns: videos; * = best video for the text):")
    log(format_similarity(result.similarity))
    log("")
    for i, text in enumerate(result.texts):
        log(f"  text {i}: {_describe(text)}")
    log("")
    if t != TUTORIAL_TEXT_QUERY:
        log(f"Note: the batch has {n} pairs, so text {t} stands in for the tutorial's text {TUTORIAL_TEXT_QUERY}.")
    best_text, best_video = result.texts_for_video[0], result.videos_for_text[0]
    true_rank = result.texts_for_video.index(v) + 1
    log(f"Text for video {v}{tag}: text {best_text} (score {result.similarity[best_text, v]:.3f}"
        f"{', the true caption' if best_text == v else f'; the true caption, text {v}, ranks {true_rank}'})")
    log(f"  \"{result.texts[best_text]}\"")
    true_rank = result.videos_for_text.index(t) + 1
    log(f"Video for text {t}{tag}: \"{_describe(result.texts[t])}\"")
    log(f"  -> video {best_video} (score {result.similarity[t, best_video]:.3f}"
        f"{', the true video' if best_video == t else f'; the true video, video {t}, ranks {true_rank}'})")


def clip_names(video_query: int, text_query: int, random_weights: bool) -> dict[str, str]:
    """The demo's mp4 file names: the query video and the video retrieved for the text query."""
    prefix = RANDOM_PREFIX if random_weights else ""
    return {
        "query_video": f"{prefix}query_video_{video_query}.mp4",
        "retrieved_video": f"{prefix}retrieved_video_for_text_{text_query}.mp4",
    }


def _write_outputs(result: DemoResult, videos: Sequence[np.ndarray], out: Path, top_k: int) -> None:
    """Writes the two mp4 files, the two PNGs, demo.json and README.txt, and sets `result.files`."""
    from ..mugen import render_clip_to_mp4
    from ..retrieval.visualize import SheetEntry, SheetSection, contact_sheet, save_png, similarity_heatmap

    out.mkdir(parents=True, exist_ok=True)
    v, t = result.video_query, result.text_query
    for stale in clip_names(v, t, not result.random_weights).values():  # a previous run's, in the other mode
        (out / stale).unlink(missing_ok=True)
    names = {
        **clip_names(v, t, result.random_weights), "heatmap": "similarity_heatmap.png",
        "contact_sheet": "contact_sheet.png", "json": "demo.json", "readme": "README.txt",
    }
    files = result.files = {role: str(out / name) for role, name in names.items()}
    render_clip_to_mp4(videos[v], files["query_video"])
    render_clip_to_mp4(videos[result.videos_for_text[0]], files["retrieved_video"])
    subtitle = f"weights: {result.weights} | data: {result.data}"
    heatmap = similarity_heatmap(result.similarity, subtitle=subtitle, random_weights=result.random_weights)
    save_png(heatmap, files["heatmap"])
    scores, k = result.similarity, min(top_k, len(result.texts))
    text_results = [
        SheetEntry(f"#{rank + 1}  text {i}  score {scores[i, v]:.3f}", text=result.texts[i], is_match=i == v)
        for rank, i in enumerate(result.texts_for_video[:k])
    ]
    video_results = [
        SheetEntry(f"#{rank + 1}  video {j}  score {scores[t, j]:.3f}", frames=videos[j], is_match=j == t)
        for rank, j in enumerate(result.videos_for_text[:k])
    ]
    sections = [
        SheetSection(f"Text for video {v}", SheetEntry(f"query: video {v}", frames=videos[v], is_query=True),
                     text_results),
        SheetSection(f"Video for text {t}", SheetEntry(f"query: text {t}", text=result.texts[t], is_query=True),
                     video_results),
    ]
    save_png(contact_sheet(sections, subtitle=subtitle, random_weights=result.random_weights), files["contact_sheet"])
    Path(files["json"]).write_text(json.dumps(result.to_dict(), indent=1) + "\n")
    Path(files["readme"]).write_text(_readme(result, names))


def _readme(result: DemoResult, names: dict[str, str]) -> str:
    v, t = result.video_query, result.text_query
    lines = []
    if result.random_weights:
        lines += [f"!!! {RANDOM_WEIGHTS_LABEL} !!!", "Every file here was made with an untrained model.", ""]
    lines += [
        "videoclip demo: torchmultimodal's video-text retrieval tutorial",
        f"weights: {result.weights}",
        f"data: {result.data}; {len(result.texts)} clips: {', '.join(result.ids)}",
        "",
        f"{names['query_video']:<48} the query video {v} (text retrieved for it: text {result.texts_for_video[0]})",
        f"{names['retrieved_video']:<48} video {result.videos_for_text[0]}, retrieved for text {t}",
        f"{'similarity_heatmap.png':<48} the similarity matrix (rows texts, columns videos)",
        f"{'contact_sheet.png':<48} the queries and their top results",
        f"{'demo.json':<48} the numbers (similarity, captions, rankings)",
    ]
    return "\n".join(lines) + "\n"
