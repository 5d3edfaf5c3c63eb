"""The Rate and Studies tabs: callbacks called directly, the app's wiring, and keyboard shortcuts in Chromium."""

from __future__ import annotations

import re
import shutil
import socket
from pathlib import Path
from urllib.parse import urlencode

import gradio as gr
import pandas as pd
import pytest
from matplotlib.figure import Figure
from PIL import Image

from medsynth.paths import PROJECT_ROOT
from medsynth.studies import Answers, StudySpec
from medsynth.studies.build import build_study, resolve_cells
from medsynth.ui import rate_tab, studies_tab
from medsynth.ui.app import CSS, create_app
from medsynth.ui.studio import Studio
from medsynth.ui.study_place import StudyPlace
from tests.support.loadtest import signed_in, write_sample_data

TOKEN = "s3cret-admin"
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
ARTIFACTS = PROJECT_ROOT / "test-artifacts"


def key_for(place, code: str, rater: str) -> str:
    """The key an invite gives this rater (issued by the admin)."""
    return place.store.issue_keys(code, [rater])[rater]


# what rate_tab.sign_in / submit / move return, in order
STATE, IMAGE, PROMPT, PROGRESS, TICKET, REALISM, ALIGNMENT, GUESS, CONFIDENCE, COMMENT, STATUS, PANEL = range(12)


@pytest.fixture(scope="module")
def data_folder(tmp_path_factory):
    return write_sample_data(tmp_path_factory.mktemp("data"), {"alpha": ["a1", "a2", "a3"]}, 3)


@pytest.fixture(scope="module")
def studio(engine, tiny_registry, data_folder, tmp_path_factory):
    return Studio(tiny_registry, "tiny", engine, reference_root=data_folder, workdir=tmp_path_factory.mktemp("work"))


@pytest.fixture
def place(tmp_path):
    return StudyPlace.create(tmp_path / "studies" / "studies.db", TOKEN)


def new_study(place, studio, asks_alignment=True, n_synthetic=1, n_real=1):
    spec = StudySpec(
        "ui",
        resolve_cells(studio.registry, ["alpha"], ["a1", "a2"]),
        n_synthetic,
        n_real,
        seed=2,
        asks_alignment=asks_alignment,
    )
    return build_study(place.store, spec, studio.registry, studio.engine, studio.reference_root)


def test_app_has_rate_and_studies_tabs_and_only_the_rating_api(studio, tmp_path):
    app = create_app(studio, studies_db=str(tmp_path / "s" / "studies.db"), admin_token=TOKEN)
    labels = [block.label for block in app.blocks.values() if isinstance(block, gr.Tab)]
    assert labels[-2:] == ["Rate", "Studies"]
    names = {dep.api_name for dep in app.fns.values() if dep.api_name}
    assert {"rate_sign_in", "rate_submit", "rate_previous", "rate_next"} <= names
    assert not any(re.search("study|admin|export|unlock", name) for name in names)  # admin actions have no API
    assert app.study_place.admin_token == TOKEN and not (tmp_path / "s" / "studies.db").exists()  # opened on first use


def test_admin_token_comes_from_the_environment_and_is_required(monkeypatch, tmp_path):
    monkeypatch.setenv("MEDSYNTH_ADMIN_TOKEN", "from-env")
    assert StudyPlace.create(tmp_path / "a.db").is_admin("from-env")
    monkeypatch.delenv("MEDSYNTH_ADMIN_TOKEN")
    locked = StudyPlace.create(tmp_path / "a.db")
    assert not locked.admin_enabled and not locked.is_admin("") and not locked.is_admin(None)
    with pytest.raises(gr.Error, match="locked"):
        studies_tab.unlock(locked, "anything")


