"""The web page speaks to a person and fits a phone (issue 32, point 10): error text in plain
words, the tab row inside a 390 px screen, a favicon. Chromium, as in test_serve_browser."""

from __future__ import annotations

import urllib.request

from test_serve_browser import browser, open_page, server  # noqa: F401 (fixtures)


def test_a_refused_upload_is_explained_in_plain_words(server, browser, tmp_path):  # noqa: F811
    """The status read "not an image: the 20 bytes are in no format emodetect reads (...)"."""
    page, errors = open_page(browser, server)
    notes = tmp_path / "notes.jpg"
    notes.write_text("not a picture at all")
    page.set_input_files("#file-input", str(notes))
    page.wait_for_selector("#photo-status.error", timeout=10_000)
    said = page.inner_text("#photo-status")
    assert said.startswith("This file is not an image") and "JPEG" in said
    assert "bytes" not in said and "bytes" in page.get_attribute("#photo-status", "title")  # details on hover
    page.click("#tab-voice")
    page.set_input_files("#audio-input", str(notes))
    page.wait_for_selector("#voice-status.error", timeout=10_000)
    assert page.inner_text("#voice-status").startswith("This file is not a recording")
    assert not errors


def test_the_tab_row_fits_a_390_px_phone(server, browser):  # noqa: F811
    page, errors = open_page(browser, server)
    page.set_viewport_size({"width": 390, "height": 844})
    assert page.evaluate("document.documentElement.scrollWidth") <= 390  # no sideways scrolling
    for tab in page.locator("nav [role=tab]").all():
        box = tab.bounding_box()
        assert box["x"] >= 0 and box["x"] + box["width"] <= 390, tab.inner_text()
    page.click("#tab-video")  # the last tab can be reached and chosen
    assert page.is_visible("#panel-video")
    assert not errors


def test_the_page_has_a_favicon(server, browser):  # noqa: F811
    page, errors = open_page(browser, server)
    href = page.get_attribute("link[rel=icon]", "href")
    with urllib.request.urlopen(server + href) as response:
        assert response.status == 200 and response.headers["Content-Type"].startswith("image/svg+xml")
        assert b"<svg" in response.read()
    assert not errors
