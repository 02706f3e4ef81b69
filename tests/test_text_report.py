"""The report on many texts (emodetect.text.report): planted shifts found, none where none was
planted, input hygiene counted, and a page that asks for nothing outside itself.

The scorer is a fake that reads the label written in each text, so the counts are exact and the
tests take seconds; the statistics are checked against scipy where it is installed.
"""

from __future__ import annotations

import csv
import json
import math
import random
import re
from datetime import date, datetime, timedelta, timezone
from pathlib import Path

import pytest

from emodetect import stats
from emodetect.errors import DataError
from emodetect.text.hygiene import guess_language, parse_date, period_start
from emodetect.text.pipeline import TextResult, TextResults
from emodetect.text.report import ALL, ReportBuilder, report, report_csv

LABELS = ("angry", "disgust", "fear", "happy", "neutral", "sad", "surprise")
WORDS = {"angry": "furious broken refund", "happy": "love great delighted", "neutral": "arrived box cable",
         "sad": "disappointed sorry miss", "fear": "worried unsafe scared", "disgust": "gross dirty smell",
         "surprise": "wow unexpected sudden"}


class FakeModel:
    path = Path("fake.onnx")
    metadata = {"training_data": "fake.csv (train)"}


class FakeReader:
    """Reads the label a text names (`... [angry]`): exact counts, no model."""

    name = "fake"
    labels = LABELS
    model = FakeModel()
    max_tokens, groups, heads, multilabel = 48, None, [], False

    def __init__(self):
        self.explained = 0

    def predict(self, texts, batch_size=256, explain=False):
        out = []
        for t in texts:
            label = next((lab for lab in LABELS if f"[{lab}]" in t), "neutral") if t.strip() else None
            probs = {lab: (0.8 if lab == label else 0.2 / 6) for lab in LABELS}
            if label:
                probs[label] = 0.7 + (len(t) % 29) / 100  # some texts more typical than others
            out.append(TextResult(t, label, [label] if label else [], probs, self.name,
                                  error=None if label else "empty text"))
        return TextResults(out)

    def explain(self, text, label=None):
        self.explained += 1
        return [{"token": w, "weight": 0.5 if w in WORDS[label].split() else 0.0} for w in text.lower().split()]


def review(rng: random.Random, label: str, i: int) -> str:
    words = WORDS[label].split()
    return f"review {i}: the item was {rng.choice(words)} and {rng.choice(words)} [{label}]"


def pick(rng: random.Random, shares: dict[str, float]) -> str:
    u, acc = rng.random(), 0.0
    for label, share in shares.items():
        acc += share
        if u < acc:
            return label
    return label


BASE = {"angry": 0.10, "happy": 0.45, "neutral": 0.30, "sad": 0.15}
SHIFTED = {"angry": 0.45, "happy": 0.20, "neutral": 0.25, "sad": 0.10}
START = date(2026, 1, 5)  # a Monday
SHIFT = date(2026, 3, 2)  # a Monday: product A's angry share jumps from 10% to 45% that week


def when(rng: random.Random, day: date, i: int) -> str:
    """The same moment written the ways exports write dates (day first where it is ambiguous)."""
    moment = datetime(day.year, day.month, day.day, rng.randint(8, 20), rng.randint(0, 59))
    style = i % 5
    if style == 0:
        return day.isoformat()
    if style == 1:  # an offset east of UTC: 09:xx +02:00 is still the same day in UTC
        return moment.replace(tzinfo=timezone(timedelta(hours=2))).isoformat()
    if style == 2:
        return str(int(moment.replace(tzinfo=timezone.utc).timestamp()))
    if style == 3:
        return moment.strftime("%d/%m/%Y %H:%M")
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