def test_an_open_study_gives_a_newcomer_an_id_and_key_and_the_admin_issues_invites(place, studio):
    study = new_study(place, studio)
    shown = rate_tab.sign_in(place, study.code, "", "")
    rater, key = shown[PANEL + 1], shown[PANEL + 2]
    assert rater.startswith("r-") and key and f"your key is `{key}`" in shown[STATUS] and shown[PANEL].visible
    assert rate_tab.sign_in(place, study.code, rater, key)[PANEL + 1] == rater  # they come back with both
    with pytest.raises(gr.Error, match="wrong key"):
        rate_tab.sign_in(place, study.code, rater, "guess")
    with pytest.raises(gr.Error, match="Admin only"):
        studies_tab.issue_invites(place, "wrong token", study.code, "ann, ben")
    table, note, csv_file = studies_tab.issue_invites(place, TOKEN, study.code, "ann, ben", "http://host:7860")
    assert list(table["rater"]) == ["ann", "ben"] and "shown only now" in note
    assert pd.read_csv(csv_file).equals(table)  # the same rows to download
    row = table.iloc[0]
    assert row["sign-in link"] == f"http://host:7860/?study={study.code}&rater=ann&key={row['key']}"
    assert rate_tab.sign_in(place, study.code, "ann", row["key"])[PANEL].visible


def test_rater_signs_in_rates_goes_back_and_revises(place, studio):
    study = new_study(place, studio)
    shown = rate_tab.sign_in(place, study.code, "rita", key_for(place, study.code, "rita"))
    assert "Signed in as **rita**" in shown[STATUS] and shown[PANEL].visible
    assert "0 of 4 rated" in shown[PROGRESS] and "image 1 of 4" in shown[PROGRESS]
    assert shown[PROMPT].startswith("**Prompt:** alpha scan showing")
    assert re.fullmatch(r"[0-9a-f]{64}\.png", Path(shown[IMAGE]).name)  # the file name gives nothing away
    with Image.open(shown[IMAGE]) as image:
        assert not getattr(image, "text", {})
    assert [shown[i].value for i in (REALISM, ALIGNMENT, GUESS, CONFIDENCE)] == [None, None, None, None]
    assert shown[ALIGNMENT].visible
    first_ticket = shown[TICKET]
    shown = rate_tab.submit(place, shown[STATE], first_ticket, 4, 2, "synthetic", 3, "grainy")
    assert shown[STATUS] == "Saved." and "1 of 4 rated" in shown[PROGRESS] and "image 2 of 4" in shown[PROGRESS]
    with pytest.raises(gr.Error, match="Answer this image first"):
        rate_tab.move(place, shown[STATE], 1)
    with pytest.raises(gr.Error, match="already recorded"):
        rate_tab.submit(place, shown[STATE], first_ticket, 1, 1, "real", 1, "")  # a double click / replay
    back = rate_tab.move(place, shown[STATE], -1)
    assert [back[i].value for i in (REALISM, ALIGNMENT, GUESS, CONFIDENCE)] == [4, 2, "synthetic", 3]
    assert back[COMMENT] == "grainy" and "You rated this image before" in back[STATUS]
    again = rate_tab.submit(place, back[STATE], back[TICKET], 5, 2, "real", 4, "")
    assert "replaced" in again[STATUS] and "1 of 4 rated" in again[PROGRESS]
    rows = place.store.ratings(study.code)
    assert len(rows) == 1 and (rows[0]["realism"], rows[0]["guess"], rows[0]["revisions"]) == (5, "real", 1)
    # nothing the rater sees names the source, the class code or anyone else's answers
    shown_text = " ".join(str(v) for v in again if isinstance(v, str))
    assert "synthetic" not in shown_text.lower().replace("real or synthetic", "") and "provenance" not in shown_text


