"""Reader studies without a browser: set-up, blinding, the rating store, analysis, export and the CLI."""

from __future__ import annotations

import csv
import dataclasses
import hashlib
import json
import math
import re
import sqlite3
import threading
import types

import numpy as np
import pandas as pd
import pytest
from PIL import Image
from scipy import stats as scipy_stats

from medsynth.cli import main
from medsynth.generation.prompts import class_prompt
from medsynth.registry import load_registry
from medsynth.studies import (
    Answers,
    Cell,
    ItemView,
    OrderError,
    RaterError,
    RatingError,
    StudyClosedError,
    StudyError,
    StudySpec,
    StudyStore,
    TicketError,
    UnknownStudyError,
)
from medsynth.studies import store as store_module
from medsynth.studies.build import blinded_png, build_study, draw_real, resolve_cells
from medsynth.studies.ratings_export import export_study
from medsynth.studies.stats import (
    analyse,
    chance_p_value,
    fleiss_kappa,
    krippendorff_alpha,
    mean_interval,
    proportion_interval,
)
from medsynth.studies.store import RATING_COLUMNS
from tests.support.loadtest import signed_in, write_sample_data

ADMIN_TOKEN = "admin-token-that-must-never-leak"


@pytest.fixture(scope="module")
def data_folder(tmp_path_factory):
    return write_sample_data(tmp_path_factory.mktemp("data"), {"alpha": ["a1", "a2", "a3"], "beta": ["b1", "b2"]}, 4)


@pytest.fixture
def store(tmp_path):
    return StudyStore(tmp_path / "studies" / "studies.db")


def real_study(store, registry, data_folder, n_real=3, classes=("a1", "a2"), **changes):
    """A real-images-only study (no model needed): quick to build for tests that rate."""
    spec = StudySpec("real only", resolve_cells(registry, ["alpha"], list(classes)), 0, n_real, seed=11, **changes)
    return build_study(store, spec, registry, None, data_folder)


def row_counts(store) -> tuple[int, int]:
    """(ratings, used tickets): what a refused submission must leave unchanged."""
    with sqlite3.connect(store.path) as db:
        return (
            db.execute("SELECT COUNT(*) FROM ratings").fetchone()[0],
            db.execute("SELECT COUNT(*) FROM tickets WHERE used IS NOT NULL").fetchone()[0],
        )


def stored(store, code, rater, item_id) -> dict:
    return next(r for r in store.ratings(code) if r["rater"] == rater and r["item_id"] == item_id)


# ------------------------------------------------------------------ set-up


@pytest.fixture(scope="module")
def built(engine, tiny_registry, data_folder, tmp_path_factory):
    store = StudyStore(tmp_path_factory.mktemp("built") / "studies.db")
    spec = StudySpec("Alpha realism", resolve_cells(tiny_registry, ["alpha"], ["a1", "alpha/a2"]), 2, 2, seed=3)
    return store, build_study(store, spec, tiny_registry, engine, data_folder), spec


def test_images_are_frozen_by_content_hash_blinded_and_keep_their_provenance(built, tiny_registry, data_folder):
    store, study, spec = built
    items = store.items(study.code)
    assert len(items) == 8 and sorted(i.source for i in items).count("synthetic") == 4
    assert {(i.domain, i.label) for i in items} == {("alpha", "a1"), ("alpha", "a2")}
    domain = tiny_registry.get_domain("alpha")
    for item in items:
        data = store.image_path(item.sha256).read_bytes()
        assert hashlib.sha256(data).hexdigest() == item.sha256
        with Image.open(store.image_path(item.sha256)) as image:
            # same size and format for real and synthetic, no text chunks, no visible mark to give it away
            assert image.format == "PNG" and image.size == (256, 256) and image.mode == "RGB"
            assert not getattr(image, "text", {}) and b"medsynth" not in data and b"SYNTHETIC" not in data
        assert item.prompt == class_prompt(domain, item.label)  # same prompt text for real and synthetic
        if item.source == "synthetic":
            assert item.provenance["prompt"] == item.prompt and item.provenance["pack"] == "tiny"
            assert isinstance(item.provenance["seed"], int) and item.provenance["native_size"] == [32, 32]
        else:
            assert item.provenance["file"].startswith("alpha/images/") and item.provenance["split"] == "test"
            assert item.provenance["native_size"] == [30, 24] and item.provenance["matched_size"] == 32
            # real pixels went through the synthetic images' 32 px before the common display size
            with Image.open(data_folder / item.provenance["file"]) as original:
                assert blinded_png(original, 256, via=32)[0] == data
                assert blinded_png(original, 256)[0] != data
    assert (
        study.config["pack"] == "tiny"
        and study.config["cells"] == ["alpha/a1", "alpha/a2"]
        and study.config["real_matched_to"] == 32
    )
    # what a rater is shown cannot carry the answer
    assert not {"source", "label", "domain", "provenance", "sha256"} & {f.name for f in dataclasses.fields(ItemView)}


