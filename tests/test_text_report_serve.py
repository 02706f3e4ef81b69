"""POST /v1/text/report: the report on posts and reviews from an uploaded CSV, bounded in bytes
and rows before anything is parsed; bad columns and encodings answered with what is wrong."""

from __future__ import annotations

import pytest

pytest.importorskip("fastapi")
from fastapi.testclient import TestClient  # noqa: E402

from emodetect.serve import ServeConfig, create_app  # noqa: E402

ROUTES = ("emodetect.serve.routes_health", "emodetect.serve.routes_text", "emodetect.serve.routes_report")
REVIEWS = ("review,product,date\n"
           + "".join(f"I love this phone so much,A,2026-01-{d:02d}\n" for d in range(1, 11))
           + "".join(f"Terrible battery and I am furious,B,2026-02-{d:02d}\n" for d in range(1, 11))).encode()


@pytest.fixture(scope="module")
def client():
    with TestClient(create_app(ServeConfig(workers=1, max_report_rows=40, max_upload_bytes=20_000),
                               route_modules=ROUTES)) as c:
        yield c


def post(client, data: bytes, query: str = "column=review&by=product&over=date&split_at=2026-02-01"):
    return client.post(f"/v1/text/report?{query}", files={"file": ("reviews.csv", data, "text/csv")})


def test_a_csv_becomes_figures_and_one_self_contained_page(client):
    answer = post(client, REVIEWS)
    assert answer.status_code == 200, answer.text
    summary, html = answer.json()["summary"], answer.json()["html"]
    assert summary["hygiene"]["rows"] == 20 and summary["hygiene"]["scored"] == 20
    shares = {(r["group"], r["label"]): r for r in summary["shares"]}
    assert shares[("A", "happy")]["share"] > 0.5 and shares[("B", "angry")]["share"] + shares[("B", "sad")]["share"] > 0.5
    assert summary["split"] and summary["by"] == "product"
    assert html.startswith("<!doctype html>") and "reviews.csv" in html
    assert "http://" not in html and "https://" not in html  # nothing fetched from elsewhere


def test_raw_csv_body_and_plain_texts(client):
    answer = client.post("/v1/text/report", content=b"text\nWhat a lovely day\nI hate waiting\n",
                         headers={"content-type": "text/csv"})
    assert answer.status_code == 200 and answer.json()["summary"]["hygiene"]["scored"] == 2


@pytest.mark.parametrize("data, query, status, words", [
    (b"review\n" + b"fine\n" * 60, "column=review", 413, "max_report_rows"),
    (b"review\n" + b"x" * 30_000 + b"\n", "column=review", 413, ""),
    (REVIEWS, "column=comment", 422, "no column 'comment'"),
    ("review\ncafé\n".encode("latin-1"), "column=review", 415, "UTF-8"),
    (REVIEWS, "column=review&over=date&every=year", 422, ""),
])
def test_what_cannot_be_reported_is_refused_with_a_reason(client, data, query, status, words):
    answer = post(client, data, query)
    assert answer.status_code == status, answer.text
    assert words in answer.text
    assert client.get("/healthz").status_code == 200
