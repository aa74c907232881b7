"""Streamed encode: a video of any length learned part by part, in bounded memory.

Frames stream out of ffmpeg and are cut into parts (part_plan.cut_parts: ``--segment-frames``
frames plus the next part's first); each part is one network of a streamed model (codec, tiles,
segments) of its own frames (workers.train_part), learned in this process, in ``--jobs N`` local
workers or as Ray tasks, with its share of ``--time-budget`` (time_share.BudgetShare). At most
one part per worker (plus the one being read) is in memory. Finished parts are written one file
each (part_store.PartStore); ``--resume`` keeps the finished ones and goes on in the one that was
training. The .nvw is joined from the part files at the end (nvw.join_parts), streaming, and
replaces the output all at once; the frames parts share are scored as decode plays them
(joins.JoinScores).
"""

from __future__ import annotations

import concurrent.futures
import dataclasses
import math
import os
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import numpy as np
import torch

from nvfilter import chroma, metrics
from nvfilter.config import EncodeOptions, TrainConfig, TrainResult, VideoInfo
from nvfilter.encode.budget import rate_settings
from nvfilter.encode.joins import JoinScores
from nvfilter.encode.part_plan import PartsPlan, check_room, cut_parts, kept_video
from nvfilter.encode.part_store import PartStore, parts_folder
from nvfilter.encode.run_folder import RunFolder, run_config, versions
from nvfilter.encode.source import OpenedSource, check_raw_memory, read_audio
from nvfilter.encode.time_share import BudgetShare
from nvfilter.encode.train import Progress, stop_requests
from nvfilter.encode.workers import (
    Executor,
    LocalPool,
    PartJob,
    PartResult,
    RayPool,
    edge_pictures,
    train_part,
)
from nvfilter.errors import OptionError, VideoError
from nvfilter.io import nvw
from nvfilter.io.outputs import write_chunks
from nvfilter.models import spec_of
from nvfilter.models.parts import longest_part, part_spans
from nvfilter.progress import Console, clock, human_bytes, rate_text

PARTS_RUN = "parts"
"""config.json's ``kind`` for a streamed run (what --resume looks for)."""


def make_executor(jobs: int, ray: str | None, device: str) -> Executor | None:
    """The workers a run asks for: None trains in this process."""
    if ray:
        return RayPool(ray, jobs if jobs > 1 else None, device)
    if jobs > 1:
        return LocalPool(jobs)
    return None