@pytest.fixture(scope="module")
def reviews(tmp_path_factory) -> Path:
    """10 weeks x 2 products x 90 reviews, A shifted from SHIFT on, B never; then planted hygiene:
    3 empty, 4 duplicates, 2 French, 1 Russian, 2 unreadable dates, 1 missing date, 1 missing product."""
    rng = random.Random(7)
    path = tmp_path_factory.mktemp("report") / "reviews.csv"
    rows = []
    i = 0
    for week in range(10):
        monday = START + timedelta(weeks=week)
        for product in ("A", "B"):
            for _ in range(90):
                shares = SHIFTED if product == "A" and monday >= SHIFT else BASE
                day = monday + timedelta(days=rng.randrange(7))
                rows.append({"review": review(rng, pick(rng, shares), i), "product": product, "date": when(rng, day, i)})
                i += 1
    rows += [{"review": t, "product": "B", "date": "2026-01-07"} for t in ("", "   ", "\t")]
    rows += [{"review": rows[k]["review"].upper().replace(":", ":  "), "product": "B", "date": "2026-01-07"}
             for k in (0, 1, 2, 3)]  # case and spacing aside, the same texts
    rows += [{"review": "Ce produit est vraiment très mauvais, je ne suis pas content du tout", "product": "A",
              "date": "2026-02-02"},
             {"review": "El envío fue muy lento y la caja llegó rota, no lo recomiendo para nada", "product": "A",
              "date": "2026-02-02"},
             {"review": "Ужасный товар, сломался через два дня", "product": "B", "date": "2026-02-02"}]
    rows += [{"review": review(rng, "happy", 9001), "product": "A", "date": "yesterday"},
             {"review": review(rng, "happy", 9002), "product": "A", "date": "31/02/2026"},
             {"review": review(rng, "happy", 9003), "product": "A", "date": ""},
             {"review": review(rng, "sad", 9004), "product": "", "date": "2026-01-07"}]
    with open(path, "w", encoding="utf-8", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=["review", "product", "date"])
        writer.writeheader()
        writer.writerows(rows)
    return path


@pytest.fixture(scope="module")
def summary(reviews):
    return report_csv(reviews, column="review", by="product", over="date", every="week", split_at="2026-03-02",
                      dayfirst=True, reader=FakeReader(), chunk=100)


def test_report_finds_the_planted_shift_in_the_week_it_was_planted(summary):
    found = [(c["group"], c["label"], c["to"]) for c in summary.changes]
    assert ("A", "angry", SHIFT.isoformat()) in found
    shift = next(c for c in summary.changes if c["group"] == "A" and c["label"] == "angry")
    assert shift["share_from"] < 0.2 < 0.3 < shift["share_to"]


def test_report_marks_no_change_where_none_was_planted(summary):
    assert not [c for c in summary.changes if c["group"] == "B"]
    # A changed only at the shift: before and after it its weeks are alike.
    assert {c["to"] for c in summary.changes if c["group"] == "A"} == {SHIFT.isoformat()}


def test_before_after_split_supports_the_planted_change_only(summary):
    by_group = {g["group"]: g for g in summary.split}
    a = {lab["label"]: lab for lab in by_group["A"]["labels"]}
    assert a["angry"]["change"] and a["angry"]["diff_low"] > 0.2 and a["angry"]["cohens_h"] > 0.5
    assert a["happy"]["change"] and a["happy"]["diff"] < 0
    assert by_group["A"]["p"] < 1e-6
    assert by_group["B"]["p"] > 0.05
    assert not [lab for lab in by_group["B"]["labels"] if lab["change"]]
    assert all(lab["p_holm"] is None or lab["p_holm"] >= lab["p"] for g in summary.split for lab in g["labels"])


def test_shares_come_with_intervals_and_counts(summary):
    a = summary.share("angry", "A")
    assert a["n"] == 900 + 3  # 900 planted, and 3 with an unreadable or missing date (in the shares)
    assert a["low"] < a["share"] < a["high"]
    assert a["count"] == round(a["share"] * a["n"])
    overall = summary.share("angry", ALL)
    assert overall["n"] == summary.hygiene.scored
    assert sum(summary.share(lab)["count"] for lab in LABELS) == summary.hygiene.scored
    assert summary.groups[0] == ALL and set(summary.groups) == {ALL, "A", "B", "(none)"}


def test_hygiene_counts_what_was_planted(summary):
    h = summary.hygiene
    assert h.rows == 1800 + 3 + 4 + 3 + 4
    assert h.empty == 3
    assert h.duplicates == 4
    assert h.not_english == {"fr": 1, "es": 1, "non-Latin script": 1}
    assert h.bad_date == 2 and h.no_date == 1 and h.no_group == 1
    assert h.scored == h.rows - 3 - 3
    assert all("reviews.csv: row at line" in w for w in h.examples["empty"])


def test_typical_texts_are_the_most_probable_and_only_they_are_explained(reviews):
    reader = FakeReader()
    summary = report_csv(reviews, column="review", by="product", over="date", dayfirst=True, reader=reader)
    assert reader.explained == sum(len(v) for v in summary.typical.values()) <= 3 * len(LABELS)
    for label, texts in summary.typical.items():
        probs = [t["probability"] for t in texts]
        assert probs == sorted(probs, reverse=True)
        assert all(f"[{label}]" in t["text"] for t in texts)
        assert len({t["text"] for t in texts}) == len(texts)  # distinct texts
        assert all(any(e["weight"] > 0 for e in t["explanation"]) for t in texts)


