"""The result family: a face, a text and a recording read the same way.

Every result names its answer `label` (None when there is nothing to label, such as an empty text
or a silent recording), with `confidence` (the label's probability), `probabilities` (label ->
probability), `model` and, where it came from a file, `source`; and every result has the same
readers: `to_dict()`, `to_json()`, `to_rows()` (flat dicts for CSV), `to_df()` and `plot()`.
Face results live in vision/results.py, text in text/pipeline.py, voice in voice/pipeline.py.
"""

from __future__ import annotations

import json
from typing import Any


def import_pandas():
    """pandas, for `to_df()`: not a base dependency, so its absence is one line naming the extra."""
    try:
        import pandas
    except ModuleNotFoundError as err:
        if err.name != "pandas":
            raise
        from emodetect.errors import MissingExtra

        raise MissingExtra("pandas", "pandas", "to_df()") from None
    return pandas


def rounded(probabilities: dict[str, float], digits: int = 4) -> dict[str, float]:
    """Probabilities as JSON shows them: floats rounded to `digits`."""
    return {k: round(float(v), digits) for k, v in probabilities.items()}


class ResultReaders:
    """`to_json` and `to_df` from a result's own `to_dict` and `to_rows`."""

    def to_dict(self) -> dict[str, Any]:
        raise NotImplementedError

    def to_rows(self, *args: Any, **options: Any) -> list[dict[str, Any]]:
        raise NotImplementedError

    def to_json(self, indent: int | None = None) -> str:
        return json.dumps(self.to_dict(), indent=indent, ensure_ascii=False)

    def to_df(self, *args: Any, **options: Any):  # -> pandas.DataFrame; pandas is imported only here
        """The rows of `to_rows(...)` as a pandas DataFrame (the pandas extra)."""
        return import_pandas().DataFrame(self.to_rows(*args, **options))
