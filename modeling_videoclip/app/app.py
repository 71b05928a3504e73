"""The VideoCLIP browser app (Gradio): text -> videos over a pool of clips, video -> texts, and zero-shot labels.

`VideoCLIPApp` holds the model, the pool and its embeddings (computed once, when the app starts) and answers the
three questions; `build_interface` lays them out as three tabs. ``videoclip app`` (`cli.app`) runs it on
127.0.0.1; `space.write_space` lays it out as a Hugging Face Space. Results are playable mp4 clips (PyAV) with
their scores. Without a model, the weights are random (`cli.demo.load_demo_weights`) and say so everywhere.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from ..common.errors import CommandError, ExitCode
from ..pipeline_videoclip import DEFAULT_HYPOTHESIS_TEMPLATE, VideoCLIPZeroShotVideoClassificationPipeline
from ..retrieval.visualize import RANDOM_WEIGHTS_LABEL

Log = Callable[[str], None]

DEFAULT_POOL_SIZE = 8  # clips of the default pool: the tutorial's batch (cli.demo.TUTORIAL_BATCH_SIZE)
DEFAULT_TOP_K = 4  # results shown per query
DEFAULT_LABELS = "jumps, climbs a ladder, collects a coin, is killed by a monster"  # MUGEN's events
VIDEO_CHUNK = 2  # videos per forward pass while embedding the pool: S3D is slow on a CPU; the demo's chunk
TITLE = "VideoCLIP: video-text retrieval and zero-shot classification"


@dataclass
class AppOptions:
    """What the app serves.

    Args:
        model: a saved VideoCLIP (folder or Hub id). Default None: `weights` decides.
        weights: without `model`: "auto" (the MUGEN weights when obtainable, else random), "mugen" or "random", as
            ``videoclip demo``. Defaults to "auto".
        pool: the clips searched: anything `data.load_split` reads. Default None: the synthetic MUGEN sample.
        split: the pool's split. Defaults to "test", the tutorial's.
        limit: the first N clips of the split. Defaults to `DEFAULT_POOL_SIZE` (8).
        num_frames: frames per clip for the model. Default None: the processor's (32 for MUGEN's).
        device: "cpu", "cuda", ... Default None: CUDA when available.
        clips_dir: where the result mp4 files go. Default None: a new temporary folder.
        text_column / video_column: the pool's columns, as `data.load_split`'s.
    """

    model: str | None = None
    weights: str = "auto"
    pool: str | None = None
    split: str = "test"
    limit: int | None = DEFAULT_POOL_SIZE
    num_frames: int | None = None
    device: str | None = None
    clips_dir: str | os.PathLike | None = None
    text_column: str | None = None
    video_column: str | None = None


@dataclass
class RankedClip:
    """One result of `VideoCLIPApp.search_videos`: the pool clip's mp4, score, caption and position."""

    path: str
    score: float
    caption: str
    index: int


