"""The model card (README.md) of a published folder: metadata, results, usage code, provenance; and the
model-index entries of retrieval results (`retrieval_eval_results`), shared with ``videoclip evaluate``."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ..common.downloads import KNOWN_FILES, CheckpointFile
from ..configuration_videoclip import VideoCLIPConfig
from .variants import Variant

#: Appended to every card's provenance: `publish.folder.verify_folder` passed before the folder was installed.
VERIFIED_NOTE = (
    " Before upload, this folder was reloaded with `AutoModel` / `AutoProcessor` (`trust_remote_code=True`) in a "
    "fresh process and gave the same weights and embeddings as the converted model."
)


RESULTS_TASK_TYPE = "video-classification"
"""The Hub task id retrieval results are filed under: the Hub has no video-text retrieval task, and the cards'
``pipeline_tag`` is video-classification (X-CLIP's precedent), whose zero-shot form, a video scored against free-text
labels, is what video-to-text retrieval ranks (text-to-video ranks the same similarities the other way)."""
RESULTS_TASK_NAME = "Zero-shot video-text retrieval"
_DIRECTION_WORDS = {"text_to_video": "text to video", "video_to_text": "video to text"}
_RANK_METRIC_TYPES = {"MdR": "median_rank", "MnR": "mean_rank"}


def retrieval_eval_results(
    metrics: Mapping[str, Any], *, dataset_name: str, dataset_config: str | None, dataset_split: str = "test",
    dataset_type: str = "mugen", source_name: str | None = None, source_url: str | None = None,
    metric_args: Mapping[str, Mapping[str, Any]] | None = None,
) -> list[Any]:
    """One `huggingface_hub.EvalResult` per Recall@K, MdR and MnR entry of `metrics` (`RetrievalMetrics.to_dict()`
    keys, e.g. ``"text_to_video/R@1"``; other keys are skipped), values rounded to 2 decimals, all in one model-index
    group (`RESULTS_TASK_TYPE`, the dataset and its config). Both directions share the group, so each metric is
    told apart by its name, e.g. "Recall@1 (text to video)" (type ``recall``, ``args: {k: 1}``).

    Args:
        dataset_config: the protocol (and subset) the figures were measured with, e.g. ``"random-start"``.
        dataset_split: Defaults to "test", the published figures'.
        dataset_type: Defaults to "mugen".
        metric_args: extra ``args`` per metric key (e.g. the standard deviation over seeds).
    """
    from huggingface_hub import EvalResult

    results = []
    for key, value in metrics.items():
        direction, _, metric = key.partition("/")
        if direction not in _DIRECTION_WORDS or not (metric.startswith("R@") or metric in _RANK_METRIC_TYPES):
            continue
        recall = metric.startswith("R@")
        args = {"k": int(metric[2:])} if recall else {}
        args.update((metric_args or {}).get(key, {}))
        results.append(EvalResult(
            task_type=RESULTS_TASK_TYPE, task_name=RESULTS_TASK_NAME, dataset_type=dataset_type,
            dataset_name=dataset_name, dataset_config=dataset_config, dataset_split=dataset_split,
            metric_type="recall" if recall else _RANK_METRIC_TYPES[metric],
            metric_name=f"{'Recall@' + metric[2:] if recall else metric} ({_DIRECTION_WORDS[direction]})",
            metric_value=round(float(value), 2), metric_args=args or None, source_name=source_name,
            source_url=source_url,
        ))
    return results


def pipeline_code(repo_id: str, revision: str | None = None) -> str:
    """Python that classifies a video file among free-text labels with the published model; runs as pasted next to
    a ``clip.mp4``."""
    revision_arg = f', revision="{revision}"' if revision and revision != "main" else ""
    return f'''from transformers import pipeline

classifier = pipeline(
    "zero-shot-video-classification", model="{repo_id}", trust_remote_code=True{revision_arg}
)
classifier("clip.mp4", candidate_labels=["Mugen jumps onto a ledge.", "A snail kills Mugen."])'''


def usage_code(repo_id: str, revision: str | None = None) -> str:
    """Python that loads the published model and scores texts against a video; runs as pasted."""
    revision_arg = f', revision="{revision}"' if revision and revision != "main" else ""
    return f'''import numpy as np
import torch
from transformers import AutoModel, AutoProcessor

repo_id = "{repo_id}"
model = AutoModel.from_pretrained(repo_id, trust_remote_code=True{revision_arg}).eval()
processor = AutoProcessor.from_pretrained(repo_id, trust_remote_code=True{revision_arg})

texts = ["Mugen jumps onto a ledge.", "A snail kills Mugen."]
# A clip as uint8 RGB frames (T, H, W, 3); a video file path works too (decoded with PyAV).
video = np.random.default_rng(0).integers(0, 256, (32, 256, 256, 3), dtype=np.uint8)

inputs = processor(text=texts, videos=[video], return_tensors="pt")
with torch.no_grad():
    outputs = model(**inputs)
print(outputs.logits_per_video.softmax(dim=-1))  # (videos, texts)'''


def results_table(values: Mapping[str, float]) -> str:
    """A markdown table (rows: retrieval direction, columns: Recall@K) of Recall@K values keyed as
    `modeling_videoclip.retrieval`'s metrics (``"text_to_video/R@1"``, ...)."""
    ks = sorted({int(key.split("@")[1]) for key in values if "/R@" in key})
    lines = ["| Direction | " + " | ".join(f"Recall@{k}" for k in ks) + " |", "|---|" + "---|" * len(ks)]
    for direction, words in _DIRECTION_WORDS.items():
        cells = [f"{values[f'{direction}/R@{k}']:.2f}" if f"{direction}/R@{k}" in values else "" for k in ks]
        lines.append(f"| {words.capitalize()} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def shows_results(mode: str, variant: Variant, checkpoint: CheckpointFile | None) -> bool:
    """Whether the card's metadata claims the variant's published results as this model's (``--card-results``):
    "yes"/"no" force it; "auto" only for the checkpoint they were measured on (its URL, or its sha256 where known)
    — for videoclip-mugen ``videoclip_lightning_mugen.pt``, not ``videoclip_mugen.pt``."""
    if mode in ("yes", "no"):
        return mode == "yes"
    measured = variant.published.get("checkpoint")
    if checkpoint is None or measured is None:
        return False
    known = KNOWN_FILES.get(measured)
    return checkpoint.url == measured or (known is not None and known.sha256 == checkpoint.sha256)


def space_repo_id(variant: Variant, repo_id: str) -> str | None:
    """The demo Space of the variant's ``space`` field: an ``owner/name`` as is, a bare name in `repo_id`'s
    namespace; None without one."""
    space = variant.spec.get("space")
    if not space or "/" in space:
        return space or None
    return f"{repo_id.split('/')[0] if '/' in repo_id else '<your-namespace>'}/{space}"


def render_model_card(
    variant: Variant, repo_id: str, config: VideoCLIPConfig, provenance: str, include_results: bool,
    revision: str | None = None, base_model: list[str] | None = None,
) -> str:
    """The README.md: YAML metadata (library, pipeline tag, licence, tags, datasets, base_model, model-index) and the
    template.

    Args:
        variant: supplies the template, the metadata defaults and the published results.
        repo_id: used in the usage code (a placeholder when the folder is not uploaded).
        include_results: put the variant's published Recall@K in the model-index, as results of this checkpoint
            (`shows_results`). Without it the card still shows them, as the measured checkpoint's.
        base_model: overrides the variant's ``base_model`` (``--base-model``, for finetunes of a published model).
    """
    from huggingface_hub import ModelCard, ModelCardData

    card = {"library_name": "transformers", **variant.spec.get("card", {})}
    if base_model is not None:
        card["base_model"] = base_model
    published = variant.published
    values = published.get("values", {})
    dataset, source = published.get("dataset", {}), published.get("source", {})
    eval_results = retrieval_eval_results(
        values, dataset_name=dataset.get("name", "MUGEN"), dataset_config=published.get("protocol_config"),
        dataset_split=dataset.get("split", "test"), dataset_type=dataset.get("type", "mugen"),
        source_name=source.get("name"), source_url=source.get("url"),
    ) if include_results else []
    card_data = ModelCardData(**card, model_name=repo_id.split("/")[-1], eval_results=eval_results or None)
    processor = variant.video_processor
    measured = published.get("checkpoint", "")
    space = space_repo_id(variant, repo_id)
    rendered = ModelCard.from_template(
        card_data, template_path=str(variant.directory / "README.md.jinja"),
        title=variant.spec.get("title", variant.name), summary=variant.spec.get("summary", ""),
        usage_code=usage_code(repo_id, revision), pipeline_code=pipeline_code(repo_id, revision),
        provenance=provenance, projection_dim=config.projection_dim, num_frames=processor.get("num_frames", 32),
        height=processor.get("size", {}).get("height", 224), width=processor.get("size", {}).get("width", 224),
        results_table=results_table(values) if values else "", results_claimed=bool(eval_results),
        results_checkpoint_url=measured, results_checkpoint_name=measured.rsplit("/", 1)[-1],
        results_protocol=published.get("protocol", ""), results_source_name=source.get("name", ""),
        results_source_url=source.get("url", ""), space_id=space or "",
        space_url=f"https://huggingface.co/spaces/{space}" if space else "",
    )
    return str(rendered).rstrip() + "\n"
