"""Output heads: one model, several label sets side by side in its logits.

A multi-head model (the joint text model) has its main labels first and then each extra head's
(GoEmotions' 28, ISEAR's 7, ...), one softmax or sigmoid per head. Training masks the heads a row
has no label in (NaN targets); export writes the main head as `probabilities` and the others as
`head_probabilities`, so a program that reads only the first output sees a plain classifier.
Nothing here imports torch: `activate` uses tensor methods only.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Sequence

from emodetect.errors import NotFoundError

HEAD_OUTPUT = "head_probabilities"

# What each bundled label set is, for people: "dair=joy isear=disgust" named corpora that mean
# nothing to a user (issue 32). The title is the count and this word: "6 basic".
LABEL_SET_KINDS = {"goemotions": "fine-grained", "dair": "basic", "isear": "with shame and guilt"}


def label_set_title(name: str, labels: Sequence[str]) -> str:
    """A label set by what it is ("28 fine-grained", "6 basic"); an unknown head keeps its name."""
    return f"{len(labels)} {LABEL_SET_KINDS.get(name, name)}" if name else f"{len(labels)} main"


@dataclass(frozen=True)
class Segment:
    """One head's slice of the logits."""

    name: str  # "" for the main head
    labels: tuple[str, ...]
    multilabel: bool
    start: int

    @property
    def stop(self) -> int:
        return self.start + len(self.labels)


def segments(labels: Sequence[str], multilabel: bool, heads: Sequence[dict[str, Any]] = ()) -> list[Segment]:
    """The main head, then each extra head ({"name", "labels", "multilabel"}), in logit order."""
    out = [Segment("", tuple(labels), bool(multilabel), 0)]
    for head in heads:
        out.append(Segment(head["name"], tuple(head["labels"]), bool(head.get("multilabel")), out[-1].stop))
    return out


def width(segs: Sequence[Segment]) -> int:
    """How many logits the model has for these heads."""
    return segs[-1].stop


def find(segs: Sequence[Segment], name: str) -> Segment:
    """The head called `name` ("" or "main": the main head), or an error listing the heads."""
    for seg in segs:
        if seg.name == name or (name in ("", "main") and seg.name == ""):
            return seg
    raise NotFoundError(f"no head {name!r}; the model's heads: main, {', '.join(s.name for s in segs[1:]) or '(none)'}")


def activate(logits: Any, segs: Sequence[Segment]) -> list[Any]:
    """Each head's probabilities from a torch logits tensor: sigmoid (multi-label) or softmax."""
    return [logits[:, s.start:s.stop].sigmoid() if s.multilabel else logits[:, s.start:s.stop].softmax(1)
            for s in segs]
