"""Batch inference on Ray Data (`emodetect batch`, the `distributed` extra): images, recordings or
texts, read and scored in parallel by worker actors that open the ONNX models once, written as
Parquet files under one folder, so memory stays flat whatever the input.

- Without an address a local Ray starts on this machine; `address="auto"` or `"ray://host:10001"`
  joins a cluster, so the same call runs on a laptop and on a cluster.
- Written as it goes: each worker writes its batch's rows to one Parquet file as soon as the batch
  is scored, under a temporary name renamed when complete, so a run stopped at any moment (Ctrl-C,
  SIGTERM, SIGKILL, a power cut) leaves every finished batch on disk and no half file. A file is
  named after the sources it holds, so a task Ray retries after a worker died rewrites its own
  file instead of adding rows. (Ray Data's `write_parquet` wrote at the end: a driver killed at
  80 s of a 94 s run left no row.)
- Resumable: each input's rows carry its `source`; a rerun into the same folder reads the sources
  already written and skips them. An output file that cannot be read is moved aside
  (`_damaged-NAME`, which Parquet readers skip) with a warning, and its inputs are scored again.
- A file that cannot be read becomes a row with its `error`, never a failed job. A file name that
  is not UTF-8 is scored like any other; its `source` shows the odd bytes as `\\xff` escapes.
- Ray stops with the driver: on a normal end, on Ctrl-C and on SIGTERM the driver shuts its local
  Ray down, and on Linux a small guard process kills what is left of it (agents, workers) when the
  driver dies without a word (SIGKILL). A killed driver once left four Ray processes behind.
- The rows are the command line's: per face (images), per window (recordings), per text, with
  the same numbers as `emodetect detect`, `voice --timeline` and `text`.
"""

from __future__ import annotations

import hashlib
import logging
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from emodetect.arrow import shown
from emodetect.errors import DataError, InputError
from emodetect.modalities import Modality, load_object, modalities

PART_PREFIX = "part-"  # a batch's rows: part-<digest of its sources>.parquet
DAMAGED_PREFIX = "_damaged-"  # an unreadable output file, moved aside; Parquet readers skip "_" names

log = logging.getLogger(__name__)


@dataclass
class BatchReport:
    inputs: int  # found in INPUT
    skipped: int  # already in the output folder from an earlier run
    processed: int
    rows: int  # written by this run
    errors: int  # inputs that became an error row
    seconds: float
    out: str
    kind: str  # what was read (its modality's BatchInputs.kind): "images", "texts", "audio"
    damaged: list[str] = field(default_factory=list)  # output files moved aside as unreadable

    def to_text(self) -> str:
        rate = self.processed / self.seconds if self.seconds else 0.0
        moved = f", {len(self.damaged)} damaged output file(s) moved aside" if self.damaged else ""
        return (f"{self.kind}: {self.inputs} found, {self.skipped} already done, {self.processed} processed "
                f"({rate:.1f}/s), {self.rows} rows written to {self.out}/, {self.errors} error(s){moved}")


class _PartWriter:
    """One per Ray actor: the modality's worker (its table row's `BatchInputs.worker`, which opens
    the models once) scores each batch, whose rows are written under `out` as one Parquet file,
    atomically; what Ray gets back is the number of rows and of inputs that became an error row."""

    def __init__(self, worker: str, model: str | None, options: dict[str, Any], out: str):
        self.worker = load_object(worker)(model, **options)
        self.out = out

    def __call__(self, batch: dict[str, Any]) -> dict[str, list]:
        import pyarrow.parquet as pq

        table = self.worker.score(batch)
        out = Path(self.out)
        # Named after its sources: a batch Ray runs again (a worker died) replaces its own file.
        digest = hashlib.sha1("\0".join(batch["source"]).encode()).hexdigest()[:24]
        name = f"{PART_PREFIX}{digest}.parquet"
        # A dot name while it is written: Parquet readers, and `done_sources`, skip it.
        temporary = out / f".{name}.{os.getpid()}.tmp"
        with open(temporary, "wb") as handle:
            pq.write_table(table, handle)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temporary, out / name)
        errors = {s for s, e in zip(table.column("source").to_pylist(), table.column("error").to_pylist()) if e}
        return {"rows": [table.num_rows], "errors": [len(errors)]}


def list_inputs(source: str | Path, column: str = "text") -> tuple[str, list[dict[str, Any]]]:
    """The kind of input ("images", "texts", "audio") and one item per image, recording or text
    (texts keep their line)."""
    modality, items = find_inputs(source, column)
    return modality.batch.kind, items