def test_same_design_and_seed_give_the_same_frozen_images(built, engine, tiny_registry, data_folder, tmp_path):
    store, study, spec = built
    again = StudyStore(tmp_path / "again.db")
    copy = build_study(again, spec, tiny_registry, engine, data_folder)
    assert sorted(i.sha256 for i in again.items(copy.code)) == sorted(i.sha256 for i in store.items(study.code))
    assert copy.code != study.code
    # a second study in the same store shares the image files (stored once per hash)
    before = len(list(store.images_dir.glob("*.png")))
    build_study(store, spec, tiny_registry, engine, data_folder)
    assert len(list(store.images_dir.glob("*.png"))) == before and len(store.list_studies()) == 2


def test_real_images_come_from_the_test_split_first(tmp_path):
    folder = tmp_path / "data" / "alpha"
    (folder / "images").mkdir(parents=True)
    rows = []
    for i, split in enumerate(["test", "test", "val", "val", "train", "train"]):
        Image.new("RGB", (8, 8), (i, i, i)).save(folder / "images" / f"{i}.png")
        rows.append({"file": f"images/{i}.png", "split": split, "group_id": str(i), "label": "a1"})
    with (folder / "metadata.csv").open("w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    drawn = draw_real([Cell("alpha", "a1")], 3, seed=1, root=tmp_path / "data")
    assert sorted(d.split for d in drawn) == ["test", "test", "val"]
    assert draw_real([Cell("alpha", "a1")], 3, seed=1, root=tmp_path / "data") == drawn  # reproducible
    with pytest.raises(StudyError, match="lists only 6 real image"):
        draw_real([Cell("alpha", "a1")], 7, seed=1, root=tmp_path / "data")
    with pytest.raises(StudyError, match="no metadata.csv"):
        draw_real([Cell("beta", "b1")], 1, seed=1, root=tmp_path / "data")


def test_cells_resolve_from_domains_and_classes(tiny_registry):
    assert resolve_cells(tiny_registry, ["beta"]) == (Cell("beta", "b1"), Cell("beta", "b2"))
    assert resolve_cells(tiny_registry, ["alpha", "beta"], ["A2", "beta/b1", "a2"]) == (
        Cell("alpha", "a2"),
        Cell("beta", "b1"),
    )
    with pytest.raises(StudyError, match="unknown class 'zz'; choose from alpha/a1"):
        resolve_cells(tiny_registry, ["alpha"], ["zz"])
    with pytest.raises(StudyError, match="not among the chosen domains"):
        resolve_cells(tiny_registry, ["alpha"], ["beta/b1"])
    with pytest.raises(StudyError, match="unknown domain 'delta'"):
        resolve_cells(tiny_registry, ["delta"])


@pytest.mark.parametrize(
    "changes, message",
    [
        ({"title": " "}, "give the study a title"),
        ({"cells": ()}, "at least one domain"),
        ({"n_synthetic": -1}, "synthetic images per class must be a whole number from 0 to 500"),
        ({"n_real": 501}, "real images per class must be"),
        ({"n_real": 0, "n_synthetic": 0}, "a study needs images"),
        ({"seed": -3}, "the seed must be a whole number"),
        ({"raters": ("ok", "no spaces")}, "rater id must be"),
        ({"image_size": 8}, "image size must be"),
    ],
)
def test_bad_designs_are_refused_before_any_work(tiny_registry, store, changes, message):
    spec = dataclasses.replace(StudySpec("t", (Cell("alpha", "a1"),), 1, 1, 0), **changes)
    with pytest.raises(StudyError, match=message):
        build_study(store, spec, tiny_registry, None, None)
    assert store.list_studies() == []


def test_synthetic_images_need_a_pack_that_serves_the_domain(tiny_registry, engine, store, data_folder):
    with pytest.raises(StudyError, match="need a loaded model pack"):
        build_study(store, StudySpec("t", (Cell("alpha", "a1"),), 1, 0, 0), tiny_registry, None, data_folder)
    with pytest.raises(StudyError, match="cannot generate gamma"):
        build_study(store, StudySpec("t", (Cell("gamma", "g1"),), 1, 0, 0), tiny_registry, engine, data_folder)
    assert store.list_studies() == []


# --------------------------------------------------------------- rating


def test_each_rater_has_a_stable_random_order_of_every_item(store, tiny_registry, data_folder):
    study = real_study(store, tiny_registry, data_folder, n_real=4, classes=("a1", "a2", "a3"))
    ids = sorted(i.id for i in store.items(study.code))
    alice, bob = signed_in(store, study.code, "alice"), signed_in(store, study.code, "bob")
    assert sorted(store.order(alice)) == ids == sorted(store.order(bob))
    assert store.order(alice) != store.order(bob)
    assert store.order(alice) == store.order(signed_in(store, study.code.lower(), "alice"))  # codes ignore case
    shown = [store.view(alice).image_path]
    assert shown[0] == str(
        store.image_path(next(i.sha256 for i in store.items(study.code) if i.id == store.order(alice)[0]))
    )


def test_raters_resume_where_they_left_and_revising_updates_not_duplicates(store, tiny_registry, data_folder):
    study = real_study(store, tiny_registry, data_folder)
    session = signed_in(store, study.code, "carol")
    order = store.order(session)
    for k in range(3):
        view = store.view(session)
        assert (view.position, view.done, view.total, view.previous) == (k, k, 6, None)
        assert view.prompt is not None and view.prompt.startswith("alpha scan showing")
        result = store.submit(session, view.ticket, Answers(k + 1, "real", 2, 3, f"c{k}"))
        assert result.item_id == order[k] and not result.updated
    # a new sign-in (another day, another browser) continues at the first unrated image
    later = signed_in(store, study.code, "carol")
    assert store.view(later).position == 3
    # going back shows only this rater's own answer; re-submitting replaces it
    back = store.view(later, 1)
    assert back.previous == Answers(2, "real", 2, 3, "c1")
    result = store.submit(later, back.ticket, Answers(5, "synthetic", 4, 1, None))
    assert result.updated
    rows = store.ratings(study.code)
    assert len(rows) == 3 and len({r["item_id"] for r in rows}) == 3
    revised = stored(store, study.code, "carol", order[1])
    assert (revised["realism"], revised["guess"], revised["confidence"], revised["alignment"], revised["comment"]) == (
        5,
        "synthetic",
        4,
        1,
        None,
    )
    assert revised["revisions"] == 1
    with pytest.raises(OrderError, match="rate images in order"):
        store.view(later, 5)  # no skipping ahead past the first unrated image


def test_finishing_every_item_shows_the_done_view(store, tiny_registry, data_folder):
    study = real_study(store, tiny_registry, data_folder, n_real=1, asks_alignment=False)
    session = signed_in(store, study.code, "dana")
    for _ in range(2):
        view = store.view(session)
        assert view.prompt is None  # alignment not asked: no prompt shown
        store.submit(session, view.ticket, Answers(3, "real", 3))
    done = store.view(session)
    assert done.finished and done.ticket is None and (done.done, done.total) == (2, 2)


def test_time_per_item_is_measured_by_the_server(store, tiny_registry, data_folder, monkeypatch):
    study = real_study(store, tiny_registry, data_folder)
    clock = [1000.0]
    monkeypatch.setattr(store_module, "time", types.SimpleNamespace(time=lambda: clock[0]))
    session = signed_in(store, study.code, "erin")
    view = store.view(session)
    clock[0] += 7.5
    assert store.submit(session, view.ticket, Answers(3, "real", 3, 3)).seconds == pytest.approx(7.5)
    again = store.view(session, 0)
    clock[0] += 2.0
    store.submit(session, again.ticket, Answers(4, "real", 3, 3))
    assert stored(store, study.code, "erin", view.ticket.split(".")[0])["seconds"] == pytest.approx(
        9.5
    )  # total time on the item


def test_bad_input_is_refused_with_a_clear_error_and_nothing_is_written(store, tiny_registry, data_folder):
    study = real_study(store, tiny_registry, data_folder)
    other = real_study(store, tiny_registry, data_folder, classes=("a3",))
    session = signed_in(store, study.code, "frank")
    ticket = store.view(session).ticket
    foreign_session = signed_in(store, other.code, "frank")
    foreign_ticket = store.view(foreign_session).ticket  # an item of another study, properly issued there
    mallory_ticket = store.view(signed_in(store, study.code, "mallory")).ticket
    item_id, nonce, signature = ticket.split(".")
    good = Answers(3, "real", 3, 3)
    before = row_counts(store)
    refused = [
        (lambda: store.sign_in("NOSUCHCODE", "frank", "key"), UnknownStudyError, "no study has the code 'NOSUCHCODE'"),
        (lambda: store.sign_in("", "frank", "key"), UnknownStudyError, "enter the study code"),
        (lambda: store.sign_in(study.code, "frank; DROP TABLE", "key"), RaterError, "rater id must be"),
        (
            lambda: store.submit(session, ticket, Answers(6, "real", 3, 3)),
            RatingError,
            "realism must be a whole number from 1 to 5; got 6",
        ),
        (lambda: store.submit(session, ticket, Answers(0, "real", 3, 3)), RatingError, "realism must be"),
        (lambda: store.submit(session, ticket, Answers(2.5, "real", 3, 3)), RatingError, "realism must be"),
        (lambda: store.submit(session, ticket, Answers(True, "real", 3, 3)), RatingError, "realism is missing"),
        (lambda: store.submit(session, ticket, Answers(3, "maybe", 3, 3)), RatingError, "answer 'real' or 'synthetic'"),
        (lambda: store.submit(session, ticket, Answers(3, "real", 9, 3)), RatingError, "confidence must be"),
        (lambda: store.submit(session, ticket, Answers(3, "real", 3, None)), RatingError, "alignment is missing"),
        (
            lambda: store.submit(session, ticket, Answers(3, "real", 3, 3, "x" * 2001)),
            RatingError,
            "the comment is 2001 characters",
        ),
        (
            lambda: store.submit(session, foreign_ticket, good),
            TicketError,
            "not issued to you for an item of this study",
        ),
        (
            lambda: store.submit(session, f"{foreign_ticket.split('.')[0]}.{nonce}.{signature}", good),
            TicketError,
            "forged or foreign",
        ),
        (lambda: store.submit(session, f"{item_id}.{nonce}.{'0' * 32}", good), TicketError, "forged"),
        (lambda: store.submit(session, f"{item_id}.{'f' * 32}.{signature}", good), TicketError, "forged"),
        (lambda: store.submit(session, mallory_ticket, good), TicketError, "not issued to you"),
        (lambda: store.submit(session, "", good), TicketError, "no valid ticket"),
        (lambda: store.submit(session, None, good), TicketError, "no valid ticket"),
        (lambda: store.submit("frank", ticket, good), RaterError, "sign in"),
    ]
    for attempt, error, message in refused:
        with pytest.raises(error, match=re.escape(message)):
            attempt()
        assert row_counts(store) == before, message
    assert store.submit(session, ticket, good).item_id == item_id  # the genuine ticket still works once
    after = row_counts(store)
    with pytest.raises(TicketError, match="already recorded"):
        store.submit(session, ticket, Answers(1, "synthetic", 1, 1))  # replayed
    assert row_counts(store) == after and stored(store, study.code, "frank", item_id)["realism"] == 3


def test_a_rater_signs_in_only_with_their_own_key_and_keys_are_stored_hashed(store, tiny_registry, data_folder):
    """Anyone holding the study code used to be able to sign in as any rater, read and overwrite their answers."""
    study = real_study(store, tiny_registry, data_folder, raters=("alice", "bob"))
    with pytest.raises(RaterError, match="no key has been issued to rater 'alice'"):
        store.sign_in(study.code, "alice", "guess")
    keys = store.issue_keys(study.code)
    assert set(keys) == {"alice", "bob"} and keys["alice"] != keys["bob"] and len(keys["alice"]) >= 16
    for wrong in (keys["bob"], "", None, keys["alice"] + "x"):
        with pytest.raises(RaterError, match="wrong key for rater 'alice'"):
            store.sign_in(study.code, "alice", wrong)
    alice = store.sign_in(study.code, "alice", keys["alice"])
    item_id = store.view(alice).ticket.split(".")[0]
    store.submit(alice, store.view(alice).ticket, Answers(2, "real", 2, 2))
    with sqlite3.connect(store.path) as db:
        stored_keys = [row[0] for row in db.execute("SELECT key_hash FROM rater_keys")]
    assert len(stored_keys) == 2 and not any(key in stored_keys for key in keys.values())  # hashes only
    assert not any(key.encode() in store.path.read_bytes() for key in keys.values())
    renewed = store.issue_keys(study.code, ["alice"])["alice"]  # a lost key is replaced, the old one stops working
    with pytest.raises(RaterError, match="wrong key"):
        store.sign_in(study.code, "alice", keys["alice"])
    again = store.sign_in(study.code, "alice", renewed)
    assert store.view(again, 0).previous == Answers(2, "real", 2, 2)  # her own earlier answer, with her own key
    assert stored(store, study.code, "alice", item_id)["revisions"] == 0
    with pytest.raises(RaterError, match="not on this study's list"):
        store.issue_keys(study.code, ["mallory"])


def test_an_open_study_hands_out_a_fresh_pseudonymous_id_with_its_key(store, tiny_registry, data_folder):
    study = real_study(store, tiny_registry, data_folder)
    first, first_key = store.join(study.code)
    second, second_key = store.join(study.code)
    assert first.rater.startswith("r-") and first.rater != second.rater and first_key != second_key
    assert store.sign_in(study.code, first.rater, first_key) == first
    with pytest.raises(RaterError, match="wrong key"):
        store.sign_in(study.code, first.rater, second_key)
    with pytest.raises(RaterError, match="leave the id empty to join"):
        store.sign_in(study.code, "someone", "anything")
    named = real_study(store, tiny_registry, data_folder, raters=("alice",))
    with pytest.raises(RaterError, match="named raters"):
        store.join(named.code)
    with pytest.raises(RaterError, match="open to anyone: name the rater ids"):
        store.issue_keys(study.code)


def test_a_version_1_database_gains_rater_keys_on_opening(tmp_path):
    from medsynth.studies import StudyStore

    path = tmp_path / "old.db"
    with sqlite3.connect(path) as db:
        db.execute("CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)")
        db.execute("INSERT INTO meta VALUES ('schema_version', '1')")
    opened = StudyStore(path)
    with sqlite3.connect(opened.path) as db:
        assert db.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone()[0] == "2"
        assert db.execute("SELECT COUNT(*) FROM rater_keys").fetchone()[0] == 0


def test_closed_studies_and_raters_off_the_list_are_turned_away(store, tiny_registry, data_folder):
    study = real_study(store, tiny_registry, data_folder, raters=("gina", "hugo"))
    with pytest.raises(RaterError, match="not on this study's list of raters"):
        store.sign_in(study.code, "ivan", "")
    session = signed_in(store, study.code, "gina")
    ticket = store.view(session).ticket
    closed = store.close_study(study.code)
    assert closed.status == "closed" and closed.closed and store.close_study(study.code).closed == closed.closed
    with pytest.raises(StudyClosedError, match="is closed"):
        store.sign_in(study.code, "hugo", "")
    with pytest.raises(StudyClosedError, match="is closed"):
        store.submit(session, ticket, Answers(3, "real", 3, 3))
    assert row_counts(store)[0] == 0


def test_store_is_sqlite_in_wal_mode_and_survives_concurrent_writers(store, tiny_registry, data_folder):
    study = real_study(store, tiny_registry, data_folder)
    assert store.journal_mode() == "wal" and store.integrity_check() == "ok"
    errors = []

    def rater(name: str) -> None:
        try:
            session = signed_in(store, study.code, name)
            for k in range(6):
                store.submit(session, store.view(session).ticket, Answers(1 + k % 5, "real", 3, 2))
        except Exception as error:  # noqa: BLE001 - collected and asserted below
            errors.append(error)

    threads = [threading.Thread(target=rater, args=(f"t{i}",)) for i in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    rows = store.ratings(study.code)
    assert len(rows) == 48 and len({(r["rater"], r["item_id"]) for r in rows}) == 48
    assert store.integrity_check() == "ok"


# ------------------------------------------------------------- analysis


def ratings_from_matrix(matrix: list[list[float]], column: str) -> list[dict]:
    """Rows (rater × item) of a reliability matrix; NaN cells are ratings that were not given."""
    rows = []
    for r, values in enumerate(matrix):
        for i, value in enumerate(values):
            if not math.isnan(value):
                row = {"rater": f"r{r}", "item_id": f"i{i}", "domain": "d", "label": "c", "source": "real",
                       "realism": 3, "alignment": None, "guess": "real"}  # fmt: skip
                row[column] = value
                rows.append(row)
    return rows


def test_krippendorff_alpha_reproduces_the_published_example():
    # Krippendorff (2011), "Computing Krippendorff's alpha-reliability": 4 coders, 12 units, missing values
    nan = math.nan
    matrix = [
        [1, 2, 3, 3, 2, 1, 4, 1, 2, nan, nan, nan],
        [1, 2, 3, 3, 2, 2, 4, 1, 2, 5, nan, 3],
        [nan, 3, 3, 3, 2, 3, 4, 2, 2, 5, 1, nan],
        [1, 2, 3, 3, 2, 4, 4, 1, 2, 5, 1, nan],
    ]
    frame = pd.DataFrame(ratings_from_matrix(matrix, "realism"))
    assert krippendorff_alpha(frame, "realism", "nominal")[0] == pytest.approx(0.743, abs=5e-4)
    assert krippendorff_alpha(frame, "realism", "ordinal")[0] == pytest.approx(0.815, abs=5e-4)
    value, items, raters, note = krippendorff_alpha(frame, "realism", "interval")
    assert value == pytest.approx(0.849, abs=5e-4) and (items, raters, note) == (11, 4, "")


def test_fleiss_kappa_matches_the_hand_computation():
    # 4 items × 3 raters; per-item agreement 1, 1, 1/3, 1/3 → P̄ = 2/3; margins 1/2, 1/2 → Pe = 1/2; κ = 1/3
    answers = [["real"] * 3, ["synthetic"] * 3, ["real", "real", "synthetic"], ["real", "synthetic", "synthetic"]]
    rows = [
        {"rater": f"r{r}", "item_id": f"i{i}", "guess": g} for i, item in enumerate(answers) for r, g in enumerate(item)
    ]
    kappa, items, raters, note = fleiss_kappa(pd.DataFrame(rows))
    assert kappa == pytest.approx(1 / 3) and (items, raters, note) == (4, 3, "")
    # an item with fewer raters is left out of kappa (which needs equal counts) and said so
    rows.append({"rater": "r0", "item_id": "i9", "guess": "real"})
    rows.append({"rater": "r1", "item_id": "i9", "guess": "real"})
    kappa, items, _, note = fleiss_kappa(pd.DataFrame(rows))
    assert kappa == pytest.approx(1 / 3) and items == 4 and "3 raters only" in note


def test_intervals_match_their_formulas():
    values = np.array([2, 3, 3, 4, 5, 5], dtype=float)
    interval = mean_interval(values)
    reference = scipy_stats.bootstrap(
        (values,), np.mean, confidence_level=0.95, n_resamples=4000, method="percentile", rng=0
    ).confidence_interval
    assert (interval.estimate, interval.low, interval.high) == pytest.approx(
        (values.mean(), reference.low, reference.high)
    )
    assert mean_interval(values) == interval  # seeded: the same ratings give the same interval
    # a 1-5 scale stays a 1-5 scale: the t interval of (1, 5, 1, 5, 1) reaches below 0
    wide = mean_interval([1, 5, 1, 5, 1])
    assert 1 <= wide.low < wide.estimate < wide.high <= 5
    assert math.isnan(mean_interval([4]).low) and mean_interval([4]).estimate == 4
    few = mean_interval([1, 5])  # too few ratings for an interval: a mean, no bounds (it was -15.6 to 22.6)
    assert few.estimate == 3 and math.isnan(few.low) and math.isnan(few.high)
    assert (mean_interval([3] * 6).low, mean_interval([3] * 6).high) == (3, 3)  # everyone agreed
    k, n, z = 7, 10, scipy_stats.norm.ppf(0.975)
    p = k / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    margin = z / (1 + z * z / n) * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n))
    wilson = proportion_interval(k, n)
    assert (wilson.estimate, wilson.low, wilson.high) == pytest.approx((0.7, centre - margin, centre + margin))
    for n in range(1, 40):  # the bounds hold the estimate exactly, also at 0 and 1 (0 of 6 once broke the plot)
        none, every = proportion_interval(0, n), proportion_interval(n, n)
        assert none.low == 0.0 < none.high and every.low < every.high == 1.0
    assert chance_p_value(5, 10) == pytest.approx(1.0) and chance_p_value(10, 10) == pytest.approx(2 / 1024)