def test_builder_keeps_counts_not_texts(reviews):
    builder = ReportBuilder(FakeReader(), by="product", over="date", dayfirst=True)
    from emodetect.text.report import csv_chunks

    for rows, where in csv_chunks(reviews, ["review", "product", "date"], chunk=64):
        builder.predict_rows(rows, "review", where)
    assert len(builder.cells) <= 4 * 11  # (all, A, B, (none)) x (10 weeks + no date)
    assert sum(len(h) for h in builder.heaps.values()) <= 3 * len(LABELS)
    assert len(builder.seen) == builder.hygiene.rows - 3 - 4  # 8-byte keys: not the empty, not the repeats


def test_an_ambiguous_date_is_an_error_naming_the_row(tmp_path):
    path = tmp_path / "r.csv"
    path.write_text("text,date\nfine [happy],2026-03-01\nfine [sad],01/03/2026\n", encoding="utf-8")
    with pytest.raises(DataError, match=r"line 3.*ambiguous.*--dayfirst"):
        report_csv(path, over="date", reader=FakeReader())
    march = report_csv(path, over="date", every="month", dayfirst=True, reader=FakeReader())
    assert [r["period"] for r in march.trend if r["label"] == "sad" and r["count"]] == ["2026-03"]


def test_a_missing_column_lists_the_columns(tmp_path):
    path = tmp_path / "r.csv"
    path.write_text("text,when\nfine [happy],2026-03-01\n", encoding="utf-8")
    with pytest.raises(DataError, match="no column 'date'.*text, when"):
        report_csv(path, over="date", reader=FakeReader())


@pytest.mark.parametrize("value, expected", [
    ("2026-03-01", datetime(2026, 3, 1)),
    ("2026-03-01T23:30:00-02:00", datetime(2026, 3, 2, 1, 30)),  # the next day in UTC
    ("2026-03-01 00:30+01:00", datetime(2026, 2, 28, 23, 30)),
    ("2026-03-01T10:00:00Z", datetime(2026, 3, 1, 10)),
    ("25/03/2026", datetime(2026, 3, 25)),  # day first: 25 is no month
    ("03/25/2026 14:05", datetime(2026, 3, 25, 14, 5)),  # month first: 25 is no month
    ("25.03.2026", datetime(2026, 3, 25)),
    ("1772323200", datetime(2026, 3, 1)),  # epoch seconds
    ("1772323200000", datetime(2026, 3, 1)),  # epoch milliseconds
    ("Sun, 01 Mar 2026 10:00:00 +0100", datetime(2026, 3, 1, 9)),
    ("", None),
])
def test_dates_in_common_formats_and_time_zones(value, expected):
    assert parse_date(value) == expected


def test_dayfirst_decides_and_nonsense_is_not_a_date():
    assert parse_date("01/03/2026", dayfirst=True) == datetime(2026, 3, 1)
    assert parse_date("01/03/2026", dayfirst=False) == datetime(2026, 1, 3)
    assert parse_date("03/03/2026") == datetime(2026, 3, 3)
    with pytest.raises(DataError, match="ambiguous"):
        parse_date("01/03/2026")
    for bad in ("yesterday", "2026-13-01", "31/02/2026"):
        with pytest.raises(ValueError):
            parse_date(bad)
    assert period_start(datetime(2026, 3, 4, 12), "week") == date(2026, 3, 2)
    assert period_start(datetime(2026, 3, 4, 12), "month") == date(2026, 3, 1)


@pytest.mark.parametrize("text, guess", [
    ("I love this product, it is the best thing I have bought this year", None),
    ("Great product!", None),
    ("Arrived broken. Refund please.", None),
    ("The croissant was très bon but the delivery was late", None),
    ("Ce produit est vraiment très mauvais, je ne suis pas content", "fr"),
    ("Das Produkt ist nicht gut und der Versand war sehr langsam", "de"),
    ("Il prodotto è arrivato rotto e non funziona per niente", "it"),
    ("O produto chegou quebrado e não funciona, muito ruim", "pt"),
    ("Het product is niet goed en de levering was erg traag", "nl"),
    ("这个产品很好", "non-Latin script"),
    ("Ужасный товар", "non-Latin script"),
])
def test_non_english_texts_are_recognised(text, guess):
    assert guess_language(text) == guess


