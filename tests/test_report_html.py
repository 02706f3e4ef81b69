"""report.html stands alone: styled, and titled with the model's name, not its install path
(issue 32, point 10)."""

from __future__ import annotations

import re

from conftest import write_fer_csv

from emodetect.evaluate import evaluate


def test_report_html_is_styled_and_named_after_the_model(tmp_path):
    data = write_fer_csv(tmp_path / "fer.csv", {"PrivateTest": 28})
    report = evaluate("default", data, "PrivateTest", out_dir=tmp_path / "report")
    page = (tmp_path / "report" / "report.html").read_text()
    title = re.search(r"<title>(.*?)</title>", page).group(1)
    assert report.model == "default" and title.startswith("default")
    assert "/" not in title and "assets" not in page and ".onnx" not in page.split("<body>")[1][:300]
    style = re.search(r"<style>(.*?)</style>", page, re.S).group(1)
    assert "border-collapse" in style and "max-width" in style  # ruled tables, a readable measure
    assert "# Evaluation of `default`" in (tmp_path / "report" / "report.md").read_text()