def find_inputs(source: str | Path, column: str = "text") -> tuple[Modality, list[dict[str, Any]]]:
    """The modality whose batch inputs `source` holds, and one item per input. Each table row says
    what batch reads of it (`Modality.batch`): a file that a row lists into rows (the texts of a CSV)
    is that modality's; else the files of a folder or glob are the first modality's, in table order,
    that has files there (images win when a folder holds both images and recordings)."""
    from emodetect.vision.images import find_images

    readers = [m for m in modalities() if m.batch is not None]
    path = Path(source)
    if path.is_file():
        for m in readers:
            if m.batch.rows is not None and path.suffix.lower() in m.batch.suffix_set():
                return m, load_object(m.batch.rows)(path, column)
    per_file = {m.name: (m, m.batch.suffix_set()) for m in readers if m.batch.rows is None}
    given = sorted(Path().glob(str(source))) if not path.is_dir() and any(c in str(source) for c in "*?[") \
        else [path]
    # What cannot be read (a dangling link, a link loop, a FIFO, a folder that cannot be listed) is
    # an error row, never a silent skip: its item carries the reason in `error` ("" = to be read).
    found, problems = find_images(given, suffixes=frozenset().union(*(s for _, s in per_file.values())))
    # Absolute paths: a cluster's workers do not share the driver's working folder.
    files = sorted(f.resolve() for f in found)
    unreadable = [(Path(os.path.abspath(p)), reason) for p, reason in problems]
    # The first modality with files to read, else the first an unreadable entry is named for.
    chosen = next((name for name, (_, s) in per_file.items() if any(f.suffix.lower() in s for f in files)), None) \
        or next((name for name, (_, s) in per_file.items() if any(p.suffix.lower() in s for p, _ in unreadable)), None)
    if chosen is None:
        why = f" ({unreadable[0][0]}: {unreadable[0][1]})" if unreadable else ""
        files_of = [f"a file of {m.batch.kind} ({', '.join(sorted(m.batch.suffix_set()))})"
                    for m in readers if m.batch.rows is not None]
        raise InputError(f"{source}: no {' or '.join(m.batch.kind for m, _ in per_file.values())} found"
                         f"{', and not ' + ' or '.join(files_of) if files_of else ''}{why}")
    modality, mine = per_file[chosen]
    others = frozenset().union(*(s for name, (_, s) in per_file.items() if name != chosen))
    # `source` is the path as UTF-8 text (`shown`), `path` its bytes, which the worker opens.
    items = [{"source": shown(str(f)), "path": os.fsencode(f), "error": ""} for f in files if f.suffix.lower() in mine]
    # An unreadable folder or loop has no media suffix: it is reported with any kind.
    items += [{"source": shown(str(p)), "path": os.fsencode(p), "error": reason}
              for p, reason in unreadable if p.suffix.lower() not in others]
    return modality, sorted(items, key=lambda item: item["source"])


def done_sources(out: Path, damaged: list[str] | None = None) -> set[str]:
    """The sources already written under `out` by earlier runs. A Parquet file there that cannot
    be read (cut short, overwritten, not ours: one such file once failed every rerun) is renamed
    `_damaged-NAME` with a warning naming it, its path added to `damaged`, and its inputs are
    scored again. Temporary files a stopped run left behind are removed."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    for temporary in out.glob(f".{PART_PREFIX}*.tmp"):
        temporary.unlink(missing_ok=True)
    done: set[str] = set()
    for path in sorted(out.glob("*.parquet")):
        try:
            table = pq.read_table(path)  # every column: a damaged page fails here, not in a reader later
            if "source" not in table.column_names:
                raise DataError("no `source` column: not written by emodetect batch")
        except (pa.ArrowException, OSError, ValueError) as err:  # ArrowInvalid is also a ValueError
            moved = _quarantine(path)
            log.warning("%s: unreadable output file (%s); moved aside to %s, its inputs are scored again",
                        shown(str(path)), err, moved.name)
            if damaged is not None:
                damaged.append(str(moved))
            continue
        done.update(table.column("source").to_pylist())
    return done


def _quarantine(path: Path) -> Path:
    """`path` renamed `_damaged-NAME` (`_damaged-NAME.2` and so on when that name is taken)."""
    target = path.with_name(DAMAGED_PREFIX + path.name)
    n = 1
    while target.exists():
        n += 1
        target = path.with_name(f"{DAMAGED_PREFIX}{path.name}.{n}")
    os.replace(path, target)
    return target


RAY_LOG = "_ray.log"  # in the output folder; Parquet readers skip names starting with "_"


@contextmanager
def ray_quiet(log_path: Path, verbose: bool = False) -> Iterator[None]:
    """Ray's own lines kept off the user's terminal while it runs: its Python loggers show errors
    only, and what its C++ core and processes write to file descriptor 2 (an `E ... core_worker.cc`
    line among them) goes to `log_path`; Python's own stderr (Ray's progress bars on a terminal, our
    errors) stays on the terminal. `verbose` lets everything through. A first `batch` printed 34 of
    Ray's lines around a one-line answer. Everything is put back after the run."""
    import logging

    if verbose:
        yield
        return
    import ray.data  # noqa: F401  (configures the "ray.data" logger and its console handler on import)

    ray_logger = logging.getLogger("ray")
    consoles = [h for h in logging.getLogger("ray.data").handlers if isinstance(h, logging.StreamHandler)]
    saved = ray_logger.level, [h.level for h in consoles]
    ray_logger.setLevel(logging.ERROR)
    for handler in consoles:
        handler.setLevel(logging.ERROR)
    try:
        with _descriptor_2_to(log_path):
            yield
    finally:
        ray_logger.setLevel(saved[0])
        for handler, level in zip(consoles, saved[1]):
            handler.setLevel(level)