def test_analysis_of_a_rated_study(store, tiny_registry, data_folder, engine):
    spec = StudySpec("mixed", resolve_cells(tiny_registry, ["alpha"], ["a1", "a2"]), 2, 2, seed=5)
    study = build_study(store, spec, tiny_registry, engine, data_folder)
    source = {item.id: item.source for item in store.items(study.code)}
    # the expert always sees through the synthetic images; the novice always says "real"
    for rater, guess_for in (("expert", lambda s: s), ("novice", lambda s: "real")):
        session = signed_in(store, study.code, rater)
        for _ in range(8):
            view = store.view(session)
            truth = source[view.ticket.split(".")[0]]
            realism = 5 if truth == "real" else 2
            store.submit(session, view.ticket, Answers(realism, guess_for(truth), 4, 3 if rater == "expert" else 4))
    result = analyse(store.ratings(study.code))
    assert (result.ratings, result.raters, result.items) == (16, 2, 8)
    scores = result.scores.set_index(["domain", "label", "source"])
    assert (
        scores.loc[("alpha", "a1", "real"), "realism_mean"] == 5
        and scores.loc[("alpha", "a2", "synthetic"), "realism_mean"] == 2
    )
    assert (
        scores.loc[("alpha", "a1", "real"), "alignment_mean"] == 3.5
        and scores.loc[("alpha", "a1", "real"), "ratings"] == 4
    )
    overall = result.detection.set_index(["domain", "label"]).loc[("all", "all")]
    assert (overall["ratings"], overall["correct"]) == (16, 12)  # expert 8/8, novice 4/8 (the real ones)
    assert overall["accuracy_on_real"] == 1.0 and overall["accuracy_on_synthetic"] == 0.5
    assert overall["accuracy_low"] < 0.75 < overall["accuracy_high"]
    agreement = result.agreement.set_index("measure")["value"]
    assert agreement["Krippendorff's alpha (ordinal), realism"] == pytest.approx(1.0)  # both rated realism alike
    assert -1 <= agreement["Fleiss' kappa, real or synthetic"] < 0.5
    assert "Fleiss' kappa" in result.text() and "all" in result.text()


