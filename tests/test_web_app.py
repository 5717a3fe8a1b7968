"""`loopanimate serve` in a real browser: Debian's Chromium driven by Playwright, on a loopback port.

Drop the coffee photo, type a prompt, click Animate, watch the progress, download the MP4 (named after the photo) and
decode it; a non-image upload and a bad size show the library's one-line message in the page, and the app goes on
serving; Cancel stops a long job and the page says "cancelled"; arrows and pins clicked on the photo (the motion brush)
go into the loop, and a mistyped arrow is the library's one line. `make test` installs Chromium when it is missing.
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


def test_the_motion_brush_clicks_become_arrows_and_pins_in_the_photos_pixels(page, tmp_path):
    import re

    drop_photo(page)  # 600x400, shown as a 512x341 copy, which the browser scales again
    page.locator("#prompt textarea").fill("the coffee cup sways")
    page.locator("#brush-mode").get_by_text("Arrow").click()
    photo = page.locator("#brush img")
    photo.wait_for(timeout=30_000)
    box = photo.bounding_box()  # the shown picture fills the box's width (it is wider than tall)
    shown_height = box["width"] * 400 / 600

    def click(x: float, y: float) -> None:
        """Click the photo's point (x, y) in the photo's own pixels, once the last redrawn picture has loaded (a
        click on a loading one has no pixels to report)."""
        loaded = "(img => img && img.complete && img.naturalWidth > 0)(document.querySelector('#brush img'))"
        page.wait_for_function(loaded, timeout=30_000)
        top = (box["height"] - shown_height) / 2  # centred where the box is taller than the picture
        photo.click(position={"x": x * box["width"] / 600, "y": top + y * shown_height / 400})

    click(200, 200)
    page.locator("#status-ready").get_by_text("click the arrow's head").wait_for(timeout=30_000)
    click(400, 150)
    page.locator("#status-ready").get_by_text("click to draw more").wait_for(timeout=30_000)
    page.locator("#brush-mode").get_by_text("Pin").click()
    click(300, 350)
    page.wait_for_function("document.querySelector('#anchors textarea').value !== ''", timeout=30_000)
    arrow = re.fullmatch(r"(\d+),(\d+)>(\d+),(\d+)", page.locator("#arrows textarea").input_value())
    pin = re.fullmatch(r"(\d+),(\d+)", page.locator("#anchors textarea").input_value())
    assert arrow and pin, (
        page.locator("#arrows textarea").input_value(),
        page.locator("#anchors textarea").input_value(),
    )
    np.testing.assert_allclose([int(v) for v in arrow.groups()], [200, 200, 400, 150], atol=4)
    np.testing.assert_allclose([int(v) for v in pin.groups()], [300, 350], atol=4)
    screenshot(page, "brush")
    page.locator("#animate").click()
    page.locator("#status-done").wait_for(timeout=120_000)
    with page.expect_download() as download:
        page.locator("#downloads a[href$='coffee-loop.mp4']").click()
    download.value.save_as(tmp_path / "loop.mp4")
    assert len(read_video(tmp_path / "loop.mp4")[0]) == 34
    page.locator("#arrows textarea").fill("foo")
    page.locator("#animate").click()
    error = page.locator("#status-error").get_by_text("arrows 'foo' is not understood: give x1,y1>x2,y2")
    error.wait_for(timeout=30_000)
    assert "\n" not in page.locator("#status-error").inner_text().strip()
    page.locator("#clear-brush").click()
    page.locator("#status-ready").get_by_text("motion brush").wait_for(timeout=30_000)
    assert page.locator("#arrows textarea").input_value() == ""


def test_a_click_on_the_brush_is_in_the_photos_pixels_and_the_strokes_are_drawn():
    from loopanimate.app.web import PIN_COLOUR, brush_point, brush_view

    photo = PIL.Image.new("RGB", (1200, 600), (20, 60, 140))  # shown as 512x256
    assert brush_point([256, 128], photo) == (600, 300) and brush_point([511, 255], photo) == (1198, 598)
    view = brush_view(photo, "100,100>500,100", "600,300", None)
    assert view.size == (512, 256) and view.getpixel((256, 128)) == PIN_COLOUR
    assert view.getpixel((100, 43)) != (20, 60, 140)  # on the arrow's line (x 100..500 of 1200 at y 100)


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


def test_formats_given_as_one_string_is_one_format(server_url, tmp_path):
    from gradio_client import Client, handle_file

    client = Client(server_url, verbose=False, download_files=str(tmp_path))
    files, _ = client.predict(photo=handle_file(EXAMPLE), frames=4, size="64", formats="gif", api_name="/animate")
    assert [Path(file).suffix for file in files] == [".mp4", ".gif"]  # once read as the letters g, i, f: an error


@pytest.mark.parametrize(
    ("given", "message"),
    [
        ({"photo": "notes.png"}, "the uploaded file is not a readable image: notes.png (UnidentifiedImageError); "),
        ({"size": "big"}, "invalid size 'big': give N, WIDTHxHEIGHT or a preset"),
        ({"frames": 1}, "frames 1 is out of range: give a whole number, 2 to 1024"),
        ({"arrows": "foo"}, "arrows 'foo' is not understood: give x1,y1>x2,y2, `;` between them"),
    ],
    ids=["text-as-photo", "size-big", "frames-1", "arrows-foo"],
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