class PartsEncode:
    """One streamed encode: reads parts, hands them to the workers, keeps the record."""

    def __init__(self, source: str, plan: PartsPlan, store: PartStore, console: Console,
                 folder: RunFolder | None, executor: Executor | None,
                 frames_estimate: int | None) -> None:  # fmt: skip
        self.source, self.plan, self.store, self.console = source, plan, store, console
        self.folder, self.executor = folder, executor
        workers = executor.slots if executor else 1
        self.budget = BudgetShare(plan.config.time_budget, workers, frames_estimate)
        self.estimate = frames_estimate
        self.parts_estimate = (
            len(part_spans(frames_estimate, plan.part_frames)) if frames_estimate else None
        )
        self.began = time.perf_counter()
        self.frames_done = 0
        self.records: dict[int, dict[str, Any]] = {}
        self.joins = JoinScores()
        self.interrupted = False
        self.in_flight: dict[concurrent.futures.Future[PartResult], tuple[int, int, int]] = {}
        """future -> (part, frames, slot)."""
        self.free_slots = list(range(workers))
        self.stop_asked: Callable[[], bool] = lambda: False
        self.chroma = "444"
        """The frames' chroma layout (chroma.detect on the first part)."""
        self.told_fits_go_on = False
        self.matrix: str | None = None
        self.cuts: Sequence[int] = ()
        """The frames that start a shot (encode/shots.py's list, filled as the frames come)."""
        self.firsts: dict[int, int] = {}
        """Each part's first frame in the video."""

    def run(self, parts: Iterator[np.ndarray]) -> int:
        """Learn every part of the stream; returns the video's frame count."""
        total = 0
        k = -1  # not enumerate: its reused tuple holds the last part while the next is read
        for frames in parts:
            k += 1
            if k == 0:
                self.chroma = chroma.detect(torch.from_numpy(frames), self.matrix)
            self.firsts[k] = total - (1 if k else 0)
            total = total + len(frames) - (1 if k else 0)
            self.joins.source(k, frames[-1].copy())  # a view would hold the whole part
            record = self.store.finished(k)
            if record is not None:
                if record["frames"] != len(frames):
                    raise OptionError(f"--resume: part {k} of {self.source} has {len(frames)} "
                                      f"frames, the run learned {record['frames']}: not the same video")  # fmt: skip
                self.records[k] = record
                self.budget.kept(len(frames), record["seconds"])
                kept = nvw.load(self.store.part(k)).model
                self.joins.edges(k, *edge_pictures(kept, kept_video(self.plan, len(frames)), k > 0))
                self.frames_done += len(frames) - (1 if k else 0)
            else:
                self.learn(k, frames)
            del frames  # let go before the next part is read (cut_parts)
        self.wait(everything=True)
        self.joins.close()
        return total

    def job(self, k: int, frames: np.ndarray, device: str) -> PartJob:
        plan = self.plan
        n = len(frames)
        share = self.budget.give(k, n)
        config = dataclasses.replace(plan.config, time_budget=share, seed=plan.config.seed + k,
                                     device=device)  # fmt: skip
        if self.interrupted or self.stop_asked():  # the rest keep their start
            config = dataclasses.replace(config, time_budget=0.0)
            if plan.spec.closed_form and not self.told_fits_go_on:
                self.told_fits_go_on = True
                self.console.message(f"interrupted: a {plan.spec.name} part is its fit, so the "
                                     "parts left are still fitted; Ctrl-C again stops at once, "
                                     "writing nothing")  # fmt: skip
        video = kept_video(plan, n)
        first = self.firsts.get(k, 0)
        cuts = tuple(cut - first for cut in self.cuts if first < cut < first + n)
        return PartJob(k, frames, plan.architecture(n, self.chroma), config, video,
                       plan.options.dtype, cuts=cuts)  # fmt: skip

    def learn(self, k: int, frames: np.ndarray) -> None:
        if self.executor is None:
            job = self.job(k, frames, self.plan.config.device)
            resume = self.store.resume_point(k)
            result = train_part(
                job,
                on_progress=lambda p: self.show(k, len(frames), p),
                resume=resume,
                checkpoint=lambda trainer: (
                    self.store.save_checkpoint(k, trainer, job) if self.folder is not None else None
                ),
            )
            if result.stopped_by == "interrupt" and not self.interrupted:
                self.interrupted = True
                self.console.message("interrupted: the parts left keep their start (no training)")
            self.finish(result, len(frames))
            return
        if not self.free_slots:
            self.wait()
        slot = self.free_slots.pop(0)
        job = self.job(k, frames, self.executor.device(slot, self.plan.config.device))
        self.in_flight[self.executor.submit(job)] = (k, len(frames), slot)

    def wait(self, everything: bool = False) -> None:
        """Collect finished parts: until a slot is free, or all of them."""
        while self.in_flight and (everything or not self.free_slots):
            done, _ = concurrent.futures.wait(
                self.in_flight, timeout=0.5, return_when=concurrent.futures.FIRST_COMPLETED
            )
            for future in done:
                k, frames, slot = self.in_flight.pop(future)
                self.free_slots.append(slot)
                try:
                    result = future.result()
                except (concurrent.futures.process.BrokenProcessPool, OSError) as err:
                    raise VideoError(f"part {k}: its worker stopped ({err})") from None
                self.finish(result, frames)
            self.show(None, 0, None)

    def finish(self, result: PartResult, frames: int) -> None:
        self.joins.edges(result.index, result.first_frame, result.last_frame)
        self.store.save(result, frames)
        self.budget.took(result.index)
        self.records[result.index] = self.store.finished(result.index) or {}
        self.frames_done += frames - (1 if result.index else 0)
        if self.executor is None:  # the progress line after every part (tiles: no steps to show)
            self.show(None, 0, None)
        if self.folder is not None:
            self.folder.log({"part": result.index, "frames": frames, "steps": result.steps,
                             "seconds": round(result.seconds, 4),
                             "psnr_db": round(metrics.psnr_from_mse(result.squared_error / max(1, result.pixels), peak=1.0), 4),
                             "stopped_by": result.stopped_by})  # fmt: skip

    def show(self, k: int | None, frames: int, progress: Progress | None) -> None:
        """One line for the whole clip: the part, the frames done, the PSNR, elapsed, ETA."""
        wall = time.perf_counter() - self.began
        done = float(self.frames_done)
        if progress is not None and progress.total_steps:
            part_done = progress.step / progress.total_steps
            if progress.time_budget:
                part_done = max(part_done, progress.elapsed / progress.time_budget)
            done += min(1.0, part_done) * (frames - 1)
        budget = self.plan.config.time_budget
        if budget is not None and not self.plan.spec.closed_form:  # a fit takes no budget
            eta = max(0.0, budget - wall)
        elif self.estimate and done > 0:
            eta = wall / done * max(0.0, self.estimate - done)
        else:
            eta = math.inf
        where = f"part {k + 1}" if k is not None else f"parts done {len(self.records)}"
        of = f"/{self.parts_estimate}" if self.parts_estimate else ""
        psnr = (
            f"  PSNR {progress.psnr:5.2f} dB"
            if progress is not None and math.isfinite(progress.psnr)
            else ""
        )
        self.console.status(
            f"{where}{of}  frame {int(done)}/{self.estimate or '?'}{psnr}  "
            f"elapsed {clock(wall)}  ETA {clock(eta) if math.isfinite(eta) else '?'}"
        )

    def result(self, config: TrainConfig) -> TrainResult:
        squared = sum(r["squared_error"] for r in self.records.values()) + self.joins.squared
        pixels = sum(r["pixels"] for r in self.records.values()) + self.joins.pixels
        stopped = {r["stopped_by"] for r in self.records.values()}
        stopped_by = "interrupt" if self.interrupted else (
            "time-budget" if "time-budget" in stopped else sorted(stopped)[0] if stopped else "epochs")  # fmt: skip
        return TrainResult(
            steps=sum(r["steps"] for r in self.records.values()),
            seconds=sum(r["seconds"] for r in self.records.values()),
            psnr=metrics.psnr_from_mse(squared / max(1, pixels), peak=1.0),
            stopped_by=stopped_by,
            settings=dataclasses.asdict(config),
        )