def test_results_figure_draws_a_class_that_every_rater_got_wrong(store, tiny_registry, engine, tmp_path):
    from io import BytesIO

    from medsynth.studies.plots import study_figure

    data_folder = write_sample_data(tmp_path / "data", {"alpha": ["a1", "a2"]}, 5)
    spec = StudySpec(
        "wrong", resolve_cells(tiny_registry, ["alpha"], ["a1", "a2"]), 5, 5, seed=5
    )  # 5 of each: readable
    study = build_study(store, spec, tiny_registry, engine, data_folder)
    source = {item.id: item.source for item in store.items(study.code)}
    for rater in ("r1", "r2", "r3"):  # always the wrong answer: 30 ratings per class, accuracy 0
        session = signed_in(store, study.code, rater)
        for _ in range(20):
            view = store.view(session)
            wrong = {"real": "synthetic", "synthetic": "real"}[source[view.ticket.split(".")[0]]]
            store.submit(session, view.ticket, Answers(3, wrong, 3, 3))
    result = analyse(store.ratings(study.code))
    per_class = result.detection[result.detection["domain"] != "all"]
    assert (
        (per_class["ratings"] == 30).all()
        and (per_class["accuracy"] == 0).all()
        and (per_class["accuracy_low"] == 0).all()
    )
    png = BytesIO()
    study_figure(result).savefig(png, format="png")  # 0 of 12 once gave a negative error bar, which matplotlib refuses
    assert png.getvalue().startswith(b"\x89PNG")


