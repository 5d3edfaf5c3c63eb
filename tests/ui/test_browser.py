"""End to end in a real browser: Debian's Chromium driven by Playwright against the running app.

Skipped where Chromium or Playwright is missing (.ci/run installs both); screenshots go to
test-artifacts/.
"""

from __future__ import annotations

import csv
import io
import shutil
import socket
import zipfile

import pytest

from medsynth.paths import PROJECT_ROOT
from medsynth.ui.app import CSS, create_app
from medsynth.ui.studio import Studio

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
ARTIFACTS = PROJECT_ROOT / "test-artifacts"
FLAGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]  # fmt: skip

pytestmark = pytest.mark.skipif(CHROMIUM is None, reason="Debian chromium not installed (apt-get install chromium)")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(scope="module")
def server(engine, tiny_registry, tmp_path_factory):
    studio = Studio(tiny_registry, "tiny", engine, reference_root=None, workdir=tmp_path_factory.mktemp("app"))
    app = create_app(studio)
    port = free_port()
    app.launch(server_name="127.0.0.1", server_port=port, prevent_thread_lock=True, css=CSS, show_error=False)
    yield f"http://127.0.0.1:{port}"
    app.close()


@pytest.fixture(scope="module")
def page(server, tmp_path_factory):
    sync_api = pytest.importorskip("playwright.sync_api", reason="pip install playwright")
    with sync_api.sync_playwright() as playwright:
        context = playwright.chromium.launch_persistent_context(
            user_data_dir=str(tmp_path_factory.mktemp("chromium-profile")),
            executable_path=CHROMIUM,
            headless=True,
            args=FLAGS,
            accept_downloads=True,
            viewport={"width": 1280, "height": 1000},
        )
        page = context.new_page()
        page.set_default_timeout(60_000)
        page.goto(server)
        page.locator("#generate").wait_for()
        yield page
        context.close()


def assert_no_error_toast(page) -> None:
    errors = page.locator('[data-testid="toast-body"].error')
    assert errors.count() == 0, errors.first.inner_text()


def pick(page, element_id: str, option: str) -> None:
    page.locator(f"#{element_id} input").click()
    page.get_by_role("option", name=option).click()


def test_generate_score_card_and_zip_download(page, tmp_path):
    ARTIFACTS.mkdir(exist_ok=True)
    pick(page, "domain", "Beta (beta scan)")
    page.get_by_text("Class b1 of the beta test domain").wait_for()
    pick(page, "label", "b2 finding (b2)")
    page.get_by_text("Class b2 of the beta test domain").wait_for()
    page.locator("#generate").click()
    page.locator("#gallery img").first.wait_for()
    page.locator("#score-card").get_by_text("Classifier sees").wait_for()
    assert page.locator("#gallery img").count() >= 4
    assert "image(s)" in page.locator("#status").inner_text()
    page.screenshot(path=str(ARTIFACTS / "generate.png"), full_page=True)
    assert_no_error_toast(page)

    with page.expect_download() as download_info:
        page.locator("#download-zip").click()
    archive = tmp_path / "result.zip"
    download_info.value.save_as(archive)
    with zipfile.ZipFile(archive) as bundle:
        rows = list(csv.DictReader(io.StringIO(bundle.read("manifest.csv").decode())))
        assert len(rows) == 4 and {row["label"] for row in rows} == {"b2"}
        assert all(row["file"] in bundle.namelist() for row in rows)


def test_quiz_answer_changes_the_score(page):
    page.get_by_role("tab", name="Quiz").click()
    score = page.locator("#quiz-score")
    assert "no answers yet" in score.inner_text()
    page.locator("#quiz-next").click()
    page.locator("#quiz-image img").wait_for()
    page.locator("#quiz-choices label").first.click()
    page.locator("#quiz-submit").click()
    page.locator("#quiz-feedback").get_by_text("Answer:").wait_for()
    assert "/ 1" in score.inner_text()
    page.screenshot(path=str(ARTIFACTS / "quiz.png"), full_page=True)
    assert_no_error_toast(page)


def test_phone_sized_screen_has_no_sideways_scrolling(page):
    page.set_viewport_size({"width": 390, "height": 844})
    try:
        page.get_by_role("tab", name="Generate").click()
        page.locator("#generate").wait_for()
        page.wait_for_timeout(300)
        assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth + 1")
        assert page.locator("#generate").is_visible() and page.locator("#notice").is_visible()
        page.screenshot(path=str(ARTIFACTS / "phone.png"), full_page=False)
    finally:
        page.set_viewport_size({"width": 1280, "height": 1000})
