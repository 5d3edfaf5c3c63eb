"""Reliability of rating over HTTP, against `python app.py` in a subprocess, driven by gradio_client.

- 20 raters × 50 ratings at once: exactly 1000 rows, no duplicates, no errors;
- bad input over the API: clear errors, nothing written;
- SIGKILL in the middle of rating, then a restart: integrity check passes, no acknowledged
  rating is lost, every rater resumes where they were.
"""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor

import pytest

from medsynth.studies import Answers, RaterSession, StudySpec, StudyStore
from medsynth.studies.build import build_study, resolve_cells
from tests.support.loadtest import OUT_TICKET, AppServer, rate, rate_concurrently, write_sample_data

pytest.importorskip("gradio_client")
from gradio_client import Client  # noqa: E402
from gradio_client.exceptions import AppError  # noqa: E402

RATERS, PER_RATER = 20, 50


@pytest.fixture(scope="module")
def setup(engine, tiny_registry, tiny_pack, tmp_path_factory):
    root = tmp_path_factory.mktemp("load")
    data = write_sample_data(root / "data", {"alpha": ["a1", "a2"]}, 12)
    store = StudyStore(root / "studies" / "studies.db")
    cells = resolve_cells(tiny_registry, ["alpha"], ["a1", "a2"])
    load = build_study(store, StudySpec("load", cells, 13, 12, seed=1), tiny_registry, engine, data)  # 50 items
    crash = build_study(store, StudySpec("crash", cells, 0, 12, seed=2), tiny_registry, None, data)  # 24 items
    env = {
        "MEDSYNTH_REGISTRY": str(tiny_pack.registry_path), "MEDSYNTH_PACK": tiny_pack.pack,
        "MEDSYNTH_STUDIES_DB": str(store.path), "MEDSYNTH_ADMIN_TOKEN": "load-admin", "MEDSYNTH_DATA": str(data),
        "OMP_NUM_THREADS": "1", "OMP_WAIT_POLICY": "PASSIVE",
    }  # fmt: skip
    servers = [AppServer(env, root / "server.log").start()]
    yield {"store": store, "load": load, "crash": crash, "servers": servers, "env": env, "root": root}
    for server in servers:
        server.stop()


def rows_by_rater(store, code) -> dict[str, dict[str, dict]]:
    by_rater: dict[str, dict[str, dict]] = {}
    for row in store.ratings(code):
        by_rater.setdefault(row["rater"], {})[row["item_id"]] = row
    return by_rater


def assert_stored(row: dict, answers: Answers) -> None:
    assert (row["realism"], row["alignment"], row["guess"], row["confidence"], row["comment"]) == (
        answers.realism, answers.alignment, answers.guess, answers.confidence, answers.comment,
    )  # fmt: skip


def test_twenty_concurrent_raters_store_exactly_one_row_per_rating(setup):
    store, study, server = setup["store"], setup["load"], setup["servers"][-1]
    raters = [f"rater{i:02d}" for i in range(RATERS)]
    started = time.perf_counter()
    keys = store.issue_keys(study.code, raters)
    runs = rate_concurrently(server.url, study.code, keys, PER_RATER)
    elapsed = time.perf_counter() - started
    assert [error for run in runs for error in run.errors] == []
    assert [len(run.acknowledged) for run in runs] == [PER_RATER] * RATERS
    rows = store.ratings(study.code)
    assert len(rows) == RATERS * PER_RATER == len({(r["rater"], r["item_id"]) for r in rows})
    items = {item.id for item in store.items(study.code)}
    stored = rows_by_rater(store, study.code)
    for run in runs:
        assert set(stored[run.rater]) == items  # each rater rated every item once, in their own order
        assert [item for item, _ in run.acknowledged] == store.order(RaterSession(study.code, run.rater))
        for item, answers in run.acknowledged:
            assert_stored(stored[run.rater][item], answers)
    assert all(r["seconds"] >= 0 and r["revisions"] == 0 for r in rows)
    assert store.integrity_check() == "ok"
    print(f"\n{RATERS}×{PER_RATER} ratings over HTTP in {elapsed:.1f} s ({len(rows) / elapsed:.0f}/s)")