def test_rater_sees_the_end_and_a_study_without_alignment_hides_it(place, studio):
    study = new_study(place, studio, asks_alignment=False, n_synthetic=0, n_real=1)
    shown = rate_tab.sign_in(place, study.code, "sam", key_for(place, study.code, "sam"))
    assert shown[PROMPT] == "" and not shown[ALIGNMENT].visible
    for _ in range(2):
        shown = rate_tab.submit(place, shown[STATE], shown[TICKET], 3, None, "real", 2, None)
    assert shown[IMAGE] is None and shown[TICKET] == "" and "All 2 images rated" in shown[STATUS]
    assert not shown[REALISM].interactive
    resumed = rate_tab.sign_in(place, study.code, "sam", key_for(place, study.code, "sam"))
    assert "continuing after your 2 rated" in resumed[STATUS]


def test_closing_a_study_stops_raters_in_the_middle(place, studio):
    study = new_study(place, studio)
    shown = rate_tab.sign_in(place, study.code, "uma", key_for(place, study.code, "uma"))
    place.store.close_study(study.code)
    with pytest.raises(gr.Error, match="is closed"):
        rate_tab.submit(place, shown[STATE], shown[TICKET], 3, 3, "real", 3, "")
    with pytest.raises(gr.Error, match="is closed"):
        rate_tab.move(place, shown[STATE], 1)
    assert place.store.ratings(study.code) == []


@pytest.mark.parametrize(
    "call, message",
    [
        (lambda p, s, c: rate_tab.sign_in(p, "WRONGCODE", "x", "key"), "no study has the code"),
        (lambda p, s, c: rate_tab.sign_in(p, c, "bad id!", "key"), "rater id must be"),
        (lambda p, s, c: rate_tab.submit(p, None, "t", 3, 3, "real", 3, ""), "Sign in"),
        (lambda p, s, c: rate_tab.submit(p, s[STATE], s[TICKET], None, 3, "real", 3, ""), "realism is missing"),
        (
            lambda p, s, c: rate_tab.submit(p, s[STATE], s[TICKET], 7, 3, "real", 3, ""),
            "realism must be a whole number from 1 to 5",
        ),
        (lambda p, s, c: rate_tab.submit(p, s[STATE], s[TICKET], 3, 3, None, 3, ""), "answer 'real' or 'synthetic'"),
        (lambda p, s, c: rate_tab.submit(p, s[STATE], s[TICKET] + "0", 3, 3, "real", 3, ""), "forged"),
        (
            lambda p, s, c: rate_tab.submit(p, s[STATE], s[TICKET], 3, 3, "real", 3, "x" * 3000),
            "the comment is 3000 characters; the limit is 2000",
        ),
    ],
)
def test_rate_tab_refuses_bad_input_with_a_message(place, studio, call, message):
    study = new_study(place, studio)
    shown = rate_tab.sign_in(place, study.code, "tom", key_for(place, study.code, "tom"))
    with pytest.raises(gr.Error, match=re.escape(message)):
        call(place, shown, study.code)
    assert place.store.ratings(study.code) == []


def test_admin_actions_need_the_token(place, studio):
    study = new_study(place, studio)
    with pytest.raises(gr.Error, match="not the admin token"):
        studies_tab.unlock(place, "guess")
    for wrong in ("", "guess", None, TOKEN + " "):
        for action in (
            lambda c: studies_tab.create_study(studio, place, c, "x", ["alpha"], [], 0, 1, 0, True, ""),
            lambda c: studies_tab.show_results(place, studio, c, study.code),
            lambda c: studies_tab.close_study(place, c, study.code),
            lambda c: studies_tab.export(studio, place, c, study.code, True),
            lambda c: studies_tab.refresh(place, c, study.code),
        ):
            with pytest.raises(gr.Error, match="Admin only"):
                action(wrong)
    assert [s.code for s in place.store.list_studies()] == [study.code] and place.store.get_study(study.code).is_open


