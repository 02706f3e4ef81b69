"""The one training loop, for every modality: config, data, model, optimiser, loop, checkpoint.

Runs are reproducible from the saved config alone, and `resume=True` continues a killed run from
its last checkpoint: data order and augmentation are seeded per epoch, so a resumed run sees the
same batches an uninterrupted one would.
"""

from __future__ import annotations

import copy
import dataclasses
import json
import logging
import os
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch
import torch.nn.functional as F
from tqdm.auto import tqdm

from emodetect.checkpoint import Checkpoint, TrainingState, as_checkpoint
from emodetect.config import TrainConfig, config_from_dict  # noqa: F401  (re-exported)
from emodetect.errors import DataError, InputError, ModelError
from emodetect.heads import Segment, segments, width
from emodetect.metrics import f1_table
from emodetect.modalities import check_train_options, get_modality
from emodetect.registry import create_model

log = logging.getLogger(__name__)


@dataclass
class EpochLog:
    epoch: int
    train_loss: float
    train_acc: float
    val_loss: float
    val_acc: float
    lr: float
    images_per_s: float
    seconds: float
    val_heads: dict[str, float] = field(default_factory=dict)  # each head's score (multi-head models)


@dataclass
class TrainResult:
    best_checkpoint: Path
    last_checkpoint: Path
    best_val_acc: float
    best_epoch: int
    history: list[EpochLog] = field(default_factory=list)


@dataclass
class TrainingData:
    """What a modality hands the training loop: tensors indexable by row, and how to treat them."""

    train_inputs: torch.Tensor  # N x ... (images N x 1 x H x W, token ids N x L, log-mels ...)
    train_targets: torch.Tensor  # N x C float: one-hot, vote shares or multi-hot
    val_inputs: torch.Tensor
    val_labels: torch.Tensor  # N (single-label) or N x C multi-hot
    labels: tuple[str, ...]
    augment: Callable[[torch.Tensor, torch.Generator], torch.Tensor] | None = None
    multilabel: bool = False
    model_kwargs: dict[str, Any] = field(default_factory=dict)  # e.g. a text model's vocab size
    extras: dict[str, Any] = field(default_factory=dict)  # saved with checkpoints (a vocabulary)
    init_weights: Callable[[torch.nn.Module], None] | None = None  # weights the data gives (word vectors)
    # Extra output heads after the main labels ({"name", "labels", "multilabel"}; emodetect.heads):
    # targets and val_labels are then N x all-labels floats, NaN where a row has no label in a head.
    heads: list[dict[str, Any]] = field(default_factory=list)


FAST_BF16_FLAGS = {"amx_bf16", "avx512_bf16", "bf16"}  # x86 AMX / AVX-512 BF16; Arm's bf16


def _cpu_flags() -> set[str]:
    """The CPU's feature flags from /proc/cpuinfo (Linux); empty where they cannot be read."""
    try:
        text = Path("/proc/cpuinfo").read_text(errors="replace")
    except OSError:
        return set()
    for line in text.splitlines():
        key, _, value = line.partition(":")
        if key.strip() in ("flags", "Features"):
            return set(value.split())
    return set()


def slow_bf16_warning(cpu_flags: set[str] | None = None) -> str | None:
    """Why `--bf16` will be slow on this CPU, or None: without bfloat16 units PyTorch emulates
    bf16 autocast, about 10x slower than float32 (7 s against 0.7 s a voice batch on an AVX2 EPYC)."""
    flags = _cpu_flags() if cpu_flags is None else cpu_flags
    if not flags or flags & FAST_BF16_FLAGS:
        return None
    return ("this CPU has no bfloat16 units (neither AMX nor AVX-512 BF16): bf16 autocast is emulated "
            "and about 10x slower than float32 here; train with --no-bf16")


def resolve_modality(cfg: TrainConfig) -> str:
    """The modality of the run: the one whose architectures registered --model, or --modality
    for a model registered elsewhere; a mismatch between the two is refused."""
    from emodetect.errors import InputError
    from emodetect.registry import model_modality

    owner = model_modality(cfg.model)
    if owner and cfg.modality and cfg.modality != owner:
        raise InputError(f"--model {cfg.model} is a {owner} architecture, not {cfg.modality}")
    if not (owner or cfg.modality):
        raise InputError(f"--model {cfg.model} belongs to no modality: give --modality")
    get_modality(owner or cfg.modality)  # an unknown --modality is named here
    return owner or cfg.modality