def encode_parts(
    opened: OpenedSource,
    source: str,
    output: str,
    options: EncodeOptions,
    config: TrainConfig,
    console: Console,
    run: Any,
    output_label: str | None = None,
    check_video: Callable[[VideoInfo], None] | None = None,
) -> TrainResult:
    """Learn ``source`` (``opened``: the encoder's OpenedSource) part by part (tiles or segments
    networks) and write the .nvw of parts to ``output``; ``run`` is the encoder's RunOptions
    (outputs, resume, jobs, ray)."""
    resuming = bool(run.resume)
    with ExitStack() as stack:
        outputs = run.resume if resuming else run.outputs
        folder = (
            RunFolder(Path(outputs), resuming_step=0 if resuming else None) if outputs else None
        )
        hidden = not outputs and output != "-"  # standard output's parts go to the temp folder
        store = PartStore(parts_folder(output, outputs, stack), output if hidden else None)
        plan, estimate = _plan(opened, source, options, config, run, check_video)
        if estimate:
            check_room(opened, estimate, plan, store.path, output, output_label)
        executor = make_executor(run.jobs, run.ray, config.device)
        if executor is not None:
            stack.callback(executor.close)
        if folder is not None and not resuming:
            video_so_far = opened.video(estimate or 0, options)
            folder.write_config({"kind": PARTS_RUN, "options": dataclasses.asdict(options),
                                 **run_config(source, output, options, config, None, video_so_far,
                                              run, versions())})  # fmt: skip
        workers = f", {executor.slots} at once" + (" on Ray" if run.ray else "") if executor else ""
        console.message(
            f"encode: {estimate or '?'} frames {opened.width}x{opened.height} at "
            f"{rate_text(plan.frame_rate)} fps, streamed -> {plan.describe(estimate)}{workers}; "
            f"{plan.training()}" + ("; resuming after the finished parts" if resuming else "")
        )
        encode = PartsEncode(source, plan, store, console, folder, executor, estimate)
        encode.matrix = opened.src.color.matrix
        with stop_requests() as stop_asked:
            encode.stop_asked = stop_asked
            stream = opened.frames(options, source)
            encode.cuts = opened.shots.cuts if opened.shots is not None else []
            frames = encode.run(cut_parts(stream, plan.part_frames, _part_ends(encode.cuts, plan)))
            if stop_asked():
                encode.interrupted = True
        console.done()
        video = opened.video(frames, options, encode.chroma)
        sound = read_audio(opened.path, opened.src, video, options, console)
        result = encode.result(config)
        count = len(encode.records)
        paths = [store.part(k) for k in range(count)]
        size = _write_joined(nvw.join_parts(paths, video, result, options.dtype, sound), output)
        source_bytes = os.path.getsize(opened.path)
    closed_form = spec_of(options.model).closed_form
    steps = "" if closed_form else f"{result.steps} steps in {result.seconds:.1f} s of training "
    console.message(
        f"encoded {source} -> {output_label or output}: PSNR {result.psnr:.2f} dB, {frames} "
        f"frames in {count} part{'s' * (count != 1)}, {steps}"
        f"({time.perf_counter() - encode.began:.1f} s in all, {result.stopped_by}), "
        + _sizes(size, video, source_bytes, sound)
    )
    return result


