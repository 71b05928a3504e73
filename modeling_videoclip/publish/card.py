"""The model card (README.md) of a published folder: metadata, results, usage code, provenance."""

from __future__ import annotations

from typing import Any

from ..common.downloads import KNOWN_FILES, CheckpointFile
from ..configuration_videoclip import VideoCLIPConfig
from .variants import Variant

#: Appended to every card's provenance: `publish.folder.verify_folder` passed before the folder was installed.
VERIFIED_NOTE = (
    " Before upload, this folder was reloaded with `AutoModel` / `AutoProcessor` (`trust_remote_code=True`) in a "
    "fresh process and gave the same weights and embeddings as the converted model."
)


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


def results_table(results: list[dict[str, Any]]) -> str:
    """A markdown table (rows: retrieval direction, columns: metric) of the variant's results."""
    rows: dict[str, dict[str, Any]] = {}
    for result in results:
        rows.setdefault(result["task_name"], {})[result["metric_name"]] = result["value"]
    columns = list(dict.fromkeys(result["metric_name"] for result in results))
    lines = ["| Direction | " + " | ".join(columns) + " |", "|---|" + "---|" * len(columns)]
    for task, values in rows.items():
        lines.append(f"| {task} | " + " | ".join(f"{values[c]:.2f}" if c in values else "" for c in columns) + " |")
    return "\n".join(lines)


def shows_results(mode: str, variant: Variant, checkpoint: CheckpointFile | None) -> bool:
    """Whether the card claims the variant's published results (``--card-results``): "yes"/"no" force it; "auto"
    only for the variant's official checkpoint (its URL, or its sha256 where known)."""
    if mode in ("yes", "no"):
        return mode == "yes"
    if checkpoint is None:
        return False
    official = set(variant.spec.get("official_checkpoints") or [c for c in [variant.default_checkpoint] if c])
    known = {KNOWN_FILES[url].sha256 for url in official if url in KNOWN_FILES and KNOWN_FILES[url].sha256}
    return checkpoint.url in official or checkpoint.sha256 in known


def render_model_card(
    variant: Variant, repo_id: str, config: VideoCLIPConfig, provenance: str, include_results: bool,
    revision: str | None = None, base_model: list[str] | None = None,
) -> str:
    """The README.md: YAML metadata (library, licence, tags, datasets, base_model, model-index) and the template.

    Args:
        variant: supplies the template, the metadata defaults and the published results.
        repo_id: used in the usage code (a placeholder when the folder is not uploaded).
        include_results: put the variant's published Recall@K in the model-index and the card.
        base_model: overrides the variant's ``base_model`` (``--base-model``, for finetunes of a published model).
    """
    from huggingface_hub import EvalResult, ModelCard, ModelCardData

    card = {"library_name": "transformers", **variant.spec.get("card", {})}
    if base_model is not None:
        card["base_model"] = base_model
    results = list(variant.spec.get("results") or []) if include_results else []
    dataset = variant.spec.get("results_dataset", {})
    source = variant.spec.get("results_source", {})
    where = dict(
        dataset_type=dataset.get("type", "mugen"), dataset_name=dataset.get("name", "MUGEN"),
        dataset_split=dataset.get("split"), source_name=source.get("name"), source_url=source.get("url"),
    )
    eval_results = [
        EvalResult(task_type=r["task_type"], task_name=r["task_name"], metric_type=r["metric_type"],
                   metric_name=r["metric_name"], metric_value=r["value"], **where)
        for r in results
    ]
    card_data = ModelCardData(**card, model_name=repo_id.split("/")[-1], eval_results=eval_results or None)
    processor = variant.video_processor
    rendered = ModelCard.from_template(
        card_data, template_path=str(variant.directory / "README.md.jinja"),
        title=variant.spec.get("title", variant.name), summary=variant.spec.get("summary", ""),
        usage_code=usage_code(repo_id, revision), provenance=provenance,
        projection_dim=config.projection_dim, num_frames=processor.get("num_frames", 32),
        height=processor.get("size", {}).get("height", 224), width=processor.get("size", {}).get("width", 224),
        results_table=results_table(results) if results else "", results_source_url=source.get("url", ""),
    )
    return str(rendered).rstrip() + "\n"