@contextmanager
def _descriptor_2_to(path: Path) -> Iterator[None]:
    """File descriptor 2 into `path` (Ray's C++ logging and child processes write there), with
    Python's sys.stderr moved to a copy of the old descriptor when it was on 2."""
    import os
    import sys

    sys.stderr.flush()
    terminal = os.dup(2)
    with open(path, "ab") as log:
        os.dup2(log.fileno(), 2)
    python_stderr = sys.stderr
    on_descriptor_2 = _fileno(python_stderr) == 2
    if on_descriptor_2:
        sys.stderr = open(terminal, "w", buffering=1, encoding=python_stderr.encoding, errors="backslashreplace",
                          closefd=False)
    try:
        yield
    finally:
        if on_descriptor_2:
            sys.stderr.flush()
            sys.stderr = python_stderr
        os.dup2(terminal, 2)
        os.close(terminal)


def _fileno(stream: Any) -> int | None:
    try:
        return stream.fileno()
    except (AttributeError, OSError, ValueError):  # io.UnsupportedOperation is an OSError
        return None


def run_batch(source: str | Path, out: str | Path, address: str | None = None, workers: int = 2,
              model: str | None = None, detector: str | None = None, column: str = "text",
              batch_size: int = 16, verbose: bool = False) -> BatchReport:
    """Score every input of `source` on Ray Data with `workers` actors and write Parquet to `out`;
    Ray's own logs go to `out/_ray.log` unless `verbose` (`ray_quiet`). The modality table says
    which inputs are read and which worker scores them (`find_inputs`).

    Stopped early (Ctrl-C or SIGTERM: KeyboardInterrupt), every finished batch is on disk and the
    same call resumes."""
    from emodetect.runtime import resolve_model

    started = time.perf_counter()
    out = Path(out).resolve()
    out.mkdir(parents=True, exist_ok=True)
    modality, items = find_inputs(source, column)
    damaged: list[str] = []
    done = done_sources(out, damaged)
    todo = [item for item in items if item["source"] not in done]
    report = BatchReport(len(items), len(items) - len(todo), len(todo), 0, 0, 0.0, str(out), modality.batch.kind,
                         damaged)
    if todo:
        resolve_model(model, modality.name)  # a name no model answers to is refused here, before Ray starts
        given = {"detector": detector}  # the options a worker may take (BatchInputs.options)
        options = {name: given[name] for name in modality.batch.options}
        with ray_quiet(out / RAY_LOG, verbose):
            report.rows, report.errors = _score(todo, out, modality.batch.worker, address, workers, model, options,
                                                batch_size)
    report.seconds = round(time.perf_counter() - started, 3)
    return report


