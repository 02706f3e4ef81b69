"""The project's one error family.

Every error that bad input can cause is an `InputError` (also a `ValueError`, as before) with a
`reason` code. The service maps the code to an HTTP status in one place (`HTTP_STATUS`) and the
command line catches `EmodetectError` only, so anything else shows as the bug it is.
"""

from __future__ import annotations


class EmodetectError(Exception):
    """Base of every error emodetect raises on purpose."""


class InputError(EmodetectError, ValueError):
    """Input that cannot be used; `reason` says how, for programs (the message says it for people)."""

    reason = "invalid"

    def __init__(self, message: str, reason: str | None = None):
        super().__init__(message)
        if reason is not None:
            self.reason = reason


class DataError(InputError):
    """A training or evaluation data set that cannot be read: missing, empty, malformed."""


class OutputError(InputError):
    """A place to write results to that cannot be used: a missing folder, a file where a folder
    must be. Checked before the work, so that an hour of analysis is not lost on a typo."""


class ModelError(InputError):
    """A model file that cannot be used: not ONNX, truncated, not the shape its labels say, or
    answering inf/NaN. The message names the file, so a bad `--model` is one line, not a traceback."""


class MissingExtra(EmodetectError, ModuleNotFoundError):
    """An optional package that is not installed (still a ModuleNotFoundError, with its `name`); the
    one-line message names the extra that installs it, as the command line's messages do."""

    def __init__(self, package: str, extra: str, needed_for: str):
        super().__init__(f"{package} is missing: {needed_for} needs it: install the {extra} extra: "
                         f"pip install 'emodetect[{extra}]'")
        self.name = package


# reason code -> HTTP status; an unknown code is a 422.
HTTP_STATUS = {
    "empty": 400,        # nothing to read: 0 bytes, no samples
    "malformed": 400,    # the request itself is broken (multipart framing)
    "too_large": 413,    # over a limit: bytes, pixels, seconds, texts
    "unsupported": 415,  # not a format this service reads
    "invalid": 422,      # readable framing, unusable content (corrupt image, NaN audio)
}


def http_status(err: InputError) -> int:
    return HTTP_STATUS.get(err.reason, 422)