def test_admin_creates_follows_analyses_exports_and_closes_a_study(place, studio):
    credential, panel, message, table, picker = studies_tab.unlock(place, TOKEN)
    assert credential == TOKEN and panel.visible and table.empty
    classes = studies_tab.class_picker(studio, ["alpha"])
    assert [v for _, v in classes.choices] == ["alpha/a1", "alpha/a2", "alpha/a3"] == classes.value
    assert ("Gamma (gamma scan) — real images only", "gamma") in studies_tab.domain_options(studio)
    with pytest.raises(gr.Error, match="real images per class must be a whole number"):
        studies_tab.create_study(studio, place, TOKEN, "t", ["alpha"], ["alpha/a1"], 1, 2.5, 0, True, "")
    with pytest.raises(gr.Error, match="lists only 3 real image"):
        studies_tab.create_study(studio, place, TOKEN, "t", ["alpha"], ["alpha/a1"], 1, 4, 0, True, "")
    message, table, picker = studies_tab.create_study(
        studio,
        place,
        TOKEN,
        "Alpha <b>pilot</b> <img src=x>",
        ["alpha"],
        ["alpha/a1", "alpha/a2"],
        2,
        1,
        9,
        True,
        "ana, ben",
    )
    code = re.search(r"Study \*\*(\w+)\*\* is open with 6 images", message).group(1)
    assert "their own **key**" in message and "Issue invites (keys)" in message and "CSV" in message
    assert picker.value == code and table.loc[0, "code"] == code and table.loc[0, "items"] == 6
    assert place.store.get_study(code).raters == ("ana", "ben")
    summary, figure, *tables = studies_tab.show_results(place, studio, TOKEN, code)
    assert "no ratings yet" in summary and not figure["visible"] and not any(t["visible"] for t in tables)
    assert (
        "<b>" not in summary and "<img" not in summary and "&lt;b&gt;pilot&lt;/b&gt;" in summary
    )  # the title as typed
    for rater in ("ana", "ben"):
        session = signed_in(place.store, code, rater)
        for k in range(6):
            place.store.submit(
                session, place.store.view(session).ticket, Answers(1 + k % 5, ("real", "synthetic")[k % 2], 3, 4)
            )
    summary, figure, scores, detection, agreement = studies_tab.show_results(place, studio, TOKEN, code)
    assert "12 rating(s) by 2 rater(s) of 6 image(s)" in summary and isinstance(figure["value"], Figure)
    assert figure["visible"] and len(figure["value"].axes) == 3  # realism, alignment, accuracy
    assert all(len(title) <= 32 for axis in figure["value"].axes for title in axis.get_title().splitlines())  # wrapped
    scores, detection, agreement = scores["value"], detection["value"], agreement["value"]
    assert set(scores["source"]) == {"real", "synthetic"} and detection.iloc[-1]["ratings"] == 12
    assert "Fleiss' kappa, real or synthetic" in set(agreement["measure"])
    files, note = studies_tab.export(studio, place, TOKEN, code, True)
    assert sorted(Path(f).name for f in files) == ["manifest.csv", "manifest.parquet", "ratings.csv", "ratings.parquet"]
    assert "12 rating(s) (pseudonymised)" in note
    exported = pd.read_csv(next(f for f in files if f.endswith("ratings.csv")))
    assert len(exported) == 12 and not {"ana", "ben"} & set(exported["rater"])
    assert (scores["realism_low"].dropna() >= 1).all() and (scores["realism_high"].dropna() <= 5).all()
    assert set(scores["note"]) <= {"", "fewer than 5 ratings: no interval"}
    message, table, picker = studies_tab.close_study(place, TOKEN, code)
    assert "closed" in message and table.loc[0, "status"] == "closed"
    with pytest.raises(gr.Error, match="is closed"):
        rate_tab.sign_in(place, code, "ana", key_for(place, code, "ana"))