# --------------------------------------------------------------- export


def test_export_has_one_row_per_rating_csv_and_parquet_and_no_credentials(store, tiny_registry, data_folder, tmp_path):
    study = real_study(store, tiny_registry, data_folder)
    for rater in ("alice.smith@clinic", "bob"):
        session = signed_in(store, study.code, rater)
        for k in range(4):
            store.submit(
                session, store.view(session).ticket, Answers(1 + k, "real", 2, 5, "looks odd" if k == 0 else None)
            )
    result = export_study(store, study.code, tmp_path / "out", pseudonymise=True, images=True)
    assert (result.ratings, result.items) == (8, 6)
    ratings_csv = pd.read_csv(tmp_path / "out" / "ratings.csv")
    ratings_parquet = pd.read_parquet(tmp_path / "out" / "ratings.parquet")
    assert list(ratings_csv.columns) == list(RATING_COLUMNS) == list(ratings_parquet.columns)
    assert len(ratings_csv) == 8 == len(ratings_parquet)
    assert ratings_parquet["realism"].tolist() == ratings_csv["realism"].tolist()
    assert len(ratings_csv.drop_duplicates(["rater", "item_id"])) == 8
    pseudonyms = set(ratings_csv["rater"])
    assert len(pseudonyms) == 2 and all(p.startswith("R-") for p in pseudonyms)
    manifest = pd.read_parquet(tmp_path / "out" / "manifest.parquet")
    assert len(manifest) == 6 and set(manifest["source"]) == {"real"}
    assert all(json.loads(p)["split"] == "test" for p in manifest["provenance"])
    assert all((tmp_path / "out" / f).is_file() for f in manifest["file"])
    # nothing secret leaves: study secret, ticket nonces, the admin token, and (pseudonymised) rater ids
    with sqlite3.connect(store.path) as db:
        secret = db.execute("SELECT secret FROM studies WHERE code = ?", (study.code,)).fetchone()[0]
        nonces = [row[0] for row in db.execute("SELECT nonce FROM tickets")]
    for path in (tmp_path / "out").glob("*.*"):
        blob = path.read_bytes()
        for needle in [
            secret,
            secret.hex().encode(),
            ADMIN_TOKEN.encode(),
            b"alice",
            b"smith",
            *(n.encode() for n in nonces),
        ]:
            assert needle not in blob, f"{needle!r} leaked into {path.name}"
    # pseudonyms are stable across exports; without pseudonymising the ids are kept
    again = export_study(store, study.code, tmp_path / "again", pseudonymise=True)
    assert set(pd.read_csv(again.folder / "ratings.csv")["rater"]) == pseudonyms
    plain = export_study(store, study.code, tmp_path / "plain")
    assert set(pd.read_csv(plain.folder / "ratings.csv")["rater"]) == {"alice.smith@clinic", "bob"}


