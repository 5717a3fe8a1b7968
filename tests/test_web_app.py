"""`loopanimate serve` in a real browser: Debian's Chromium driven by Playwright, on a loopback port.

Drop the coffee photo, type a prompt, click Animate, watch the progress, download the MP4 (named after the photo) and
decode it; a non-image upload and a bad size show the library's one-line message in the page, and the app goes on
serving; Cancel stops a long job and the page says "cancelled". `make test` installs Chromium when it is missing.
Set LOOPANIMATE_SCREENSHOTS=FOLDER to keep screenshots of the page's states (docs/web-app-*.png are made that way).
The same server answers `gradio_client`: one call to the documented `animate` endpoint makes a loop, and a bad input
comes back as the library's one-line message.
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


def screenshot(page, name: str) -> None:
    """Keep a screenshot of the page's state when LOOPANIMATE_SCREENSHOTS names a folder (docs/ is made that way)."""
    if os.environ.get("LOOPANIMATE_SCREENSHOTS"):
        page.screenshot(path=str(Path(os.environ["LOOPANIMATE_SCREENSHOTS"]) / f"web-app-{name}.png"), full_page=True)


def upload(page, path: Path) -> None:
    """Drop `path` in the Photo box, clearing an earlier photo first."""
    clear = page.locator("#picture button[aria-label='Clear']")
    if clear.count():
        clear.first.click()
    page.locator("#picture input[type=file]").set_input_files(str(path))


def drop_photo(page, path: Path = EXAMPLE) -> None:
    upload(page, path)
    page.locator("#status-ready").get_by_text(path.name).wait_for(timeout=30_000)


def test_a_dropped_photo_becomes_a_loop_to_download(page, tmp_path):
    drop_photo(page)
    page.locator("#prompt textarea").fill("the coffee cup sways")
    page.wait_for_selector("#mask-editor canvas")  # the automatic mask is shown to paint on
    page.locator("#animate").click()
    page.locator("#status-working").wait_for(timeout=60_000)  # progress shows while the loop is made
    page.locator("#status-done").wait_for(timeout=120_000)
    assert (
        "Seam" in page.locator("#scores").inner_text() and "lower is smoother" in page.locator("#scores").inner_text()
    )
    link = page.locator("#downloads a[href$='coffee-loop.mp4']")
    with page.expect_download() as download:
        link.click()
    assert download.value.suggested_filename == "coffee-loop.mp4"  # named after the photo
    download.value.save_as(tmp_path / "loop.mp4")
    frames, _ = read_video(tmp_path / "loop.mp4")
    picture = np.asarray(PIL.Image.open(EXAMPLE).convert("RGB")).astype(int)
    assert len(frames) == 34  # 35 generated, the seam frame dropped
    assert np.abs(frames[0].astype(int) - picture).mean() < 6  # frame 0 is the photo, at its own size (H.264 is lossy)
    page.locator("#gallery img").first.wait_for(timeout=10_000)  # the loop joins the page's gallery
    screenshot(page, "done")


def test_an_error_is_one_line_in_the_page_and_the_app_keeps_serving(page, tmp_path):
    (tmp_path / "notes.png").write_text("this is text, not a photo")
    upload(page, tmp_path / "notes.png")
    page.locator("#status-error").get_by_text("is not a readable image").wait_for(timeout=30_000)
    drop_photo(page)
    page.locator("#size input").first.fill("100")
    page.locator("#size input").first.press("Enter")
    page.locator("#animate").click()
    page.locator("#status-error").get_by_text("size 100x100 does not work").wait_for(timeout=30_000)
    screenshot(page, "error")
    page.locator("#size input").first.fill("")
    page.locator("#size input").first.press("Enter")
    page.locator("#prompt textarea").fill("the coffee cup bobs")
    page.locator("#animate").click()
    page.locator("#status-done").wait_for(timeout=120_000)
    assert "bob" in page.locator("#scores").inner_text()


def test_cancel_stops_the_job_and_says_so(page):
    drop_photo(page)
    page.locator("#prompt textarea").fill("the coffee cup sways")
    page.locator("#size input").first.fill("1920")  # a long job: 35 frames at 1920, three files
    page.locator("#size input").first.press("Enter")
    page.locator("#animate").click()
    page.locator("#status-working").get_by_text("frame").wait_for(timeout=60_000)
    page.locator("#cancel").click()
    page.locator("#status-cancelled").wait_for(timeout=60_000)
    assert page.locator("#downloads a").count() == 0  # no old result comes back
    screenshot(page, "cancelled")
    page.locator("#size input").first.fill("")
    page.locator("#size input").first.press("Enter")


