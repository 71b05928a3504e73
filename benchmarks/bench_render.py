"""Renderer speed and fidelity: modeling_videoclip.mugen vs the reference renderer (torchmultimodal).

The reference code is not part of this project. Point ``--reference-dir`` at a checkout of
facebookresearch/multimodal (only ``examples/mugen/data/coinrun/{game,construct_from_json}.py`` are used),
e.g.::

    git clone https://github.com/facebookresearch/multimodal /tmp/mmref
    python -m benchmarks.bench_render --reference-dir /tmp/mmref [--num-clips 16] [--segmentation]

Both renderers draw the same clips (the project's synthetic sample) with the same stand-in sprites, one
process, one thread. The reference is driven exactly the way its ``MUGENDataset`` drives it (assets loaded
once per world theme with binarised alpha, then ``draw_game_frame(..., gen_original=True)`` per frame).
Two rows per resolution: "render" starts from a loaded game JSON (ours parses the frames it draws lazily, so
that parsing counts as rendering for us), "incl. JSON parse" adds reading the file; their notes give the CPU-time
ratio, the sprite loading times and the largest fraction of differing pixels; the max abs diff is over all
frames, in 0-255 pixel units. The garbage collector is paused while timing (as ``timeit`` does).
``--segmentation`` compares segmentation maps as well.
"""

from __future__ import annotations

import argparse
import gc
import json
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from benchmarks.common import BenchOptions, Result, check_goal, main, skipped, timed
from benchmarks.reference import import_from_checkout

NAMES = ("render",)
GOAL = ">= 10x"  # at 256, rendering only


class ReferenceRenderer:
    """The reference renderer, set up as ``MUGENDataset.init_game_assets`` does."""

    def __init__(self, reference_dir: Path, asset_dir: str, first_json: str, resolution: int):
        self.cfj = import_from_checkout(reference_dir, "examples.mugen.data.coinrun.construct_from_json")
        self.game = import_from_checkout(reference_dir, "examples.mugen.data.coinrun.game").Game()
        self.game.load_json(first_json)
        self.game.video_res = resolution
        smap = self.cfj.define_semantic_color_map(21)
        self.kx = self.ky = self.game.zoom * resolution / self.game.maze_w
        zx = resolution * self.game.zoom
        self.asset_map = {}
        for theme in range(len(self.game.background_themes)):
            self.game.world_theme_n = theme
            files = self.cfj.generate_asset_paths(self.game)
            self.asset_map[theme] = self.cfj.load_assets(files, asset_dir, smap, self.kx, self.ky, gen_original=False)
            self.asset_map[theme]["background"] = self.cfj.load_bg_asset(files, asset_dir, smap, zx, zx)

    def render_loaded(self, frame_ids, segmentation: bool = False) -> np.ndarray:
        frames = []
        for i in frame_ids:
            image = self.cfj.draw_game_frame(
                self.game, i, self.asset_map[self.game.world_theme_n], self.kx, self.ky,
                gen_original=not segmentation, bbox_smap_for_agent=True, bbox_smap_for_monsters=True,
            )
            frames.append(np.array(image))
        return np.stack(frames)


def _clip_paths(data_dir: Path) -> list[str]:
    paths = []
    for split in ("train", "val", "test"):
        release = json.loads((data_dir / "coinrun_dataset_jsons" / "release" / f"{split}.json").read_text())
        folder = data_dir / release["metadata"]["data_folder"]
        paths += [str(folder / d["video"]["json_file"]) for d in release["data"] if d["video"]["num_frames"] >= 96]
    return paths


def add_arguments(parser: argparse._ArgumentGroup) -> None:
    parser.add_argument("--data-dir", type=Path, help="a MUGEN-format folder (default: a fresh synthetic sample)")
    parser.add_argument("--num-clips", type=int, help="clips to time (16; --quick: 4)")
    parser.add_argument(
        "--warmup-clips", type=int, help="other clips rendered first, untimed, so cross-level caches are warm as in "
        "a long run (48; --quick: 8; 0 measures a cold start)",
    )
    parser.add_argument("--resolution", type=int, nargs="+", default=[256], help="(256)")
    parser.add_argument("--sequence-length", type=int, default=32, help="frames per clip (32, MUGEN's)")
    parser.add_argument("--every", type=int, default=3, help="frame stride (3, MUGEN's)")
    parser.add_argument("--segmentation", action="store_true", help="also compare segmentation maps")
    parser.add_argument(
        "--keep-outputs", action="store_true",
        help="keep every rendered clip in memory until the end (adds page-fault cost to both)",
    )


