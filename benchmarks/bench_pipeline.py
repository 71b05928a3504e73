"""End-to-end embedding of N MUGEN clips: ours vs the reference pipeline, both with DataLoader workers rendering.

* Ours: ``load_mugen(sample, "test")`` (lazy rendering in the workers) + ``retrieval.embed_dataset`` (our
  processor in the workers; ``get_text_features`` / ``get_video_features`` in the main process).
* Reference: ``MUGENDataset`` from ``examples/mugen/data/mugen_dataset.py`` of the ``--reference-dir`` checkout
  (renders in the workers), batched by a copy of ``MUGENDataModule._custom_collate_fn`` (stack, then
  ``VideoTransform`` on the batch, in the workers), then the reference ``CLIP`` forward (text and video
  embeddings), as its eval does. ``mugen_datamodules.py`` itself needs pytorch_lightning and the reference
  text transform needs torchtext, neither installable next to torch 2.14; so the collate is restated and both
  sides tokenise the captions with the same tokenizer: a WordPiece vocabulary of the sample's captions
  (``load_tokenizer("from-data")``), which needs no download; the towers' cost depends on the caption lengths,
  not on the ids.

Both read the same synthetic sample (``make_mugen_sample`` with its stand-in sprites), the same clips, frames
(fixed start, 32 frames every 3rd, 256x256) and manual captions, with the same batch size and worker count.
Each timed pass starts fresh DataLoader workers and ends when every embedding is computed; dataset objects
are built beforehand (the reference loads its sprites at construction, ours lazily in each worker, inside the
timed pass, as is ``load_mugen``). Before timing, the embeddings of both sides are compared.

Run alone: ``python -m benchmarks.bench_pipeline --reference-dir PATH [--quick]``.
"""

from __future__ import annotations

import contextlib
import io
import json
import tempfile
from pathlib import Path

import torch

from benchmarks.common import BenchOptions, Result, interleaved_timings, main, require_close, skipped, speed_result
from benchmarks.reference import import_from_checkout, model_pair

NAMES = ("pipeline",)
BATCH_SIZE = 4  # half the tutorial's 8, so that the 8 clips of a full run make two batches
NUM_WORKERS = 2
CHECK_CLIPS = 2
# Rendered frames are pixel-identical (bench_render checks it), so the embeddings agree to the towers' tolerance.
EMBEDDING_TOLERANCE = 1e-5


def make_sample(folder: Path, num_clips: int, seed: int) -> tuple[Path, Path]:
    """A synthetic MUGEN sample whose test split holds `num_clips` clips, and a copy of its release JSONs with
    ``metadata.data_folder`` made absolute (the reference resolves it against the working directory)."""
    from modeling_videoclip.mugen import make_mugen_sample

    sample = make_mugen_sample(
        folder / "sample", num_clips=2 * num_clips, seed=seed, splits=(0.0, 0.5, 0.5), short_clips=0, with_audio=False
    )
    release = sample / "coinrun_dataset_jsons" / "release"
    absolute = folder / "reference_release"
    absolute.mkdir()
    for split_file in release.glob("*.json"):
        content = json.loads(split_file.read_text())
        content["metadata"]["data_folder"] = str((sample / content["metadata"]["data_folder"]).resolve())
        (absolute / split_file.name).write_text(json.dumps(content))
    return sample, absolute


class ReferenceCollate:
    """``MUGENDataModule._custom_collate_fn`` restated: stack the videos, apply ``VideoTransform`` to the batch;
    texts go through the text transform (here the shared tokenizer, see the module docstring). Runs in the
    workers."""

    def __init__(self, tokenizer):
        from torchmultimodal.transforms.video_transform import VideoTransform

        self.video_transform = VideoTransform()
        self.tokenizer = tokenizer

    def __call__(self, batch: list[dict]) -> dict[str, torch.Tensor]:
        video = self.video_transform(torch.stack([element["video"] for element in batch]))
        text = self.tokenizer([element["text"] for element in batch], padding=True, return_tensors="pt")["input_ids"]
        return {"video": video, "text": text}