def test_bad_input_over_the_api_is_refused_and_nothing_is_written(setup):
    store, study, other, server = setup["store"], setup["load"], setup["crash"], setup["servers"][-1]
    client = Client(server.url, verbose=False, download_files=False, ssl_verify=False)
    before = len(store.ratings(study.code)), len(store.ratings(other.code))
    with pytest.raises(AppError, match="no study has the code 'NOSUCHCODE'"):
        client.predict("NOSUCHCODE", "eve", "key", api_name="/rate_sign_in")
    with pytest.raises(AppError, match="Sign in"):
        client.predict("x.y.z", 3, 3, "real", 3, "", api_name="/rate_submit")
    ticket = client.predict(study.code, "eve", store.issue_keys(study.code, ["eve"])["eve"], api_name="/rate_sign_in")[
        OUT_TICKET
    ]
    foreign = Client(server.url, verbose=False, download_files=False, ssl_verify=False)
    foreign_key = store.issue_keys(other.code, ["eve"])["eve"]
    foreign_ticket = foreign.predict(other.code, "eve", foreign_key, api_name="/rate_sign_in")[OUT_TICKET]
    item, nonce, signature = ticket.split(".")
    for args, message in [
        # out-of-range answers: the store's own words, not Gradio's "Value: 9 … is not in the list of choices"
        ((ticket, 9, 3, "real", 3, ""), "realism must be a whole number from 1 to 5; got 9"),
        ((ticket, 3, 0, "real", 3, ""), "alignment must be a whole number from 1 to 5; got 0"),
        ((ticket, 3, 3, "fake", 3, ""), "answer 'real' or 'synthetic'; got 'fake'"),
        ((ticket, None, 3, "real", 3, ""), "realism is missing"),
        ((foreign_ticket, 3, 3, "real", 3, ""), "not issued to you for an item of this study"),
        ((f"{foreign_ticket.split('.')[0]}.{nonce}.{signature}", 3, 3, "real", 3, ""), "forged"),
        ((f"{item}.{nonce}.{signature[::-1]}", 3, 3, "real", 3, ""), "forged"),
    ]:
        with pytest.raises(AppError, match=message):
            client.predict(*args, api_name="/rate_submit")
    assert (len(store.ratings(study.code)), len(store.ratings(other.code))) == before
    client.predict(ticket, 2, 2, "real", 2, "", api_name="/rate_submit")
    with pytest.raises(AppError, match="already recorded"):
        client.predict(ticket, 5, 5, "synthetic", 5, "", api_name="/rate_submit")  # replayed
    assert len(store.ratings(study.code)) == before[0] + 1
    assert rows_by_rater(store, study.code)["eve"][item]["realism"] == 2


def test_sigkill_mid_rating_loses_no_acknowledged_rating_and_raters_resume(setup):
    store, study, servers = setup["store"], setup["crash"], setup["servers"]
    total = len(store.items(study.code))
    raters = [f"crash{i}" for i in range(4)]
    keys = store.issue_keys(study.code, raters)
    with ThreadPoolExecutor(len(raters)) as pool:
        futures = [pool.submit(rate, servers[-1].url, study.code, r, keys[r], total) for r in raters]
        deadline = time.monotonic() + 60
        # wait until the raters are well under way, then pull the plug while requests are in flight
        while (
            time.monotonic() < deadline and next(s.ratings for s in store.list_studies() if s.code == study.code) < 30
        ):
            time.sleep(0.05)
        servers[-1].kill()
        runs = [future.result() for future in futures]
    assert servers[-1].process.returncode == -9
    acknowledged = {run.rater: run.acknowledged for run in runs}
    assert all(len(acks) < total for acks in acknowledged.values()), "the kill came after the raters had finished"
    assert all(run.errors for run in runs)  # each rater saw the server go away
    assert store.integrity_check() == "ok"
    stored = rows_by_rater(store, study.code)
    for rater, acks in acknowledged.items():
        for item, answers in acks:
            assert_stored(stored[rater][item], answers)  # nothing acknowledged is lost
        assert len(acks) <= len(stored.get(rater, {})) <= len(acks) + 1  # at most the one in flight on top
    # restart on the same database: every rater continues where they were and finishes
    servers.append(AppServer(setup["env"], setup["root"] / "server-restarted.log").start())
    before = {rater: len(rows_by_rater(store, study.code).get(rater, {})) for rater in raters}
    resumed = rate_concurrently(servers[-1].url, study.code, keys, total)
    for run in resumed:
        assert run.errors == [] and run.resumed_at == before[run.rater]  # the progress bar says where they were
        order = store.order(RaterSession(study.code, run.rater))
        assert [item for item, _ in run.acknowledged] == order[before[run.rater] :]  # and the next image is theirs
    final = rows_by_rater(store, study.code)
    assert all(len(final[r]) == total for r in raters)
    assert len(store.ratings(study.code)) == len(raters) * total
    assert store.integrity_check() == "ok"