def test_report_from_python_lists_and_its_tables(tmp_path):
    texts = ["so [angry]", "nice [happy]", "", "nice [happy]", "ok [neutral]"] * 20
    summary = report(texts, groups=["x", "y", "x", "y", "x"] * 20, reader=FakeReader())
    assert summary.hygiene.empty == 20 and summary.hygiene.duplicates == 100 - 20 - 3
    assert summary.share("happy", "y")["share"] == 1.0
    assert summary.trend == [] and summary.split == []
    df = summary.to_df("shares")
    assert set(df.columns) >= {"group", "label", "count", "n", "share", "low", "high"}
    assert len(summary.to_rows("typical")) <= 3 * len(LABELS)
    json.loads(summary.to_json())
    with pytest.raises(ValueError, match="table="):
        summary.to_rows("nope")


def test_model_section_names_the_card_and_the_known_limits():
    from emodetect.text.pipeline import TextEmotion
    from emodetect.text.report import model_info

    info = model_info(TextEmotion("default"))
    assert info["card"] == "emodetect models --card default --modality text"
    assert "joint.csv" in info["training_data"]
    assert any("MELD" in limit for limit in info["limits"])
    assert "goemotions" in info["test_figures"] and "# Model card" in info["card_text"]
    mine = model_info(FakeReader())
    assert mine["card"] is None and mine["training_data"] == "fake.csv (train)"


def test_saved_report_is_self_contained(summary, tmp_path):
    page = summary.save(tmp_path / "out")
    html = page.read_text(encoding="utf-8")
    outside = re.sub(r"data:image/png;base64,[A-Za-z0-9+/=]+", "", html)
    assert "//" not in outside  # no http://, https:// or protocol-relative //host anywhere
    for png in ("shares", "groups", "trend", "split"):
        assert (tmp_path / "out" / f"{png}.png").stat().st_size > 5000
    assert html.count("data:image/png;base64,") == 4
    assert "default-src 'none'" in html
    assert "<mark" in html  # the typical texts' words are highlighted
    saved = json.loads((tmp_path / "out" / "summary.json").read_text())
    assert saved["hygiene"]["duplicates"] == 4 and saved["changes"]


def test_user_text_cannot_inject_markup(tmp_path):
    summary = report(['<script>alert(1)</script> <img src="https://evil.example/x.png"> [angry]'] * 3,
                     groups=["<b>g</b>"] * 3, reader=FakeReader())
    html = summary.save(tmp_path).read_text(encoding="utf-8")
    assert "<script" not in html and "<img src=\"https" not in html and "&lt;script&gt;" in html


def test_cli_report_writes_the_page_and_says_what_changed(reviews, tmp_path, monkeypatch):
    from typer.testing import CliRunner

    import emodetect.text.pipeline as pipeline
    from emodetect.cli import app

    monkeypatch.setattr(pipeline, "TextEmotion", lambda model=None, threads=0: FakeReader())
    out = tmp_path / "out"
    result = CliRunner().invoke(app, ["text", "--file", str(reviews), "--column", "review", "--by", "product",
                                      "--over", "date", "--every", "week", "--split-at", "2026-03-02", "--dayfirst",
                                      "--report", str(out), "--csv", str(tmp_path / "scored.csv")])
    assert result.exit_code == 0, result.output
    assert f"report: {out / 'report.html'}" in result.output
    assert "A angry" in result.output and f"({SHIFT.isoformat()})" in result.output
    assert "3 text(s) not English" in result.output and "4 repeating" in result.output
    assert "warning: 3 text(s) empty" in result.output  # the foreign ones are not called empty
    saved = json.loads((out / "summary.json").read_text())
    found = {(c["group"], c["label"], c["to"]) for c in saved["changes"]}
    assert ("A", "angry", SHIFT.isoformat()) in found and not [c for c in found if c[0] == "B"]
    scored = list(csv.DictReader(open(tmp_path / "scored.csv", encoding="utf-8")))
    assert sum(row["error"].startswith("not English") for row in scored) == 3


@pytest.mark.parametrize("args, message", [
    (["--by", "product"], "add --report FOLDER"),
    (["--report", "OUT", "--by", "shop"], "no column 'shop'"),
    (["--report", "OUT", "--over", "date", "--every", "year"], "--every year: one of day, week, month"),
    (["--report", "OUT", "--over", "date", "--split-at", "soon"], "--split-at soon: not a date"),
    (["--report", "OUT", "--over", "date"], "ambiguous"),  # 02/03/2026-style dates, neither flag given
])
def test_cli_report_refuses_bad_options_in_one_line(reviews, tmp_path, monkeypatch, args, message):
    from typer.testing import CliRunner

    import emodetect.text.pipeline as pipeline
    from emodetect.cli import app

    monkeypatch.setattr(pipeline, "TextEmotion", lambda model=None, threads=0: FakeReader())
    args = [str(tmp_path / "out") if a == "OUT" else a for a in args]
    result = CliRunner().invoke(app, ["text", "--file", str(reviews), "--column", "review", *args])
    assert result.exit_code == 2 and message in result.output, result.output