# ------------------------------------------------------------------ CLI


@pytest.fixture
def cli(tiny_pack, monkeypatch, capsys, tmp_path):
    monkeypatch.setenv("MEDSYNTH_REGISTRY", str(tiny_pack.registry_path))
    monkeypatch.setenv("MEDSYNTH_PACK", tiny_pack.pack)
    monkeypatch.setenv("MEDSYNTH_STUDIES_DB", str(tmp_path / "env" / "studies.db"))

    def run(*argv):
        code = main(list(argv))
        out, err = capsys.readouterr()
        return code, out, err

    return run


def test_cli_study_lifecycle(cli, data_folder, tmp_path):
    db = str(tmp_path / "db" / "studies.db")
    code, out, err = cli("study", "create", "--domains", "alpha", "--classes", "a1", "a2", "--synthetic", "1", "--real", "2",
                         "--seed", "4", "--title", "CLI study", "--db", db, "--data", str(data_folder))  # fmt: skip
    assert code == 0, err
    study_code = re.search(r"study (\w+) created: 6 images", out).group(1)
    code, out, _ = cli("study", "list", "--db", db)
    assert code == 0 and study_code in out and "open" in out and "items    6" in out and "CLI study" in out
    store = StudyStore(db)
    code, out, _ = cli(
        "study", "invite", study_code, "--raters", "zoe,yan", "--url", "http://teach.example:7860", "--db", db
    )
    lines = dict((line.split("\t")[0], line.split("\t")[1:]) for line in out.splitlines()[1:])
    assert code == 0 and set(lines) == {"zoe", "yan"} and "shown once" in out
    key, link = lines["zoe"]
    assert link == f"http://teach.example:7860/?study={study_code}&rater=zoe&key={key}"
    session = store.sign_in(study_code, "zoe", key)  # the printed key is zoe's, and only hers
    with pytest.raises(RaterError, match="wrong key"):
        store.sign_in(study_code, "yan", key)
    store.submit(session, store.view(session).ticket, Answers(4, "synthetic", 5, 2))
    code, out, _ = cli("study", "stats", study_code, "--db", db)
    assert code == 0 and "1 rating(s) by 1 rater(s)" in out and "Fleiss' kappa" in out and "Wilson" in out
    code, out, _ = cli("study", "export", study_code, "--out", str(tmp_path / "export"), "--pseudonymise", "--db", db)
    assert code == 0 and "wrote 1 rating(s) and 6 item(s)" in out
    exported = pd.read_parquet(tmp_path / "export" / "ratings.parquet")
    assert exported["rater"].tolist() != ["zoe"] and exported["realism"].tolist() == [4]
    code, out, _ = cli("study", "close", study_code.lower(), "--db", db)
    assert code == 0 and f"study {study_code} closed" in out
    assert "closed" in cli("study", "list", "--db", db)[1]


