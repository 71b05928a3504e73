"""The ``videoclip`` command: the retrieval tutorial, evaluation, retrieval, the MUGEN sample and training.

    videoclip demo                      # the tutorial end to end, offline (see modeling_videoclip.demo)
    videoclip evaluate --model M        # Recall@1/5/10, MdR, MnR both ways, as the reference reports them
    videoclip retrieve --model M --query "Mugen climbs a ladder" -k 5
    videoclip retrieve --model M --video clip.mp4
    videoclip mugen-sample OUT_DIR      # write the synthetic MUGEN sample (modeling_videoclip.mugen.cli)
    videoclip mugen-push REPO_ID DIR    # publish a MUGEN folder as a Hub dataset (modeling_videoclip.mugen.cli)
    videoclip train --output-dir out    # modeling_videoclip.training

User errors (bad options, missing files, unreadable models or data) print one line,
``videoclip: error: ...``, and exit non-zero without a traceback; ``videoclip --debug ...`` shows it.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import traceback
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from .demo import (
    TUTORIAL_BATCH_SIZE,
    CommandError,
    LoadedModel,
    check_model_path,
    load_split,
    load_videoclip,
    metadata_columns,
    resolve_device,
    run_demo,
)

__all__ = ["main", "build_parser", "REFERENCE_RESULTS", "format_results_table", "write_model_card"]

PROG = "videoclip"
DEFAULT_TOP_K = 5
EVAL_BATCH_SIZE = 16
"""The reference's evaluation batch size (``datamodule_args.batch_size`` in configs/eval.yaml)."""

REFERENCE_RESULTS: dict[str, float] = {
    "text_to_video/R@1": 8.26,
    "text_to_video/R@5": 22.34,
    "text_to_video/R@10": 31.68,
    "video_to_text/R@1": 10.79,
    "video_to_text/R@5": 25.70,
    "video_to_text/R@10": 34.60,
}
"""torchmultimodal's published Recall (%) of the MUGEN weights on the full MUGEN test set (see the README)."""

_DIRECTION_NAMES = {"text_to_video": "text query, video retrieval", "video_to_text": "video query, text retrieval"}
_CARD_TASKS = {
    "text_to_video": ("text-to-video-retrieval", "Text-to-video retrieval"),
    "video_to_text": ("video-to-text-retrieval", "Video-to-text retrieval"),
}

EPILOG = """exit status: 0 success, 1 failure (unreadable model or data, no weights), 2 bad command line or a
missing input path, 130 interrupted. Errors are one line; add --debug (before or after the command) for the traceback."""


# ----------------------------------------------------------------------------------------------------
# Argument types
# ----------------------------------------------------------------------------------------------------


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {value}")
    return value


def _non_negative_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected an integer >= 0, got {text!r}") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"expected an integer >= 0, got {value}")
    return value


class _Parser(argparse.ArgumentParser):
    """argparse with one-line errors: ``videoclip <command>: error: ...`` and exit status 2, no usage dump."""

    def error(self, message: str) -> None:  # type: ignore[override]
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


# ----------------------------------------------------------------------------------------------------
# The parser
# ----------------------------------------------------------------------------------------------------


def _debug_option(parser: argparse.ArgumentParser, top_level: bool = False) -> None:
    # Subcommands use SUPPRESS so that an omitted --debug does not reset one given before the command.
    parser.add_argument(
        "--debug", dest="show_traceback", action="store_true",
        default=False if top_level else argparse.SUPPRESS, help="show the full traceback on errors",
    )