# --- the statistics

def test_wilson_interval_known_values():
    low, high = stats.wilson(10, 100)
    assert (round(low, 4), round(high, 4)) == (0.0552, 0.1744)
    assert stats.wilson(0, 10)[0] == 0 and stats.wilson(10, 10)[1] == pytest.approx(1)
    assert stats.wilson(0, 0) == (0.0, 1.0)


def test_holm_adjusts_step_down():
    assert stats.holm([0.01, 0.04, 0.03, 0.005]) == pytest.approx([0.03, 0.06, 0.06, 0.02])


def test_statistics_agree_with_scipy():
    scipy_stats = pytest.importorskip("scipy.stats")
    for x, df in [(0.5, 1), (3.84, 1), (12.0, 6), (40.0, 6), (150.0, 6), (7.0, 20)]:
        assert stats.chi2_sf(x, df) == pytest.approx(scipy_stats.chi2.sf(x, df), rel=1e-9, abs=1e-300)
    table = [[30, 12, 50, 8], [45, 9, 30, 16]]
    chi2, df, p = stats.chi_square(table)
    ref = scipy_stats.chi2_contingency(table, correction=False)
    assert (chi2, df) == (pytest.approx(ref[0]), ref[2]) and p == pytest.approx(ref[1])
    z = (60 / 200 - 45 / 210) / math.sqrt((105 / 410) * (1 - 105 / 410) * (1 / 200 + 1 / 210))
    assert stats.two_proportion_p(45, 210, 60, 200) == pytest.approx(2 * scipy_stats.norm.sf(abs(z)))
    assert stats.cohens_h(0.1, 0.45) == pytest.approx(2 * math.asin(math.sqrt(0.45)) - 2 * math.asin(math.sqrt(0.1)))
    # Newcombe (1998), example (a): 56/70 - 48/80 = 0.2000, method 10 gives 0.0524 to 0.3339.
    low, high = stats.diff_interval(56, 70, 48, 80)
    assert (round(low, 4), round(high, 4)) == (-0.3339, -0.0524)


# --- the page in a real browser: Debian's Chromium driven by Playwright (tests/test_serve_browser.py)

CHROMIUM = Path("/usr/bin/chromium")


@pytest.mark.skipif(not CHROMIUM.exists(), reason=f"{CHROMIUM} is missing: apt-get install -y chromium")
def test_report_renders_in_chromium_with_no_outside_request(summary, tmp_path):
    """Every request the page makes is the file itself or a data: picture; the four charts are
    drawn and the page's Content-Security-Policy blocked nothing. EMODETECT_SCREENSHOT_DIR keeps
    the screenshot (docs/screenshots/report.png in the README)."""
    import os
    import shutil

    sync_api = pytest.importorskip("playwright.sync_api", reason="pip install playwright")
    page_path = summary.save(tmp_path / "out")
    requests: list[str] = []
    blocked: list[str] = []
    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), headless=True,
                                    args=["--no-sandbox", "--disable-gpu", "--disable-background-networking",
                                          "--disable-component-update", "--no-first-run"])
        try:
            page = browser.new_page(viewport={"width": 1180, "height": 900})
            page.on("request", lambda r: requests.append(r.url))
            page.on("console", lambda m: blocked.append(m.text) if "Content Security Policy" in m.text else None)
            page.goto(page_path.as_uri())
            page.wait_for_load_state("load")
            drawn = page.evaluate("[...document.images].map(i => i.complete && i.naturalWidth > 300)")
            text = page.inner_text("body")
            shot = tmp_path / "report.png"
            page.screenshot(path=str(shot), clip={"x": 0, "y": 0, "width": 1180, "height": 1500}, full_page=True)
        finally:
            browser.close()
    outside = [u for u in requests if not (u.startswith("file://") or u.startswith("data:"))]
    assert not outside, outside
    assert drawn == [True] * 4 and not blocked
    assert "Changes the tests support" in text and "Known limits" in text and "not English" in text
    if os.environ.get("EMODETECT_SCREENSHOT_DIR"):
        shutil.copy(shot, Path(os.environ["EMODETECT_SCREENSHOT_DIR"]) / "report.png")
