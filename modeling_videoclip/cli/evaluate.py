"""``videoclip evaluate``: Recall@1/5/10, MdR and MnR both ways, as torchmultimodal's evaluation reports them, under
one of two protocols (`PROTOCOLS`): today's deterministic fixed start, or the reference's random starts over seeds."""

from __future__ import annotations

import argparse
import os
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ..common.constants import VIDEOCLIP_MUGEN
from ..common.errors import CommandError, ExitCode, first_line, writing
from . import shared

_DIRECTION_NAMES = {"text_to_video": "text query, video retrieval", "video_to_text": "video query, text retrieval"}
DEFAULT_REFERENCE_SEEDS = 5  # draws of random start frames: enough for a standard deviation; eval.yaml made one


@dataclass(frozen=True)
class EvaluationProtocol:
    """How clips are drawn for an evaluation.

    Args:
        name: the ``--protocol`` value.
        start_seeded: each clip starts at a random frame drawn per seed (`load_mugen`'s ``start="random"``);
            otherwise at frame 0.
        dataset_config: the model-index dataset config its results are filed under (`write_model_card`).
        description: what it does, for printouts, JSON and cards.
    """

    name: str
    start_seeded: bool
    dataset_config: str
    description: str


PROTOCOLS = {
    "fixed": EvaluationProtocol(
        "fixed", False, "fixed-start",
        "manual captions (the first of each clip), 256x256, 32 frames every 3rd from frame 0: deterministic",
    ),
    "reference": EvaluationProtocol(
        "reference", True, "random-start",
        "torchmultimodal's configs/eval.yaml: manual captions (the first of each clip), 256x256, 32 frames every "
        "3rd from a random start frame per clip, drawn once per seed",
    ),
}


def register(subparsers) -> None:
    parser = shared.add_command(
        subparsers, "evaluate", "Recall@1/5/10, MdR and MnR in both directions",
        "Embed every clip and caption of a split and report Recall@1/5/10 (%%), median rank (MdR) and "
        "mean rank (MnR) for text->video and video->text retrieval, as torchmultimodal's evaluation reports them, "
        "next to its published figures for the MUGEN weights on the full MUGEN test set.",
    )
    shared.add_pool_options(parser, "evaluate")
    parser.add_argument(
        "--protocol", choices=tuple(PROTOCOLS), default="fixed",
        help="fixed (default): every clip from frame 0, deterministic. reference: the protocol of torchmultimodal's "
        "published figures (configs/eval.yaml: a random start frame per clip), run once per seed; MUGEN data only",
    )
    parser.add_argument(
        "--seeds", type=shared.positive_int, metavar="N",
        help=f"--protocol reference: draw the start frames with seeds 0..N-1 and report each metric's mean and "
        f"standard deviation. Default: {DEFAULT_REFERENCE_SEEDS}",
    )
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
    from ..publish.variants import load_variant
    from ..retrieval.embedding import is_main_process, start_distributed

    protocol = PROTOCOLS[args.protocol]
    if args.seeds is not None and not protocol.start_seeded:
        raise CommandError("--seeds applies to --protocol reference (the fixed protocol is deterministic)",
                           ExitCode.USAGE)
    seeds = list(range(args.seeds or DEFAULT_REFERENCE_SEEDS)) if protocol.start_seeded else [None]
    start_distributed()  # under torchrun / accelerate launch: each rank embeds its share of the pool
    loaded = shared.load_pool_model(args, "json", "model_card", "save_embeddings")
    runs = [_evaluate_once(args, loaded, seed) for seed in seeds]
    if not is_main_process():  # every rank holds the whole pool's embeddings; rank 0 reports them
        return 0
    metrics, std = _mean_and_std([run["metrics"] for run in runs])
    dataset, description = runs[0]["dataset"], runs[0]["description"]
    print(f"Model: {args.model}")
    print(f"Data: {description} ({metrics['num_pairs']} pairs)")
    print(f"Protocol: {protocol.name}, {protocol.description}"
          + (f"; seeds {', '.join(map(str, seeds))}" if protocol.start_seeded else ""))
    print(format_results_table(metrics, args.split, std if protocol.start_seeded else None))
    for note in dict.fromkeys(note for run in runs for note in run["notes"]):
        print(f"Note: {note}")
    published = load_variant(VIDEOCLIP_MUGEN).published
    comparable = protocol.start_seeded and not description.startswith("synthetic") and args.limit is None
    if not comparable or args.split != "test":
        print(f"The published column is {published.get('checkpoint', '').rsplit('/', 1)[-1]} on the full MUGEN test "
              f"set with --protocol reference's draws (eval.yaml); this run is not that evaluation.")
    if args.json:
        reference = {"source": published.get("source", {}).get("name"), "checkpoint": published.get("checkpoint"),
                     "protocol": published.get("protocol"), **published.get("values", {})}
        record = {"model": args.model, "data": description, "split": args.split, "limit": args.limit,
                  "protocol": {"name": protocol.name, "description": protocol.description}, "metrics": metrics}
        if protocol.start_seeded:
            record.update(seeds=seeds, std=std, per_seed=[run["metrics"] for run in runs])
        shared.write_json(args.json, {**record, "reference": reference})
    if args.save_embeddings:  # of the first seed's draw
        text_embeds, video_embeds = runs[0]["embeddings"]
        with writing(args.save_embeddings):
            Path(args.save_embeddings).parent.mkdir(parents=True, exist_ok=True)
            with open(args.save_embeddings, "wb") as handle:  # np.savez would append .npz to a path without it
                np.savez(
                    handle, text_embeds=text_embeds.numpy(), video_embeds=video_embeds.numpy(),
                    ids=np.array(captions(dataset, "id")), texts=np.array(captions(dataset, "text")),
                )
        print(f"Wrote {args.save_embeddings}")
    if args.model_card:  # the model-index dataset: its config names the protocol and any subset
        synthetic = description.startswith("synthetic")
        name = "MUGEN synthetic sample" if synthetic else "MUGEN"
        config = f"synthetic-sample-{protocol.dataset_config}" if synthetic else protocol.dataset_config
        if args.limit is not None:
            name += f" (first {len(dataset)} clips)"
            config += f"-first-{len(dataset)}"
        name = args.dataset_name or name
        with writing(args.model_card):
            _, replaced = write_model_card(
                args.model_card, metrics, Path(args.model.rstrip("/")).name, name, args.split, config,
                std=std if protocol.start_seeded else None, num_seeds=len(seeds) if protocol.start_seeded else None,
            )
        print(
            f"Wrote the figures into the model-index of {args.model_card} (dataset {name!r}, config {config}, split "
            f"{args.split}{f'; replaced {replaced} earlier results of that group' if replaced else ''})"
        )
    return 0


