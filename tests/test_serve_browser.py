"""The web page in a real browser: Debian's Chromium driven by Playwright against `emodetect serve`.

Needs /usr/bin/chromium (`apt-get install -y chromium`) and the `playwright` Python package (no
`playwright install`: the system Chromium is used). Set EMODETECT_SCREENSHOT_DIR=docs/screenshots to
refresh the README screenshots; otherwise they go to the test's temporary folder.
"""

from __future__ import annotations

import importlib.util
import os
import shutil
import time
import urllib.request
from importlib import resources
from pathlib import Path

import pytest
from PIL import Image, ImageOps

from conftest import live_server

CHROMIUM = Path("/usr/bin/chromium")
SAMPLES = Path(str(resources.files("emodetect.assets"))) / "samples"
EMOTIONS = ("angry", "disgust", "fear", "happy", "sad", "surprise", "neutral")

if not CHROMIUM.exists():
    pytest.skip(f"{CHROMIUM} is missing: install it with `apt-get install -y chromium`", allow_module_level=True)
sync_api = pytest.importorskip("playwright.sync_api", reason="pip install playwright (no browser download needed)")


def write_y4m(photo: Path, out: Path, size: tuple[int, int] = (640, 480), frames: int = 10) -> Path:
    """A raw YUV 4:2:0 video of the photo, letterboxed: what Chromium's fake camera plays in a loop."""
    image = ImageOps.pad(Image.open(photo).convert("RGB"), size, color=(0, 0, 0))
    y, cb, cr = image.convert("YCbCr").split()
    half = (size[0] // 2, size[1] // 2)
    frame = b"FRAME\n" + y.tobytes() + cb.resize(half, Image.BOX).tobytes() + cr.resize(half, Image.BOX).tobytes()
    out.write_bytes(f"YUV4MPEG2 W{size[0]} H{size[1]} F10:1 Ip A1:1 C420jpeg\n".encode() + frame * frames)
    return out


@pytest.fixture(scope="module")
def server():
    with live_server() as url:
        yield url


def _speech_then_silence(path: Path) -> Path:
    """The fake microphone: the spoken sample, then 5 s of silence (Chromium loops it)."""
    import numpy as np
    import soundfile as sf

    speech, rate = sf.read(SAMPLES / "speech.flac", dtype="float32")
    sf.write(path, np.concatenate([speech, np.zeros(5 * rate, np.float32)]), rate, subtype="PCM_16")
    return path


@pytest.fixture(scope="module")
def browser(tmp_path_factory):
    folder = tmp_path_factory.mktemp("browser")
    video = write_y4m(SAMPLES / "astronaut.jpg", folder / "camera.y4m")
    audio = _speech_then_silence(folder / "microphone.wav")
    args = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
            "--disable-component-update", "--disable-sync", "--no-first-run",
            "--use-fake-ui-for-media-stream", "--use-fake-device-for-media-stream",
            f"--use-file-for-fake-video-capture={video}", f"--use-file-for-fake-audio-capture={audio}"]
    with sync_api.sync_playwright() as p:
        context = p.chromium.launch_persistent_context(
            str(folder / "profile"), executable_path=str(CHROMIUM), headless=True, args=args,
            viewport={"width": 1280, "height": 860})
        yield context
        context.close()


@pytest.fixture(scope="module")
def shots(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("screenshots")


def keep(shot: Path) -> None:
    target = os.environ.get("EMODETECT_SCREENSHOT_DIR")
    if target:
        Path(target).mkdir(parents=True, exist_ok=True)
        shutil.copy(shot, Path(target) / shot.name)


def wait_until(page, expression: str, seconds: float) -> None:
    """Poll a JavaScript expression from here: Playwright's wait_for_function compiles it inside the
    page with `new Function`, which the page's Content-Security-Policy (rightly) forbids."""
    deadline = time.monotonic() + seconds
    while not page.evaluate(expression):
        if time.monotonic() > deadline:
            raise AssertionError(f"still false after {seconds} s: {expression}")
        time.sleep(0.1)


def open_page(browser, url: str):
    """A fresh tab on the page, and the list its JavaScript errors go to (tests end expecting none)."""
    page = browser.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda err: errors.append(str(err)))
    # A script, style or picture the Content-Security-Policy blocks is an error of the page too.
    page.on("console", lambda msg: errors.append(msg.text) if "Content Security Policy" in msg.text else None)
    page.goto(url)
    return page, errors