# ----------------------------------------------------------- in Chromium


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.mark.skipif(CHROMIUM is None, reason="Debian chromium not installed (apt-get install chromium)")
def test_keyboard_shortcuts_answer_submit_and_navigate(studio, tmp_path_factory):
    sync_api = pytest.importorskip("playwright.sync_api", reason="pip install playwright")
    place_dir = tmp_path_factory.mktemp("browser")
    app = create_app(studio, studies_db=str(place_dir / "studies.db"), admin_token=TOKEN)
    study = new_study(app.study_place, studio)
    port = free_port()
    app.launch(server_name="127.0.0.1", server_port=port, prevent_thread_lock=True, css=CSS, show_error=False)
    try:
        with sync_api.sync_playwright() as playwright:
            browser = playwright.chromium.launch(
                executable_path=CHROMIUM, headless=True, args=["--no-sandbox", "--disable-gpu"]
            )
            page = browser.new_page(viewport={"width": 1280, "height": 1100})
            page.set_default_timeout(20_000)
            key = app.study_place.store.issue_keys(study.code, ["kim"])["kim"]
            # an invite link with somebody else's key: the fields fill in, the sign-in is refused
            page.goto(
                f"http://127.0.0.1:{port}/?{urlencode({'study': study.code, 'rater': 'kim', 'key': 'not-kims-key'})}"
            )
            page.get_by_role("tab", name="Rate", exact=True).click()
            code_box = page.locator("#rate-code").get_by_role("textbox")
            page.wait_for_function("document.querySelector('#rate-code textarea, #rate-code input').value.length > 0")
            assert code_box.input_value() == study.code
            assert page.locator("#rate-rater").get_by_role("textbox").input_value() == "kim"
            page.locator("#rate-sign-in").click()
            page.get_by_text("wrong key for rater 'kim'").first.wait_for()
            assert not page.locator("#rate-image img").is_visible()
            page.locator("#rate-key input").fill(key)  # kim's own key, from the admin's invite
            page.locator("#rate-sign-in").click()
            page.locator("#rate-image img").wait_for()
            page.get_by_text("0 of 4 rated").wait_for()
            for key in ("4", "Shift+2", "s", "c"):  # realism 4, alignment 2, synthetic, confidence 3
                page.keyboard.press(key)
            assert page.locator("#rate-realism input:checked").count() == 1
            page.keyboard.press("m")
            page.keyboard.type("edge artefact 3")  # typing in the comment must not answer anything
            page.keyboard.press("Control+Enter")
            page.get_by_text("1 of 4 rated").wait_for()
            rows = app.study_place.store.ratings(study.code)
            assert [(r["realism"], r["alignment"], r["guess"], r["confidence"], r["comment"]) for r in rows] == [
                (4, 2, "synthetic", 3, "edge artefact 3")
            ]
            for key in ("1", "Shift+5", "r", "b", "Enter"):
                page.keyboard.press(key)
            page.get_by_text("2 of 4 rated").wait_for()
            page.keyboard.press("p")
            page.get_by_text("You rated this image before").wait_for()
            checked = page.locator("#rate-realism label:has(input:checked)")
            assert checked.inner_text().strip().startswith("1")
            ARTIFACTS.mkdir(exist_ok=True)
            page.screenshot(path=str(ARTIFACTS / "rate.png"), full_page=True)
            errors = page.locator('[data-testid="toast-body"].error').all_inner_texts()
            assert all("wrong key" in error for error in errors)  # the refused sign-in only
            browser.close()
    finally:
        app.close()
    rows = app.study_place.store.ratings(study.code)
    assert sorted((r["realism"], r["guess"]) for r in rows) == [(1, "real"), (4, "synthetic")]


def test_the_admin_view_warns_about_burned_in_markers_and_says_whether_they_were_cropped():
    import types

    from medsynth.registry import load_registry

    studio_like = types.SimpleNamespace(registry=load_registry())
    films = types.SimpleNamespace(config={"cells": ["chest_xray/normal", "chest_xray/covid19"], "crop_margin": 0.0})
    note = studies_tab.marker_note(studio_like, films)
    assert "Chest X-ray images can carry burned-in markers and text" in note and "was not cropped" in note
    cropped = types.SimpleNamespace(config={"cells": ["chest_xray/normal"], "crop_margin": 0.06})
    assert "cropped 6% of each side" in studies_tab.marker_note(studio_like, cropped)
    skin = types.SimpleNamespace(config={"cells": ["dermatology/mel"], "crop_margin": 0.0})
    assert studies_tab.marker_note(studio_like, skin) == ""


