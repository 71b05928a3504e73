"""``videoclip evaluate``: Recall@1/5/10, MdR and MnR both ways, as torchmultimodal's evaluation reports them."""

from __future__ import annotations

import argparse
import os
import warnings
from pathlib import Path
from typing import Any

import numpy as np

from ..common.errors import CommandError, writing
from . import shared

_DIRECTION_NAMES = {"text_to_video": "text query, video retrieval", "video_to_text": "video query, text retrieval"}
_CARD_TASKS = {  # (task_type, task_name), as hub_configs' cards name them
    "text_to_video": ("text-to-video-retrieval", "Text-to-video retrieval"),
    "video_to_text": ("video-to-text-retrieval", "Video-to-text retrieval"),
}
_CARD_RANKS = {"MdR": "median_rank", "MnR": "mean_rank"}
_REFERENCE_SOURCE = "torchmultimodal MUGEN retrieval (full test set)"


def register(subparsers) -> None:
    parser = shared.add_command(
        subparsers, "evaluate", "Recall@1/5/10, MdR and MnR in both directions",
        "Embed every clip and caption of a split and report Recall@1/5/10 (%%), median rank (MdR) and "
        "mean rank (MnR) for text->video and video->text retrieval, as torchmultimodal's evaluation reports them, "
        "next to its published figures for the MUGEN weights on the full MUGEN test set.",
    )
    shared.add_pool_options(parser, "evaluate")
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
    parser.set_defaults(handler=_run)


def _run(args: argparse.Namespace) -> int:
    from ..data import captions
    from ..publish.variants import published_results
    from ..retrieval import embed_dataset, retrieval_metrics

    loaded = shared.load_pool_model(args, "json", "model_card", "save_embeddings")
    dataset, description = shared.load_pool(args)
    if len(dataset) < 2:
        raise CommandError(f"{description} has {len(dataset)} clip; retrieval needs at least 2")
    with shared.reading_data():
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
    if args.json:
        reference = {"source": _REFERENCE_SOURCE, **published_results()}
        record = {"model": args.model, "data": description, "split": args.split, "limit": args.limit}
        shared.write_json(args.json, {**record, "metrics": metrics, "reference": reference})
    if args.save_embeddings:
        with writing(args.save_embeddings):
            Path(args.save_embeddings).parent.mkdir(parents=True, exist_ok=True)
            with open(args.save_embeddings, "wb") as handle:  # np.savez would append .npz to a path without it
                np.savez(
                    handle, text_embeds=text_embeds.numpy(), video_embeds=video_embeds.numpy(),
                    ids=np.array(captions(dataset, "id")), texts=np.array(captions(dataset, "text")),
                )
        print(f"Wrote {args.save_embeddings}")
    if args.model_card:  # the model-index dataset: a config tells apart runs not comparable to the published ones
        synthetic = description.startswith("synthetic")
        name = "MUGEN synthetic sample" if synthetic else "MUGEN"
        config = "synthetic-sample" if synthetic else None
        if args.limit is not None:
            name += f" (first {len(dataset)} clips)"
            config = f"{config or 'full'}-first-{len(dataset)}"
        name = args.dataset_name or name
        with writing(args.model_card):
            _, replaced = write_model_card(
                args.model_card, metrics, Path(args.model.rstrip("/")).name, name, args.split, config
            )
        print(
            f"Wrote the figures into the model-index of {args.model_card} (dataset {name!r}, config {config}, split "
            f"{args.split}{f'; replaced {replaced} earlier results of that group' if replaced else ''})"
        )
    return 0


def format_results_table(metrics: dict[str, Any], split: str = "test") -> str:
    """`metrics` (`RetrievalMetrics.to_dict()`) as the reference's evaluation prints them (a PyTorch Lightning test
    table, one row per ``<split>/Recall@k (text query, video retrieval)``; `split` defaults to "test"), plus MdR, MnR
    and the videoclip-mugen variant's published figures (`published_results`)."""
    from ..publish.variants import published_results

    reference = published_results()
    ks = sorted(int(key.split("@")[1]) for key in metrics if key.startswith("text_to_video/R@"))
    rows = []
    for direction, words in _DIRECTION_NAMES.items():
        for k in ks:
            key = f"{direction}/R@{k}"
            rows.append((f"{split}/Recall@{k} ({words})", metrics[key], reference.get(key)))
        rows.append((f"{split}/MdR ({words})", metrics[f"{direction}/MdR"], None))
        rows.append((f"{split}/MnR ({words})", metrics[f"{direction}/MnR"], None))
    width = max(len("Test metric"), *(len(name) for name, _, _ in rows))
    rule = "\u2500" * (width + 2 + 12 + 30)
    lines = [rule, f"{'Test metric':<{width}}  {'This run':>10}  {'torchmultimodal (published)':>28}", rule]
    for name, value, published in rows:
        lines.append(f"{name:<{width}}  {value:>10.2f}  {'-' if published is None else f'{published:.2f}':>28}")
    return "\n".join([*lines, rule])


def write_model_card(
    path: str | os.PathLike, metrics: dict[str, Any], model_name: str, dataset_name: str, split: str = "test",
    dataset_config: str | None = None,
) -> tuple[Path, int]:
    """Writes `metrics` (`RetrievalMetrics.to_dict()`) into the ``model-index`` of the card at `path` (created with
    a minimal body if missing), offline, and returns `(path, number of earlier results replaced)`.

    The Hub groups a model-index by task, dataset type, config, split and revision (not by dataset name), so an
    earlier result of the same group and metric type is the same claim and is replaced; the rest is kept.
    `dataset_config` tells apart evaluations of one split that are not comparable (the synthetic sample, a
    --limit); `None` (the default) is the full split of the real dataset, the published figures' group.
    `model_name` names a card without one; `split` defaults to "test".
    """
    from huggingface_hub import EvalResult, ModelCard, ModelCardData

    path = Path(path)
    new_results = []
    for direction, (task_type, task_name) in _CARD_TASKS.items():
        for key, value in metrics.items():
            if not key.startswith(direction + "/"):
                continue
            metric = key.split("/", 1)[1]
            recall = metric.startswith("R@")
            new_results.append(EvalResult(
                task_type=task_type, task_name=task_name, dataset_type="mugen", dataset_name=dataset_name,
                dataset_config=dataset_config, dataset_split=split, metric_value=round(float(value), 2),
                metric_type=f"recall@{metric[2:]}" if recall else _CARD_RANKS[metric],
                metric_name=f"Recall@{metric[2:]}" if recall else metric,
            ))
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
    card.data.model_name = card.data.model_name or model_name
    path.parent.mkdir(parents=True, exist_ok=True)
    card.save(path)
    return path, len(old_results) - len(kept)
