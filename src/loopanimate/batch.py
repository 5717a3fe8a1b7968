"""`animate-batch`: many loops in one run, on one process or many (`accelerate launch`), resumable.

Rows come from a folder of pictures (a same-stem `.txt` is a picture's prompt) or a CSV/JSONL manifest with columns
`image, prompt` and optional `seed, frames, motion, mask, output`. Each row becomes one file in the output folder,
made by the same library function as `animate` (`make_loops`), so a model is loaded once per process. A row whose
output exists is skipped (outputs are written whole or not at all), so a rerun finishes what a killed run left.
A bad row is logged with its reason and the run goes on.

Each process appends its rows' records to `.run.RANK.jsonl` as they finish; at the end the main process merges
them into `run.jsonl` (row order) and, with `evaluate`, writes the evaluation report of every output.
"""

from __future__ import annotations

import csv
import dataclasses
import io
import json
import os
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from loopanimate.animate import LoopRequest, batch_key, make_loops, request_inputs, save_loop
from loopanimate.atomic import atomic_file, output_error
from loopanimate.checks import brief
from loopanimate.errors import InvalidArgumentError, LoopAnimateError
from loopanimate.export import is_complete_video
from loopanimate.jsonl import NUMBER, TEXT, WHOLE, iter_jsonl
from loopanimate.reader import read_text

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".webp", ".bmp", ".tif", ".tiff")
FORMATS = ("mp4", "gif", "webp", "webm", "png", "frames")  # png: animated; frames: a folder of PNG frames
OPTIONAL_COLUMNS = {"seed": "seed", "frames": "num_frames", "motion": "motion_strength", "mask": "mask"}
FIELD_KINDS = {"prompt": TEXT, "output": TEXT, "mask": TEXT, "seed": WHOLE, "frames": WHOLE, "motion": NUMBER}
RUN_LOG = "run.jsonl"
MAX_FIELD = 2**24  # characters in one CSV cell (a 16 MB prompt): csv's own limit is 128 KB


@dataclass
class BatchRow:
    """One loop to make: its picture and prompt, the file it writes, and the row's own settings as written."""

    index: int
    image: Path
    prompt: str | None  # None: the batch's --prompt
    output: Path
    settings: dict[str, str]  # column -> text, from OPTIONAL_COLUMNS; converted when the row runs
    error: str | None = None  # why this row cannot run, known when the rows were read (e.g. its output is elsewhere)


