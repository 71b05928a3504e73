"""torchmultimodal's video-text retrieval tutorial, end to end (`videoclip demo`).

The tutorial (``examples/mugen/retrieval/tutorial.ipynb`` in facebookresearch/multimodal) loads VideoCLIP with
the MUGEN weights, embeds one batch of 8 test clips and their captions, builds the similarity matrix
``text_embeds @ video_embeds.T``, retrieves the text for video 0 and the video for text 6, and writes the clips
as mp4 files. `run_demo` does the same here, on a fresh machine with no network:

* data: MUGEN when `data` is given, else the synthetic MUGEN sample (`modeling_videoclip.mugen`), generated once
  into a cache folder (`default_cache_dir`);
* weights: `model` when given (a saved folder or a Hub id), else the MUGEN weights converted from the public
  torchmultimodal checkpoint when it is cached or can be downloaded, else randomly initialised weights, said in
  one line and labelled RANDOM WEIGHTS in every output.

Embedding, similarity and search come from `modeling_videoclip.retrieval`. This module also holds the small
pieces the other `videoclip` commands share: loading data (`load_split`) and a model with its processor
(`load_videoclip`).
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from tqdm.auto import tqdm

from .configuration_videoclip import VideoCLIPConfig
from .convert_torchmultimodal import MUGEN_CHECKPOINT_URL
from .modeling_videoclip import VideoCLIPModel
from .processing_videoclip import VideoCLIPProcessor
from .retrieval import embed_texts, embed_videos
from .retrieval import similarity as cosine_similarity
from .video_processing_videoclip import VideoCLIPVideoProcessor
from .mugen import render_clip_to_mp4
from .visualize import RANDOM_WEIGHTS_LABEL, SheetEntry, SheetSection, contact_sheet, save_png, similarity_heatmap

__all__ = [
    "CommandError",
    "DemoResult",
    "LoadedModel",
    "TUTORIAL_BATCH_SIZE",
    "default_cache_dir",
    "ensure_mugen_sample",
    "load_videoclip",
    "load_demo_weights",
    "metadata_columns",
    "run_demo",
]

Log = Callable[[str], None]

TUTORIAL_BATCH_SIZE = 8
"""The tutorial's batch: ``MUGENDataModule(..., batch_size=8)``, the pool the retrievals search."""
TUTORIAL_VIDEO_QUERY = 0
"""The tutorial retrieves the text for video 0 ..."""
TUTORIAL_TEXT_QUERY = 6
"""... and the video for text 6."""
SAMPLE_NUM_CLIPS = 48
"""Clips in the cached synthetic sample: at seed 0, 9 of them land in the test split with manual captions,
enough for one tutorial batch of 8 (the sample gives manual captions to about 80% of the clips)."""
SAMPLE_SEED = 0
MUGEN_TOKENIZER = "distilbert/distilbert-base-uncased"
"""The MUGEN weights' tokenizer (bert-base-uncased WordPiece), as hub_configs/videoclip-mugen says."""
RANDOM_SEED = 0
"""Seed of the random-weight fallback, so that two runs print the same (meaningless) numbers."""
VIDEO_CHUNK = 2
"""Videos per forward pass in the demo: small, so the progress bar moves on a CPU (S3D takes seconds a clip);
batch norm is in eval mode, so the embeddings do not depend on it."""


class CommandError(Exception):
    """A user-facing failure of a `videoclip` command: a one-line message and an exit status.

    Args:
        message: what went wrong and, where possible, what to do; printed as ``videoclip: error: <message>``.
        exit_code: the process exit status. Defaults to 1; 2 is for usage errors, as argparse's.
    """

    def __init__(self, message: str, exit_code: int = 1):
        super().__init__(message)
        self.exit_code = exit_code


# ----------------------------------------------------------------------------------------------------
# Data: the synthetic sample in a cache folder
# ----------------------------------------------------------------------------------------------------


def default_cache_dir() -> Path:
    """Where `videoclip` caches generated data.

    Returns:
        ``$VIDEOCLIP_CACHE`` if set, else ``$XDG_CACHE_HOME/videoclip``, else ``~/.cache/videoclip``.
    """
    if os.environ.get("VIDEOCLIP_CACHE"):
        return Path(os.environ["VIDEOCLIP_CACHE"]).expanduser()
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base).expanduser() / "videoclip"