class VideoCLIPApp:
    """The model, the pool (its clips written once as mp4) and the pool's embeddings, and the three queries.

    Args:
        options: see `AppOptions`.
        log: for progress notes. Defaults to `print`.
    """

    def __init__(self, options: AppOptions, log: Log = print):
        from ..cli.demo import RANDOM_PREFIX, load_demo_weights
        from ..cli.shared import reading_data, resolve_device
        from ..data import captions, load_split
        from ..mugen import render_clip_to_mp4
        from ..retrieval import embed_texts, embed_videos
        from ..video_processing_videoclip import read_video_frames

        device = resolve_device(options.device)
        dataset = load_split(options.pool, options.split, text_column=options.text_column,
                             video_column=options.video_column, log=log)
        if options.limit is not None:
            dataset = dataset.select(range(min(options.limit, len(dataset))))
        self.captions = captions(dataset, "text")
        loaded = load_demo_weights(options.model, self.captions, device, options.weights, log)
        if options.num_frames is not None:
            loaded.processor.video_processor.num_frames = options.num_frames
        self.model, self.processor = loaded.model.eval(), loaded.processor
        self.weights, self.random_weights = loaded.description, loaded.random_weights
        self.clips_dir = Path(options.clips_dir or tempfile.mkdtemp(prefix="videoclip-app-"))
        self.clips_dir.mkdir(parents=True, exist_ok=True)
        log(f"Embedding {len(dataset)} pool clips with {self.weights} (once) ...")
        with reading_data():
            videos = [dataset[i]["video"] for i in range(len(dataset))]
            prefix = RANDOM_PREFIX if self.random_weights else ""
            self.clip_paths = [
                str(render_clip_to_mp4(read_video_frames(video), self.clips_dir / f"{prefix}clip_{i}.mp4"))
                for i, video in enumerate(videos)
            ]
            self.video_embeds = embed_videos(self.model, self.processor, videos, VIDEO_CHUNK, progress=False)
        self.text_embeds = embed_texts(self.model, self.processor, self.captions, progress=False)
        self.classifier = VideoCLIPZeroShotVideoClassificationPipeline(
            model=self.model, processor=self.processor, device=device
        )

    @property
    def tag(self) -> str:
        """" [RANDOM WEIGHTS]" for random weights, else "": appended to every result's heading."""
        return f" [{RANDOM_WEIGHTS_LABEL}]" if self.random_weights else ""

    def search_videos(self, query: str, k: int = DEFAULT_TOP_K) -> list[RankedClip]:
        """The `k` pool clips closest to the text `query`, best first."""
        from ..retrieval import embed_texts, search

        query = _required_text(query, "a text query")
        result = search(self.video_embeds, embed_texts(self.model, self.processor, query, progress=False)[0],
                        k=min(k, len(self.clip_paths)))
        return [RankedClip(self.clip_paths[i], float(s), self.captions[i], int(i))
                for s, i in zip(result.scores.tolist(), result.indices.tolist())]

    def rank_texts(self, video: Any, extra_texts: Sequence[str] = (), k: int | None = None) -> list[tuple[str, float]]:
        """The pool's captions and `extra_texts` ranked for `video` (anything the processor reads: an uploaded
        file's path, ...), best first, as `(text, cosine similarity)`."""
        from ..retrieval import embed_texts, embed_videos, similarity

        if video is None:
            raise CommandError("upload a video (or pick a pool clip) first", ExitCode.USAGE)
        new = [text for text in dict.fromkeys(t.strip() for t in extra_texts) if text and text not in self.captions]
        text_embeds = self.text_embeds
        if new:
            text_embeds = torch.cat([text_embeds, embed_texts(self.model, self.processor, new, progress=False)])
        video_embeds = embed_videos(self.model, self.processor, [video], batch_size=1, progress=False)
        scores = similarity(video_embeds, text_embeds)[0].tolist()
        ranked = sorted(zip(self.captions + new, scores), key=lambda pair: -pair[1])
        return ranked[:k]

    def classify(self, video: Any, labels: str | Sequence[str], template: str = DEFAULT_HYPOTHESIS_TEMPLATE):
        """The zero-shot pipeline's `{"label", "score"}` list for `video` and `labels` (a list or comma-separated)."""
        if video is None:
            raise CommandError("upload a video first", ExitCode.USAGE)
        return self.classifier(video, candidate_labels=labels, hypothesis_template=template or "{}")


def _required_text(text: str | None, what: str) -> str:
    if not text or not text.strip():
        raise CommandError(f"type {what} first", ExitCode.USAGE)
    return text.strip()