def read_rows(source: str | os.PathLike, out_dir: str | os.PathLike, fmt: str) -> list[BatchRow]:
    """The rows of a picture folder or a CSV/JSONL manifest (paths relative to the manifest's folder)."""
    source, out_dir = Path(source), Path(out_dir)
    if fmt not in FORMATS:
        raise InvalidArgumentError(f"format {fmt!r} is unknown: use one of {', '.join(FORMATS)}")
    if not source.exists():
        raise InvalidArgumentError(f"cannot read rows from {source}: it does not exist (give a folder, .csv or .jsonl)")
    if source.is_dir():
        entries = [
            {"image": path.name, "prompt": read_text(path.with_suffix(".txt"), "prompt").strip()}
            if path.with_suffix(".txt").is_file()
            else {"image": path.name}
            for path in sorted(source.iterdir())
            if path.suffix.lower() in IMAGE_SUFFIXES and path.is_file()
        ]
    elif source.suffix == ".csv":
        reader = csv.DictReader(io.StringIO(read_text(source, "manifest"), newline=""))
        csv.field_size_limit(MAX_FIELD)  # a long prompt is a prompt; the default limit (128 KB) is csv's, not ours
        columns = reader.fieldnames or []
        if "image" not in columns:
            raise InvalidArgumentError(f"{source} has no `image` column: write a header `image,prompt,...`")
        if len(set(columns)) < len(columns):
            twice = next(column for column in columns if columns.count(column) > 1)
            raise InvalidArgumentError(f"{source}: the column {twice!r} appears twice in the header: keep one")
        entries = [{key: value for key, value in row.items() if value not in (None, "")} for row in reader]
        if any(None in entry or "image" not in entry for entry in entries):
            raise InvalidArgumentError(f"{source}: a row has more cells than the header, or no image: fix that row")
    elif source.suffix == ".jsonl":
        entries = list(iter_jsonl(source, "image", '{"image": PATH, "prompt": TEXT}', FIELD_KINDS))
    else:
        raise InvalidArgumentError(
            f"cannot read rows from {source}: give a folder of pictures, a .csv or a .jsonl manifest"
        )
    if not entries:
        raise InvalidArgumentError(f"no pictures in {source}: give PNG, JPEG or WebP files, or manifest rows")
    root = source if source.is_dir() else source.parent
    rows, outputs = [], {}
    for index, entry in enumerate(entries):
        name = entry.get("output") or Path(entry["image"]).stem
        suffix = Path(name).suffix.lower()
        if fmt != "frames" and suffix == f".{fmt}":
            name = name[: -len(suffix)]  # `output: beach.mp4` with --format mp4 is beach.mp4, not beach.mp4.mp4
        output = out_dir / (name if fmt == "frames" else f"{name}.{fmt}")
        if output in outputs:
            raise InvalidArgumentError(
                f"rows {outputs[output] + 1} and {index + 1} would both write {output.name}: give an `output` column"
            )
        outputs[output] = index
        settings = {column: str(entry[column]) for column in OPTIONAL_COLUMNS if column in entry}
        if "mask" in settings:
            settings["mask"] = str(root / settings["mask"])
        row = BatchRow(index, root / entry["image"], entry.get("prompt"), output, settings)
        if any("\x00" in str(value) for value in (entry["image"], name, *settings.values())):
            row.error = "a path holds a NUL character: no file can be named so; fix the row"
        elif not is_inside(output, out_dir):
            row.error = f"output {name!r} is outside the output folder {out_dir}: give a plain file name"
        elif suffix[1:] in FORMATS and suffix != f".{fmt}":
            row.error = f"output {name!r} is not a .{fmt} (the batch's --format): name it without the extension"
        rows.append(row)
    return rows


def is_inside(path: Path, folder: Path) -> bool:
    """Whether `path`, links and `..` resolved, lies inside `folder`."""
    real, real_folder = os.path.realpath(path), os.path.realpath(folder)
    return os.path.commonpath([real, real_folder]) == real_folder and real != real_folder


def row_request(row: BatchRow, template: LoopRequest) -> LoopRequest:
    """The batch's settings with the row's own: a value that is not a number is this row's error, not the run's."""
    if row.error:
        raise InvalidArgumentError(row.error)
    values: dict = {"image": row.image, "prompt": row.prompt if row.prompt is not None else template.prompt}
    for column, field in OPTIONAL_COLUMNS.items():
        if column not in row.settings:
            continue
        text = row.settings[column]
        try:
            values[field] = text if column == "mask" else (float(text) if column == "motion" else int(text))
        except ValueError:
            raise InvalidArgumentError(f"{column} {brief(text)} is not a number") from None
    request = dataclasses.replace(template, **values)
    request.check()
    if not row.image.is_file():
        raise InvalidArgumentError(f"input image not found: {row.image}")
    return request


class Processes:
    """This process's share of the rows: accelerate splits them under `accelerate launch`; alone, all of them (and
    neither torch nor accelerate is loaded)."""

    def __init__(self) -> None:
        self.state = None
        if int(os.environ.get("WORLD_SIZE", "1")) > 1:
            from accelerate import PartialState
            from accelerate.utils import parse_flag_from_env

            # Accelerator reads ACCELERATE_USE_CPU itself; PartialState must be told (else it sees one process).
            self.state = PartialState(cpu=parse_flag_from_env("ACCELERATE_USE_CPU"))
        self.rank = self.state.process_index if self.state else 0
        self.count = self.state.num_processes if self.state else 1

    def share(self, rows: list[BatchRow]) -> list[BatchRow]:
        if self.state is None:
            return rows
        with self.state.split_between_processes(rows) as mine:
            return list(mine)

    def wait(self) -> None:
        if self.state is not None:
            self.state.wait_for_everyone()