_SAMPLE_COMPLETE = ".complete"


def ensure_mugen_sample(cache_dir: str | os.PathLike | None = None, log: Log = print) -> Path:
    """The synthetic MUGEN sample in the cache, generated on first use.

    Generation writes into a temporary sibling folder that is renamed into place when complete, so an
    interrupted run never leaves a half-written sample behind.

    Args:
        cache_dir: the cache root. Defaults to `default_cache_dir()`.
        log: where the one-line "generating" note goes. Defaults to `print`.

    Returns:
        ``<cache_dir>/mugen-sample``: `SAMPLE_NUM_CLIPS` (48) clips at seed 0, with stand-in sprites in ``assets/``.
    """
    from .mugen import make_mugen_sample

    root = Path(cache_dir) if cache_dir is not None else default_cache_dir()
    folder = root / "mugen-sample"
    if (folder / _SAMPLE_COMPLETE).is_file():
        return folder
    root.mkdir(parents=True, exist_ok=True)
    log(f"Generating the synthetic MUGEN sample ({SAMPLE_NUM_CLIPS} clips) into {folder} (first use only)")
    staging = Path(tempfile.mkdtemp(prefix=".mugen-sample-", dir=root))
    try:
        make_mugen_sample(staging, num_clips=SAMPLE_NUM_CLIPS, seed=SAMPLE_SEED, with_audio=False)
        (staging / _SAMPLE_COMPLETE).write_text(f"num_clips={SAMPLE_NUM_CLIPS} seed={SAMPLE_SEED}\n")
        if folder.exists():  # an incomplete folder from an older, interrupted version of this cache
            shutil.rmtree(folder)
        os.replace(staging, folder)
    finally:
        if staging.exists():
            shutil.rmtree(staging, ignore_errors=True)
    return folder


def load_split(
    data: str | os.PathLike | None,
    assets: str | os.PathLike | None,
    split: str = "test",
    log: Log = print,
):
    """A MUGEN split as `load_mugen` returns it (frames rendered on access).

    Args:
        data: a MUGEN folder (holding ``coinrun_dataset_jsons/``). Defaults to the synthetic sample
            (`ensure_mugen_sample`).
        assets: the sprite folder. Defaults to `load_mugen`'s, ``<data>/assets``.
        split: "test", the split the tutorial and the reference's evaluation use.
        log: for the note when the sample is generated.

    Returns:
        `(dataset, description)`: the `datasets.Dataset` and a short "where from" line, which starts with
        "synthetic MUGEN sample" for data written by `make_mugen_sample`.
    """
    from .mugen.dataset import load_mugen

    from .mugen.release import read_release, release_path

    if data is None:
        folder = ensure_mugen_sample(log=log)
    else:
        folder = Path(data).expanduser()
        if not folder.exists():
            raise CommandError(f"data folder {str(data)!r} does not exist", exit_code=2)
    dataset = load_mugen(folder, split, asset_dir=assets)
    metadata, _ = read_release(release_path(folder, split))
    synthetic = metadata.get("type") == "synthetic"  # what make_mugen_sample writes; real releases do not say
    description = f"{'synthetic MUGEN sample' if synthetic else 'MUGEN'} ({_display_path(folder)})"
    if len(dataset) == 0:
        raise CommandError(f"the {split} split of {description} has no clip to use ({dataset.mugen_report})")
    return dataset, f"{description}, {split} split"


def _display_path(path: Path) -> str:
    """`path` with the home folder shown as ``~`` (shorter in titles, and no user name in shared pictures)."""
    try:
        return "~/" + str(Path(path).expanduser().resolve().relative_to(Path.home().resolve()))
    except ValueError:
        return str(path)


# ----------------------------------------------------------------------------------------------------
# Models
# ----------------------------------------------------------------------------------------------------


