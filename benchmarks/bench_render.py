"""Renderer speed and fidelity: modeling_videoclip.mugen vs the reference renderer (torchmultimodal).

The reference code is not part of this project. Point ``--reference-dir`` at a checkout of
facebookresearch/multimodal (only ``examples/mugen/data/coinrun/{game,construct_from_json}.py`` are used),
e.g.::

    git clone https://github.com/facebookresearch/multimodal /tmp/mmref
    python benchmarks/bench_render.py --reference-dir /tmp/mmref

Both renderers draw the same clips (the project's synthetic sample) with the same stand-in sprites, one
process, one thread. The reference is driven exactly the way its ``MUGENDataset`` drives it (assets loaded
once per world theme with binarised alpha, then ``draw_game_frame(..., gen_original=True)`` per frame).
Printed: clips/s for each (wall clock and CPU time), the speed ratio, and the largest absolute pixel difference
over all frames. "rendering only" starts from a loaded game JSON (ours parses the frames it draws lazily, so
that parsing counts as rendering for us); "with JSON parse" adds reading the file. The garbage collector is paused
while timing (as ``timeit`` does).
Add ``--segmentation`` to compare segmentation maps as well.
"""

from __future__ import annotations

import argparse
import gc
import importlib.util
import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from modeling_videoclip.mugen import MugenRenderer, load_game, make_mugen_sample  # noqa: E402


def _import_file(name: str, path: Path):
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


class ReferenceRenderer:
    """The reference renderer, set up as ``MUGENDataset.init_game_assets`` does."""

    def __init__(self, reference_dir: Path, asset_dir: str, first_json: str, resolution: int):
        coinrun = Path(reference_dir) / "examples" / "mugen" / "data" / "coinrun"
        if not (coinrun / "construct_from_json.py").is_file():
            raise SystemExit(f"--reference-dir {reference_dir}: no examples/mugen/data/coinrun/construct_from_json.py")
        self.cfj = _import_file("_ref_construct_from_json", coinrun / "construct_from_json.py")
        self.game_mod = _import_file("_ref_game", coinrun / "game.py")
        self.resolution = resolution
        self.game = self.game_mod.Game()
        self.game.load_json(first_json)
        self.game.video_res = resolution
        smap = self.cfj.define_semantic_color_map(21)
        self.kx = self.game.zoom * resolution / self.game.maze_w
        self.ky = self.kx
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
            img = self.cfj.draw_game_frame(
                self.game, i, self.asset_map[self.game.world_theme_n], self.kx, self.ky,
                gen_original=not segmentation, bbox_smap_for_agent=True, bbox_smap_for_monsters=True,
            )
            frames.append(np.array(img))
        return np.stack(frames)


def _clip_paths(data_dir: Path) -> list:
    paths = []
    for split in ("train", "val", "test"):
        with open(Path(data_dir) / "coinrun_dataset_jsons" / "release" / f"{split}.json") as f:
            release = json.load(f)
        folder = Path(data_dir) / release["metadata"]["data_folder"]
        paths += [str(folder / d["video"]["json_file"]) for d in release["data"] if d["video"]["num_frames"] >= 96]
    return paths


def _timed(fn):
    """``(fn(), wall seconds, CPU seconds)``."""
    t, c = time.perf_counter(), time.process_time()
    out = fn()
    return out, time.perf_counter() - t, time.process_time() - c