@pytest.mark.parametrize(
    "argv, message",
    [
        (["close", "NOPE"], "no study has the code 'NOPE'"),
        (["stats", "NOPE"], "no study has the code 'NOPE'"),
        (["export", "NOPE", "--out", "x"], "no study has the code 'NOPE'"),
        (
            ["create", "--domains", "alpha", "--synthetic", "-1", "--real", "0", "--seed", "1"],
            "synthetic images per class must be",
        ),
        (
            ["create", "--domains", "alpha", "--classes", "zz", "--synthetic", "1", "--real", "0", "--seed", "1"],
            "unknown class 'zz'",
        ),
        (["create", "--domains", "delta", "--synthetic", "1", "--real", "0", "--seed", "1"], "unknown domain 'delta'"),
        (
            ["create", "--domains", "alpha", "--synthetic", "0", "--real", "99", "--seed", "1"],
            "lists only 4 real image",
        ),
        (["create", "--domains", "alpha", "--synthetic", "1", "--real", "0", "--seed", "x"], "invalid int value: 'x'"),
        (["create", "--domains", "alpha", "--synthetic", "1", "--real", "0"], "required: --seed"),
        (["export", "NOPE"], "required: --out"),
    ],
)
def test_cli_study_bad_input_gives_one_line_and_exit_code_2(cli, data_folder, tmp_path, argv, message):
    db = tmp_path / "db" / "studies.db"
    StudyStore(db)  # an existing, empty database
    code, out, err = cli(
        "study", *argv, "--db", str(db), *(["--data", str(data_folder)] if argv[0] == "create" else [])
    )
    assert code == 2 and message in err and len(err.strip().splitlines()) == 1 and "Traceback" not in err


