"""End-to-end embedding of N MUGEN clips, ours vs the reference pipeline, both with DataLoader workers rendering.

Ours: ``load_mugen(sample, "test")`` + ``retrieval.embed_dataset`` (rendering and our processor in the workers). The
reference: the checkout's ``MUGENDataset``, a restated ``MUGENDataModule._custom_collate_fn`` (``VideoTransform`` in
the workers) and the reference ``CLIP`` forward, as its eval does. Its datamodule needs pytorch_lightning and its text
transform torchtext, neither installable next to torch 2.14, so both sides tokenise with a WordPiece vocabulary of
the sample's captions (the towers' cost depends on the caption lengths, not on the ids). Same sample, clips, frames
(fixed start, 32 every 3rd, 256x256), captions, batch size and workers; each timed pass starts fresh workers (the
reference loads its sprites beforehand, with its dataset; ours in each worker, inside the pass).

Run alone: ``python -m benchmarks.bench_pipeline --reference-dir PATH [--quick]``.
"""

from __future__ import annotations

import contextlib
import functools
import io
import json
import tempfile
from pathlib import Path

import torch
from torchmultimodal.transforms.video_transform import VideoTransform

from benchmarks.common import BenchOptions, Result, main, require_close, skipped, speed_result
from benchmarks.reference import import_from_checkout, model_pair
from modeling_videoclip.common.models import TOKENIZER_FROM_DATA, build_processor, load_tokenizer
from modeling_videoclip.data import captions
from modeling_videoclip.mugen import load_mugen, make_mugen_sample
from modeling_videoclip.retrieval import embed_dataset

NAMES = ("pipeline",)
BATCH_SIZE = 4  # half the tutorial's 8, so that the 8 clips of a full run make two batches
NUM_WORKERS = 2
CHECK_CLIPS = 2
# Rendered frames are pixel-identical (bench_render checks it), so the embeddings agree to the towers' tolerance.
EMBEDDING_TOLERANCE = 1e-5


def make_sample(folder: Path, num_clips: int, seed: int) -> tuple[Path, Path]:
    """A synthetic sample of `num_clips` test clips, and a copy of its release JSONs with an absolute
    ``metadata.data_folder`` (the reference resolves it against the working directory)."""
    sample = make_mugen_sample(
        folder / "sample", num_clips=2 * num_clips, seed=seed, splits=(0.0, 0.5, 0.5), short_clips=0, with_audio=False
    )
    absolute = folder / "reference_release"
    absolute.mkdir()
    for split_file in (sample / "coinrun_dataset_jsons" / "release").glob("*.json"):
        content = json.loads(split_file.read_text())
        content["metadata"]["data_folder"] = str((sample / content["metadata"]["data_folder"]).resolve())
        (absolute / split_file.name).write_text(json.dumps(content))
    return sample, absolute


def reference_collate(batch: list[dict], tokenizer, video_transform) -> dict[str, torch.Tensor]:
    """``MUGENDataModule._custom_collate_fn`` restated (in the workers): `video_transform` on the stacked videos,
    the shared tokenizer (see the module docstring) on the texts."""
    video = video_transform(torch.stack([element["video"] for element in batch]))
    text = tokenizer([element["text"] for element in batch], padding=True, return_tensors="pt")["input_ids"]
    return {"video": video, "text": text}


def reference_dataset(reference_dir: Path, sample_dir: Path, release_dir: Path):
    """The reference's MUGENDataset with VideoCLIP's evaluation settings, but a fixed start frame."""
    module = import_from_checkout(reference_dir, "examples.mugen.data.mugen_dataset")
    args = module.MUGENDatasetArgs(
        data_path=str(release_dir), asset_path=str(sample_dir / "assets"), sequence_length=32, sample_every_n_frames=3,
        resolution=256, use_manual_annotation=True, use_auto_annotation=False, fixed_start_idx=True,
        get_game_frame=True, get_text_desc=True,
    )
    with contextlib.redirect_stdout(io.StringIO()):  # it prints its progress
        return module.MUGENDataset(split="test", args=args)


def reference_pass(model, dataset, tokenizer, batch_size: int) -> tuple[torch.Tensor, torch.Tensor]:
    """One pass of the reference pipeline over `dataset`: (text_embeds, video_embeds), L2-normalised by ``CLIP``."""
    collate = functools.partial(reference_collate, tokenizer=tokenizer, video_transform=VideoTransform())
    loader = torch.utils.data.DataLoader(dataset, batch_size=batch_size, num_workers=NUM_WORKERS, collate_fn=collate)
    with torch.inference_mode():
        outputs = [model(batch["text"], batch["video"]) for batch in loader]
    return torch.cat([out.embeddings_a for out in outputs]), torch.cat([out.embeddings_b for out in outputs])


def run(options: BenchOptions) -> list[Result]:
    """The end-to-end row (skipped without ``--reference-dir``)."""
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
            return embed_dataset(ours_model, processor, dataset, batch_size=batch_size, num_workers=NUM_WORKERS,
                                 progress=False)

        def run_reference(clips: int = num_clips) -> tuple[torch.Tensor, torch.Tensor]:
            dataset = reference if clips == num_clips else torch.utils.data.Subset(reference, range(clips))
            return reference_pass(reference_model, dataset, processor.tokenizer, batch_size)

        # The check runs on the first clips only (the same code path), to keep the run short.
        checked = zip(("text", "video"), run_ours(CHECK_CLIPS), run_reference(CHECK_CLIPS))
        difference = max(require_close(a, b, EMBEDDING_TOLERANCE, f"{name} ({what})") for what, a, b in checked)
        notes = f"batch {batch_size}, {NUM_WORKERS} DataLoader workers rendering, model in the main process; both "
        notes += "sides tokenise with a vocabulary of the sample's captions (torchtext unavailable); diff over "
        notes += "L2-normalised text and video embeddings"
        repeats = options.repeats(3, 1)
        return [speed_result(name, run_ours, run_reference, repeats, ">= 1.5x", difference, notes, num_clips, "clips")]


if __name__ == "__main__":
    raise SystemExit(main([__spec__.name], description=__doc__))