def load_training_data(cfg: TrainConfig) -> TrainingData:
    """Dispatch to the modality that owns the data: each knows its readers and augmentation."""
    return get_modality(cfg.modality or resolve_modality(cfg)).data_module().training_data(cfg)


def _loss(logits: torch.Tensor, target: torch.Tensor, multilabel: bool, smoothing: float) -> torch.Tensor:
    logits = logits.float()
    if multilabel:
        target = target * (1 - smoothing) + smoothing / 2
        return F.binary_cross_entropy_with_logits(logits, target)
    target = target * (1 - smoothing) + smoothing / target.shape[1]
    return torch.sum(-target * F.log_softmax(logits, dim=1), dim=1).mean()


def _head_loss(logits: torch.Tensor, target: torch.Tensor, segs: list[Segment], smoothing: float,
               label_sum: bool = False) -> torch.Tensor:
    """Sum over the heads of each head's loss on the rows labelled in it (NaN targets are not).
    With `label_sum`, a multi-label head's BCE is summed over its labels, so a 28-label head
    weighs like a 28-way choice beside the softmax heads instead of like a 28th of one."""
    if len(segs) == 1:
        return _loss(logits, target, segs[0].multilabel, smoothing)
    total = logits.sum() * 0.0
    for seg in segs:
        t = target[:, seg.start:seg.stop]
        known = ~torch.isnan(t).any(1)
        if known.any():
            loss = _loss(logits[known, seg.start:seg.stop], t[known], seg.multilabel, smoothing)
            total = total + (loss * len(seg.labels) if seg.multilabel and label_sum else loss)
    return total


def head_scores(logits: torch.Tensor, labels: torch.Tensor, segs: list[Segment]) -> tuple[float, dict[str, float]]:
    """Validation loss and each head's selection score, on the rows labelled in that head."""
    loss, scores = 0.0, {}
    for seg in segs:
        t = labels[:, seg.start:seg.stop]
        known = ~torch.isnan(t).any(1)
        if not known.any():
            continue
        z, t = logits[known, seg.start:seg.stop], t[known]
        truth = t if seg.multilabel else t.argmax(1)
        loss += _loss(z, t, seg.multilabel, 0.0).item()
        scores[seg.name or "main"] = selection_score(z, truth, seg.multilabel)
    return loss, scores


def selection_score(logits: torch.Tensor, labels: torch.Tensor, multilabel: bool) -> float:
    """Accuracy for single-label data; macro-F1 at threshold 0.5 for multi-label data."""
    if not multilabel:
        return (logits.argmax(1) == labels).float().mean().item()
    return float(f1_table((labels > 0.5).numpy(), (logits > 0).numpy())[2].mean())


def _ema_update(ema: torch.nn.Module, model: torch.nn.Module, decay: float) -> None:
    with torch.no_grad():
        for e, m in zip(ema.state_dict().values(), model.state_dict().values()):
            if e.dtype.is_floating_point:
                e.mul_(decay).add_(m.detach(), alpha=1 - decay)
            else:
                e.copy_(m)


@torch.no_grad()
def predict_logits(model: torch.nn.Module, inputs: torch.Tensor | np.ndarray, batch_size: int = 512,
                   bf16: bool = True, flip_tta: bool = False) -> torch.Tensor:
    """Float32 logits for a batch of model inputs (uint8 N x H x W images are made N x 1 x H x W)."""
    model.eval()
    if isinstance(inputs, np.ndarray):
        inputs = torch.from_numpy(inputs)
        if inputs.dtype == torch.uint8 and inputs.dim() == 3:
            inputs = inputs.float().unsqueeze(1)
    outs = []
    for start in range(0, len(inputs), batch_size):
        x = inputs[start:start + batch_size]
        if x.dim() == 4:
            x = x.contiguous(memory_format=torch.channels_last)
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
            logits = model(x).float()
            if flip_tta:
                logits = (logits.softmax(1) + model(x.flip(3)).float().softmax(1)).log()
        outs.append(logits)
    return torch.cat(outs)