@dataclass
class LoadedModel:
    """A model, its processor and how to describe them.

    Args:
        model: the `VideoCLIPModel`, in eval mode on its device.
        processor: the matching `VideoCLIPProcessor`.
        description: one line for the printout and the pictures, e.g. "MUGEN weights (converted from ...)".
        random_weights: the weights are randomly initialised, not trained.
    """

    model: VideoCLIPModel
    processor: VideoCLIPProcessor
    description: str
    random_weights: bool = False


def resolve_device(device: str | None) -> torch.device:
    """The device to run on.

    Args:
        device: "cpu", "cuda", "cuda:1", ...; defaults to `None`: CUDA when available, else the CPU.

    Raises:
        CommandError: an unknown device name, or CUDA asked for but not available.
    """
    if device is None:
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        resolved = torch.device(device)
    except (RuntimeError, ValueError):
        raise CommandError(f"unknown device {device!r} (use cpu, cuda or cuda:N)", exit_code=2) from None
    if resolved.type == "cuda" and not torch.cuda.is_available():
        raise CommandError(f"device {device!r} asked for but CUDA is not available here; use --device cpu", exit_code=2)
    return resolved


def check_model_path(name_or_path: str) -> None:
    """Fails early when `name_or_path` is meant as a local folder (it has a path separator, starts with "." or
    exists) but is not one; Hub ids (``org/name``) pass, as ``org/name`` is not taken for a path unless it exists.

    Raises:
        CommandError: exit status 2.
    """
    looks_local = name_or_path.startswith((".", "~", os.path.sep)) or name_or_path.count("/") > 1 or os.path.exists(name_or_path)
    if looks_local and not os.path.isdir(os.path.expanduser(name_or_path)):
        raise CommandError(f"model folder {name_or_path!r} does not exist", exit_code=2)


def load_videoclip(name_or_path: str, device: torch.device | str = "cpu") -> LoadedModel:
    """Loads a saved VideoCLIP (a folder written by `save_pretrained` / `upload.py`, or a Hub id) and its processor.

    Args:
        name_or_path: the folder or Hub repo id.
        device: where to put the model. Defaults to the CPU.

    Returns:
        The `LoadedModel`.

    Raises:
        CommandError: the folder does not exist, or holds no readable model or processor (one line).
    """
    check_model_path(name_or_path)
    try:
        model = VideoCLIPModel.from_pretrained(name_or_path)
        processor = VideoCLIPProcessor.from_pretrained(name_or_path)
    except (OSError, ValueError, KeyError, TypeError, RuntimeError) as error:
        raise CommandError(f"cannot load a VideoCLIP model from {name_or_path!r}: {_first_line(error)}") from error
    return LoadedModel(model.eval().to(device), processor, f"{name_or_path}")


def _first_line(error: BaseException) -> str:
    text = str(error).strip()
    return text.splitlines()[0] if text else type(error).__name__


def mugen_weights(device: torch.device | str = "cpu", log: Log = print) -> LoadedModel:
    """The MUGEN weights: torchmultimodal's public checkpoint, fetched (or reused from the cache) and converted
    with the `upload.py` machinery (`modeling_videoclip.hub`), plus the bert-base-uncased tokenizer.

    The tokenizer is fetched first: without it the converted text tower is useless, and it is the cheaper one.

    Raises:
        modeling_videoclip.hub.UploadError: the checkpoint or tokenizer cannot be obtained or read.
    """
    from .hub import convert_checkpoint, fetch_checkpoint, load_tokenizer

    config = VideoCLIPConfig()  # the reference's architecture, which the checkpoint has
    tokenizer = load_tokenizer(_mugen_tokenizer_source(), config)
    checkpoint = fetch_checkpoint(MUGEN_CHECKPOINT_URL, progress=True, log=log)
    model = convert_checkpoint(checkpoint, config)
    processor = VideoCLIPProcessor(video_processor=VideoCLIPVideoProcessor(), tokenizer=tokenizer)
    return LoadedModel(model.eval().to(device), processor, f"MUGEN weights (converted from {MUGEN_CHECKPOINT_URL})")


