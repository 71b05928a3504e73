"""The zero-shot video classification pipeline (`pipeline_videoclip.py`): exact scores, batching, the label cache,
and loading from a saved folder through remote code alone in a process where the package is not importable."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from tiny_videoclip import TINY_NUM_FRAMES, random_videos, tiny_model, tiny_processor
from transformers import pipeline
from transformers.modeling_outputs import BaseModelOutputWithPooling

from modeling_videoclip import VideoCLIPZeroShotVideoClassificationPipeline
from modeling_videoclip.mugen.video import render_clip_to_mp4
from modeling_videoclip.pipeline_videoclip import CUSTOM_PIPELINES, ZERO_SHOT_VIDEO_CLASSIFICATION
from modeling_videoclip.publish import reload_check

LABELS = ["jumps", "climbs a ladder", "collects a coin"]  # words of the tiny vocabulary (tiny_videoclip.CAPTIONS)
TEMPLATE = "mugen {} ."

# A fresh process with reload_check's folder as its only PYTHONPATH entry: the package is blocked there.
REMOTE_PIPELINE = """
import json, sys
import reload_check
reload_check.block_package()
try:
    import modeling_videoclip
    raise SystemExit("package still importable")
except ModuleNotFoundError:
    pass
import numpy as np
from transformers import pipeline
from transformers.modeling_outputs import BaseModelOutputWithPooling
folder, videos_path, mp4_path, labels, template = sys.argv[1:6]
classifier = pipeline("zero-shot-video-classification", model=folder, trust_remote_code=True)
videos = list(np.load(videos_path)["videos"])
results = classifier(videos + [mp4_path], candidate_labels=json.loads(labels), hypothesis_template=template,
                     batch_size=2)
print(json.dumps({"module": type(classifier).__module__, "model_module": type(classifier.model).__module__,
                  "results": results}))