def test_uploaded_photo_shows_a_face_box_label_and_bars(server, browser, shots):
    page, errors = open_page(browser, server)
    assert "not kept" in page.inner_text("body") or "discarded" in page.inner_text("#privacy")
    page.set_input_files("#file-input", str(SAMPLES / "astronaut.jpg"))
    page.wait_for_selector("#photo-faces .face .label", timeout=20_000)
    labels = page.locator("#photo-faces .face .label").all_inner_texts()
    assert labels and all(label in EMOTIONS for label in labels)
    tag = page.locator("#photo-overlay .box .tag").first.inner_text()
    assert tag.split()[1] in EMOTIONS
    assert page.locator("#photo-faces .face").first.locator(".bar").count() == 7
    assert "1 face" in page.inner_text("#photo-status")
    # The drawn box sits on the face the API found (labels.json has it at x=176, y=56 in 512 px).
    box = page.locator("#photo-overlay .box").first.bounding_box()
    image = page.locator("#photo-image").bounding_box()
    assert 0.25 < (box["x"] - image["x"]) / image["width"] < 0.45
    shot = shots / "photo.png"
    page.screenshot(path=str(shot), full_page=True)
    keep(shot)
    assert not errors


def test_an_error_is_shown_for_a_file_that_is_not_an_image(server, browser, tmp_path):
    page = browser.new_page()
    page.goto(server)
    notes = tmp_path / "notes.jpg"
    notes.write_text("not a picture at all")
    page.set_input_files("#file-input", str(notes))
    page.wait_for_selector("#photo-status.error", timeout=10_000)
    assert "not an image" in page.inner_text("#photo-status")


def test_live_camera_draws_labels_over_the_video(server, browser, shots):
    page, errors = open_page(browser, server)
    page.click("#tab-live")
    assert "not kept" in page.inner_text("#panel-live")
    page.click("#live-start")
    page.wait_for_selector("#live-overlay .box .tag", timeout=30_000)
    tag = page.locator("#live-overlay .box .tag").first.inner_text()
    assert tag.split()[1] in EMOTIONS
    # Several frames later: FPS is measured and the chart has a line.
    wait_until(page, "Number(document.getElementById('fps').textContent) > 0.5", 20)
    page.wait_for_timeout(2500)
    drawn = page.evaluate("""() => {
        const c = document.getElementById('live-chart');
        const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
        let coloured = 0;
        for (let i = 0; i < d.length; i += 4) if (d[i + 3] > 0 && !(d[i] === d[i + 1] && d[i + 1] === d[i + 2])) coloured++;
        return coloured;
    }""")
    assert drawn > 50
    assert page.locator("#chart-legend span").count() == 7
    shot = shots / "live.png"
    page.screenshot(path=str(shot), full_page=True)
    keep(shot)
    page.click("#live-stop")
    assert not errors


def _model_labels(server: str, name: str, modality: str) -> list[str]:
    import json

    with urllib.request.urlopen(f"{server}/v1/models", timeout=10) as response:
        models = json.load(response)["models"]
    return next(m["labels"] for m in models if m["name"] == name and m["modality"] == modality)