def _mugen_tokenizer_source() -> str:
    """Where to load the MUGEN tokenizer from without hanging offline: the Hugging Face cache's copy of
    `MUGEN_TOKENIZER` when there is one, else the Hub id when the Hub answers within a few seconds.

    Raises:
        modeling_videoclip.hub.UploadError: not cached and the Hub is not reachable (or ``HF_HUB_OFFLINE`` is set).
    """
    from huggingface_hub import constants, snapshot_download
    from huggingface_hub.errors import LocalEntryNotFoundError

    from .hub import ExitCode, UploadError, hub_reachable

    try:
        return snapshot_download(MUGEN_TOKENIZER, local_files_only=True)
    except (LocalEntryNotFoundError, OSError, ValueError):
        pass
    if not hub_reachable(timeout=3.0):
        raise UploadError(f"the tokenizer {MUGEN_TOKENIZER} is not cached and {constants.ENDPOINT} cannot be reached", ExitCode.NETWORK)
    return MUGEN_TOKENIZER


def random_weights(texts: Iterable[str], device: torch.device | str = "cpu") -> LoadedModel:
    """Randomly initialised VideoCLIP (the reference's shapes; seed `RANDOM_SEED`) with a tokenizer whose
    vocabulary is built from `texts` (bert-base-uncased's vocabulary needs the network).

    Args:
        texts: the captions the demo will embed, so that they tokenize without unknown words.
        device: where to put the model.
    """
    from .tokenization import tokenizer_from_vocab, vocab_from_texts

    vocab = vocab_from_texts(texts)
    torch.manual_seed(RANDOM_SEED)
    model = VideoCLIPModel(VideoCLIPConfig(text_config={"vocab_size": len(vocab)}))
    processor = VideoCLIPProcessor(video_processor=VideoCLIPVideoProcessor(), tokenizer=tokenizer_from_vocab(vocab))
    return LoadedModel(model.eval().to(device), processor, "random weights (seed 0)", random_weights=True)


def load_demo_weights(
    model: str | None, texts: Sequence[str], device: torch.device | str = "cpu", weights: str = "auto", log: Log = print
) -> LoadedModel:
    """The demo's weights, in its order of preference.

    Args:
        model: a saved folder or Hub id (``--model``); used when given.
        texts: the captions, for the random fallback's vocabulary.
        device: where to put the model.
        weights: without `model`: "auto" (default: the MUGEN weights when cached or downloadable, else random
            with a one-line note), "mugen" (the MUGEN weights or an error) or "random".
        log: where the one-line fallback note goes.

    Returns:
        The `LoadedModel`.
    """
    if model is not None:
        return load_videoclip(model, device)
    if weights == "random":
        return random_weights(texts, device)
    from .hub import UploadError

    try:
        return mugen_weights(device, log)
    except UploadError as error:
        if weights == "mugen":
            raise CommandError(f"cannot get the MUGEN weights: {error.message}") from error
        log(f"MUGEN weights unavailable ({error.message}); using RANDOM weights: the retrievals below are meaningless.")
        return random_weights(texts, device)


# ----------------------------------------------------------------------------------------------------
# The tutorial
# ----------------------------------------------------------------------------------------------------


@dataclass
class DemoResult:
    """What `run_demo` computed and wrote.

    Args:
        similarity: `(n, n)` cosine similarities, rows texts, columns videos (the tutorial's matrix).
        texts / ids: the batch's captions and clip ids.
        video_query / text_query: the query indices (0 and 6 as in the tutorial; fewer clips, the last one).
        texts_for_video / videos_for_text: the ranked indices retrieved for the queries (best first).
        weights: the weights' description; random_weights: whether they are random.
        files: the files written, by role.
    """

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
        out["similarity"] = np.round(self.similarity, 6).tolist()
        return out


def query_indices(n: int) -> tuple[int, int]:
    """The tutorial's queries, video 0 and text 6, clamped to a batch of `n` pairs (text n-1 when n <= 6)."""
    return min(TUTORIAL_VIDEO_QUERY, n - 1), min(TUTORIAL_TEXT_QUERY, n - 1)


def format_similarity(similarity: np.ndarray) -> str:
    """The similarity matrix as an aligned table: rows texts, columns videos, ``*`` on each text's best video."""
    n_rows, n_cols = similarity.shape
    best = similarity.argmax(axis=1)
    header = "        " + "".join(f"{f'video {j}':>10}" for j in range(n_cols))
    lines = [header]
    for i in range(n_rows):
        cells = "".join(f"{similarity[i, j]:>9.3f}{'*' if j == best[i] else ' '}" for j in range(n_cols))
        lines.append(f"{f'text {i}':<8}{cells}")
    return "\n".join(lines)