def test_cli_study_without_a_database_says_where_it_looked(cli, tmp_path):
    code, _, err = cli("study", "list", "--db", str(tmp_path / "missing.db"))
    assert code == 2 and "no study database at" in err and not (tmp_path / "missing.db").exists()


def test_file_level_features_do_not_tell_real_from_synthetic(tiny_pack, tmp_path):
    """Synthetic grey films used to carry colour noise and compress differently: mode, channels or file size alone
    un-blinded a study. Now every file of a study has one mode, one size, one byte count and no metadata, so any
    rule on those features scores chance."""
    from medsynth.generation.engine import MedSynth

    text = tiny_pack.registry_path.read_text().replace(
        'modality = "beta scan"', 'modality = "beta scan"\ngrey = true\ncrop_margin = 0.1'
    )
    path = tiny_pack.root / "registry_grey_beta.toml"  # beside the pack: its sources resolve the same way
    path.write_text(text)
    registry = load_registry(path)
    engine = MedSynth(registry, tiny_pack.pack)
    data = write_sample_data(tmp_path / "data", {"alpha": ["a1", "a2", "a3"], "beta": ["b1", "b2"]}, 4)
    store = StudyStore(tmp_path / "blind" / "studies.db")
    for domain, crop, mode in (("beta", True, "L"), ("alpha", False, "RGB")):
        spec = StudySpec("blind", resolve_cells(registry, [domain]), 3, 3, seed=1, crop_markers=crop, image_size=64)
        study = build_study(store, spec, registry, engine, data)
        features = {"real": set(), "synthetic": set()}
        for item in store.items(study.code):
            raw = store.image_path(item.sha256).read_bytes()
            with Image.open(store.image_path(item.sha256)) as image:
                features[item.source].add(
                    (len(raw), image.mode, image.size, tuple(sorted(image.info)), len(image.getbands()))
                )
        assert len(features["real"]) == len(features["synthetic"]) == 1  # one value each: nothing to learn from
        assert features["real"] == features["synthetic"]
        ((size, found_mode, dims, info, bands),) = features["real"]
        assert found_mode == mode and dims == (64, 64) and bands == len(mode)
        assert not set(info) - {"dpi"}  # no text chunks: nothing but pixels
        assert store.get_study(study.code).config["crop_margin"] == (0.1 if crop else 0.0)


def test_a_study_without_real_images_reports_no_real_vs_synthetic_accuracy(store, tiny_registry, data_folder, engine):
    """Raters of a synthetic-only study never saw a real image: '100% accuracy, p = 0' would be read as 'raters could
    tell'. Rows without both sources carry no accuracy or test, and cells under 5 images of a source say too few."""
    spec = StudySpec("synthetic only", resolve_cells(tiny_registry, ["alpha"], ["a1"]), 3, 0, seed=5)
    study = build_study(store, spec, tiny_registry, engine, data_folder)
    session = signed_in(store, study.code, "r1")
    for _ in range(3):
        store.submit(session, store.view(session).ticket, Answers(3, "synthetic", 4, 3))
    detection = analyse(store.ratings(study.code)).detection
    assert detection["accuracy"].isna().all() and detection["p_value"].isna().all()
    assert (detection["real_items"] == 0).all() and (detection["synthetic_items"] == 3).all()
    assert all(note.startswith("no real images") for note in detection["note"])
    mixed = analyse(
        [{"rater": "r", "item_id": i, "domain": "d", "label": "c", "source": "real" if i < 2 else "synthetic",
          "realism": 3, "alignment": 3, "guess": "real"} for i in range(12)]
    ).detection.set_index("label")  # fmt: skip
    assert mixed.loc["c", "note"] == "too few images to read (2 real, 10 synthetic; 5 of each needed)"
    assert np.isnan(mixed.loc["c", "accuracy"]) and mixed.loc["all", "accuracy"] == pytest.approx(2 / 12)