def test_text_tab_reads_each_line(server, browser, shots):
    page, errors = open_page(browser, server)
    page.click("#tab-text")
    page.fill("#text-input", "Thank you so much, this made my day!\n\nThis is the worst service I have ever had.")
    page.click("#text-go")
    page.wait_for_selector("#text-results .face .label", timeout=20_000)
    labels = page.locator("#text-results .face .label").all_inner_texts()
    assert len(labels) == 2 and set(labels) <= set(_model_labels(server, "default", "text"))
    assert labels[0] == "happy" and labels[1] in ("angry", "disgust", "sad")
    assert page.locator("#text-results .face").first.locator(".bar").count() == 5
    # The other label sets are named by what they are, not by corpus, and shown on request.
    first = page.locator("#text-results .face").first
    assert not first.locator(".note.head").first.is_visible()
    first.locator(".label-sets summary").click()
    heads = first.locator(".note.head").all_inner_texts()
    assert any(h.startswith("28 fine-grained: ") and "gratitude" in h for h in heads), heads
    assert any(h.startswith("6 basic: ") for h in heads) and not any("goemotions" in h or "dair" in h for h in heads)
    assert "2 text(s)" in page.inner_text("#text-status")
    shot = shots / "text.png"
    page.screenshot(path=str(shot), full_page=True)
    keep(shot)
    page.fill("#text-input", "   ")
    page.click("#text-go")
    page.wait_for_selector("#text-status.error")
    assert "Type a text" in page.inner_text("#text-status")
    assert not errors


def _voice_like_wav(path: Path, seconds: float = 2.5, rate: int = 16_000) -> Path:
    """A gliding harmonic tone with a syllable-like loudness envelope: not silence, not speech."""
    import numpy as np
    import soundfile as sf

    t = np.arange(int(seconds * rate)) / rate
    pitch = 140 + 60 * np.sin(2 * np.pi * 0.7 * t)
    phase = 2 * np.pi * np.cumsum(pitch) / rate
    wave = sum(np.sin(k * phase) / k for k in range(1, 8)) * (0.5 + 0.5 * np.sin(2 * np.pi * 4 * t) ** 2)
    sf.write(path, (0.3 * wave / np.abs(wave).max()).astype(np.float32), rate)
    return path


def test_voice_tab_analyses_an_uploaded_recording(server, browser, tmp_path):
    page, errors = open_page(browser, server)
    page.click("#tab-voice")
    page.set_input_files("#audio-input", str(_voice_like_wav(tmp_path / "hello.wav")))
    page.wait_for_selector("#voice-result .face .label", timeout=20_000)
    labels = _model_labels(server, "default", "voice")
    assert page.inner_text("#voice-result .face .label") in labels
    assert page.locator("#voice-result .bar").count() == len(labels)
    assert "hello.wav, 2.5 s" in page.inner_text("#voice-result h3")
    assert page.locator("#voice-result .timeline li").count() >= 1
    assert not errors


def test_text_tab_makes_a_report_from_a_csv(server, browser, tmp_path):
    reviews = tmp_path / "reviews.csv"
    reviews.write_text("review,shop\n" + "Lovely staff and a great visit,North\n" * 6 + "Rude and slow and never again,South\n" * 6)
    page, errors = open_page(browser, server)
    page.click("#tab-text")
    page.set_input_files("#report-input", str(reviews))
    page.fill("#report-column", "review")
    page.fill("#report-by", "shop")
    page.click("#report-go")
    page.wait_for_selector("#report-link:not([hidden])", timeout=60_000)
    assert "12 of 12 row(s) read" in page.inner_text("#report-status")
    with page.expect_download() as download:
        page.click("#report-link")
    html = Path(download.value.path()).read_text(encoding="utf-8")
    assert html.startswith("<!doctype html>") and "North" in html and "South" in html
    assert not errors