def run(reference_dir: Path, *, data_dir=None, num_clips: int = 16, warmup_clips: int = 48,
        resolutions=(256, 224), sequence_length: int = 32, every: int = 3, segmentation: bool = False,
        keep_outputs: bool = False) -> list:
    """Time both renderers on the same clips; one dict of figures per resolution (see :func:`main` for the
    meaning of each argument)."""
    tmp = tempfile.TemporaryDirectory(prefix="mugen-bench-")
    if data_dir is None:
        data_dir = make_mugen_sample(Path(tmp.name) / "clips", num_clips=num_clips, seed=1234, short_clips=0,
                                     with_audio=False)
    else:
        data_dir = Path(data_dir)
    warm_dir = make_mugen_sample(Path(tmp.name) / "warm", num_clips=max(warmup_clips, 1), seed=4321,
                                 short_clips=0, with_audio=False, with_assets=False)
    asset_dir = str(Path(data_dir) / "assets")
    paths = _clip_paths(data_dir)[:num_clips]
    warm_paths = _clip_paths(warm_dir)[:warmup_clips]
    frame_ids = list(range(0, sequence_length * every, every))
    results = []
    for res in resolutions:
        t0 = time.perf_counter()
        ref = ReferenceRenderer(reference_dir, asset_dir, paths[0], res)
        ref_init = time.perf_counter() - t0
        t0 = time.perf_counter()
        ours = MugenRenderer(asset_dir, res)
        ours.render(load_game(paths[0]), frame_ids[:1])  # sprite loading, as the reference's init does
        our_init = time.perf_counter() - t0

        def ref_clip(p, seg=False):
            _, total, _ = _timed(lambda: ref.game.load_json(p))
            ref.game.video_res = res
            out, wall, cpu = _timed(lambda: ref.render_loaded(frame_ids, segmentation=seg))
            return out, total + wall, wall, cpu

        def our_clip(p, seg=False):
            game, total, _ = _timed(lambda: load_game(p))
            ours._levels.clear()  # every clip pays for its own level, as with shuffled training data
            out, wall, cpu = _timed(lambda: ours.render_segmentation(game, frame_ids) if seg else ours.render(game, frame_ids))
            return out, total + wall, wall, cpu

        for p in warm_paths:
            our_clip(p)
        # Interleaved clip by clip, so load changes on a shared machine hit both renderers alike.
        # Each clip's frames are compared and dropped before the next clip, as a data loader consumes them:
        # keeping every clip alive would add page faults on fresh memory (~6 MB a clip) to both renderers.
        kept, diffs, mismatch = [], [], []
        sums = {side: np.zeros(3) for side in ("ref", "ours")}  # with parse, rendering only, rendering CPU
        # The garbage collector is paused while timing, as timeit does: a collection walks every object of the
        # process (mostly the reference renderer's), so it would land on whichever side allocated last.
        gc.collect()
        gc.disable()
        for p in paths:
            outs = {}
            for fn, side in ((ref_clip, "ref"), (our_clip, "ours")):
                outs[side], *times = fn(p)
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
        result = {
            "resolution": res, "clips": n, "frames": len(frame_ids), "reference_init_s": ref_init,
            "our_init_s": our_init,
            "render": {"reference_clips_per_s": n / ref_render, "ours_clips_per_s": n / our_render,
                       "ratio": ref_render / our_render},
            "render_cpu": {"reference_ms_per_clip": 1e3 * ref_cpu / n, "ours_ms_per_clip": 1e3 * our_cpu / n,
                           "ratio": ref_cpu / max(our_cpu, 1e-9)},
            "with_parse": {"reference_clips_per_s": n / ref_total, "ours_clips_per_s": n / our_total,
                           "ratio": ref_total / our_total},
            "max_abs_diff": max(diffs), "per_clip_diff": diffs, "largest_mismatch_fraction": max(mismatch),
        }
        if segmentation:
            result["segmentation_mismatch_fraction"] = max(
                float((ref_clip(p, True)[0] != our_clip(p, True)[0]).mean()) for p in paths)
        results.append(result)
    tmp.cleanup()
    return results


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--reference-dir", required=True, type=Path, help="checkout of facebookresearch/multimodal")
    parser.add_argument("--data-dir", default=None, help="a MUGEN-format folder (default: a fresh synthetic sample)")
    parser.add_argument("--num-clips", type=int, default=16, help="clips to time (16)")
    parser.add_argument("--warmup-clips", type=int, default=48,
                        help="other clips rendered first, untimed, so cross-level caches are warm as in a long "
                             "run (48; 0 measures a cold start)")
    parser.add_argument("--resolution", type=int, nargs="+", default=[256, 224], help="(256 224)")
    parser.add_argument("--sequence-length", type=int, default=32, help="frames per clip (32, MUGEN's)")
    parser.add_argument("--every", type=int, default=3, help="frame stride (3, MUGEN's)")
    parser.add_argument("--segmentation", action="store_true", help="also compare segmentation maps")
    parser.add_argument("--keep-outputs", action="store_true",
                        help="keep every rendered clip in memory until the end (adds page-fault cost to both)")
    args = parser.parse_args(argv)
    results = run(args.reference_dir, data_dir=args.data_dir, num_clips=args.num_clips,
                  warmup_clips=args.warmup_clips, resolutions=args.resolution, sequence_length=args.sequence_length,
                  every=args.every, segmentation=args.segmentation, keep_outputs=args.keep_outputs)
    for r in results:
        print(f"== resolution {r['resolution']}: {r['clips']} clips x {r['frames']} frames, one process ==")
        print(f"init (sprites): reference {r['reference_init_s']:.2f}s, ours {r['our_init_s']:.2f}s")
        x = r["render"]
        print(f"rendering only:   reference {x['reference_clips_per_s']:7.1f} clips/s, "
              f"ours {x['ours_clips_per_s']:7.1f} clips/s, ratio {x['ratio']:5.1f}x")
        x = r["render_cpu"]
        print(f"rendering CPU time (less sensitive to other load): reference {x['reference_ms_per_clip']:.1f} "
              f"ms/clip, ours {x['ours_ms_per_clip']:.1f} ms/clip, ratio {x['ratio']:5.1f}x")
        x = r["with_parse"]
        print(f"with JSON parse:  reference {x['reference_clips_per_s']:7.1f} clips/s, "
              f"ours {x['ours_clips_per_s']:7.1f} clips/s, ratio {x['ratio']:5.1f}x")
        print(f"max abs pixel difference: {r['max_abs_diff']} (per clip: {r['per_clip_diff']}); "
              f"largest fraction of differing pixels in a clip: {r['largest_mismatch_fraction']:.5f}")
        if "segmentation_mismatch_fraction" in r:
            print(f"segmentation: largest fraction of differing labels in a clip: "
                  f"{r['segmentation_mismatch_fraction']:.6f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
