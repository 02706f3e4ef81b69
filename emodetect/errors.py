"""The project's one error family.

Every error that bad input can cause is an `InputError` (also a `ValueError`, as before) with a
`reason` code. The service maps the code to an HTTP status in one place (`HTTP_STATUS`, read by
the app's one exception handler), the command line to an exit code (`EXIT_CODE`), and both catch
`EmodetectError` only, so anything else (a plain ValueError from an internal check) shows as the
bug it is: a traceback, a 500.
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


class NotFoundError(InputError, KeyError):
    """A name that nothing answers to (a model's head, a bundled model); the message lists the names
    there are. Also a KeyError, as these lookups raised before the family."""

    reason = "not_found"

    # KeyError's str() quotes its argument (str(KeyError("x")) == "'x'"); the message is for people.
    def __str__(self) -> str:
        return str(self.args[0]) if self.args else ""


class ModelNotFoundError(NotFoundError):
    """A model name that no bundled model (or registered architecture) answers to, or a file where a
    bundled model is needed; the message lists the names there are (`runtime.resolve_model`,
    `registry.get_model`, `cards.find_model`)."""


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
    "not_found": 422,    # a name nothing answers to: a model, a head (the route exists: not a 404)
}

# Exit codes of the command line, as they were before this table: 0 done; 1 done, but some inputs
# (files of a folder, rows of a batch, a video) failed and were reported; 2 refused before or
# during the work: usage, input, a model or an output place that cannot be used, a missing extra;
# 130 stopped (Ctrl-C, SIGTERM). reason code -> exit code; an unknown code is a 2.
EXIT_OK, EXIT_SOME_FAILED, EXIT_REFUSED, EXIT_STOPPED = 0, 1, 2, 130
EXIT_CODE = {reason: EXIT_REFUSED for reason in HTTP_STATUS}


def http_status(err: EmodetectError) -> int:
    """The HTTP status of an error: its own `status` where it carries one (the service's upload
    errors: 408, 503), else its reason's."""
    status = getattr(err, "status", None)
    return status if isinstance(status, int) else HTTP_STATUS.get(getattr(err, "reason", ""), 422)


def exit_code(err: EmodetectError) -> int:
    """The command line's exit code for an error of the family (2 unless its reason says otherwise)."""
    return EXIT_CODE.get(getattr(err, "reason", ""), EXIT_REFUSED)