def metadata_columns(dataset) -> tuple[list[str], list[str]]:
    """Clip ids and captions of a `load_mugen` dataset without rendering a frame (its transform switched off)."""
    plain = dataset.with_format(None) if hasattr(dataset, "with_format") else dataset
    return list(plain["id"]), list(plain["text"])


def _render_rows(dataset, count: int) -> list[dict[str, Any]]:
    return [dataset[i] for i in tqdm(range(count), desc="render clips", unit="clip")]


def _describe(text: str, limit: int = 90) -> str:
    return text if len(text) <= limit else text[: limit - 3] + "..."


def run_demo(
    model: str | None = None,
    data: str | os.PathLike | None = None,
    assets: str | os.PathLike | None = None,
    batch_size: int = TUTORIAL_BATCH_SIZE,
    out: str | os.PathLike = "videoclip-demo",
    device: str | None = None,
    weights: str = "auto",
    top_k: int = 3,
    log: Log = print,
) -> DemoResult:
    """Runs the tutorial: embed one batch, print the similarity matrix and the two retrievals, write the files.

    Args:
        model: a saved VideoCLIP folder or Hub id. Defaults to `None`: the MUGEN weights if cached or
            downloadable, else random weights (see `load_demo_weights`).
        data: a MUGEN folder. Defaults to `None`: the synthetic sample, generated into the cache on first use.
        assets: MUGEN's sprite folder. Defaults to `load_mugen`'s, ``<data>/assets``.
        batch_size: the pool: the first `batch_size` test clips. Defaults to 8, the tutorial's batch size.
        out: folder for the mp4 files, the PNGs, ``demo.json`` and ``README.txt``. Defaults to ``videoclip-demo``.
        device: defaults to CUDA when available, else the CPU.
        weights: without `model`: "auto", "mugen" or "random" (see `load_demo_weights`).
        top_k: how many results the contact sheet shows per query. Defaults to 3.
        log: where the printout goes. Defaults to `print`.

    Returns:
        The `DemoResult` (also written to ``<out>/demo.json``).
    """
    if batch_size < 1:
        raise CommandError(f"--batch-size must be at least 1, got {batch_size}", exit_code=2)
    torch_device = resolve_device(device)
    dataset, data_description = load_split(data, assets, "test", log)
    n = min(batch_size, len(dataset))
    if n < batch_size:
        log(f"Note: the test split has {len(dataset)} usable clips, fewer than --batch-size {batch_size}; using {n}.")
    ids, texts = metadata_columns(dataset.select(range(n)))
    loaded = load_demo_weights(model, texts, torch_device, weights, log)  # before rendering: fail fast
    videos = [row["video"] for row in _render_rows(dataset, n)]
    tag = " [RANDOM WEIGHTS]" if loaded.random_weights else ""

    text_embeds = embed_texts(loaded.model, loaded.processor, texts, progress=False)
    video_embeds = embed_videos(loaded.model, loaded.processor, videos, batch_size=VIDEO_CHUNK)
    similarity = cosine_similarity(text_embeds, video_embeds).numpy()  # the tutorial's embeddings_a @ embeddings_b.T

    video_query, text_query = query_indices(n)
    texts_for_video = np.argsort(-similarity[:, video_query], kind="stable").tolist()
    videos_for_text = np.argsort(-similarity[text_query, :], kind="stable").tolist()
    result = DemoResult(
        similarity=similarity, texts=texts, ids=ids, video_query=video_query,
        text_query=text_query, texts_for_video=texts_for_video, videos_for_text=videos_for_text,
        weights=loaded.description, random_weights=loaded.random_weights, data=data_description,
    )
    _print_result(result, tag, log)
    result.files = _write_outputs(result, videos, Path(out), top_k)
    log(f"Wrote {len(result.files)} files to {out}/{tag}: " + ", ".join(sorted(Path(p).name for p in result.files.values())))
    return result