def test_live_voice_tab_reads_the_microphone_window_by_window(server, browser, shots):
    page, errors = open_page(browser, server)
    page.click("#tab-livevoice")
    page.click("#lv-start")
    deadline = time.monotonic() + 60
    while int(page.inner_text("#lv-windows")) < 3 and time.monotonic() < deadline:
        page.wait_for_timeout(250)
    assert int(page.inner_text("#lv-windows")) >= 3, page.inner_text("#lv-status")
    labels = _model_labels(server, "default", "voice")
    assert page.inner_text("#lv-running") in labels
    assert page.locator("#lv-legend span").count() == len(labels)
    coloured = page.evaluate("""() => {
        const c = document.getElementById('lv-chart'), d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
        let n = 0; for (let i = 0; i < d.length; i += 4) if (d[i + 3] && (d[i] !== d[i + 1] || d[i + 1] !== d[i + 2])) n++;
        return n; }""")
    assert coloured > 50  # lines drawn, not only the grey grid
    if importlib.util.find_spec("faster_whisper") is not None:  # the words, once the speech has ended
        page.wait_for_selector("#lv-words li", timeout=60_000)
        assert "luggage" in page.inner_text("#lv-words").lower()
    page.screenshot(path=str(shots / "live_voice.png"), full_page=True)
    keep(shots / "live_voice.png")
    page.click("#lv-stop")
    assert page.is_enabled("#lv-start")
    assert not errors


@pytest.mark.skipif(importlib.util.find_spec("faster_whisper") is None, reason="needs the speech extra")
def test_voice_tab_shows_the_words_heard_with_their_emotion(server, browser):
    page, errors = open_page(browser, server)
    page.click("#tab-voice")
    page.set_input_files("#audio-input", str(resources.files("emodetect") / "assets" / "samples" / "speech.flac"))
    page.wait_for_selector("#voice-result .transcript li", timeout=60_000)
    said = page.locator("#voice-result .transcript li").all_inner_texts()
    assert "luggage" in " ".join(said).lower()
    assert all(li.get_attribute("data-emotion") for li in page.locator("#voice-result .transcript li").all())
    assert not errors


def test_voice_tab_records_from_the_microphone(server, browser, shots):
    """Chromium's fake microphone plays a beep; the page records it as WAV and sends it."""
    page, errors = open_page(browser, server)
    page.click("#tab-voice")
    page.click("#rec-start")
    wait_until(page, "Number(document.getElementById('rec-seconds').textContent) >= 2", 20)
    page.click("#rec-stop")
    page.wait_for_selector("#voice-result .face", timeout=20_000)
    title = page.inner_text("#voice-result h3")
    # About the 2 s recorded (the first audio callback may come a little after the start).
    assert title.startswith("recording, ") and float(title.split(", ")[1].split(" s")[0]) >= 1.5
    assert page.inner_text("#voice-result .face .label") in _model_labels(server, "default", "voice")
    assert page.locator("#voice-result .bar").count() == len(_model_labels(server, "default", "voice"))
    shot = shots / "voice.png"
    page.screenshot(path=str(shot), full_page=True)
    keep(shot)
    assert not errors


def test_no_photo_or_buttons_before_an_upload_and_none_left_after_a_bad_one(server, browser, tmp_path):
    page, errors = open_page(browser, server)
    assert not page.locator("#photo-result").is_visible()  # no broken image, no download buttons
    page.set_input_files("#file-input", str(SAMPLES / "astronaut.jpg"))
    page.wait_for_selector("#photo-faces .face .label", timeout=20_000)
    assert page.locator("#photo-result").is_visible()
    notes = tmp_path / "notes.jpg"
    notes.write_text("not a picture at all")
    page.set_input_files("#file-input", str(notes))
    page.wait_for_selector("#photo-status.error", timeout=10_000)
    assert not page.locator("#photo-result").is_visible()  # the previous photo does not linger
    assert not errors