def run(
    options: BenchOptions,
    data_dir: Path | None = None,
    num_clips: int | None = None,
    warmup_clips: int | None = None,
    resolution: Sequence[int] = (256,),
    sequence_length: int = 32,
    every: int = 3,
    segmentation: bool = False,
    keep_outputs: bool = False,
) -> list[Result]:
    """Times both renderers on the same clips: two rows per resolution (see the module docstring).

    `num_clips` / `warmup_clips` default to 16 / 48 (4 / 8 with ``--quick``); the other settings are
    `add_arguments`'s flags.
    """
    names = [f"MUGEN render{part}, 1 clip of {sequence_length} frames at {res}" for res in resolution
             for part in ("", " incl. JSON parse")]
    if options.reference_dir is None:
        return [skipped(names[0], "needs --reference-dir (a facebookresearch/multimodal checkout)", GOAL)]
    num_clips = num_clips or (4 if options.quick else 16)
    warmup_clips = (8 if options.quick else 48) if warmup_clips is None else warmup_clips
    from modeling_videoclip.mugen import MugenRenderer, load_game, make_mugen_sample

    tmp = tempfile.TemporaryDirectory(prefix="mugen-bench-")
    sample = dict(seed=1234, short_clips=0, with_audio=False)
    data_dir = Path(data_dir or make_mugen_sample(Path(tmp.name) / "clips", num_clips=num_clips, **sample))
    warm_dir = make_mugen_sample(Path(tmp.name) / "warm", num_clips=max(warmup_clips, 1), **{**sample, "seed": 4321},
                                 with_assets=False)
    asset_dir = str(data_dir / "assets")
    paths, warm_paths = _clip_paths(data_dir)[:num_clips], _clip_paths(warm_dir)[:warmup_clips]
    frame_ids = list(range(0, sequence_length * every, every))
    results = []
    for res in resolution:
        start = time.perf_counter()
        ref = ReferenceRenderer(options.reference_dir, asset_dir, paths[0], res)
        ref_init = time.perf_counter() - start
        start = time.perf_counter()
        ours = MugenRenderer(asset_dir, res)
        ours.render(load_game(paths[0]), frame_ids[:1])  # sprite loading, as the reference's init does
        our_init = time.perf_counter() - start

        def ref_clip(path, seg=False):
            _, parse, _ = timed(lambda: ref.game.load_json(path))
            ref.game.video_res = res
            frames, wall, cpu = timed(lambda: ref.render_loaded(frame_ids, segmentation=seg))
            return frames, parse + wall, wall, cpu

        def our_clip(path, seg=False):
            game, parse, _ = timed(lambda: load_game(path))
            ours._levels.clear()  # every clip pays for its own level, as with shuffled training data
            render = ours.render_segmentation if seg else ours.render
            frames, wall, cpu = timed(lambda: render(game, frame_ids))
            return frames, parse + wall, wall, cpu

        for path in warm_paths:
            our_clip(path)
        # Interleaved clip by clip, so load changes on a shared machine hit both renderers alike.
        # Each clip's frames are compared and dropped before the next clip, as a data loader consumes them:
        # keeping every clip alive would add page faults on fresh memory (~6 MB a clip) to both renderers.
        kept, diffs, mismatch = [], [], []
        sums = {side: np.zeros(3) for side in ("ref", "ours")}  # with parse, rendering only, rendering CPU
        # The garbage collector is paused while timing, as timeit does: a collection walks every object of the
        # process (mostly the reference renderer's), so it would land on whichever side allocated last.
        gc.collect()
        gc.disable()
        for path in paths:
            outs = {}
            for clip, side in ((ref_clip, "ref"), (our_clip, "ours")):
                outs[side], *times = clip(path)
                sums[side] += times
            a, b = outs["ref"], outs["ours"]
            diffs.append(int(np.abs(a.astype(np.int16) - b.astype(np.int16)).max()))
            mismatch.append(float((a != b).any(-1).mean()))
            if keep_outputs:
                kept.append(outs)
            del outs, a, b
        gc.enable()
        n = len(paths)
        (ref_total, ref_render, ref_cpu), (our_total, our_render, our_cpu) = sums["ref"], sums["ours"]
        figures = {
            "resolution": res, "clips": n, "frames": len(frame_ids), "reference_init_s": ref_init,
            "our_init_s": our_init,
            "render_cpu_ms_per_clip": {"reference": 1e3 * ref_cpu / n, "ours": 1e3 * our_cpu / n},
            "per_clip_diff": diffs, "largest_mismatch_fraction": max(mismatch),
        }
        notes = (
            f"{n} clips, interleaved clip by clip, GC paused while timing; diff in 0-255 pixel units, largest "
            f"fraction of differing pixels in a clip {max(mismatch):.5f}; sprites loaded in {ref_init:.2f} s "
            f"(reference) vs {our_init:.2f} s (ours)"
        )
        if segmentation:
            labels = max(float((ref_clip(p, True)[0] != our_clip(p, True)[0]).mean()) for p in paths)
            figures["segmentation_mismatch_fraction"] = labels
            notes += f"; segmentation: largest fraction of differing labels in a clip {labels:.6f}"
        cpu_ratio = f"; CPU-time ratio {ref_cpu / max(our_cpu, 1e-9):.1f}x"
        for ref_time, our_time, goal, note in (
            (ref_render, our_render, GOAL if res == 256 else "", cpu_ratio), (ref_total, our_total, "", "")
        ):
            results.append(Result(
                name=names[len(results)], unit="clips/s", ours=n / our_time, reference=n / ref_time,
                ratio=ref_time / our_time, goal=goal, goal_met=check_goal(ref_time / our_time, goal),
                max_abs_diff=float(max(diffs)), repeats=n, notes=notes + note, extra=figures,
            ))
    tmp.cleanup()
    return results


if __name__ == "__main__":
    from benchmarks import bench_render

    raise SystemExit(main([bench_render], description=__doc__))
