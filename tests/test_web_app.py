"""`loopanimate serve` in a real browser: Debian's Chromium driven by Playwright, on a loopback port.

Drop the coffee photo, type a prompt, click Animate, download the MP4 and decode it; then a bad size shows the
library's one-line message in the page, and the app goes on serving. `make test` installs Chromium when it is missing.
Set LOOPANIMATE_SCREENSHOT=PATH to keep a screenshot of the page (docs/web-app.png is made that way).
"""

import os
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import numpy as np
import PIL.Image
import pytest

from loopanimate.export import read_video

CHROMIUM = "/usr/bin/chromium"
EXAMPLE = Path(__file__).resolve().parent.parent / "examples" / "coffee.png"
# Without these, Chromium reaches for the network (updates, sync, field trials).
OFFLINE_FLAGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]


@pytest.fixture(scope="module")
def server_url():
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    environment = {**os.environ, "HF_HUB_OFFLINE": "1", "GRADIO_ANALYTICS_ENABLED": "False"}
    command = [sys.executable, "-m", "loopanimate", "serve", "--port", str(port)]
    server = subprocess.Popen(command, env=environment, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    url = f"http://127.0.0.1:{port}/"
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        try:
            urllib.request.urlopen(url, timeout=2)
            break
        except OSError:
            assert server.poll() is None, server.stdout.read()
            time.sleep(0.5)
    else:
        server.kill()
        pytest.fail("the server did not answer within 90 s")
    yield url
    server.terminate()
    server.wait(timeout=30)


@pytest.fixture(scope="module")
def page(server_url, tmp_path_factory):
    assert Path(CHROMIUM).is_file(), f"{CHROMIUM} is missing: `make test` installs it (apt-get install chromium)"
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch_persistent_context(
            str(tmp_path_factory.mktemp("chromium-profile")),  # a fresh profile
            executable_path=CHROMIUM,
            headless=True,
            args=OFFLINE_FLAGS,
            viewport={"width": 1400, "height": 1500},
            accept_downloads=True,
        )
        page = browser.new_page()
        hosts = set()
        page.on("request", lambda request: hosts.add(request.url.split("/")[2]))
        page.goto(server_url)
        page.wait_for_selector("#animate")
        yield page
        browser.close()
        assert hosts <= {server_url.split("/")[2]}, f"the page reached beyond the app: {hosts}"


def test_a_dropped_photo_becomes_a_loop_to_download(page, tmp_path):
    page.locator("#picture input[type=file]").set_input_files(str(EXAMPLE))
    page.locator("#prompt textarea").fill("the coffee cup sways")
    page.wait_for_selector("#mask-editor canvas")  # the automatic mask is shown to paint on
    page.locator("#animate").click()
    page.wait_for_selector("#loop-video video", timeout=120_000)
    assert "Seam" in page.locator("#scores").inner_text() and "Motion" in page.locator("#scores").inner_text()
    with page.expect_download() as download:
        page.locator("#downloads a[href$='loop.mp4']").click()
    download.value.save_as(tmp_path / "loop.mp4")
    frames, _ = read_video(tmp_path / "loop.mp4")
    picture = np.asarray(PIL.Image.open(EXAMPLE).convert("RGB").resize((512, 341), PIL.Image.LANCZOS)).astype(int)
    assert len(frames) == 34  # 35 generated, the seam frame dropped
    assert np.abs(frames[0, :341].astype(int) - picture).mean() < 6  # frame 0 is the photo (H.264 is lossy)
    if os.environ.get("LOOPANIMATE_SCREENSHOT"):
        page.screenshot(path=os.environ["LOOPANIMATE_SCREENSHOT"], full_page=True)


def test_a_bad_size_shows_one_line_and_the_app_keeps_serving(page):
    page.locator("#picture input[type=file]").set_input_files(str(EXAMPLE))
    page.locator("#size textarea, #size input").first.fill("100")
    page.locator("#animate").click()
    message = page.get_by_text("size 100x100 does not work: give both sides as multiples of 8")
    message.first.wait_for(timeout=30_000)
    page.locator("#size textarea, #size input").first.fill("")
    before = page.locator("#scores").inner_text()
    page.locator("#prompt textarea").fill("the coffee cup bobs")
    page.locator("#animate").click()
    page.wait_for_function(
        "before => document.querySelector('#scores').innerText !== before && "
        "document.querySelector('#scores').innerText.includes('bob')",
        arg=before,
        timeout=120_000,
    )


def test_the_mask_editor_starts_from_the_salient_mask_and_returns_the_painted_one():
    from loopanimate.app.web import editor_value, painted_mask

    photo = PIL.Image.new("RGB", (600, 300), (20, 60, 140))
    photo.paste((240, 200, 40), (250, 100, 350, 200))  # a bright square in the middle
    editor = editor_value(photo)  # the photo fitted to 512x256, centred on the 512x512 canvas
    layer = np.asarray(editor["layers"][0]).copy()
    assert editor["background"].size == (512, 512) and layer[128 + 128, 256, 3] > 0  # the square is masked
    layer[128:160, 0:40, 3] = 255  # the user paints the top-left corner of the photo
    layer[128 + 128, 256, 3] = 0  # and erases one pixel of the object
    mask = painted_mask({"layers": [PIL.Image.fromarray(layer, "RGBA")]}, photo.resize((512, 256)))
    assert mask.shape == (256, 512) and mask[:32, :40].min() == 255 and mask[128, 256] == 0 and mask[128, 250] == 255