def test_a_rater_script_finds_nothing_but_pixels_that_tells_real_from_synthetic(studio, tmp_path):
    """A rater fetches every image of a study through the app's own API and file server, as a browser would:
    no response header, byte count or URL shape (each file's own content hash aside) differs between the real and the synthetic images, so sorting by
    Last-Modified or ETag (which picked the real images 162 times of 168) has nothing to sort by."""
    import httpx
    from gradio_client import Client
    from gradio_client.exceptions import AppError

    app = create_app(studio, studies_db=str(tmp_path / "studies.db"), admin_token=TOKEN)
    study = new_study(app.study_place, studio, n_synthetic=3, n_real=3)  # real images are written last
    source_of = {item.sha256: item.source for item in app.study_place.store.items(study.code)}
    key = key_for(app.study_place, study.code, "kim")
    port = free_port()
    app.launch(server_name="127.0.0.1", server_port=port, prevent_thread_lock=True, css=CSS, show_error=False)
    try:
        client = Client(f"http://127.0.0.1:{port}/", download_files=False, verbose=False)
        shown = client.predict(study.code, "kim", key, api_name="/rate_sign_in")
        fetched = []  # (source, headers without Date, bytes, URL without the file's hash)
        for _ in range(len(source_of)):
            # the API's outputs are the view's without its state: image, prompt, progress, ticket, …
            url = shown[0]["url"]
            response = httpx.get(url, timeout=30)
            response.raise_for_status()
            sha256 = Path(shown[0]["path"]).stem
            headers = tuple(sorted((k, v.replace(sha256, "#")) for k, v in response.headers.items() if k != "date"))
            fetched.append((source_of[sha256], headers, len(response.content), url.replace(sha256, "#")))
            with pytest.raises(AppError, match="realism must be a whole number from 1 to 5"):  # the app's words
                client.predict(shown[3], 7, 3, "real", 3, "", api_name="/rate_submit")
            shown = client.predict(shown[3], 3, 3, "real", 3, "", api_name="/rate_submit")
    finally:
        app.close()
    assert sorted(source for source, *_ in fetched) == ["real"] * 6 + ["synthetic"] * 6
    for field in (1, 2, 3):  # headers, size, URL: one value for every image, real or synthetic
        assert len({row[field] for row in fetched}) == 1, [row[field] for row in fetched]
    assert dict(fetched[0][1]).get("last-modified") == "Sat, 01 Jan 2000 00:00:00 GMT"
    positions = [i for i, (source, *_) in enumerate(fetched) if source == "real"]
    assert positions != list(range(6, 12))  # the rater's order is shuffled, not "synthetic first"


def test_the_comment_box_states_its_limit_and_does_not_cut(studio, tmp_path):
    """A browser cuts a textbox at its max_length without a word: the box has none, says the limit, and Submit refuses
    a longer comment with its count (test_rate_tab_refuses_bad_input_with_a_message)."""
    app = create_app(studio, studies_db=str(tmp_path / "studies.db"), admin_token=TOKEN)
    (comment,) = [c for c in app.blocks.values() if getattr(c, "elem_id", None) == "rate-comment"]
    assert comment.max_length is None and "at most 2,000 characters" in comment.label