def _data_options(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("data")
    group.add_argument(
        "--data", metavar="DIR",
        help="MUGEN folder (holding coinrun_dataset_jsons/). Default: the synthetic MUGEN sample, generated into "
        "$XDG_CACHE_HOME/videoclip/mugen-sample (or $VIDEOCLIP_CACHE) on first use",
    )
    group.add_argument(
        "--assets", metavar="DIR",
        help="MUGEN sprite folder (MUGEN_baseline's lib/data/coinrun/assets). Default: <data>/assets",
    )


def _device_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--device", help="cpu, cuda or cuda:N. Default: cuda when available, else cpu")


def _add_demo(subparsers) -> None:
    parser = subparsers.add_parser(
        "demo", help="the torchmultimodal retrieval tutorial, end to end (works offline)",
        description="Embed one batch of MUGEN test clips and captions, print the similarity matrix, retrieve the "
        "text for video 0 and the video for text 6 (as torchmultimodal's tutorial), and write the clips (mp4), "
        "a contact sheet and a heatmap (PNG). Weights: --model, else the MUGEN weights converted from "
        "torchmultimodal's public checkpoint when cached or downloadable, else random weights (labelled "
        "RANDOM WEIGHTS everywhere).",
        epilog=EPILOG,
    )
    parser.add_argument("--model", metavar="HUB_ID_OR_DIR", help="a saved VideoCLIP (folder or Hub id). Default: see above")
    parser.add_argument(
        "--weights", choices=("auto", "mugen", "random"), default="auto",
        help="without --model: auto (MUGEN weights if obtainable, else random; default), mugen (or fail), random",
    )
    _data_options(parser)
    parser.add_argument(
        "--batch-size", type=_positive_int, default=TUTORIAL_BATCH_SIZE,
        help=f"clips in the pool (the first N test clips). Default: {TUTORIAL_BATCH_SIZE}, the tutorial's batch size",
    )
    parser.add_argument("--out", metavar="DIR", default="videoclip-demo", help="output folder. Default: ./videoclip-demo")
    _device_option(parser)
    _debug_option(parser)
    parser.set_defaults(handler=_run_demo)


def _add_evaluate(subparsers) -> None:
    parser = subparsers.add_parser(
        "evaluate", help="Recall@1/5/10, MdR and MnR in both directions",
        description="Embed every clip and caption of a split and report Recall@1/5/10 (%%), median rank (MdR) and "
        "mean rank (MnR) for text->video and video->text retrieval, as torchmultimodal's evaluation reports them, "
        "next to its published figures for the MUGEN weights on the full MUGEN test set.",
        epilog=EPILOG,
    )
    parser.add_argument("--model", required=True, metavar="HUB_ID_OR_DIR", help="a saved VideoCLIP (folder or Hub id)")
    _data_options(parser)
    parser.add_argument("--split", choices=("train", "val", "test"), default="test", help="Default: test, the reference's")
    parser.add_argument("--limit", type=_positive_int, metavar="N", help="evaluate the first N clips only")
    parser.add_argument(
        "--batch-size", type=_positive_int, default=EVAL_BATCH_SIZE,
        help=f"clips per batch. Default: {EVAL_BATCH_SIZE}, the reference's evaluation batch size",
    )
    parser.add_argument(
        "--num-workers", type=_non_negative_int, default=0,
        help="DataLoader workers rendering clips. Default: 0 (render in this process)",
    )
    _device_option(parser)
    parser.add_argument("--json", metavar="PATH", help="also write the figures (and what was evaluated) as JSON")
    parser.add_argument(
        "--model-card", metavar="README.md",
        help="write the figures into this model card's model-index (created if missing; offline)",
    )
    parser.add_argument(
        "--dataset-name", help="dataset name for --model-card. Default: 'MUGEN' or 'MUGEN synthetic sample', "
        "plus the clip count with --limit (which also set the model-index's dataset config)",
    )
    parser.add_argument(
        "--save-embeddings", metavar="PATH.npz",
        help="save the embeddings, clip ids and captions (reusable by `videoclip retrieve --embeddings`)",
    )
    _debug_option(parser)
    parser.set_defaults(handler=_run_evaluate)


def _add_retrieve(subparsers) -> None:
    parser = subparsers.add_parser(
        "retrieve", help="the videos for a text, or the texts for a video",
        description="Rank the clips of a MUGEN split for a text query (--query), or their captions for a video "
        "file (--video).",
        epilog=EPILOG,
    )
    parser.add_argument("--model", required=True, metavar="HUB_ID_OR_DIR", help="a saved VideoCLIP (folder or Hub id)")
    query = parser.add_mutually_exclusive_group(required=True)
    query.add_argument("--query", metavar="TEXT", help="a text: retrieve videos")
    query.add_argument("--video", metavar="PATH", help="a video file (mp4, ..., decoded with PyAV): retrieve texts")
    parser.add_argument("-k", "--top-k", type=_positive_int, default=DEFAULT_TOP_K, help=f"results to show. Default: {DEFAULT_TOP_K}")
    _data_options(parser)
    parser.add_argument("--split", choices=("train", "val", "test"), default="test", help="the pool's split. Default: test")
    parser.add_argument("--limit", type=_positive_int, metavar="N", help="search the first N clips only")
    parser.add_argument(
        "--embeddings", metavar="PATH.npz",
        help="search embeddings saved by `videoclip evaluate --save-embeddings` instead of embedding the split",
    )
    parser.add_argument(
        "--batch-size", type=_positive_int, default=EVAL_BATCH_SIZE, help=f"clips per batch. Default: {EVAL_BATCH_SIZE}",
    )
    parser.add_argument("--num-workers", type=_non_negative_int, default=0, help="DataLoader workers. Default: 0")
    _device_option(parser)
    parser.add_argument("--json", metavar="PATH", help="also write the results as JSON")
    parser.add_argument("--out", metavar="DIR", help="also write a contact sheet (and, for --query, the clips as mp4)")
    _debug_option(parser)
    parser.set_defaults(handler=_run_retrieve)


DELEGATED: dict[str, tuple[str, str, str]] = {
    "mugen-sample": (
        "modeling_videoclip.mugen.cli", "main_sample",
        "write the synthetic MUGEN sample in MUGEN's on-disk format (OUT_DIR [--num-clips N] [--seed S] [--preview mp4])",
    ),
    "mugen-push": (
        "modeling_videoclip.mugen.cli", "main_push",
        "publish a MUGEN-format folder to a Hugging Face dataset repo (REPO_ID DATA_DIR ...)",
    ),
}
"""Commands whose whole command line is handed to the MUGEN module's own entry points: (module, function, help)."""


def _add_delegated(subparsers) -> None:
    # Listed here for `videoclip --help`; `main` hands their arguments to the MUGEN module before parsing.
    for name, (_, _, help_text) in DELEGATED.items():
        subparsers.add_parser(name, help=help_text, add_help=False)


def _add_train(subparsers, with_options: bool) -> None:
    parser = subparsers.add_parser(
        "train", help="train or finetune VideoCLIP with the Hugging Face Trainer",
        description="Train VideoCLIP (MUGEN's recipe by default); see modeling_videoclip.training. "
        "Use `videoclip --debug train ...` for tracebacks (--debug after `train` is TrainingArguments').",
        epilog=EPILOG,
    )
    if with_options:
        try:
            from .training import add_train_arguments
        except ImportError as error:
            parser.set_defaults(handler=_training_unavailable(error))
            return
        add_train_arguments(parser)
    parser.set_defaults(handler=_run_train)


def build_parser(with_train_options: bool = True) -> argparse.ArgumentParser:
    """The ``videoclip`` argument parser.

    Args:
        with_train_options: add `videoclip train`'s options (imports `modeling_videoclip.training`, which
            imports the Trainer). Defaults to `True`; `main` adds them only when the command is `train`.

    Returns:
        The parser; each subcommand sets ``handler``, a function of the parsed namespace returning the exit status.
    """
    parser = _Parser(
        prog=PROG,
        description="VideoCLIP (torchmultimodal's MUGEN video-text retrieval model) on Hugging Face: the retrieval "
        "tutorial, evaluation, retrieval, the synthetic MUGEN sample and training.",
        epilog=EPILOG,
    )
    _debug_option(parser, top_level=True)
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    subparsers.required = True
    _add_demo(subparsers)
    _add_evaluate(subparsers)
    _add_retrieve(subparsers)
    _add_delegated(subparsers)
    _add_train(subparsers, with_train_options)
    return parser


# ----------------------------------------------------------------------------------------------------
# demo
# ----------------------------------------------------------------------------------------------------


def _run_demo(args: argparse.Namespace) -> int:
    if args.model is not None and args.weights != "auto":
        raise CommandError("--weights applies without --model only", exit_code=2)
    if args.model is not None:
        check_model_path(args.model)
    _check_data_args(args)
    run_demo(
        model=args.model, data=args.data, assets=args.assets, batch_size=args.batch_size, out=args.out,
        device=args.device, weights=args.weights,
    )
    return 0


def _check_data_args(args: argparse.Namespace) -> None:
    for option in ("data", "assets"):
        value = getattr(args, option, None)
        if value is not None and not os.path.isdir(value):
            raise CommandError(f"--{option} {value!r} is not a folder", exit_code=2)


def _check_output_path(value: str | None, option: str) -> None:
    if value is not None and os.path.isdir(value):
        raise CommandError(f"{option} {value!r} is a folder; give a file path", exit_code=2)


# ----------------------------------------------------------------------------------------------------
# evaluate
# ----------------------------------------------------------------------------------------------------


def _load_pool(args: argparse.Namespace):
    """The split to evaluate / search, cut to --limit."""
    dataset, description = load_split(args.data, args.assets, args.split)
    if args.limit is not None and args.limit < len(dataset):
        dataset = dataset.select(range(args.limit))
        description += f", first {args.limit} clips"
    return dataset, description


def format_results_table(metrics: dict[str, Any], split: str = "test", reference: dict[str, float] | None = None) -> str:
    """The figures as the reference's evaluation prints them (a PyTorch Lightning test table, one row per
    ``<split>/Recall@k (text query, video retrieval)`` metric), in percent, with MdR and MnR added and a column
    of torchmultimodal's published figures.

    Args:
        metrics: `RetrievalMetrics.to_dict()`.
        split: the metric prefix. Defaults to "test".
        reference: published figures by metric key. Defaults to `REFERENCE_RESULTS`.

    Returns:
        The table, lines joined by newlines.
    """
    reference = REFERENCE_RESULTS if reference is None else reference
    ks = sorted(int(key.split("@")[1]) for key in metrics if key.startswith("text_to_video/R@"))
    rows = []
    for direction, words in _DIRECTION_NAMES.items():
        for k in ks:
            key = f"{direction}/R@{k}"
            rows.append((f"{split}/Recall@{k} ({words})", metrics[key], reference.get(key)))
        rows.append((f"{split}/MdR ({words})", metrics[f"{direction}/MdR"], None))
        rows.append((f"{split}/MnR ({words})", metrics[f"{direction}/MnR"], None))
    header = ("Test metric", "This run", "torchmultimodal (published)")
    width = max(len(header[0]), *(len(name) for name, _, _ in rows))
    rule = "\u2500" * (width + 2 + 12 + 30)
    lines = [rule, f"{header[0]:<{width}}  {header[1]:>10}  {header[2]:>28}", rule]
    for name, value, published in rows:
        shown = "-" if published is None else f"{published:.2f}"
        lines.append(f"{name:<{width}}  {value:>10.2f}  {shown:>28}")
    lines.append(rule)
    return "\n".join(lines)


def write_model_card(
    path: str | os.PathLike,
    metrics: dict[str, Any],
    model_name: str,
    dataset_name: str,
    split: str = "test",
    dataset_config: str | None = None,
    source_name: str | None = None,
    source_url: str | None = None,
) -> tuple[Path, int]:
    """Writes the figures into a model card's ``model-index`` (huggingface_hub `EvalResult`s), offline.

    The Hub groups a model-index by task, dataset type, config, split and revision (not by dataset name), so a
    result already in the card with the same group and metric type is the same claim and is replaced;
    everything else is kept. A missing card is created with a minimal body.

    Args:
        path: the README.md.
        metrics: `RetrievalMetrics.to_dict()`.
        model_name: the model-index's name when the card has none.
        dataset_name: e.g. "MUGEN" (the model-index's dataset name).
        split: the dataset split. Defaults to "test".
        dataset_config: tells apart evaluations of the same split that are not comparable (the synthetic
            sample, a --limit). Defaults to `None`: the full split of the real dataset, the published figures' group.
        source_name / source_url: where the results come from (huggingface_hub needs both or neither).
            Default: none.

    Returns:
        `(path, replaced)`: the path written and how many existing results were replaced.
    """
    from huggingface_hub import EvalResult, ModelCard, ModelCardData

    path = Path(path)
    new_results = [
        EvalResult(
            task_type=task_type, task_name=task_name, dataset_type="mugen", dataset_name=dataset_name,
            dataset_config=dataset_config, dataset_split=split, metric_type=metric_type, metric_name=metric_name,
            metric_value=round(float(value), 2), source_name=source_name, source_url=source_url,
        )
        for task_type, task_name, metric_type, metric_name, value in _card_metrics(metrics)
    ]
    if path.is_file():
        card = ModelCard.load(path)
    else:
        card = ModelCard(
            f"---\n{ModelCardData(model_name=model_name).to_yaml()}\n---\n\n# {model_name}\n\n"
            "Evaluation results written by `videoclip evaluate`.\n"
        )
    old_results = card.data.eval_results or []
    claims = {(new.unique_identifier, new.metric_type) for new in new_results}
    kept = [old for old in old_results if (old.unique_identifier, old.metric_type) not in claims]
    card.data.eval_results = kept + new_results
    if not card.data.model_name:
        card.data.model_name = model_name
    path.parent.mkdir(parents=True, exist_ok=True)
    card.save(path)
    return path, len(old_results) - len(kept)


def _card_metrics(metrics: dict[str, Any]) -> list[tuple[str, str, str, str, float]]:
    """`(task_type, task_name, metric_type, metric_name, value)` for every figure, named as hub_configs' cards."""
    rows = []
    for direction, (task_type, task_name) in _CARD_TASKS.items():
        for key, value in metrics.items():
            if not key.startswith(direction + "/"):
                continue
            metric = key.split("/", 1)[1]
            if metric.startswith("R@"):
                rows.append((task_type, task_name, f"recall@{metric[2:]}", f"Recall@{metric[2:]}", value))
            else:
                metric_type = {"MdR": "median_rank", "MnR": "mean_rank"}[metric]
                rows.append((task_type, task_name, metric_type, metric, value))
    return rows


def _run_evaluate(args: argparse.Namespace) -> int:
    from .retrieval import embed_dataset, retrieval_metrics

    _check_data_args(args)
    for value, option in ((args.json, "--json"), (args.model_card, "--model-card"), (args.save_embeddings, "--save-embeddings")):
        _check_output_path(value, option)
    device = resolve_device(args.device)
    loaded = load_videoclip(args.model, device)
    dataset, description = _load_pool(args)
    if len(dataset) < 2:
        raise CommandError(f"{description} has {len(dataset)} clip; retrieval needs at least 2")
    text_embeds, video_embeds = embed_dataset(
        loaded.model, loaded.processor, dataset, batch_size=args.batch_size, num_workers=args.num_workers
    )
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        metrics = retrieval_metrics(text_embeds, video_embeds).to_dict()
    print(f"Model: {args.model}")
    print(f"Data: {description} ({metrics['num_pairs']} pairs)")
    print(format_results_table(metrics, args.split))
    for warning in caught:
        print(f"Note: {warning.message}")
    if description.startswith("synthetic") or args.limit is not None or args.split != "test":
        print("The published column is the MUGEN weights on the full MUGEN test set; this run is not that set.")
    record = {
        "model": args.model, "data": description, "split": args.split, "limit": args.limit,
        "metrics": metrics, "reference": {"source": "torchmultimodal MUGEN retrieval (full test set)", **REFERENCE_RESULTS},
    }
    if args.json:
        _write_json(args.json, record)
        print(f"Wrote {args.json}")
    if args.save_embeddings:
        _save_embeddings(args.save_embeddings, text_embeds, video_embeds, dataset)
        print(f"Wrote {args.save_embeddings}")
    if args.model_card:
        name, config = _card_dataset(description, args.limit, len(dataset))
        name = args.dataset_name or name
        _, replaced = write_model_card(args.model_card, metrics, Path(args.model.rstrip("/")).name, name, args.split, config)
        print(
            f"Wrote the figures into the model-index of {args.model_card} (dataset {name!r}, config {config}, split "
            f"{args.split}{f'; replaced {replaced} earlier results of that group' if replaced else ''})"
        )
    return 0


def _card_dataset(description: str, limit: int | None, count: int) -> tuple[str, str | None]:
    """The model-index dataset name and config of an evaluation (see `write_model_card`)."""
    synthetic = description.startswith("synthetic")
    name = "MUGEN synthetic sample" if synthetic else "MUGEN"
    config = "synthetic-sample" if synthetic else None
    if limit is not None:
        name += f" (first {count} clips)"
        config = f"{config or 'full'}-first-{count}"
    return name, config


def _write_json(path: str, record: dict[str, Any]) -> None:
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    Path(path).write_text(json.dumps(record, indent=1) + "\n")


def _save_embeddings(path: str, text_embeds: torch.Tensor, video_embeds: torch.Tensor, dataset) -> None:
    ids, texts = metadata_columns(dataset)
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    with open(path, "wb") as handle:  # np.savez would append .npz to a path without it
        np.savez(handle, text_embeds=text_embeds.numpy(), video_embeds=video_embeds.numpy(),
                 ids=np.array(ids), texts=np.array(texts))


# ----------------------------------------------------------------------------------------------------
# retrieve
# ----------------------------------------------------------------------------------------------------


def _load_embeddings(path: str) -> dict[str, Any]:
    if not os.path.isfile(path):
        raise CommandError(f"--embeddings {path!r} does not exist", exit_code=2)
    try:
        with np.load(path, allow_pickle=False) as stored:
            pool = {key: stored[key] for key in ("text_embeds", "video_embeds", "ids", "texts")}
    except (OSError, ValueError, KeyError) as error:
        raise CommandError(f"--embeddings {path!r} is not a file written by `videoclip evaluate --save-embeddings` ({error})") from error
    return {
        "text_embeds": torch.from_numpy(pool["text_embeds"]).float(),
        "video_embeds": torch.from_numpy(pool["video_embeds"]).float(),
        "ids": [str(x) for x in pool["ids"]], "texts": [str(x) for x in pool["texts"]],
    }


def _pool_embeddings(args: argparse.Namespace, loaded: LoadedModel, side: str) -> tuple[torch.Tensor, list[str], list[str], Any]:
    """The pool's embeddings of one side ("video" or "text"), its clip ids and captions, and the dataset."""
    from .retrieval import embed_texts, embed_videos

    if args.embeddings:
        pool = _load_embeddings(args.embeddings)
        limit = args.limit or len(pool["ids"])
        return pool[f"{side}_embeds"][:limit], pool["ids"][:limit], pool["texts"][:limit], None
    dataset, _ = _load_pool(args)
    ids, texts = metadata_columns(dataset)
    if side == "text":
        return embed_texts(loaded.model, loaded.processor, texts), ids, texts, dataset
    videos = embed_videos(loaded.model, loaded.processor, dataset, batch_size=args.batch_size, num_workers=args.num_workers)
    return videos, ids, texts, dataset


def _run_retrieve(args: argparse.Namespace) -> int:
    from .retrieval import embed_texts, embed_videos, search_embeddings
    from .video_processing_videoclip import decode_video_file

    _check_data_args(args)
    _check_output_path(args.json, "--json")
    if args.video is not None and not os.path.isfile(args.video):
        raise CommandError(f"--video {args.video!r} does not exist", exit_code=2)
    if args.query is not None and not args.query.strip():
        raise CommandError("--query is empty; give a caption to search for", exit_code=2)
    device = resolve_device(args.device)
    loaded = load_videoclip(args.model, device)
    query_frames = None
    if args.query is not None:
        pool, ids, texts, dataset = _pool_embeddings(args, loaded, "video")
        query = embed_texts(loaded.model, loaded.processor, [args.query], progress=False)[0]
    else:
        query_frames = decode_video_file(args.video)
        pool, ids, texts, dataset = _pool_embeddings(args, loaded, "text")
        query = embed_videos(loaded.model, loaded.processor, [query_frames], progress=False)[0]
    if pool.shape[1] != query.shape[0]:
        raise CommandError(f"--embeddings has {pool.shape[1]}-d embeddings but the model gives {query.shape[0]}-d")
    top = search_embeddings(query, pool, args.top_k)  # exact cosine top-k; order among exact ties unspecified
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
        _write_json(args.json, {"model": args.model, "query": args.query, "video": args.video, "results": results})
        print(f"Wrote {args.json}")
    if args.out:
        files = _write_retrieval_outputs(args, results, dataset, query_frames)
        print(f"Wrote {len(files)} files to {args.out}: " + ", ".join(Path(f).name for f in files))
    return 0


def _write_retrieval_outputs(
    args: argparse.Namespace, results: list[dict[str, Any]], dataset, query_frames: np.ndarray | None
) -> list[str]:
    """For a text query: the retrieved clips as mp4 and a contact sheet; for a video query: a contact sheet."""
    from .mugen import render_clip_to_mp4
    from .visualize import SheetEntry, SheetSection, contact_sheet, save_png

    out = Path(args.out)
    files: list[str] = []
    if args.query is not None:
        if dataset is None:
            dataset, _ = _load_pool(args)
        positions = {clip_id: i for i, clip_id in enumerate(metadata_columns(dataset)[0])}
        missing = [r["id"] for r in results if r["id"] not in positions]
        if missing:
            raise CommandError(f"clips {missing} of --embeddings are not in the data; pass the --data they came from")
        entries = []
        for r in results:
            frames = dataset[positions[r["id"]]]["video"]
            files.append(str(render_clip_to_mp4(frames, out / f"rank{r['rank']}_{r['id']}.mp4")))
            entries.append(SheetEntry(f"#{r['rank']}  {r['id']}  score {r['score']:.3f}", frames=frames))
        section = SheetSection("Videos for the text", SheetEntry("query text", text=args.query, is_query=True), entries)
    else:
        entries = [SheetEntry(f"#{r['rank']}  text {r['index']}  score {r['score']:.3f}", text=r["text"]) for r in results]
        query = SheetEntry(f"query: {Path(args.video).name}", frames=query_frames, is_query=True)
        section = SheetSection("Texts for the video", query, entries)
    sheet = contact_sheet([section], title="VideoCLIP retrieval", subtitle=f"model: {args.model}")
    files.append(str(save_png(sheet, out / "contact_sheet.png")))
    return files


# ----------------------------------------------------------------------------------------------------
# train and the delegated MUGEN commands
# ----------------------------------------------------------------------------------------------------


def _run_train(args: argparse.Namespace) -> int:
    from .training import run_train

    return run_train(args)


def _training_unavailable(error: ImportError):
    def handler(args: argparse.Namespace) -> int:
        raise CommandError(f"training is not available in this installation ({error})")

    return handler


# ----------------------------------------------------------------------------------------------------
# Entry point
# ----------------------------------------------------------------------------------------------------


def _user_errors() -> tuple[type[BaseException], ...]:
    """Exceptions that are the user's to fix: shown as one line, no traceback."""
    errors: list[type[BaseException]] = [CommandError, FileNotFoundError, ValueError, OSError, KeyError]
    try:
        from .hub import UploadError

        errors.append(UploadError)
    except ImportError:
        pass
    return tuple(errors)


def _message(error: BaseException) -> str:
    if isinstance(error, KeyError) and error.args:
        text = str(error.args[0])
    else:
        text = getattr(error, "message", None) or str(error)
    text = text.strip().splitlines()[0] if text.strip() else type(error).__name__
    return text


def _command(argv: Sequence[str]) -> tuple[str | None, int]:
    """The subcommand and its position: the first argument that is not an option."""
    for position, arg in enumerate(argv):
        if not arg.startswith("-"):
            return arg, position
    return None, len(argv)


def _delegate(command: str, argv: list[str]):
    import importlib

    module, function, _ = DELEGATED[command]
    entry_point = getattr(importlib.import_module(module), function)
    return lambda: entry_point(argv)


def _exit_code(exit_: SystemExit) -> int:
    return exit_.code if isinstance(exit_.code, int) else (0 if exit_.code is None else 2)


def main(argv: Sequence[str] | None = None) -> int:
    """Runs ``videoclip``.

    Args:
        argv: the arguments, without the program name. Defaults to `sys.argv[1:]`.

    Returns:
        The exit status (see `EPILOG`); argparse's own exits (``--help``, usage errors) are returned too, not raised.
    """
    argv = list(sys.argv[1:] if argv is None else argv)
    command, position = _command(argv)
    try:
        if command in DELEGATED and all(arg == "--debug" for arg in argv[:position]):
            show_traceback = "--debug" in argv[:position]
            handler = _delegate(command, argv[position + 1 :])
        else:
            args = build_parser(with_train_options=command == "train").parse_args(argv)
            show_traceback = args.show_traceback
            handler = lambda: args.handler(args)  # noqa: E731
    except SystemExit as exit_:
        return _exit_code(exit_)
    show_traceback = show_traceback or os.environ.get("VIDEOCLIP_DEBUG") == "1"
    try:
        return int(handler() or 0)
    except SystemExit as exit_:  # a delegated command's argparse (--help, usage errors)
        return _exit_code(exit_)
    except KeyboardInterrupt:
        print(f"{PROG}: interrupted", file=sys.stderr)
        return 130
    except _user_errors() as error:
        if show_traceback:
            traceback.print_exc()
        print(f"{PROG}: error: {_message(error)}", file=sys.stderr)
        return error.exit_code if isinstance(error, CommandError) else 1


if __name__ == "__main__":
    raise SystemExit(main())
