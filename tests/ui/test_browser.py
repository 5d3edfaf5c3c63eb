"""End to end in a real browser: Debian's Chromium driven by Playwright against the running app.

Skipped where Chromium or Playwright is missing (.ci/run installs both); screenshots go to
test-artifacts/.
"""

from __future__ import annotations

import csv
import io
import shutil
import socket
import tempfile
import uuid
import zipfile
from pathlib import Path

import pytest

from medsynth.paths import PROJECT_ROOT
from medsynth.ui.app import CSS, create_app
from medsynth.ui.studio import Studio
from tests.support.loadtest import write_sample_data

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
def reference_root():
    """Real images outside the project and outside the temp directory, as a data folder usually is."""
    root = Path.home() / ".cache" / f"medsynth-reference-{uuid.uuid4().hex[:8]}"
    assert not root.is_relative_to(PROJECT_ROOT) and not root.is_relative_to(tempfile.gettempdir())
    write_sample_data(root, {"alpha": ["a1", "a2"]}, 3, size=32)
    yield root
    shutil.rmtree(root, ignore_errors=True)


@pytest.fixture(scope="module")
def server(engine, tiny_registry, tmp_path_factory, reference_root):
    studio = Studio(
        tiny_registry, "tiny", engine, reference_root=reference_root, workdir=tmp_path_factory.mktemp("app")
    )
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
    page.locator(f"#{element_id}").get_by_role("option", name=option).click()


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


def test_quiz_answer_changes_the_score(page, monkeypatch):
    from medsynth.ui import quiz_tab

    monkeypatch.setattr(quiz_tab, "QUIZ_THRESHOLD", 0.0)  # the tiny random classifier rarely reaches 50%
    page.get_by_role("tab", name="Quiz").click()
    score = page.locator("#quiz-score")
    assert "no answers yet" in score.inner_text()
    page.locator("#quiz-next").click()
    page.locator("#quiz-image img").wait_for()
    page.locator("#quiz-choices label").first.click()
    page.locator("#quiz-submit").click()
    page.locator("#quiz-feedback").get_by_text("Answer:").wait_for()
    assert "/ 1" in score.inner_text()
    if "no pair to show" not in page.locator("#quiz-feedback").inner_text():  # a reference-class case has none
        page.locator("#quiz-pair-result img").wait_for()  # the pair "what the disease changes" after the answer
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


def loaded_images(page, selector: str) -> list[int]:
    """naturalWidth of every image under `selector` (0: the browser could not load it)."""
    return page.eval_on_selector_all(f"{selector} img", "images => images.map(image => image.naturalWidth)")


def test_compare_shows_real_images_from_a_folder_outside_the_project(page, reference_root):
    page.get_by_role("tab", name="Compare").click()
    pick(page, "compare-domain", "Alpha (alpha scan)")
    page.locator("#compare-run").click()
    page.locator("#compare-real img").first.wait_for()
    page.locator("#compare-synthetic img").first.wait_for()
    page.wait_for_function("[...document.querySelectorAll('#compare-real img')].every(i => i.complete)")
    assert all(width > 0 for width in loaded_images(page, "#compare-real"))
    assert "Error" not in page.locator("#compare-real").inner_text()
    assert str(reference_root) in page.locator("#compare-note").inner_text()
    page.screenshot(path=str(ARTIFACTS / "compare.png"), full_page=True)
    assert_no_error_toast(page)


def test_the_chosen_domain_holds_and_typed_markup_stays_text(page):
    """Findings only, naming another domain's modality, with markup in them: the beta model draws a beta scan, a
    warning names the other modality, and the score card shows the characters typed (no image, no bold)."""
    page.get_by_role("tab", name="Generate").click()
    pick(page, "domain", "Beta (beta scan)")  # already chosen by the first test: no change event, no new class
    page.locator("#class-description").get_by_text("of the beta test domain").wait_for()
    findings = "an alpha scan with a faint ring <img src=x> <b>bold</b>"
    page.locator("#findings textarea").fill(findings)
    page.get_by_text("Use my findings only").click()
    page.locator("#findings-count").get_by_text("tokens the text encoder reads").wait_for()
    page.locator("#generate").click()
    page.get_by_text("the findings name another modality").first.wait_for()
    card = page.locator("#score-card")
    card.get_by_text("an alpha scan with a faint ring").wait_for()  # this request's card, not the last test's
    assert "beta scan, an alpha scan with a faint ring <img src=x> <b>bold</b>" in card.inner_text()
    assert card.locator("img").count() == 0 and card.locator("b").count() == 0
    page.screenshot(path=str(ARTIFACTS / "findings-only.png"), full_page=True)


def test_what_changes_shows_source_counterfactual_and_heat_map(page):
    page.get_by_role("tab", name="What changes").click()
    pick(page, "cf-domain", "Alpha (alpha scan)")
    pick(page, "cf-from", "a2 finding (a2)")
    pick(page, "cf-to", "a1 finding (a1)")
    page.locator("#cf-run").click()
    page.locator("#cf-summary").get_by_text("Classifier: before").wait_for()
    for element in ("cf-source", "cf-result", "cf-heat"):
        page.locator(f"#{element} img").wait_for()
    assert all(width > 0 for width in loaded_images(page, "#cf-result"))
    assert "held-out test image of a2" in page.locator("#cf-summary").inner_text()
    page.screenshot(path=str(ARTIFACTS / "what-changes.png"), full_page=True)
    assert_no_error_toast(page)
