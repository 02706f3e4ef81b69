"""Knowledge distillation for text models: training targets mixed with a teacher's answers.

`emodetect train --teacher MODEL` reads every training text with the teacher (any text model with
the same labels and heads, an ensemble included) and fits the student to a mix of the labels and
the teacher's probabilities (`distill_targets`).
"""

from __future__ import annotations

import logging

import numpy as np

from emodetect.errors import DataError
from emodetect.heads import segments
from emodetect.text.corpus import TextDataset

log = logging.getLogger(__name__)


def distill_targets(teacher: str, data: TextDataset, weight: float, threads: int = 0,
                    heads: str = "") -> np.ndarray:
    """Training targets mixed with a teacher model's probabilities (knowledge distillation):
    `weight` x teacher + (1 - weight) x label where a text has a label in a head, the teacher's
    alone where it has none, so a small fast model learns every head from every corpus's texts
    and the teacher's graded answers instead of one-hot ones. `heads` (comma-separated, "main" for
    the main labels) limits the teaching to the heads where the teacher is the better model;
    `NAME=SHARE` sets one head's share of its labelled texts (0: its labels stay as they are, the
    teacher only fills the texts without one)."""
    from emodetect.text.pipeline import TextEmotion

    if not 0.0 <= weight <= 1.0:
        raise DataError(f"--distill {weight}: the teacher's share must be between 0 and 1")
    try:
        model = TextEmotion(teacher, threads=threads)
    except (OSError, ValueError, KeyError) as err:
        raise DataError(f"--teacher {teacher}: {err.args[0] if err.args else err}") from err
    segs = segments(data.labels, data.multilabel, data.head_specs())
    wanted = [(s.name, s.labels, s.multilabel) for s in segs]
    given = [(s.name, s.labels, s.multilabel) for s in segments(model.labels, model.multilabel, model.head_specs)]
    if wanted != given:
        def show(heads):
            return "; ".join(f"{name or 'main'}: {len(labels)} labels{' (multi-label)' if ml else ''}"
                             for name, labels, ml in heads)
        raise DataError(f"--teacher {teacher} answers in other labels than {data.source}: "
                        f"the teacher's heads {show(given)}; the data's {show(wanted)}")
    names = [s.name or "main" for s in segs]
    shares = _head_shares(heads, weight, names)
    log.info("teacher %s: reading %d training texts for heads %s", teacher, len(data),
             ", ".join(f"{h} ({share:g})" for h, share in shares.items()))
    soft = model.probabilities(data.texts, progress=True)
    hard = data.all_targets()
    mixed = hard.astype(np.float32)
    for seg, name in zip(segs, names):
        if name in shares:
            part, taught, share = hard[:, seg.start:seg.stop], soft[:, seg.start:seg.stop], shares[name]
            mixed[:, seg.start:seg.stop] = np.where(np.isnan(part), taught, (1.0 - share) * part + share * taught)
    return mixed


def _head_shares(heads: str, weight: float, names: list[str]) -> dict[str, float]:
    """--distill-heads "main,dair,goemotions=0.2" -> the teacher's share in each head it teaches."""
    shares: dict[str, float] = {}
    for item in (h.strip() for h in heads.split(",")):
        if not item:
            continue
        name, _, share = item.partition("=")
        try:
            shares[name.strip()] = float(share) if share else weight
        except ValueError:
            raise DataError(f"--distill-heads {item}: the share after '=' must be a number") from None
    shares = shares or dict.fromkeys(names, weight)
    unknown = set(shares) - set(names)
    if unknown:
        raise DataError(f"--distill-heads: no head {', '.join(sorted(unknown))}; the heads: {', '.join(names)}")
    for name, share in shares.items():
        if not 0.0 <= share <= 1.0:
            raise DataError(f"--distill-heads {name}={share:g}: the teacher's share must be between 0 and 1")
    return shares
