"""``stylize_video``: a frame sequence stylized on one Dask cluster, frame windows in flight.

Stages (each resumable from the records in ``<out>.video-state``, see
:mod:`urst_dask.io.framestore`):

1. **probe** - each frame's colour histogram and, for ``per-frame``/``ema``, its own
   thumbnail statistics; up to ``2 x in_flight`` frames read at once, results recorded per frame.
2. **statistics** - cuts from the histograms (:mod:`.cuts`), then each frame's statistics
   by the policy (:mod:`.policy`); a ``shot``'s mosaic statistics are one task per shot.
3. **tiles** - each frame's tile graph (:func:`urst_dask.pipeline.tiles.tile_graph`) ends in one
   task that writes the frame (temporary name + rename, or its Zarr chunks); up to
   ``in_flight`` frames are in flight, and a new one is submitted as soon as one finishes, so
   the workers never wait at a frame boundary.  A frame's done record is written after the
   frame.
4. **finish** - a video output is encoded from the stylized frames (kept in the records
   until then); the metadata (policy, cuts, each frame's statistics key) is written with
   status ``complete``; the records are removed.

A frame that cannot be read stops the run after the frames before it are written; the
error names it, and the same command resumes once it is fixed.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import time
from pathlib import Path
from typing import Any

import dask
import dask.array as da
import numpy as np
from distributed import as_completed

from .._version import __version__
from ..engine import ModelSpec, probe
from ..engine.probe import PrecisionChoice
from ..errors import InputImageError, OutputError, ParameterError, UrstError
from ..io import framestore
from ..io.lock import output_lock
from ..io.weights import files_record, network_digest
from ..logs import LOGGER
from ..models import method_entry
from ..settings import ComputeOptions, NormMode, Precision, StyleOptions
from ..stats import NormStats, StyleCode
from ..tiling import TilePlan, WindowJob
from ..video import cuts as cut_mod
from ..video import encode as encoder
from ..video import options, tasks
from ..video.policy import StatsPolicy, VideoOptions, ema_sequence
from ..video.sequence import Output, Sequence, check_replace, decode_video, open_sequence, plan_output, remove_previous, stale_records
from .cluster import check_client, connect, gpu_resources
from .conditioning import model_info, preload_network
from .config import RunConfig
from .earlystart import start_early
from .inputs import network, style_input
from .progress import run as run_graph
from .provenance import fingerprint, plain
from .tiles import tile_graph


def _log(progress: bool, text: str) -> None:
    if progress:
        LOGGER.info(text)


def _asdict(opts: StyleOptions) -> dict[str, Any]:
    """The style options as the fingerprint has always recorded them (the intensity as its string)."""
    return {**dataclasses.asdict(opts), "intensity": plain(opts)["intensity"]}


def stylize_video(
    content: str | os.PathLike[str],
    style: str | os.PathLike[str],
    out: str | os.PathLike[str],
    *,
    config: RunConfig | None = None,
    video: VideoOptions | None = None,
    client: Any = None,
    **overrides: Any,
) -> Path:
    """Stylize a frame sequence ``content`` with the style image ``style`` into ``out``.

    ``content``: a folder or glob of frames (PNG/TIFF 8/16-bit, JPEG, EXR float in [0, 1]),
    a (T, H, W, C) Zarr store, or a video file (mp4/mov/mkv, PyAV).  ``out``: a ``.zarr``
    (T, H, W, C) store in the input dtype, a video file, or a frame folder (names and bit
    depth kept).  Video settings (:class:`VideoOptions`, or as keywords): ``stats_policy``
    (``"per-frame" | "shot" | "ema"``), ``ema_decay``, ``cut_threshold``, ``shot_frames``,
    ``in_flight`` (frames at once), ``format`` (folder output: png/tif/exr/jpg), ``codec``,
    ``crf``, ``pix_fmt``, ``fps`` (video from frames).  The run's settings: ``config`` (a
    :class:`~urst_dask.pipeline.config.RunConfig`) and/or :func:`urst_dask.stylize`'s flat
    keywords (``method``, ``alpha``, ``stride``, ``margin``, ``blend``, ``thumb_size``,
    ``device``, ``workers``, ``overwrite``, ``progress``...); ``norm`` must stay ``"tin"`` and
    ``intensity`` ``"dtype"``; ``backend`` stays ``"eager"`` unless given (a compiled network is
    baked for one statistics value, so per-frame and ema would compile every frame).  Rerunning
    the same call after an interruption (even kill -9) writes only the missing frames,
    byte-identical to an uninterrupted run.
    """
    vopts, rest = options.split_settings(dict(overrides), video)
    cfg = RunConfig.from_kwargs(config, "stylize_video()", **rest)
    options.refuse_still_only(cfg)
    check_client(client, cfg.cluster)
    method, variant, overwrite, progress = cfg.method, cfg.variant, cfg.flags.overwrite, cfg.flags.progress
    opts, plan, comp, clus = cfg.style, cfg.tiles, cfg.compute, cfg.cluster
    if opts.norm is not NormMode.TIN or opts.intensity.percentiles is not None:
        raise ParameterError("norm/intensity: video runs use thumbnail statistics (norm='tin') and the dtype's "
                             f"intensity range; got norm={opts.norm.value!r}, intensity={str(opts.intensity)!r}")
    entry = method_entry(method)
    if not entry.takes_style_image:
        raise ParameterError(f"method={method!r}: video runs need a style-image method (its statistics policy "
                             "applies to the thumbnail statistics)")
    _, wdir, wfiles = network(cfg, style)
    state = framestore.RunState(out)
    seq = open_sequence(content, state.work_path("input.zarr"))
    output = plan_output(out, seq, vopts.format)
    if output.kind == "video":  # a codec, pixel format or container that cannot work: refused before any work
        encoder.check_encoder(output.path, seq.shape, seq.rate, vopts)
    style_img, _, style_meta = style_input(style, True, cfg.flags.allow_large_images)
    spec = ModelSpec(method=method, weights_dir=str(wdir), variant=variant, device=comp.device,
                     files_digest=network_digest(files_record(wdir, wfiles)))
    plain = options.fingerprint_view(vopts, ("in_flight", *encoder.ENCODER))
    frames_fp = fingerprint({"version": __version__, "method": method, "variant": variant, "input": seq.identity,
                             "style": style_meta, "weights": files_record(wdir, wfiles),
                             "options": _asdict(opts), "plan": dataclasses.asdict(plan),
                             "compute": dataclasses.asdict(comp), "video": plain, "output": [output.kind, output.fmt]})
    # the frames' records are kept when only the encoder's settings change; the output's fingerprint has them
    fp = frames_fp if output.kind != "video" else \
        fingerprint({"frames": frames_fp, "encoder": {k: getattr(vopts, k) for k in encoder.ENCODER}})
    with output_lock(out):
        decided = check_replace(output, fp, overwrite, seq.files_sha256)
        if decided == "complete":
            _log(progress, f"{out} is already complete (same run): nothing to do")
            state.remove()  # records a kill left after the output was marked complete
            return output.path
        # a video's output file appears only at the end: its records alone say the run is resumable
        resumed = state.start(frames_fp) and (decided == "resume" or (output.kind == "video" and not overwrite))
        if resumed and stale_records(state, seq):
            _log(progress, "frame files changed since the interrupted run: starting over")
            resumed = False
        if not resumed:
            state.remove()
            state.start(frames_fp)
            stale_records(state, seq)
        if overwrite and decided == "new":
            remove_previous(output)
        # the worker processes start, and load the network, beside the decoding and the run's preparation
        early = start_early(clus, client)
        if early is not None:
            early.preload(preload_network, spec)
        with early or contextlib.nullcontext():
            if seq.kind == "video":
                seq = decode_video(seq, state.work_path("input.zarr"))
            ctx = _Run(seq, output, state, spec, vopts, opts, plan, comp, progress, fp)
            ctx.prepare(resumed, {"version": __version__, "method": method, "variant": variant, "style": style_meta})
            with connect(clus, client, early) as c:
                ctx.execute(c, style_img)
        return output.path


class _Run:
    """One video run's stages (see the module docstring)."""

    def __init__(self, seq: Sequence, output: Output, state: framestore.RunState, spec: ModelSpec,
                 vopts: VideoOptions, opts: StyleOptions, plan: TilePlan, comp: ComputeOptions, progress: bool,
                 fingerprint: str) -> None:
        self.seq, self.output, self.state, self.spec = seq, output, state, spec
        self.v, self.opts, self.plan, self.comp, self.progress, self.fp = vopts, opts, plan, comp, progress, fingerprint
        self.meta: dict[str, Any] = {}
        self.nonce = os.urandom(6).hex()  # task keys of this run: a rerun never meets an earlier run's failure

    def _file(self, t: int) -> Path:
        return self.output.frame_path(self.seq.out_stem(t))

    def _frames_target(self) -> Path:
        return self.output.path if self.output.kind == "zarr" else self.state.work_path("frames.zarr")

    def prepare(self, resumed: bool, meta: dict[str, Any]) -> None:
        n, (h, w, c) = len(self.seq), self.seq.shape
        # the input's absolute path: `compare --video` reads it back from any folder
        self.meta = {**meta, "fingerprint": self.fp, "input": {"path": os.path.abspath(self.seq.path),
                     "kind": self.seq.kind,
                     "frames": n, "shape": [h, w, c], "dtype": self.seq.dtype,
                     "files_sha256": self.seq.files_sha256},
                     "stats_policy": self.v.stats_policy.value, "ema_decay": self.v.ema_decay,
                     "cut_threshold": self.v.cut_threshold, "shot_frames": self.v.shot_frames}
        if self.output.kind == "folder":  # the files this run writes: what an --overwrite removes
            self.meta["format"] = self.output.fmt
            self.meta["files"] = [self._file(t).name for t in range(n)]
        target = self._frames_target()
        if self.output.kind in ("zarr", "video") and not (resumed and target.exists()):
            framestore.create_frames_zarr(target, (n, h, w, c), self.seq.dtype, {**self.meta})
            for f in (self.state.root / "done").glob("*.json"):
                f.unlink()
        if self.output.kind == "folder":
            self.output.path.mkdir(exist_ok=True)
            self.output.write_meta({**self.meta, "status": "running"})

    # -------------------------------------------------------------------- stages

    def execute(self, c: Any, style_img: Any) -> None:
        resources = gpu_resources(c)
        info = run_graph(c, model_info(self.spec, resources), progress=False, label="network")
        grid = self.plan.resolve(info.size_multiple, info.seam_margin, info.receptive_field)
        style = self._style(c, style_img, resources)
        hists, failed = self._probe(c, style, resources)
        usable = failed[0] if failed else len(self.seq)
        found = cut_mod.detect_cuts(hists[:usable], self.v.cut_threshold)
        stats, keys, usable = self._statistics(c, style, resources, found, usable, bool(failed))
        self._precision(c, style, stats, resources, usable)
        self._tiles(c, style, stats, keys, grid, resources, usable)
        if failed:
            t, msg = failed
            raise InputImageError(f"{msg} (frame {t + 1} of {len(self.seq)}); the {usable} frames before it are "
                                  "written: fix or replace it and rerun the same command to continue")
        self._finish(found, keys, stats)

    def _style(self, c: Any, style_img: Any, resources: Any) -> StyleCode:
        saved = self.state.load_arrays("stats", "style-code")
        if saved is not None:
            method = str(saved.pop("__method__"))
            return StyleCode.from_flat(method, saved)
        fut = c.submit(tasks.prepare_style, self.spec, style_img, self.opts.style_size, resources=resources)
        code = fut.result()
        self.state.save_arrays("stats", "style-code", {"__method__": np.array(code.method),
                                                       **code.to_flat()})
        return code

    def _probe(self, c: Any, style: StyleCode, resources: Any) -> tuple[list, tuple[int, str] | None]:
        """Each frame's histogram (its statistics stay in the records) and the first failed frame."""
        n = len(self.seq)
        with_stats = self.v.stats_policy is not StatsPolicy.SHOT
        hists: list = [None] * n
        for t in range(n):
            rec = self.state.load_arrays("probe", f"{t:06d}")
            if rec is not None:
                hists[t] = rec.pop("__hist__")
        todo = [t for t in range(n) if hists[t] is None]
        failed: tuple[int, str] | None = None
        style_f = c.submit(tasks.held, style, key=f"style-{self.nonce}-probe") if todo else None

        def submit(t: int):
            f = c.submit(tasks.probe, self.seq.refs[t], self.spec, style_f, self.opts.alpha, self.opts.thumb_size,
                         with_stats, resources=resources, key=f"probe-{self.nonce}-{t}")
            f.frame = t
            return f

        if todo:
            _log(self.progress, f"probe: {len(todo)} of {n} frames (histograms{', statistics' if with_stats else ''})")
        queue = iter(todo)
        pending = as_completed([submit(t) for _, t in zip(range(2 * self.v.in_flight), queue)])
        for fut in pending:
            t = fut.frame
            try:
                hist, stats = fut.result()
            except UrstError as exc:
                failed = min(failed or (t, str(exc)), (t, str(exc)))
                continue
            # a copy: the histogram is a view into the whole reply's buffer, which it kept alive
            hists[t] = np.array(hist, copy=True)
            extra = {"__method__": np.array(stats.method), **stats.to_flat()} if stats else {}
            self.state.save_arrays("probe", f"{t:06d}", {"__hist__": hist, **extra})
            nxt = next(queue, None) if failed is None else None
            if nxt is not None:
                pending.add(submit(nxt))
        return hists, failed

    def _statistics(self, c: Any, style: StyleCode, resources: Any, found: list[int],
                    usable: int, failed: bool) -> tuple[framestore.StatsList, list[str], int]:
        """Each usable frame's statistics and statistics key."""
        policy = self.v.stats_policy
        if policy is StatsPolicy.PER_FRAME:
            return framestore.SavedStats(self.state, usable), [f"frame-{t:06d}" for t in range(usable)], usable
        if policy is StatsPolicy.EMA:  # frame by frame, each average saved and read back when tiled
            own, moments = framestore.SavedStats(self.state, usable), None
            for t in range(usable):
                (smoothed,), (moments,) = ema_sequence([own[t]], {0} if t in found else set(), self.v.ema_decay, moments)
                self.state.save_stats(f"ema-{t:06d}", smoothed)
            return framestore.SavedStats(self.state, usable, ema=True), [f"ema-{t:06d}" for t in range(usable)], usable
        shot_list = cut_mod.shots(found, usable)
        if failed and shot_list:  # the shot the unreadable frame belongs to is not complete: left for the rerun
            shot_list = shot_list[:-1]
            usable = shot_list[-1][1] if shot_list else 0
        futures: dict[Any, int] = {}
        values: dict[int, NormStats] = {}
        for s, (a, b) in enumerate(shot_list):
            got = self.state.load_stats(f"shot-{s:04d}")
            if got is not None:
                values[s] = got
                continue
            refs = [self.seq.refs[t] for t in cut_mod.sample_frames(a, b, self.v.shot_frames)]
            futures[c.submit(tasks.shot_stats, refs, self.spec, style, self.opts.alpha, self.opts.thumb_size,
                             resources=resources, key=f"shot-{self.nonce}-{s}")] = s
        if futures:
            _log(self.progress, f"statistics: {len(futures)} shot mosaics")
        for fut in as_completed(list(futures)):
            s = futures[fut]
            values[s] = fut.result()
            self.state.save_stats(f"shot-{s:04d}", values[s])
        per_frame: list[NormStats] = []
        keys: list[str] = []
        for s, (a, b) in enumerate(shot_list):
            per_frame += [values[s]] * (b - a)
            keys += [f"shot-{s:04d}"] * (b - a)
        return per_frame, keys, usable

    def _precision(self, c: Any, style: StyleCode, stats: framestore.StatsList, resources: Any, usable: int) -> None:
        """``precision="auto"`` for a probed network (wct16x), settled once for the whole
        sequence: bf16 only if the probe passes on the first, middle and last frames (their
        thumbnails, with the statistics their windows use); kept for a resumed run."""
        if self.comp.precision is not Precision.AUTO or not usable:
            return
        rec = self.state.load_record("precision")
        if rec is None:
            picks = sorted({0, usable // 2, usable - 1})
            futs = [c.submit(tasks.precision_choice, self.seq.refs[t], self.spec, style, stats[t], self.opts.alpha,
                             self.opts.thumb_size, self.comp, resources=resources, key=f"precision-{self.nonce}-{t}")
                    for t in picks]
            got = [f.result() for f in futs]
            worst = None if any(g is None for g in got) else probe.worst(got)
            rec = {"choice": None if worst is None else worst.as_dict(), "frames": picks}
            self.state.save_record("precision", rec)
        if rec["choice"] is not None:
            choice = PrecisionChoice.from_dict(rec["choice"])
            self.comp = dataclasses.replace(self.comp, precision=choice.precision)
            self.meta["precision_auto"] = {**rec["choice"], "frames": rec["frames"]}
            _log(self.progress, choice.describe())

    def _frame_graph(self, t: int, stats: Any, style: Any, grid: Any, resources: Any) -> Any:
        ref = self.seq.refs[t]
        h, w, ch = self.seq.shape
        frame = da.from_delayed(dask.delayed(tasks.load, pure=False)(ref), (h, w, ch), dtype=self.seq.dtype)
        job = WindowJob(self.opts, self.comp, self.seq.dtype)
        styl = tile_graph(frame, self.spec, style, stats, grid, job, resources=resources)
        if self.output.kind == "folder":
            return dask.delayed(tasks.write_file, pure=True)(styl, str(self._file(t)), self.output.fmt)
        return dask.delayed(tasks.write_zarr, pure=True)(styl, str(self._frames_target()), t)

    def _tiles(self, c: Any, style: StyleCode, stats: framestore.StatsList, keys: list[str], grid: Any, resources: Any,
               usable: int) -> None:
        done = self.state.done()
        if self.output.kind == "folder":  # a record whose file was removed since does not count
            done = {t: r for t, r in done.items() if t < len(self.seq) and self._file(t).exists()}
        todo = [t for t in range(usable) if t not in done]
        if not todo:
            return
        _log(self.progress, f"tiles: {len(todo)} of {len(self.seq)} frames, {self.v.in_flight} in flight")
        start, count = time.perf_counter(), 0
        queue = iter(todo)

        # style and statistics go in by key: the client kept each graph's embedded data (0.3 MB a
        # frame); as tasks' results, not scattered, so that a lost worker's copy is computed again
        style_f = c.submit(tasks.held, style, key=f"style-{self.nonce}-tiles")  # held to the end
        style_key = dask.delayed(style_f)

        def submit(t: int):
            frame_stats = c.submit(tasks.held, stats[t], key=f"stats-{self.nonce}-{t}")
            f = c.compute(self._frame_graph(t, dask.delayed(frame_stats), style_key, grid, resources),
                          optimize_graph=resources is None)
            f.frame, f.stats = t, frame_stats  # held until the frame is written
            return f

        pending = as_completed([submit(t) for _, t in zip(range(self.v.in_flight), queue)])
        for fut in pending:
            fut.result()
            t = fut.frame
            self.state.mark_done(t, {"stats_key": keys[t], "stats_sha256": stats[t].token()})
            count += 1
            rate = count / max(time.perf_counter() - start, 1e-9) * 60.0
            _log(self.progress, f"frame {t + 1}/{len(self.seq)} ({self.seq.refs[t].name}) written: "
                                f"{len(done) + count}/{usable} done, {rate:.2f} frames/min")
            nxt = next(queue, None)
            if nxt is not None:
                pending.add(submit(nxt))

    def _finish(self, found: list[int], keys: list[str], stats: framestore.StatsList) -> None:
        missing = sorted(set(range(len(keys))) - set(self.state.done()))  # every frame written, once
        if missing:  # never mark complete with a frame not written
            raise OutputError(f"output={str(self.output.path)!r}: frames {missing[:5]} were not written; rerun to finish")
        frames = [{"index": t, "name": self.seq.refs[t].name, "stats_key": keys[t], "stats_sha256": stats[t].token(),
                   **({"file": self._file(t).name} if self.output.kind == "folder" else {})} for t in range(len(keys))]
        meta = {**self.meta, "cuts": found, "shots": [list(s) for s in cut_mod.shots(found, len(keys))],
                "frames": frames, "finished": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}
        if self.output.kind == "video":
            meta["video"] = encoder.encode(self.output.path, self._frames_target(), len(self.seq), self.seq.shape,
                                           self.seq.rate, self.v, self.progress)
        self.output.write_meta({**meta, "status": "complete"})
        self.state.remove()

