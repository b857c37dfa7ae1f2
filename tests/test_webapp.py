"""The web demo, end to end in headless Chromium (Debian's ``chromium`` driven by Playwright).

The browser uploads files and records a fake microphone (Chromium's fake capture device);
the server runs in a thread on a free port with a tiny bundle trained in ``test_predict``.
"""
from __future__ import annotations

import json
import os
import shutil
import threading
import urllib.error
import urllib.request
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from test_predict import SR, build_tiny_bundle

from genrelab.models import load_bundle
from genrelab.synth import SynthSettings, render_track
from genrelab.webapp import make_server

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run",
                 "--use-fake-ui-for-media-stream", "--use-fake-device-for-media-stream"]
MAX_BYTES = 300_000
MAX_SECONDS = 6.0


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    model, _ = build_tiny_bundle(tmp_path_factory.mktemp("bundle"))
    srv = make_server(load_bundle(model, trust=True), port=0, max_bytes=MAX_BYTES, max_duration_s=MAX_SECONDS)
    thread = threading.Thread(target=srv.serve_forever, daemon=True)
    thread.start()
    yield srv
    srv.shutdown()
    srv.server_close()


@pytest.fixture(scope="module")
def files(tmp_path_factory) -> dict[str, Path]:
    d = tmp_path_factory.mktemp("uploads")
    y = render_track("metal", seed=1, track_index=3, settings=SynthSettings(duration_s=8.0))["mix"]
    out = {"song": d / "song.wav", "long": d / "long.wav", "big": d / "big.flac", "text": d / "notes.wav",
           "pdf": d / "paper.pdf"}
    sf.write(out["song"], y[: 4 * SR], SR)  # 176 kB, 4 s
    sf.write(out["long"], y[::4], SR // 4, subtype="PCM_U8")  # 44 kB but 8 s, over the 6 s limit
    sf.write(out["big"], np.random.default_rng(0).uniform(-1, 1, 8 * SR), SR)  # noise: FLAC cannot shrink it
    out["text"].write_text("not audio at all\n" * 40)
    out["pdf"].write_bytes(b"%PDF-1.4\n")
    assert out["big"].stat().st_size > MAX_BYTES
    return out


@pytest.fixture(scope="module")
def browser():
    if CHROMIUM is None:
        pytest.skip("needs Chromium for the browser tests: apt-get install -y chromium")
    sync_api = pytest.importorskip("playwright.sync_api", reason="needs Playwright for Python: pip install playwright")
    with sync_api.sync_playwright() as pw:
        b = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield b
        b.close()


@pytest.fixture
def page(browser, server):
    # bypass_csp: the page forbids eval, which Playwright's wait_for_function needs
    context = browser.new_context(viewport={"width": 820, "height": 900}, bypass_csp=True)
    pg = context.new_page()
    pg.set_default_timeout(20_000)
    errors: list[str] = []
    pg.on("pageerror", lambda exc: errors.append(str(exc)))
    pg.goto(server.url)
    pg.wait_for_function("document.getElementById('model').textContent.startsWith('Model:')")
    yield pg
    context.close()
    assert not errors, f"JavaScript errors on the page: {errors}"


def test_upload_shows_the_genre_bar_chart_and_timeline(page, server, files, tmp_path):
    page.set_input_files("#file", str(files["song"]))
    page.wait_for_selector("#result", state="visible")
    labels = server.bundle.labels
    headline = page.text_content("#headline")
    assert headline.startswith("song.wav: ") and any(g in headline for g in labels)
    assert page.text_content("#details").startswith("4.0 s, 4 slices of 1 s")
    bars = page.locator("#bars-svg rect[data-genre]")
    assert bars.count() == len(labels)
    assert page.locator("#timeline-svg g[data-start]").count() == 4
    assert page.text_content("#error") == ""
    shot = Path(os.environ.get("GENRELAB_DEMO_SCREENSHOT", tmp_path / "demo.png"))
    page.screenshot(path=str(shot), full_page=True)
    assert shot.stat().st_size > 5000


@pytest.mark.parametrize("which, message", [
    ("long", "long.wav: too long: more than 6 s of audio (the limit); cut it shorter"),  # checked by the server
    ("big", "big.flac: file too large: 0.4 MB; the limit is 0.3 MB"),  # checked before uploading
    ("text", "notes.wav: not a readable audio file"),
    ("pdf", 'paper.pdf: unsupported file type ".pdf"; upload one of: wav'),
])
def test_unusable_uploads_are_refused_with_their_message(page, files, which, message):
    page.set_input_files("#file", str(files[which]))
    page.wait_for_function("document.getElementById('error').textContent.length > 0")
    assert page.text_content("#error").startswith(message)
    assert not page.is_visible("#result")


def test_microphone_recording_is_classified(page):
    page.click("#record")
    page.wait_for_function("parseFloat(document.getElementById('rectime').textContent) >= 1.6")
    page.click("#record")
    page.wait_for_selector("#result", state="visible")
    assert page.text_content("#headline").startswith("recording.wav: "), page.text_content("#error")
    assert page.locator("#timeline-svg g[data-start]").count() >= 1


# ---------------------------------------------------------------- the API without a browser
def _post(url: str, body: bytes, *, name: str, ctype: str = "audio/wav", length: int | None = None):
    req = urllib.request.Request(url + "api/predict?name=" + name, data=body, method="POST",
                                 headers={"Content-Type": ctype, "Content-Length": str(length or len(body))})
    try:
        with urllib.request.urlopen(req, timeout=30) as r:
            return r.status, json.loads(r.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


def test_api_answers_json_and_checks_limits_before_reading(server, files):
    status, body = _post(server.url, files["song"].read_bytes(), name="song.wav")
    assert status == 200 and body["ok"] and len(body["slices"]) == 4 and len(body["top"]) == 3
    assert sum(body["probabilities"].values()) == pytest.approx(1.0, abs=1e-3)
    status, body = _post(server.url, files["big"].read_bytes(), name="big.flac")
    assert status == 413 and body["error"] == "file too large: 0.4 MB; the limit is 0.3 MB"
    status, body = _post(server.url, b"x" * 10, name="a.wav", ctype="multipart/form-data; boundary=x")
    assert status == 415 and "send the audio file itself as the request body" in body["error"]
    status, body = _post(server.url, b"x" * 10, name="../../etc/passwd")
    assert status == 415 and "unsupported file type" in body["error"]
    status, body = _post(server.url, files["long"].read_bytes(), name="long.wav")
    assert status == 413 and body["error"].startswith("too long")
    with pytest.raises(urllib.error.HTTPError) as info:
        urllib.request.urlopen(server.url + "api/predict", timeout=10)
    assert info.value.code == 405


def test_the_page_shows_the_model_card_and_warns_about_a_non_music_upload(page, tmp_path):
    assert page.text_content("#card").startswith("model: logreg on mfcc features (normal variant), 3 genres, "
                                                 "trained on SYNTHETIC data")
    assert "predictions on real music are not meaningful" in page.text_content("#cardwarning")
    t = np.arange(4 * SR) / SR
    sf.write(tmp_path / "hum.wav", 0.4 + 0.01 * np.sin(2 * np.pi * 50 * t), SR)  # a DC offset with a faint hum
    page.set_input_files("#file", str(tmp_path / "hum.wav"))
    page.wait_for_selector("#result", state="visible")
    assert page.text_content("#warnings").startswith("⚠ Warning: DC offset")
    sf.write(tmp_path / "song.wav", render_track("reggae", seed=1, track_index=2,
                                                 settings=SynthSettings(duration_s=4.0))["mix"], SR)
    page.set_input_files("#file", str(tmp_path / "song.wav"))
    page.wait_for_function("document.getElementById('headline').textContent.startsWith('song.wav')")
    assert page.text_content("#warnings") == ""


def test_au_upload_plays_in_the_player(page, files, tmp_path):
    """Browsers cannot play .au: the page asks the server for a WAV of it (POST /api/audio)."""
    y, _ = sf.read(files["song"], dtype="float32")
    sf.write(tmp_path / "song.au", y, SR, format="AU", subtype="PCM_16")
    page.set_input_files("#file", str(tmp_path / "song.au"))
    page.wait_for_selector("#result", state="visible")
    page.wait_for_function("(() => { const a = document.getElementById('player');"
                           " return a.readyState >= 1 && isFinite(a.duration) && a.duration > 0; })()")
    assert page.evaluate("document.getElementById('player').duration") == pytest.approx(4.0, abs=0.05)
    assert page.evaluate("document.getElementById('player').error") is None