def _evaluate_once(args: argparse.Namespace, loaded, seed: int | None) -> dict[str, Any]:
    """Embeds the pool (with the start frames of `seed`, or fixed starts for None) and computes its metrics."""
    from ..retrieval import embed_dataset, retrieval_metrics

    dataset, description = shared.load_pool(args) if seed is None else shared.load_pool(args, start_seed=seed)
    if seed is not None and not _draws_random_starts(dataset):
        raise CommandError(f"--protocol reference draws random start frames of MUGEN clips; {description} is not "
                           f"MUGEN data (use --protocol fixed)", ExitCode.USAGE)
    if len(dataset) < 2:
        raise CommandError(f"{description} has {len(dataset)} clip; retrieval needs at least 2")
    with shared.reading_data():
        embeddings = embed_dataset(
            loaded.model, loaded.processor, dataset, batch_size=args.batch_size, num_workers=args.num_workers
        )
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        metrics = retrieval_metrics(*embeddings).to_dict()
    return {"dataset": dataset, "description": description, "embeddings": embeddings, "metrics": metrics,
            "notes": [str(warning.message) for warning in caught]}


def _draws_random_starts(dataset) -> bool:
    """Whether `dataset` renders MUGEN clips from random start frames (`load_mugen`'s ``MugenTransform``)."""
    from ..data import epoch_setter

    return getattr(getattr(epoch_setter(dataset), "__self__", None), "start", None) == "random"


def _mean_and_std(runs: list[dict[str, Any]]) -> tuple[dict[str, Any], dict[str, float]]:
    """The per-metric mean over `runs` (other entries, e.g. ``num_pairs``, from the first run) and the sample
    standard deviation (ddof=1; 0 for one run)."""
    numeric = [key for key, value in runs[0].items() if "/" in key and isinstance(value, (int, float))]
    mean = {**runs[0], **{key: float(np.mean([run[key] for run in runs])) for key in numeric}}
    std = {key: float(np.std([run[key] for run in runs], ddof=1)) if len(runs) > 1 else 0.0 for key in numeric}
    return mean, std