def reference_dataset(reference_dir: Path, sample_dir: Path, release_dir: Path):
    """The reference's MUGENDataset with VideoCLIP's evaluation settings (manual captions, 32 frames every 3rd,
    256x256), but a fixed start frame so both sides embed the same frames."""
    module = import_from_checkout(reference_dir, "examples.mugen.data.mugen_dataset")
    args = module.MUGENDatasetArgs(
        data_path=str(release_dir),
        asset_path=str(sample_dir / "assets"),
        sequence_length=32,
        sample_every_n_frames=3,
        resolution=256,
        use_manual_annotation=True,
        use_auto_annotation=False,
        fixed_start_idx=True,
        get_game_frame=True,
        get_text_desc=True,
    )
    with contextlib.redirect_stdout(io.StringIO()):  # it prints its progress
        return module.MUGENDataset(split="test", args=args)


def reference_pass(model, dataset, tokenizer, batch_size: int) -> tuple[torch.Tensor, torch.Tensor]:
    """One pass of the reference pipeline over `dataset`: (text_embeds, video_embeds), L2-normalised by ``CLIP``."""
    loader = torch.utils.data.DataLoader(
        dataset, batch_size=batch_size, num_workers=NUM_WORKERS, shuffle=False, collate_fn=ReferenceCollate(tokenizer)
    )
    texts, videos = [], []
    with torch.inference_mode():
        for batch in loader:
            output = model(batch["text"], batch["video"])
            texts.append(output.embeddings_a)
            videos.append(output.embeddings_b)
    return torch.cat(texts), torch.cat(videos)


def run(options: BenchOptions) -> list[Result]:
    """The end-to-end row (skipped without ``--reference-dir``)."""
    from modeling_videoclip.common.models import TOKENIZER_FROM_DATA, build_processor, load_tokenizer
    from modeling_videoclip.data import captions
    from modeling_videoclip.mugen import load_mugen
    from modeling_videoclip.retrieval import embed_dataset

    num_clips = 2 if options.quick else 8
    name = f"end-to-end embedding, {num_clips} MUGEN clips (render + preprocess + both towers)"
    if options.reference_dir is None:
        return [skipped(name, "needs --reference-dir (a facebookresearch/multimodal checkout)", ">= 1.5x")]
    reference_model, ours_model = model_pair(options.seed)
    batch_size = min(BATCH_SIZE, num_clips)
    with tempfile.TemporaryDirectory(prefix="videoclip-bench-pipeline-") as folder:
        sample, release = make_sample(Path(folder), num_clips, options.seed)
        reference = reference_dataset(options.reference_dir, sample, release)
        if len(reference) != num_clips:
            raise AssertionError(f"reference dataset has {len(reference)} clips, expected {num_clips}")
        texts = captions(load_mugen(sample, "test", annotation="manual"))
        processor = build_processor(load_tokenizer(TOKENIZER_FROM_DATA, texts=texts))

        def run_ours(clips: int = num_clips) -> tuple[torch.Tensor, torch.Tensor]:
            dataset = load_mugen(sample, "test", start="fixed", annotation="manual")  # part of our timed pass
            dataset = dataset if clips == num_clips else dataset.select(range(clips))
            return embed_dataset(
                ours_model, processor, dataset, batch_size=batch_size, num_workers=NUM_WORKERS, progress=False
            )

        def run_reference(clips: int = num_clips) -> tuple[torch.Tensor, torch.Tensor]:
            dataset = reference if clips == num_clips else torch.utils.data.Subset(reference, range(clips))
            return reference_pass(reference_model, dataset, processor.tokenizer, batch_size)

        # The check runs on the first clips only (the same code path), to keep the run short.
        (ours_text, ours_video), (reference_text, reference_video) = run_ours(CHECK_CLIPS), run_reference(CHECK_CLIPS)
        difference = max(
            require_close(ours_text, reference_text, EMBEDDING_TOLERANCE, name + " (text)"),
            require_close(ours_video, reference_video, EMBEDDING_TOLERANCE, name + " (video)"),
        )
        timings = interleaved_timings(run_ours, run_reference, repeats=options.repeats(3, 1))
    notes = f"batch {batch_size}, {NUM_WORKERS} DataLoader workers rendering, model in the main process; both sides "
    notes += "tokenise with a vocabulary of the sample's captions (torchtext unavailable); diff over L2-normalised "
    notes += "text and video embeddings"
    return [speed_result(name, timings, ">= 1.5x", difference, notes, num_clips, "clips")]


if __name__ == "__main__":
    from benchmarks import bench_pipeline

    raise SystemExit(main([bench_pipeline], description=__doc__))