def _print_result(result: DemoResult, tag: str, log: Log) -> None:
    n = len(result.texts)
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
    v, t = result.video_query, result.text_query
    if t != TUTORIAL_TEXT_QUERY:
        log(f"Note: the batch has {n} pairs, so text {t} stands in for the tutorial's text {TUTORIAL_TEXT_QUERY}.")
    best_text = result.texts_for_video[0]
    log(f"Text for video {v}{tag}: text {best_text} (score {result.similarity[best_text, v]:.3f}"
        f"{', the true caption' if best_text == v else f'; the true caption, text {v}, ranks {result.texts_for_video.index(v) + 1}'})")
    log(f"  \"{result.texts[best_text]}\"")
    best_video = result.videos_for_text[0]
    log(f"Video for text {t}{tag}: \"{_describe(result.texts[t])}\"")
    log(f"  -> video {best_video} (score {result.similarity[t, best_video]:.3f}"
        f"{', the true video' if best_video == t else f'; the true video, video {t}, ranks {result.videos_for_text.index(t) + 1}'})")


RANDOM_PREFIX = "RANDOM-WEIGHTS_"
"""Prefix of the mp4 files of a random-weight run (an mp4 cannot carry a visible label as the PNG titles do)."""


def clip_names(video_query: int, text_query: int, random_weights: bool) -> dict[str, str]:
    """The demo's mp4 file names: the query video and the video retrieved for the text query."""
    prefix = RANDOM_PREFIX if random_weights else ""
    return {
        "query_video": f"{prefix}query_video_{video_query}.mp4",
        "retrieved_video": f"{prefix}retrieved_video_for_text_{text_query}.mp4",
    }


def _write_outputs(result: DemoResult, videos: Sequence[np.ndarray], out: Path, top_k: int) -> dict[str, str]:
    """The mp4 files (the query video, the video retrieved for the text), the two PNGs, demo.json and README.txt."""
    out.mkdir(parents=True, exist_ok=True)
    v, t = result.video_query, result.text_query
    names = clip_names(v, t, result.random_weights)
    for stale in clip_names(v, t, not result.random_weights).values():  # a previous run's, in the other mode
        (out / stale).unlink(missing_ok=True)
    files = {
        "query_video": render_clip_to_mp4(videos[v], out / names["query_video"]),
        "retrieved_video": render_clip_to_mp4(videos[result.videos_for_text[0]], out / names["retrieved_video"]),
    }
    subtitle = f"weights: {result.weights} | data: {result.data}"
    heatmap = similarity_heatmap(result.similarity, subtitle=subtitle, random_weights=result.random_weights)
    files["heatmap"] = save_png(heatmap, out / "similarity_heatmap.png")
    sheet = contact_sheet(_sheet_sections(result, videos, top_k), subtitle=subtitle, random_weights=result.random_weights)
    files["contact_sheet"] = save_png(sheet, out / "contact_sheet.png")
    files = {role: str(path) for role, path in files.items()}
    files["json"] = str(out / "demo.json")
    files["readme"] = str(out / "README.txt")
    result.files = files
    Path(files["json"]).write_text(json.dumps(result.to_dict(), indent=1) + "\n")
    Path(files["readme"]).write_text(_readme(result, names))
    return files


def _sheet_sections(result: DemoResult, videos: Sequence[np.ndarray], top_k: int) -> list[SheetSection]:
    v, t = result.video_query, result.text_query
    k = min(top_k, len(result.texts))
    text_results = [
        SheetEntry(f"#{rank + 1}  text {i}  score {result.similarity[i, v]:.3f}", text=result.texts[i], is_match=i == v)
        for rank, i in enumerate(result.texts_for_video[:k])
    ]
    video_results = [
        SheetEntry(f"#{rank + 1}  video {j}  score {result.similarity[t, j]:.3f}", frames=videos[j], is_match=j == t)
        for rank, j in enumerate(result.videos_for_text[:k])
    ]
    return [
        SheetSection(f"Text for video {v}", SheetEntry(f"query: video {v}", frames=videos[v], is_query=True), text_results),
        SheetSection(f"Video for text {t}", SheetEntry(f"query: text {t}", text=result.texts[t], is_query=True), video_results),
    ]


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