@pytest.mark.skipif(CHROMIUM is None, reason="Debian chromium not installed (apt-get install chromium)")
def test_invited_raters_by_keyboard_and_on_a_phone(studio, tmp_path_factory):
    """An invite link opens the Rate tab filled in; a keyboard-only rater signs in with Enter and rates 5 images with
    the documented keys (the first key no longer types into the Key box); a 390×844 rater sees the image, the scales
    and Submit in one screen, without the keyboard help, and submits by tapping."""
    sync_api = pytest.importorskip("playwright.sync_api", reason="pip install playwright")
    place_dir = tmp_path_factory.mktemp("raters")
    app = create_app(studio, studies_db=str(place_dir / "studies.db"), admin_token=TOKEN)
    study = new_study(app.study_place, studio, n_synthetic=3, n_real=3)  # 12 images
    keys = app.study_place.store.issue_keys(study.code, ["kim", "pat"])
    port = free_port()
    app.launch(server_name="127.0.0.1", server_port=port, prevent_thread_lock=True, css=CSS, show_error=False)
    flags = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
             "--disable-component-update", "--disable-sync"]  # fmt: skip
    try:
        with sync_api.sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=flags)
            link = f"http://127.0.0.1:{port}/?{urlencode({'study': study.code, 'rater': 'kim', 'key': keys['kim']})}"
            page = browser.new_page(viewport={"width": 1280, "height": 1000})
            page.set_default_timeout(20_000)
            page.goto(link)
            page.locator("#rate-sign-in").wait_for()  # the Rate tab is open: nothing clicked
            page.wait_for_function("document.querySelector('#rate-key input').value.length > 0")
            page.locator("#rate-key input").focus()
            page.keyboard.press("Enter")  # sign in from the Key box, as a keyboard user does
            page.get_by_text("0 of 12 rated").wait_for()
            for done in range(1, 6):
                for key in ("4", "Shift+2", "s", "c", "Enter"):  # realism 4, alignment 2, synthetic, confidence 3
                    page.keyboard.press(key)
                page.get_by_text(f"{done} of 12 rated").wait_for()
            assert page.locator("#rate-key input").input_value() == keys["kim"]  # nothing typed into it
            rows = app.study_place.store.ratings(study.code)
            assert [(r["realism"], r["alignment"], r["guess"], r["confidence"]) for r in rows] == [
                (4, 2, "synthetic", 3)
            ] * 5
            page.close()

            phone = browser.new_page(viewport={"width": 390, "height": 844}, is_mobile=True, has_touch=True)
            phone.set_default_timeout(20_000)
            phone.goto(link.replace("kim", "pat").replace(keys["kim"], keys["pat"]))
            phone.locator("#rate-sign-in").tap()
            phone.get_by_text("0 of 12 rated").wait_for()
            assert not phone.locator("#rate-keys").is_visible()  # no keyboard help between the image and Submit
            phone.locator("#rate-image img").scroll_into_view_if_needed()
            image, submit = phone.locator("#rate-image").bounding_box(), phone.locator("#rate-submit").bounding_box()
            ARTIFACTS.mkdir(exist_ok=True)
            phone.screenshot(path=str(ARTIFACTS / "rate-phone.png"), full_page=True)
            assert submit["y"] + submit["height"] - image["y"] <= 844, "image to Submit does not fit one screen"
            for group in ("rate-realism", "rate-alignment", "rate-guess", "rate-confidence"):
                phone.locator(f"#{group} label").nth(2 if group != "rate-guess" else 0).tap()
            phone.locator("#rate-submit").tap()
            phone.get_by_text("1 of 12 rated").wait_for()
            browser.close()
    finally:
        app.close()
    assert len(app.study_place.store.ratings(study.code)) == 6


def test_the_admin_view_says_how_separable_real_and_synthetic_images_are_by_low_level_statistics(place, studio):
    study = new_study(place, studio, n_synthetic=3, n_real=3)  # 6 real and 6 synthetic images over two classes
    summary = studies_tab.show_results(place, studio, TOKEN, study.code)[0]
    share = re.search(r"alone tell this study's real images from its synthetic ones (\d+)% of the time", summary)
    assert share and 0 <= int(share.group(1)) <= 100 and "as sharp as the real ones" in summary
    few = new_study(place, studio, n_synthetic=1, n_real=1)  # 2 of each: too few to fit, nothing claimed
    assert "Low-level cues" not in studies_tab.show_results(place, studio, TOKEN, few.code)[0]