"""


@pytest.fixture(scope="module")
def model_and_processor():
    return tiny_model(logit_scale_init_value=4.0), tiny_processor()  # exp(4) ~ 55: scores far from uniform


@pytest.fixture(scope="module")
def videos():
    return random_videos(3, frames=TINY_NUM_FRAMES, size=224, seed=5)


@pytest.fixture(scope="module")
def classifier(model_and_processor):
    model, processor = model_and_processor
    return pipeline(ZERO_SHOT_VIDEO_CLASSIFICATION, model=model, processor=processor, device="cpu")


def expected_scores(model, processor, videos, texts) -> torch.Tensor:
    with torch.no_grad():
        return model(**processor(text=texts, videos=videos)).logits_per_video.softmax(dim=-1)


def as_matrix(results: list[list[dict]], labels: list[str]) -> torch.Tensor:
    return torch.tensor([[next(r["score"] for r in result if r["label"] == label) for label in labels]
                         for result in results])


def test_scores_are_the_softmax_of_the_models_logits_sorted(classifier, model_and_processor, videos):
    model, processor = model_and_processor
    assert isinstance(classifier, VideoCLIPZeroShotVideoClassificationPipeline)
    results = classifier(videos[:2], candidate_labels=LABELS, hypothesis_template=TEMPLATE, batch_size=2)
    expected = expected_scores(model, processor, videos[:2], [TEMPLATE.format(label) for label in LABELS])
    assert torch.equal(as_matrix(results, LABELS), expected)
    for result in results:
        assert [r["score"] for r in result] == sorted((r["score"] for r in result), reverse=True)
        assert [set(r) for r in result] == [{"label", "score"}] * len(LABELS)
    # "{}" classifies with the labels as written; a list of frames is one video, which gets one ranking.
    frames = [Image.fromarray(frame) for frame in videos[0]]
    single = classifier(frames, candidate_labels=LABELS, hypothesis_template="{}", top_k=2)
    plain = expected_scores(model, processor, videos[:1], LABELS)[0]
    best = plain.argsort(descending=True)[:2].tolist()
    assert [r["label"] for r in single] == [LABELS[i] for i in best]
    assert torch.allclose(torch.tensor([r["score"] for r in single]), plain[best], atol=1e-6)


def test_batches_videos_and_caches_label_embeddings(model_and_processor, videos, monkeypatch):
    """Batching and caching only: S3D is replaced by a cheap stand-in (the test above checks the real scores)."""
    model, processor = model_and_processor
    classifier = VideoCLIPZeroShotVideoClassificationPipeline(model=model, processor=processor, device="cpu")
    calls = {"text": 0, "video": []}
    text_features = model.get_text_features
    projection = torch.randn(3, model.config.projection_dim, generator=torch.Generator().manual_seed(0))

    def counting_text(*args, **kwargs):
        calls["text"] += 1
        return text_features(*args, **kwargs)

    def stand_in_video(pixel_values_videos):
        calls["video"].append(pixel_values_videos.shape[0])
        return BaseModelOutputWithPooling(pooler_output=pixel_values_videos.mean(dim=(1, 3, 4)) @ projection)

    monkeypatch.setattr(model, "get_text_features", counting_text)
    monkeypatch.setattr(model, "get_video_features", stand_in_video)
    in_twos = classifier(videos, candidate_labels=LABELS, batch_size=2)
    at_once = classifier(videos, candidate_labels=LABELS, batch_size=3)
    assert calls == {"text": 1, "video": [2, 1, 3]}  # labels embedded once; videos in batches
    assert torch.allclose(as_matrix(in_twos, LABELS), as_matrix(at_once, LABELS), atol=1e-6)
    classifier(videos[:1], candidate_labels=LABELS[:2])
    assert calls["text"] == 2  # other labels, new embeddings
    classifier.clear_label_cache()
    classifier(videos[:1], candidate_labels=LABELS)
    assert calls["text"] == 3


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        (dict(candidate_labels=[]), "candidate_labels"),
        (dict(candidate_labels=["jumps", "jumps"]), "duplicates"),
        (dict(candidate_labels=["jumps"], hypothesis_template="a video"), "hypothesis_template"),
        (dict(candidate_labels=["jumps"], top_k=0), "top_k"),
        (dict(candidate_labels=["jumps"], batch_size=0), "batch_size"),
    ],
)
def test_bad_arguments_are_named(classifier, videos, kwargs, message):
    with pytest.raises(ValueError, match=message):
        classifier(videos[0], **kwargs)


def test_saved_folder_serves_the_pipeline_from_remote_code_alone(model_and_processor, videos, tmp_path):
    model, processor = model_and_processor
    saved = tmp_path / "saved"
    model.save_pretrained(saved)
    processor.save_pretrained(saved)
    assert json.loads((saved / "config.json").read_text())["custom_pipelines"] == CUSTOM_PIPELINES
    folder = Path(shutil.copytree(saved, tmp_path / "elsewhere" / "videoclip"))  # nothing points back at the package
    np.savez(tmp_path / "videos.npz", videos=np.stack(videos[:1]))
    mp4 = render_clip_to_mp4(videos[1], tmp_path / "clip.mp4")
    env = {**os.environ, "PYTHONPATH": str(Path(reload_check.__file__).parent), "HF_HUB_OFFLINE": "1"}
    env["HF_HOME"] = str(tmp_path / "empty-hf-home")
    result = subprocess.run(
        [sys.executable, "-c", REMOTE_PIPELINE, str(folder), str(tmp_path / "videos.npz"), str(mp4),
         json.dumps(LABELS), TEMPLATE],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    remote = json.loads(result.stdout.strip().splitlines()[-1])
    assert remote["module"].startswith("transformers_modules.") and remote["module"].endswith("pipeline_videoclip")
    assert remote["model_module"].startswith("transformers_modules.")
    texts = [TEMPLATE.format(label) for label in LABELS]
    expected = expected_scores(model, processor, [videos[0], str(mp4)], texts)
    assert torch.allclose(as_matrix(remote["results"], LABELS), expected, atol=1e-6)