def build_interface(app: VideoCLIPApp):
    """The Gradio `Blocks` of `app`: a weights banner and the three tabs. Errors show in the page (`gr.Error`)."""
    import gradio as gr

    def guarded(function):
        def run(*args):
            try:
                return function(*args)
            except (CommandError, ValueError) as error:
                raise gr.Error(str(getattr(error, "message", error))) from error

        return run

    def search_tab(query: str, k: float):
        clips = app.search_videos(query, int(k))
        gallery = [(clip.path, f"#{rank} score {clip.score:.3f}: {clip.caption}") for rank, clip in
                   enumerate(clips, 1)]
        lines = [f"**Videos for “{query.strip()}”{app.tag}**", "", "| rank | clip | score | caption |",
                 "|---|---|---|---|"]
        lines += [f"| {rank} | clip {clip.index} | {clip.score:.3f} | {clip.caption} |" for rank, clip in
                  enumerate(clips, 1)]
        return gallery, "\n".join(lines)

    def texts_tab(upload: str | None, pool_clip: str | None, extra: str):
        video = upload or (app.clip_paths[int(pool_clip.split()[1])] if pool_clip else None)
        ranked = app.rank_texts(video, extra.splitlines(), k=10)
        lines = [f"**Texts for the video{app.tag}**", "", "| rank | score | text |", "|---|---|---|"]
        lines += [f"| {rank} | {score:.3f} | {text} |" for rank, (text, score) in enumerate(ranked, 1)]
        return video, "\n".join(lines)

    def labels_tab(video: str | None, labels: str, template: str):
        results = app.classify(video, labels, template)
        lines = [f"**Zero-shot labels{app.tag}**", "", "| label | score |", "|---|---|"]
        lines += [f"| {r['label']} | {r['score']:.3f} |" for r in results]
        return {r["label"]: r["score"] for r in results}, "\n".join(lines)

    banner = f"## {TITLE}\n\nWeights: **{app.weights}** · pool: {len(app.clip_paths)} clips"
    if app.random_weights:
        banner += f"\n\n### ⚠ {RANDOM_WEIGHTS_LABEL}: this model is untrained, every score below is meaningless."
    with gr.Blocks(title=TITLE + app.tag, analytics_enabled=False) as demo:
        gr.Markdown(banner, elem_id="weights-banner")
        with gr.Tab("Text → videos"):
            query = gr.Textbox(label="Describe a clip", placeholder="Mugen jumps onto a ledge", elem_id="query")
            k = gr.Slider(1, len(app.clip_paths), value=min(DEFAULT_TOP_K, len(app.clip_paths)), step=1,
                          label="Results")
            search = gr.Button("Search", elem_id="search")
            gallery = gr.Gallery(label=f"Ranked clips{app.tag}", columns=4, elem_id="ranked-clips")
            ranking = gr.Markdown(elem_id="ranking")
            search.click(guarded(search_tab), [query, k], [gallery, ranking])
            query.submit(guarded(search_tab), [query, k], [gallery, ranking])
        with gr.Tab("Video → texts"):
            upload = gr.Video(label="Upload a video", sources=["upload"])
            pool_clip = gr.Dropdown([f"clip {i}" for i in range(len(app.clip_paths))], label="... or a pool clip")
            extra = gr.Textbox(label="More candidate texts (one a line)", lines=3)
            rank = gr.Button("Rank texts", elem_id="rank-texts")
            shown = gr.Video(label="The video", interactive=False)
            texts = gr.Markdown(elem_id="texts")
            rank.click(guarded(texts_tab), [upload, pool_clip, extra], [shown, texts])
        with gr.Tab("Zero-shot labels"):
            video = gr.Video(label="Upload a video", sources=["upload"], elem_id="zero-shot-video")
            labels = gr.Textbox(DEFAULT_LABELS, label="Candidate labels (comma-separated)", elem_id="labels")
            template = gr.Textbox(DEFAULT_HYPOTHESIS_TEMPLATE, label="Hypothesis template ({} is the label)")
            classify = gr.Button("Classify", elem_id="classify")
            scores = gr.Label(label=f"Labels{app.tag}", elem_id="label-scores")
            table = gr.Markdown(elem_id="label-table")
            classify.click(guarded(labels_tab), [video, labels, template], [scores, table])
    return demo


def launch(app: VideoCLIPApp, port: int | None = None, host: str | None = "127.0.0.1", block: bool = True):
    """Serves `build_interface(app)` on `host`:`port` (Default: 127.0.0.1 and Gradio's first free port from 7860;
    host None lets Gradio choose, as on Spaces, from GRADIO_SERVER_NAME). Returns the running `Blocks` when not
    `block`ing."""
    demo = build_interface(app)
    demo.launch(server_name=host, server_port=port, allowed_paths=[str(app.clips_dir)], prevent_thread_lock=not block,
                show_error=True, quiet=not block)
    return demo


__all__ = ["AppOptions", "RankedClip", "VideoCLIPApp", "build_interface", "launch"]