def _part_ends(cuts: Sequence[int], plan: PartsPlan) -> Sequence[int]:
    """The ``cuts`` a part ends at (the ShotFinder's list, filled as the frames stream in):
    none for a coded model, which codes a new shot's first frame intra inside its part instead
    (its parts each keep to a share of the bits: oa4_launch.webm split in two parts at its cut
    came out 0.85 dB worse at 2% fewer bits)."""
    return () if plan.spec.coded else cuts


def _plan(
    opened: OpenedSource,
    source: str,
    options: EncodeOptions,
    config: TrainConfig,
    run: Any,
    check_video: Callable[[VideoInfo], None] | None,
) -> tuple[PartsPlan, int | None]:
    """The parts' plan (their frames, settings and, for a coded model, its budget of bits) and
    the frames the source is expected to give (None where it does not say)."""
    part_frames = _part_frames(opened, source, options, run)
    estimate = opened.kept_estimate(options)
    if check_video is not None:
        check_video(opened.video(estimate or 1, options))
    settings = options.settings(config.device)
    if spec_of(options.model).coded:
        settings.update(rate_settings(opened, options, estimate, part_frames))
    plan = PartsPlan(part_frames, options, config, opened.width, opened.height,
                     opened.src.frame_rate / options.frame_step, settings)  # fmt: skip
    return plan, estimate


def _write_joined(chunks: Iterator[bytes], output: str) -> int:
    """Write the joined .nvw's ``chunks`` to ``output`` (write_chunks); the bytes written."""
    written = 0

    def counted() -> Iterator[bytes]:
        nonlocal written
        for chunk in chunks:
            written += len(chunk)
            yield chunk

    write_chunks(counted(), output)
    return written


def _part_frames(opened: OpenedSource, source: str, options: EncodeOptions, run: Any) -> int:
    """Frames a part holds (--segment-frames, else the model's own), once the parts fitted at
    once on this machine are known to fit in its memory (check_raw_memory)."""
    spec = spec_of(options.model)
    part_frames = options.setting("segment_frames")
    if part_frames is None:
        assert spec.part_frames is not None
        part_frames = spec.part_frames(opened.width, opened.height)
    longest = longest_part(part_frames)
    fitting = 1 if run.ray else run.jobs  # parts fitted at once on this machine
    fitted = fitting * longest * opened.width * opened.height * spec.fit_bytes_per_pixel
    check_raw_memory(source, longest + 1, opened.width, opened.height, options, " of a part",
                     fitted)  # fmt: skip
    return int(part_frames)


def _sizes(size: int, video: VideoInfo, source_bytes: int, sound: tuple[bytes, str] | None) -> str:
    """The summary's size words: bytes, bits a pixel, against the source file, the sound's."""
    return (
        f"{human_bytes(size)}, {size * 8 / (video.width * video.height * video.frames):.3f} "
        f"bits/pixel, {size / max(1, source_bytes):.2f} x the source file's size"
        + (f" ({sound[1]} audio, {human_bytes(len(sound[0]))})" if sound else "")
    )
