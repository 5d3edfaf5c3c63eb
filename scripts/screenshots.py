"""Screenshots of the app with the configured pack, for the README (docs/screenshot_*.png).

    python scripts/screenshots.py [--domain dermatology --label mel]

Needs Debian's Chromium (`make browser`) and Playwright (requirements-dev.txt).
"""

from __future__ import annotations

import argparse
import socket
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from medsynth.generation.pipeline import quiet_libraries  # noqa: E402
from medsynth.ui.app import CSS, create_app  # noqa: E402

FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync"]  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--domain", default="Dermatology (dermoscopy)")
    parser.add_argument("--label", default="melanoma (mel)")
    parser.add_argument("--out", type=Path, default=ROOT / "docs")
    args = parser.parse_args()
    from playwright.sync_api import sync_playwright

    quiet_libraries()
    app = create_app()
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    app.launch(server_name="127.0.0.1", server_port=port, prevent_thread_lock=True, css=CSS, quiet=True)
    args.out.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as playwright:
        context = playwright.chromium.launch_persistent_context(
            tempfile.mkdtemp(), executable_path="/usr/bin/chromium", headless=True, args=FLAGS,
            viewport={"width": 1280, "height": 900},
        )  # fmt: skip
        page = context.new_page()
        page.set_default_timeout(120_000)
        page.goto(f"http://127.0.0.1:{port}")
        page.locator("#domain input").click()
        page.get_by_role("option", name=args.domain).click()
        page.locator("#label input").click()
        page.get_by_role("option", name=args.label).click()
        page.locator("#generate").click()
        page.locator("#score-card").get_by_text("Classifier sees").wait_for()
        page.locator("#gallery img").nth(1).click()
        page.wait_for_timeout(500)
        page.screenshot(path=str(args.out / "screenshot_generate.png"), full_page=True)
        page.get_by_role("tab", name="Quiz").click()
        page.locator("#quiz-next").click()
        page.locator("#quiz-image img").wait_for()
        page.locator("#quiz-choices label").first.click()
        page.locator("#quiz-submit").click()
        page.locator("#quiz-feedback").get_by_text("Answer:").wait_for()
        page.screenshot(path=str(args.out / "screenshot_quiz.png"), full_page=True)
        page.set_viewport_size({"width": 390, "height": 844})
        page.get_by_role("tab", name="Generate").click()
        page.wait_for_timeout(500)
        page.screenshot(path=str(args.out / "screenshot_phone.png"), full_page=False)
        context.close()
    app.close()
    print(f"wrote screenshots to {args.out}")


if __name__ == "__main__":
    main()