def distributed_context() -> tuple[int, int, bool]:
    """(rank, world size, whether this call started the process group). Under torchrun
    (WORLD_SIZE > 1) the group is joined: gloo on CPUs, nccl where CUDA is there."""
    import torch.distributed as dist

    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return 0, 1, False
    started = not dist.is_initialized()
    if started:
        dist.init_process_group("nccl" if torch.cuda.is_available() else "gloo")
    return dist.get_rank(), dist.get_world_size(), started


def _all_sum(values: list[float], world: int) -> list[float]:
    """Sum of each value over the processes (the epoch's loss, hits and examples)."""
    if world == 1:
        return values
    import torch.distributed as dist

    t = torch.tensor(values, dtype=torch.float64)
    dist.all_reduce(t)
    return t.tolist()


def train(cfg: TrainConfig) -> TrainResult:
    """Train a model as `cfg` says; return where the best and last checkpoints are.

    Under `torchrun --nproc_per_node N -m emodetect train ...` the same loop runs in N processes
    (DistributedDataParallel): each takes every N-th example of the epoch's seeded order,
    `batch_size` is per process, gradients are averaged, and only rank 0 writes checkpoints and
    logs; `resume` works as in one process."""
    rank, world, started_group = distributed_context()
    try:
        return _train(cfg, rank, world)
    finally:
        if started_group:
            import torch.distributed as dist

            dist.destroy_process_group()


@dataclass
class _Run:
    """The model side of a run: the network, its EMA, the optimiser and the schedule."""

    model: torch.nn.Module
    ema: torch.nn.Module | None
    stepper: torch.nn.Module  # the model, or its DistributedDataParallel wrapper under torchrun
    optimizer: torch.optim.Optimizer
    scheduler: torch.optim.lr_scheduler.OneCycleLR
    segs: list[Segment]  # the heads' places in the logits (one segment without extra heads)
    memory_format: torch.memory_format
    per_process: int  # training examples each process takes per epoch
    steps_per_epoch: int

    @property
    def eval_model(self) -> torch.nn.Module:
        return self.ema if self.ema is not None else self.model


@dataclass
class _Progress:
    """Where the run stands: the next epoch, the best score so far and the log."""

    start_epoch: int = 0
    best_score: float = -1.0
    best_epoch: int = -1
    history: list[EpochLog] = field(default_factory=list)


def _train(cfg: TrainConfig, rank: int, world: int) -> TrainResult:
    cfg = _checked_config(cfg)
    out, main_process = Path(cfg.out), rank == 0
    if main_process:
        out.mkdir(parents=True, exist_ok=True)
    last_path, best_path = out / "last.pt", out / "best.pt"
    if cfg.bf16 and main_process and (why := slow_bf16_warning()):
        log.warning(why)

    data = load_training_data(cfg)
    run = _build_run(cfg, data, world)
    progress = _start(cfg, run, last_path, out if main_process else None)
    if main_process:
        (out / "config.json").write_text(json.dumps(asdict(cfg), indent=2))

    epochs_run = 0
    for epoch in range(progress.start_epoch, cfg.epochs):
        if cfg.stop_after and epochs_run >= cfg.stop_after:
            break
        t0 = time.time()
        loss_sum, correct, seen, labelled = _train_epoch(cfg, run, data, epoch, rank, world)
        train_seconds = time.time() - t0
        val_loss, val_score, val_heads = _validate(cfg, run, data)
        entry = EpochLog(epoch + 1, loss_sum / seen, correct / max(labelled, 1), val_loss, val_score,
                         run.scheduler.get_last_lr()[0], seen / train_seconds, time.time() - t0,
                         {k: round(v, 4) for k, v in val_heads.items()})
        progress.history.append(entry)
        log.info("epoch %d/%d train loss %.4f acc %.4f | val loss %.4f acc %.4f%s | %.0f img/s %.0fs",
                 entry.epoch, cfg.epochs, entry.train_loss, entry.train_acc, val_loss, val_score,
                 "".join(f" {k} {v:.4f}" for k, v in val_heads.items()), entry.images_per_s, entry.seconds)
        # A final fit (--val-split none) has no validation: its recipe was chosen on validation
        # before, so every epoch is the best so far and best.pt ends as the last one.
        is_best = val_score > progress.best_score or not len(data.val_labels)
        if is_best:
            progress.best_score, progress.best_epoch = val_score, epoch + 1
        epochs_run += 1
        if main_process:
            _write_checkpoints(cfg, run, data, epoch, progress, val_score if is_best else None, out)
    if world > 1:
        import torch.distributed as dist

        dist.barrier()  # every process returns once rank 0 has written the last checkpoint
    return TrainResult(best_path, last_path, progress.best_score, progress.best_epoch, progress.history)