def _score(todo: list[dict[str, Any]], out: Path, worker: str, address: str | None, workers: int,
           model: str | None, options: dict[str, Any], batch_size: int) -> tuple[int, int]:
    """The Ray part: start (or join) Ray, score `todo` with `workers` actors of `worker` ("module:Class")
    that each write their batches under `out`; the rows written, and the inputs that became an error row."""
    import ray

    owns_ray = not ray.is_initialized()
    guard = None
    with _sigterm_interrupts() as rearm:
        try:
            if owns_ray:
                guard = _start_guard() if address is None else None  # a cluster is not ours to stop
                ray.init(address=address, num_cpus=None if address else workers, include_dashboard=False,
                         log_to_driver=False, configure_logging=False)
                rearm()  # ray.init put its own SIGTERM handlers in place
            # At least one block per worker, so that every actor has work from the start.
            blocks = max(workers, min(len(todo) // batch_size, 64 * workers))
            dataset = ray.data.from_items(todo, override_num_blocks=blocks)
            scored = dataset.map_batches(_PartWriter, fn_constructor_args=(worker, model, options, str(out)),
                                         compute=ray.data.ActorPoolStrategy(size=workers),
                                         batch_size=batch_size, batch_format="numpy", num_cpus=1)
            rows = errors = 0
            for counts in scored.iter_batches(batch_size=None, batch_format="numpy"):  # a line per batch
                rows += int(counts["rows"].sum())
                errors += int(counts["errors"].sum())
            return rows, errors
        finally:
            if owns_ray:
                ray.shutdown()
            if guard is not None:
                _stop_guard(guard)


# Ray stops with the driver. ray.shutdown() in a `finally` covers a normal end and Ctrl-C, and
# SIGTERM is turned into the same KeyboardInterrupt (`_sigterm_interrupts`). Nothing in the driver
# runs after SIGKILL, and Ray's agents (ray::DashboardAgent, ray::RuntimeEnvAgent) outlive their
# raylet: a guard process, started before Ray, notes the driver's descendants every second, and
# when the driver's end closes its stdin without the word that all is well, it kills those of them
# that are Ray's and still alive. Linux only (/proc); elsewhere there is no guard.
_GUARD = r"""
import os, select, signal, sys, time
signal.signal(signal.SIGINT, signal.SIG_IGN)
driver = int(sys.argv[1])

def processes():
    found = {}  # pid -> (parent, start time)
    for name in os.listdir("/proc"):
        if name.isdigit():
            try:
                with open(f"/proc/{name}/stat", "rb") as f:
                    fields = f.read().rsplit(b")", 1)[1].split()
                found[int(name)] = (int(fields[1]), fields[19])
            except (OSError, IndexError, ValueError):
                pass
    return found

def below(table, roots):
    found, todo = set(), list(roots)
    while todo:
        parent = todo.pop()
        children = [pid for pid, (ppid, _) in table.items() if ppid == parent and pid not in found]
        found.update(children)
        todo += children
    return found - {os.getpid()}

def rays(pids):
    for pid in pids:
        try:
            with open(f"/proc/{pid}/cmdline", "rb") as f:
                if b"ray" in f.read():
                    yield pid
        except OSError:
            pass

seen = {}
while not select.select([sys.stdin], [], [], 1.0)[0]:
    table = processes()
    seen.update((pid, table[pid][1]) for pid in below(table, [driver]))
if sys.stdin.buffer.read(1):
    sys.exit(0)  # the driver ended Ray itself
table = processes()
left = {pid for pid, start in seen.items() if table.get(pid, (0, None))[1] == start}
targets = set(rays(left | below(table, left)))
for sig in (signal.SIGTERM, signal.SIGKILL):
    for pid in targets:
        try:
            os.kill(pid, sig)
        except OSError:
            pass
    for _ in range(50):
        table = processes()
        if not any(pid in table for pid in targets):
            sys.exit(0)
        time.sleep(0.1)
"""


def _start_guard() -> subprocess.Popen | None:
    """The guard process of this driver (Linux), in a session of its own: Ctrl-C on the terminal
    reaches the driver and Ray, not the guard."""
    if not Path("/proc/self/stat").exists():
        return None
    return subprocess.Popen([sys.executable, "-c", _GUARD, str(os.getpid())], stdin=subprocess.PIPE,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)


def _stop_guard(guard: subprocess.Popen) -> None:
    """Ray is shut down: the guard is told so, and ends."""
    try:
        guard.stdin.write(b"k")
        guard.stdin.close()
        guard.wait(timeout=10)
    except (OSError, subprocess.TimeoutExpired):  # it ends by itself; nothing here depends on it
        pass


@contextmanager
def _sigterm_interrupts() -> Iterator[Any]:
    """SIGTERM raises KeyboardInterrupt while the batch runs, as Ctrl-C does, so that `finally`
    shuts Ray down: Ray's core had its own handler, which aborted the driver with nothing shut
    down. Yields `rearm`, to call after ray.init (which sets handlers of its own); the handler
    found first is put back at the end. Only the main thread can set a handler; elsewhere this
    does nothing."""
    if threading.current_thread() is not threading.main_thread():
        yield lambda: None
        return

    def interrupt(signum: int, frame: Any) -> None:
        raise KeyboardInterrupt(f"signal {signum}")

    def rearm() -> None:
        signal.signal(signal.SIGTERM, interrupt)

    previous = signal.getsignal(signal.SIGTERM)
    rearm()
    try:
        yield rearm
    finally:
        signal.signal(signal.SIGTERM, previous if previous is not None else signal.SIG_DFL)