def format_results_table(metrics: dict[str, Any], split: str = "test", std: dict[str, float] | None = None) -> str:
    """`metrics` (`RetrievalMetrics.to_dict()`, or the mean over seeds with their standard deviations `std`) as the
    reference's evaluation prints them (a PyTorch Lightning test table, one row per ``<split>/Recall@k (text query,
    video retrieval)``; `split` defaults to "test"), plus MdR, MnR and the published figures (`published_results`:
    torchmultimodal's, measured on videoclip_lightning_mugen.pt with eval.yaml's random starts)."""
    from ..publish.variants import published_results

    reference = published_results(VIDEOCLIP_MUGEN)
    ks = sorted(int(key.split("@")[1]) for key in metrics if key.startswith("text_to_video/R@"))
    rows = []
    for direction, words in _DIRECTION_NAMES.items():
        keys = [f"{direction}/R@{k}" for k in ks] + [f"{direction}/MdR", f"{direction}/MnR"]
        names = [f"{split}/Recall@{k} ({words})" for k in ks] + [f"{split}/MdR ({words})", f"{split}/MnR ({words})"]
        rows += [(name, key) for name, key in zip(names, keys)]
    width = max(len("Test metric"), *(len(name) for name, _ in rows))
    value_columns = ["This run"] if std is None else ["Mean", "Std"]
    header = "".join(f"  {column:>10}" for column in value_columns)
    lines = [f"{'Test metric':<{width}}{header}  {'published (eval.yaml draw)':>28}"]
    for name, key in rows:
        values = [metrics[key]] if std is None else [metrics[key], std[key]]
        published = reference.get(key)
        lines.append(f"{name:<{width}}" + "".join(f"  {value:>10.2f}" for value in values)
                     + f"  {'-' if published is None else f'{published:.2f}':>28}")
    rule = "\u2500" * max(len(line) for line in lines)
    return "\n".join([rule, lines[0], rule, *lines[1:], rule])


def write_model_card(
    path: str | os.PathLike, metrics: dict[str, Any], model_name: str, dataset_name: str, split: str = "test",
    dataset_config: str | None = None, std: dict[str, float] | None = None, num_seeds: int | None = None,
) -> tuple[Path, int]:
    """Writes `metrics` (`RetrievalMetrics.to_dict()`) into the ``model-index`` of the card at `path` (created with
    a minimal body if missing), offline, and returns `(path, number of earlier results replaced)`.

    The entries are `publish.card.retrieval_eval_results`' (the Hub task id ``video-classification``, one metric name
    per direction and metric). The Hub groups a model-index by task, dataset type, config, split and revision (not by
    dataset name), so an earlier result of the same group and metric name is the same claim and is replaced; the
    rest is kept. `dataset_config` names the protocol and any subset (`EvaluationProtocol.dataset_config`, e.g.
    "random-start", "synthetic-sample-fixed-start-first-3"); `None` (the default) leaves it out. `model_name` names
    a card without one; `split` defaults to "test". For a mean over seeds, `std` (the standard deviation, per metric
    key) and `num_seeds` go into each metric's ``args``.
    """
    import yaml
    from huggingface_hub import ModelCard, ModelCardData

    from ..publish.card import retrieval_eval_results

    path = Path(path)
    spread = {key: {"std": round(value, 2), "seeds": num_seeds} for key, value in (std or {}).items()}
    new_results = retrieval_eval_results(
        metrics, dataset_name=dataset_name, dataset_config=dataset_config, dataset_split=split, metric_args=spread,
    )
    if path.is_file():
        try:
            card = ModelCard.load(path)
        except (yaml.YAMLError, ValueError) as error:  # the front matter is not YAML (or not a mapping)
            raise CommandError(f"--model-card {str(path)!r} has malformed YAML front matter "
                               f"({first_line(error)}); fix it or pass a new file") from error
    else:
        card = ModelCard(
            f"---\n{ModelCardData(model_name=model_name).to_yaml()}\n---\n\n# {model_name}\n\n"
            "Evaluation results written by `videoclip evaluate`.\n"
        )
    old_results = card.data.eval_results or []
    claims = {(new.unique_identifier, new.metric_name) for new in new_results}
    kept = [old for old in old_results if (old.unique_identifier, old.metric_name) not in claims]
    card.data.eval_results = kept + new_results
    card.data.model_name = card.data.model_name or model_name
    path.parent.mkdir(parents=True, exist_ok=True)
    card.save(path)
    return path, len(old_results) - len(kept)