def _checked_config(cfg: TrainConfig) -> TrainConfig:
    """The config with its modality resolved (saved with the run); what cannot run is refused."""
    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    if not cfg.data:
        raise InputError("no training data given (--data)")
    cfg = dataclasses.replace(cfg, modality=resolve_modality(cfg))
    check_train_options(cfg, get_modality(cfg.modality))
    if cfg.head_loss not in ("sum", "mean"):
        raise InputError(f"unknown head_loss {cfg.head_loss!r}; use sum or mean")
    return cfg


def _build_run(cfg: TrainConfig, data: TrainingData, world: int) -> _Run:
    """The network (seeded), its EMA copy, the optimiser and the one-cycle schedule."""
    segs = segments(data.labels, data.multilabel, data.heads)
    log.info("train: %d, val: %d examples, %d classes", len(data.train_targets),
             len(data.val_labels), width(segs))
    torch.manual_seed(cfg.seed)
    model = create_model(cfg.model, num_classes=width(segs), **data.model_kwargs)
    if data.init_weights is not None:
        data.init_weights(model)
    use_channels_last = cfg.bf16 and data.train_inputs.dim() == 4
    memory_format = torch.channels_last if use_channels_last else torch.contiguous_format
    model = model.to(memory_format=memory_format)
    ema = copy.deepcopy(model) if cfg.ema_decay > 0 else None
    # Under torchrun the steps run through DDP, which averages the gradients over the processes;
    # the weights stay identical in every process, so the EMA and checkpoints are the same too.
    stepper = model
    if world > 1:
        from torch.nn.parallel import DistributedDataParallel

        stepper = DistributedDataParallel(model)
    if cfg.optimizer == "sgd":
        optimizer = torch.optim.SGD(model.parameters(), lr=cfg.lr, momentum=0.9, nesterov=True,
                                    weight_decay=cfg.weight_decay)
    elif cfg.optimizer == "adamw":
        optimizer = torch.optim.AdamW(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    else:
        raise InputError(f"unknown optimizer {cfg.optimizer!r}; use sgd or adamw")
    # A last batch of one example is dropped: batch norm cannot train on a single value per channel.
    # Each process takes every world-th example (the order cut to a multiple of world, so all
    # processes run the same number of steps).
    per_process = len(data.train_targets) // world
    full, rest = divmod(per_process, cfg.batch_size)
    steps_per_epoch = full + (rest > 1)
    scheduler = torch.optim.lr_scheduler.OneCycleLR(
        optimizer, max_lr=cfg.lr, total_steps=cfg.epochs * steps_per_epoch, pct_start=0.15,
        div_factor=20, final_div_factor=200,
    )
    return _Run(model, ema, stepper, optimizer, scheduler, segs, memory_format, per_process, steps_per_epoch)


def _start(cfg: TrainConfig, run: _Run, last_path: Path, log_dir: Path | None) -> _Progress:
    """Fresh (from --init weights if given), or resumed from last.pt; with `log_dir` (the main
    process) the log is rewritten from the checkpoint."""
    resume = cfg.resume and last_path.exists()
    if cfg.init and not resume:
        init_weights(run.model, cfg.init)
        if run.ema is not None:
            run.ema.load_state_dict(run.model.state_dict())
        log.info("weights initialised from %s", cfg.init)
    if not resume:
        return _Progress()
    checkpoint = Checkpoint.read(last_path)
    state = checkpoint.training
    if state is None:
        raise DataError(f"{last_path}: holds no training state to resume from (a best.pt copied over it?)")
    run.model.load_state_dict(state.model)
    if run.ema is not None and state.ema is not None:
        run.ema.load_state_dict(state.ema)
    run.optimizer.load_state_dict(state.optimizer)
    progress = _Progress(checkpoint.epoch + 1, state.best_score, state.best_epoch,
                         [EpochLog(**h) for h in state.history])
    planned = checkpoint.config.get("epochs", cfg.epochs)
    if planned == cfg.epochs:
        run.scheduler.load_state_dict(state.scheduler)
    else:
        # Extending (or shortening) a run: the one-cycle curve is redrawn for the new length
        # and continued from the step the run had reached.
        import warnings

        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            for _ in range(min(progress.start_epoch * run.steps_per_epoch, run.scheduler.total_steps - 1)):
                run.scheduler.step()
        log.info("run planned for %d epochs continues to %d", planned, cfg.epochs)
    # The log is rewritten from the checkpoint: a kill after a log line but before the
    # checkpoint of that epoch must not leave the epoch twice in it.
    if log_dir is not None:
        (log_dir / "log.jsonl").write_text("".join(json.dumps(asdict(h)) + "\n" for h in progress.history))
    log.info("resumed from %s at epoch %d", last_path, progress.start_epoch)
    return progress


def _train_epoch(cfg: TrainConfig, run: _Run, data: TrainingData, epoch: int, rank: int,
                 world: int) -> list[float]:
    """One pass over this process's share of the training data; the loss sum, the hits, the
    examples seen and those with a main label, summed over the processes."""
    # Everything random in an epoch (order, augmentation, dropout) derives from (seed, epoch),
    # which is what makes a resumed run match an uninterrupted one.
    gen = torch.Generator().manual_seed(cfg.seed * 100_003 + epoch)
    torch.manual_seed(cfg.seed * 100_003 + epoch)
    inputs, targets = data.train_inputs, data.train_targets
    order = torch.randperm(len(targets), generator=gen)
    if world > 1:
        order = order[:run.per_process * world][rank::world]
    run.model.train()
    t0 = time.time()
    loss_sum, correct, seen, labelled = 0.0, 0, 0, 0
    bar = tqdm(range(run.steps_per_epoch), desc=f"epoch {epoch + 1}/{cfg.epochs}", unit="batch",
               mininterval=5.0, leave=False, disable=rank != 0)
    for step in bar:
        idx = order[step * cfg.batch_size:(step + 1) * cfg.batch_size]
        x, target = _batch(cfg, data, inputs[idx], targets[idx], gen)
        if x.dim() == 4:
            x = x.contiguous(memory_format=run.memory_format)
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=cfg.bf16):
            logits = run.stepper(x)
        loss = _head_loss(logits, target, run.segs, cfg.label_smoothing, cfg.head_loss == "sum")
        run.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        run.optimizer.step()
        run.scheduler.step()
        if run.ema is not None:
            # Warm-up: early on the average would mostly remember the random init.
            step_count = run.scheduler.last_epoch
            _ema_update(run.ema, run.model, min(cfg.ema_decay, (1 + step_count) / (10 + step_count)))
        loss_sum += loss.item() * len(target)
        hits, known = _main_hits(logits, target, len(data.labels), data.multilabel)
        correct += hits
        seen += len(target)
        labelled += known
        bar.set_postfix(loss=f"{loss_sum / seen:.3f}", acc=f"{correct / max(labelled, 1):.3f}",
                        img_s=f"{seen / (time.time() - t0):.0f}", refresh=False)
    bar.close()
    return _all_sum([loss_sum, correct, seen, labelled], world)