def test_the_mask_editor_starts_from_the_salient_mask_and_returns_the_painted_one():
    from loopanimate.app.web import editor_value, painted_mask

    photo = PIL.Image.new("RGB", (600, 300), (20, 60, 140))
    photo.paste((240, 200, 40), (250, 100, 350, 200))  # a bright square in the middle
    editor = editor_value(photo)  # the photo fitted to 512x256, centred on the 512x512 canvas
    layer = np.asarray(editor["layers"][0]).copy()
    assert editor["background"].size == (512, 512) and layer[128 + 128, 256, 3] > 0  # the square is masked
    assert layer[128 + 128, 256, 3] < 255  # see-through: the photo shows under the mask
    layer[128:160, 0:40, 3] = 255  # the user paints the top-left corner of the photo
    layer[128 + 128, 256, 3] = 0  # and erases one pixel of the object
    mask = painted_mask({"layers": [PIL.Image.fromarray(layer, "RGBA")]}, photo.resize((512, 256)))
    assert mask.shape == (256, 512) and mask[:32, :40].min() == 255 and mask[128, 256] == 0 and mask[128, 250] == 255
    layer[0:100, :, 3] = 255  # a stroke on the grey letterbox above the photo
    again = painted_mask({"layers": [PIL.Image.fromarray(layer, "RGBA")]}, photo.resize((512, 256)))
    np.testing.assert_array_equal(again, mask)  # is cut away


def test_the_painted_mask_comes_back_at_the_photo_size():
    from loopanimate.app.web import editor_value, painted_mask

    photo = PIL.Image.new("RGB", (1200, 600), (20, 60, 140))
    mask = painted_mask(editor_value(photo), photo)
    assert mask.shape == (600, 1200)


def test_one_api_call_makes_a_loop_and_the_api_lists_animate_alone(server_url, tmp_path):
    from gradio_client import Client, handle_file

    client = Client(server_url, verbose=False, download_files=str(tmp_path))
    endpoints = client.view_api(print_info=False, return_format="dict")
    assert list(endpoints["named_endpoints"]) == ["/animate"] and not endpoints["unnamed_endpoints"]
    files, report = client.predict(
        photo=handle_file(EXAMPLE), prompt="the cup sways", size="256", frames=12, formats=["gif"], api_name="/animate"
    )
    assert [Path(file).name for file in files] == ["coffee-loop.mp4", "coffee-loop.gif"]  # named after the photo
    frames, _ = read_video(files[0])
    assert frames.shape[:3] == (11, 168, 256)  # 12 generated, the seam frame dropped; 600x400 inside 256x256
    assert "Seam" in report


@pytest.mark.parametrize(
    ("given", "message"),
    [
        ({"photo": "notes.png"}, "the uploaded file is not a readable image: notes.png (UnidentifiedImageError); "),
        ({"size": "big"}, "invalid size 'big': give N, WIDTHxHEIGHT or a preset"),
        ({"frames": 1}, "frames 1 is out of range: give a whole number, 2 to 1024"),
    ],
    ids=["text-as-photo", "size-big", "frames-1"],
)
def test_a_bad_api_input_is_the_librarys_one_line_message(server_url, tmp_path, given, message):
    from gradio_client import Client, handle_file
    from gradio_client.exceptions import AppError

    (tmp_path / "notes.png").write_text("this is text, not a photo")
    arguments = {"photo": EXAMPLE, **given}
    arguments["photo"] = handle_file(tmp_path / arguments["photo"])  # an absolute EXAMPLE stays itself
    client = Client(server_url, verbose=False, download_files=str(tmp_path))
    with pytest.raises(AppError) as error:
        client.predict(**arguments, api_name="/animate")
    assert str(error.value).startswith(message) and "\n" not in str(error.value)


def test_the_page_offers_examples_only_where_the_folder_is(monkeypatch, tmp_path):
    import gradio as gr

    from loopanimate.app import web

    def has_examples() -> bool:
        return any(isinstance(block, gr.Dataset) for block in web.build_app(work_root=str(tmp_path)).blocks.values())

    assert has_examples()  # a checkout has examples/
    monkeypatch.setattr(web, "EXAMPLES", tmp_path / "examples")  # an installed wheel has none
    assert not has_examples()