def test_video_tab_plays_the_annotated_clip_with_sound_and_shows_the_timeline(server, browser, tmp_path, shots):
    from test_multimodal import SRT, write_clip

    clip = write_clip(tmp_path / "talk.mp4")
    (tmp_path / "talk.srt").write_text(SRT)
    page, errors = open_page(browser, server)
    page.click("#tab-video")
    page.set_input_files("#video-input", str(clip))
    page.set_input_files("#subtitles-input", str(tmp_path / "talk.srt"))
    page.click("#video-go")
    page.wait_for_selector("#video-segments li", timeout=60_000)
    segments = page.locator("#video-segments li").all_inner_texts()
    assert len(segments) == 2 and "made my day" in segments[0] and "face" in segments[0] and "voice" in segments[0]
    # The H.264 clip loads and plays in Chromium, with an audio track of the clip's length.
    wait_until(page, "document.getElementById('video-player').readyState >= 2", 20)
    duration = page.evaluate("document.getElementById('video-player').duration")
    assert abs(duration - 5) < 0.3
    page.evaluate("(() => { const v = document.getElementById('video-player'); v.muted = true; return v.play(); })()")
    wait_until(page, "document.getElementById('video-player').currentTime > 0.3", 20)
    assert page.evaluate("""() => { const v = document.getElementById('video-player');
        return v.mozHasAudio || Boolean(v.webkitAudioDecodedByteCount) || (v.audioTracks && v.audioTracks.length > 0); }""")
    assert page.evaluate("document.getElementById('video-timeline').naturalWidth") > 300
    shot = shots / "video.png"
    page.screenshot(path=str(shot), full_page=True)
    keep(shot)
    assert not errors


@pytest.mark.skipif(importlib.util.find_spec("faster_whisper") is None, reason="needs the speech extra")
def test_video_tab_reads_the_words_spoken_in_a_clip_without_subtitles(server, browser, tmp_path):
    from test_voice_words import talking_clip

    clip = talking_clip(tmp_path / "talk.mp4")
    page, errors = open_page(browser, server)
    page.click("#tab-video")
    page.set_input_files("#video-input", str(clip))
    page.click("#video-go")
    page.wait_for_selector("#video-segments li", timeout=90_000)
    segments = " ".join(page.locator("#video-segments li").all_inner_texts()).lower()
    assert "luggage" in segments and "text " in segments  # the words heard, with the text stream's label
    assert not errors


def test_photo_tab_shows_what_each_emotion_rests_on(server, browser, shots):
    page, errors = open_page(browser, server)
    page.set_input_files("#file-input", str(SAMPLES / "astronaut.jpg"))
    page.wait_for_selector("#photo-faces .face .label", timeout=20_000)
    original = page.get_attribute("#photo-image", "src")
    page.check("#explain-toggle")
    wait_until(page, "document.getElementById('photo-status').textContent.includes('Saliency maps drawn')", 60)
    assert page.get_attribute("#photo-image", "src") != original
    assert page.is_hidden("#photo-overlay")
    wait_until(page, "document.getElementById('photo-image').naturalWidth === 512", 10)
    shot = shots / "explain.png"
    page.screenshot(path=str(shot), full_page=True)
    keep(shot)
    page.uncheck("#explain-toggle")
    wait_until(page, f"document.getElementById('photo-image').src === {original!r}", 10)
    assert page.is_visible("#photo-overlay .box")
    assert not errors


def test_the_explain_toggle_shows_progress_while_the_maps_take_long(server, browser):
    """The toggle gave no sign of work during a 30 s explanation (issue 32, point 6): past 2 s it
    shows a progress bar and the seconds so far, and is disabled until the maps come."""
    page, errors = open_page(browser, server)
    page.set_input_files("#file-input", str(SAMPLES / "astronaut.jpg"))
    page.wait_for_selector("#photo-faces .face .label", timeout=20_000)
    held: list = []
    page.route("**/v1/explain*", lambda route: held.append(route))  # answered only when the test says
    page.check("#explain-toggle")
    page.wait_for_timeout(600)
    assert page.is_hidden("#explain-progress")  # a quick answer shows no bar
    page.wait_for_timeout(2_400)
    assert held and page.is_visible("#explain-progress") and page.is_disabled("#explain-toggle")
    assert "s so far" in page.inner_text("#photo-status")
    held[0].continue_()
    wait_until(page, "document.getElementById('photo-status').textContent.includes('Saliency maps drawn')", 60)
    assert page.is_hidden("#explain-progress") and page.is_enabled("#explain-toggle")
    assert not errors