def _batch(cfg: TrainConfig, data: TrainingData, x: torch.Tensor, target: torch.Tensor,
           gen: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """A training batch augmented and mixed (mixup) as the config says, from the epoch's generator."""
    if cfg.augment and data.augment is not None:
        x = data.augment(x, gen)
    if cfg.mixup > 0:
        seed = int(torch.randint(2**31 - 1, (1,), generator=gen))
        lam = float(np.random.default_rng(seed).beta(cfg.mixup, cfg.mixup))
        perm = torch.randperm(len(target), generator=gen)
        x = lam * x + (1 - lam) * x[perm]
        target = lam * target + (1 - lam) * target[perm]
    return x, target


def _main_hits(logits: torch.Tensor, target: torch.Tensor, main: int, multilabel: bool) -> tuple[int, int]:
    """Rows whose main label (set) was predicted, and rows with a main label (all, without heads)."""
    logits, target = logits[:, :main], target[:, :main]
    known = ~torch.isnan(target).any(1)
    logits, target = logits[known], target[known]
    if multilabel:
        hits = ((logits > 0) == (target > 0.5)).all(1).sum().item()
    else:
        hits = (logits.argmax(1) == target.argmax(1)).sum().item()
    return int(hits), int(known.sum())


def _validate(cfg: TrainConfig, run: _Run, data: TrainingData) -> tuple[float, float, dict[str, float]]:
    """Validation loss, selection score and each head's score (NaN without validation data)."""
    if not len(data.val_labels):
        return float("nan"), float("nan"), {}
    val_logits = predict_logits(run.eval_model, data.val_inputs, bf16=cfg.bf16)
    if len(run.segs) > 1:
        # Several heads: each scored on its own rows; selection takes their mean, so no
        # corpus's head is traded away for another's.
        val_loss, val_heads = head_scores(val_logits, data.val_labels, run.segs)
        return val_loss, float(np.mean(list(val_heads.values()))), val_heads
    if data.multilabel:
        val_loss = F.binary_cross_entropy_with_logits(val_logits, data.val_labels.float()).item()
    else:
        val_loss = F.cross_entropy(val_logits, data.val_labels).item()
    return val_loss, selection_score(val_logits, data.val_labels, data.multilabel), {}


def _write_checkpoints(cfg: TrainConfig, run: _Run, data: TrainingData, epoch: int, progress: _Progress,
                       best_score: float | None, out: Path) -> None:
    """last.pt (and best.pt when `best_score` is given) after an epoch, then the epoch's log line."""
    extras = data.extras | ({"heads": data.heads} if data.heads else {})
    model = Checkpoint(config=asdict(cfg), modality=cfg.modality, model_name=cfg.model, labels=list(data.labels),
                       weights=run.eval_model.state_dict(), num_classes=width(run.segs),
                       model_kwargs=data.model_kwargs, extras=extras, multilabel=data.multilabel, epoch=epoch)
    # best.pt before last.pt: a kill between the two reruns this epoch on resume, which
    # rewrites best.pt, instead of leaving a stale one behind a newer last.pt.
    if best_score is not None:
        dataclasses.replace(model, score=best_score).save(out / "best.pt")
    training = TrainingState(run.model.state_dict(), run.ema.state_dict() if run.ema is not None else None,
                             run.optimizer.state_dict(), run.scheduler.state_dict(), progress.best_score,
                             progress.best_epoch, [asdict(h) for h in progress.history])
    dataclasses.replace(model, training=training).save(out / "last.pt")
    with open(out / "log.jsonl", "a") as handle:
        handle.write(json.dumps(asdict(progress.history[-1])) + "\n")


def init_weights(model: torch.nn.Module, path: str | Path) -> None:
    """Load a checkpoint's weights into a model of the same architecture (fine-tuning)."""
    try:
        model.load_state_dict(Checkpoint.read(path).weights)
    except RuntimeError as err:
        raise ModelError(f"{path}: its weights do not fit this model ({err})") from err


def read_checkpoint(path: str | Path) -> dict[str, Any]:
    """A checkpoint file's contents as the dict it holds (older callers; new code reads
    `emodetect.checkpoint.Checkpoint`)."""
    return Checkpoint.read(path).to_dict()


def load_checkpoint_model(checkpoint: str | Path | dict[str, Any] | Checkpoint) -> torch.nn.Module:
    """Rebuild the model a checkpoint (best.pt or last.pt, or one already read) holds, in eval mode."""
    return as_checkpoint(checkpoint).build_model()