def run_batch(
    rows: list[BatchRow],
    template: LoopRequest,
    out_dir: str | os.PathLike,
    batch_size: int = 1,
    evaluate: bool = False,
    progress: Callable[[int], None] | None = None,
) -> dict[str, int] | None:
    """Make every row's loop; return the counts of done / skipped / failed rows on the main process (else None).
    `progress(rows)` is told how many rows (all processes together, estimated) have been handled."""
    out_dir = Path(out_dir)
    processes = Processes()
    if processes.rank == 0:
        try:
            out_dir.mkdir(exist_ok=True)
        except OSError as error:
            raise output_error(error, out_dir) from None
    processes.wait()
    part = out_dir / f".run.{processes.rank}.jsonl"
    part.unlink(missing_ok=True)  # a killed run's records: its rows are skipped now, their outputs exist
    with part.open("a") as log:
        for group in _groups(processes.share(rows), template, batch_size):
            for record in _run_group(group, template):
                log.write(json.dumps(record) + "\n")
                log.flush()
                if progress is not None:
                    progress(
                        processes.count
                    )  # shares are equal to one row, so each row here stands for one per process
    processes.wait()
    if processes.rank != 0:
        return None
    records = _merge_logs(out_dir)
    if evaluate:
        _evaluate(records, out_dir)
    return {status: sum(r["status"] == status for r in records) for status in ("done", "skipped", "failed")}


def _groups(rows: list[BatchRow], template: LoopRequest, batch_size: int) -> list[list[BatchRow]]:
    """Consecutive rows that can share one diffusion run, at most `batch_size` of them; rows already made, and bad
    rows, stand alone."""
    groups: list[list[BatchRow]] = []
    last_key = None
    for row in rows:
        try:
            key = None if is_complete_video(row.output) else batch_key(row_request(row, template))
        except LoopAnimateError:
            key = None
        if groups and key is not None and key == last_key and len(groups[-1]) < batch_size:
            groups[-1].append(row)
        else:
            groups.append([row])
        last_key = key
    return groups


def _run_group(group: list[BatchRow], template: LoopRequest) -> list[dict]:
    """Make and write the group's loops; one record per row: done (with Seam and Motion), skipped or failed."""
    from loopanimate.evaluation.pixel_metrics import loop_scores

    base = {"engine": template.resolved_engine()}
    records = [{"row": row.index, "input": str(row.image), "output": str(row.output), **base} for row in group]
    if len(group) == 1 and not group[0].error and is_complete_video(group[0].output):
        return [{**records[0], "status": "skipped", "reason": "its output exists"}]
    start = time.perf_counter()
    try:
        requests = [row_request(row, template) for row in group]
        loops = make_loops(requests)
        # The encoder (ffmpeg, or Pillow's C code) and the optical flow of the scores both leave the GIL: overlap them.
        with ThreadPoolExecutor(1) as writer:
            saved = [
                writer.submit(save_loop, loop, row.output, request_inputs(request))
                for loop, row, request in zip(loops, group, requests, strict=True)
            ]
            scores = [loop_scores(loop.frames) for loop in loops]
            for future in saved:
                future.result()
    except LoopAnimateError as error:
        return [{**record, "status": "failed", "error": str(error)} for record in records]
    seconds = (time.perf_counter() - start) / len(group)
    return [
        {**record, "status": "done", "seed": request.seed, "seconds": round(seconds, 3), **score}
        for record, request, score in zip(records, requests, scores, strict=True)
    ]


def _merge_logs(out_dir: Path) -> list[dict]:
    """Every process's records in row order, into run.jsonl (written whole); the per-process logs are removed."""
    parts = sorted(out_dir.glob(".run.*.jsonl"))
    records = sorted(
        (json.loads(line) for part in parts for line in part.read_text().splitlines() if line.strip()),
        key=lambda record: record["row"],
    )
    with atomic_file(out_dir / RUN_LOG) as tmp:
        tmp.write_text("".join(json.dumps(record) + "\n" for record in records))
    for part in parts:
        part.unlink()
    return records


def _evaluate(records: list[dict], out_dir: Path) -> None:
    """The evaluation report (report.md, .json, .csv, similarity.png) of every output, with the weight-free backend."""
    from loopanimate.evaluation.embeddings import WeightFreeEmbedding
    from loopanimate.evaluation.report import VideoCase, score, write_report

    embed = WeightFreeEmbedding()
    cases = [VideoCase(Path(r["output"]), Path(r["input"])) for r in records if r["status"] != "failed"]
    write_report([score(case, embed) for case in cases], out_dir, embed.name)
