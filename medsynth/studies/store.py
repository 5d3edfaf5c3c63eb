"""The study store: one SQLite database (WAL) plus a folder of frozen images named by content hash.

Everything a study needs after set-up lives here: studies, items (with provenance, never shown to
raters), raters, the tickets the server issues for each item it shows, and ratings keyed by
(study, rater, item) so a re-submission replaces a rating and never duplicates it.

Every write is one `BEGIN IMMEDIATE` transaction on a fresh connection with `synchronous=FULL`:
a rating is acknowledged only after it is committed, so a killed server loses no acknowledged
rating and the database passes `PRAGMA integrity_check` when it comes back.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import os
import random
import secrets
import sqlite3
import threading
import time
from contextlib import contextmanager
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Iterator, Sequence

from medsynth.studies.model import (
    CODE_ALPHABET,
    CODE_LENGTH,
    Answers,
    Item,
    ItemView,
    NewItem,
    OrderError,
    RaterError,
    RaterSession,
    Study,
    StudyClosedError,
    StudyError,
    StudySummary,
    SubmitResult,
    TicketError,
    UnknownStudyError,
    check_rater_id,
    normalise_code,
)

logger = logging.getLogger(__name__)

SCHEMA_VERSION = 2  # v2: rater_keys (v1 databases gain the table on opening)
DB_ENV = "MEDSYNTH_STUDIES_DB"
IMAGES_DIR = "images"
# every study image carries this modification time: the web server's Last-Modified and ETag come from it, and real
# images, written after the synthetic ones, were told apart by "newest = real" (162 of 168)
FROZEN_MTIME = 946_684_800  # 2000-01-01T00:00:00Z
BUSY_TIMEOUT_S = 30.0

SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS studies (
    id INTEGER PRIMARY KEY,
    code TEXT NOT NULL UNIQUE,
    title TEXT NOT NULL,
    seed INTEGER NOT NULL,
    asks_alignment INTEGER NOT NULL CHECK (asks_alignment IN (0, 1)),
    status TEXT NOT NULL CHECK (status IN ('open', 'closed')),
    created TEXT NOT NULL,
    closed TEXT,
    config TEXT NOT NULL,
    raters TEXT NOT NULL,
    secret BLOB NOT NULL
);
CREATE TABLE IF NOT EXISTS items (
    id TEXT PRIMARY KEY,
    study_id INTEGER NOT NULL REFERENCES studies(id),
    position INTEGER NOT NULL,
    domain TEXT NOT NULL,
    label TEXT NOT NULL,
    source TEXT NOT NULL CHECK (source IN ('real', 'synthetic')),
    sha256 TEXT NOT NULL,
    prompt TEXT NOT NULL,
    provenance TEXT NOT NULL,
    UNIQUE (study_id, position)
);
CREATE TABLE IF NOT EXISTS raters (
    study_id INTEGER NOT NULL REFERENCES studies(id),
    rater TEXT NOT NULL,
    joined TEXT NOT NULL,
    last_seen TEXT NOT NULL,
    PRIMARY KEY (study_id, rater)
);
CREATE TABLE IF NOT EXISTS rater_keys (
    study_id INTEGER NOT NULL REFERENCES studies(id),
    rater TEXT NOT NULL,
    key_hash TEXT NOT NULL,
    issued TEXT NOT NULL,
    PRIMARY KEY (study_id, rater)
);
CREATE TABLE IF NOT EXISTS tickets (
    nonce TEXT PRIMARY KEY,
    study_id INTEGER NOT NULL REFERENCES studies(id),
    rater TEXT NOT NULL,
    item_id TEXT NOT NULL REFERENCES items(id),
    issued REAL NOT NULL,
    used REAL
);
CREATE TABLE IF NOT EXISTS ratings (
    study_id INTEGER NOT NULL REFERENCES studies(id),
    rater TEXT NOT NULL,
    item_id TEXT NOT NULL REFERENCES items(id),
    realism INTEGER NOT NULL CHECK (realism BETWEEN 1 AND 5),
    alignment INTEGER CHECK (alignment IS NULL OR alignment BETWEEN 1 AND 5),
    guess TEXT NOT NULL CHECK (guess IN ('real', 'synthetic')),
    confidence INTEGER NOT NULL CHECK (confidence BETWEEN 1 AND 5),
    comment TEXT,
    seconds REAL NOT NULL,
    revisions INTEGER NOT NULL DEFAULT 0,
    created TEXT NOT NULL,
    updated TEXT NOT NULL,
    PRIMARY KEY (study_id, rater, item_id)
);
CREATE INDEX IF NOT EXISTS items_by_study ON items (study_id, position);
"""

# what a rating row exports as (the store never hands out secrets, tickets or nonces)
RATING_COLUMNS = (
    "study", "rater", "item_id", "domain", "label", "source", "realism", "alignment", "guess", "correct",
    "confidence", "comment", "seconds", "revisions", "created", "updated",
)  # fmt: skip


def default_db_path() -> Path:
    """$MEDSYNTH_STUDIES_DB, or runs/studies/studies.db (git-ignored) in the project."""
    from medsynth.paths import runs_dir

    return Path(os.environ.get(DB_ENV) or runs_dir() / "studies" / "studies.db")


def now_iso() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def rater_order(seed: int, code: str, rater: str, item_ids: Sequence[str]) -> list[str]:
    """This rater's own random order of the items: the same on every visit, different per rater."""
    digest = hashlib.sha256(f"{seed}\x1f{code}\x1f{rater}".encode()).digest()
    order = list(item_ids)
    random.Random(int.from_bytes(digest[:8], "big")).shuffle(order)
    return order


def new_key() -> str:
    """A rater's secret: 96 random bits, typeable (URL-safe base64)."""
    return secrets.token_urlsafe(12)


def key_hash(key: str) -> str:
    """What the store keeps of a key: its SHA-256 (keys are random, so no slow hash is needed)."""
    return hashlib.sha256(key.encode()).hexdigest()


def _signature(secret: bytes, study_id: int, rater: str, item_id: str, nonce: str) -> str:
    message = f"{study_id}\x1f{rater}\x1f{item_id}\x1f{nonce}".encode()
    return hmac.new(secret, message, hashlib.sha256).hexdigest()[:32]


def _study(row: sqlite3.Row) -> Study:
    return Study(
        id=row["id"],
        code=row["code"],
        title=row["title"],
        seed=row["seed"],
        asks_alignment=bool(row["asks_alignment"]),
        status=row["status"],
        created=row["created"],
        closed=row["closed"],
        config=json.loads(row["config"]),
        raters=tuple(json.loads(row["raters"])),
    )


def _answers(row: sqlite3.Row) -> Answers:
    return Answers(row["realism"], row["guess"], row["confidence"], row["alignment"], row["comment"])


class StudyStore:
    """All studies in one database file; images in `images/` beside it, one file per content hash."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.images_dir = self.path.parent / IMAGES_DIR
        self.images_dir.mkdir(exist_ok=True)
        for image in self.images_dir.glob("*.png"):  # stores written before images were frozen in time
            if image.stat().st_mtime != FROZEN_MTIME:
                os.utime(image, (FROZEN_MTIME, FROZEN_MTIME))
        self._items: dict[int, list[Item]] = {}  # items are frozen at creation, so safe to keep
        self._secrets: dict[int, bytes] = {}  # per-study ticket keys: read once, never handed out
        self._items_lock = threading.Lock()
        self._local = threading.local()
        with self._connection() as db:
            mode = db.execute("PRAGMA journal_mode=WAL").fetchone()[0]
            if mode.lower() != "wal":
                raise StudyError(f"{self.path}: SQLite could not switch to WAL mode (got {mode}); use a local disk")
            db.executescript(SCHEMA)
            db.execute("INSERT OR IGNORE INTO meta VALUES ('schema_version', ?)", (str(SCHEMA_VERSION),))
            version = int(db.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone()[0])
            if version == 1:  # v1 lacked rater keys: the schema above added the table; raters need keys issued
                db.execute("UPDATE meta SET value = ? WHERE key = 'schema_version'", (str(SCHEMA_VERSION),))
                version = SCHEMA_VERSION
        if version != SCHEMA_VERSION:
            raise StudyError(f"{self.path} has study schema v{version}; this medsynth reads v{SCHEMA_VERSION}")

    # ------------------------------------------------------------- plumbing

    @contextmanager
    def _connection(self, durable: bool = True) -> Iterator[sqlite3.Connection]:
        """This thread's connection (kept open: closing the last one to a WAL database checkpoints it)."""
        db = getattr(self._local, "db", None)
        if db is None:
            db = sqlite3.connect(self.path, timeout=BUSY_TIMEOUT_S, isolation_level=None)
            db.row_factory = sqlite3.Row
            db.execute("PRAGMA foreign_keys=ON")
            self._local.db = db
        # FULL: a commit is on disk before it is acknowledged. NORMAL (WAL) survives a killed
        # process but may lose the last commits on power loss: used only for re-creatable rows.
        db.execute(f"PRAGMA synchronous={'FULL' if durable else 'NORMAL'}")
        yield db

    def close(self) -> None:
        """Close this thread's connection (other threads' connections close when they are collected)."""
        db = getattr(self._local, "db", None)
        if db is not None:
            db.close()
            self._local.db = None

    @contextmanager
    def _write(self, durable: bool = True) -> Iterator[sqlite3.Connection]:
        """One write transaction, taken up front (IMMEDIATE) so concurrent writers queue, not deadlock."""
        with self._connection(durable) as db:
            db.execute("BEGIN IMMEDIATE")
            try:
                yield db
            except BaseException:
                db.execute("ROLLBACK")
                raise
            db.execute("COMMIT")

    def integrity_check(self) -> str:
        with self._connection() as db:
            return "; ".join(row[0] for row in db.execute("PRAGMA integrity_check"))

    def journal_mode(self) -> str:
        with self._connection() as db:
            return db.execute("PRAGMA journal_mode").fetchone()[0]

    # --------------------------------------------------------------- images

    def image_path(self, sha256: str) -> Path:
        return self.images_dir / f"{sha256}.png"

    def put_image(self, png: bytes) -> str:
        """Store PNG bytes once under their sha256 (atomic rename); returns the hash."""
        sha = hashlib.sha256(png).hexdigest()
        target = self.image_path(sha)
        if not target.exists():
            partial = target.with_name(f".{sha}.{secrets.token_hex(4)}.tmp")
            partial.write_bytes(png)
            os.utime(partial, (FROZEN_MTIME, FROZEN_MTIME))
            os.replace(partial, target)
        return sha

    # ---------------------------------------------------------------- admin

    def create_study(
        self,
        title: str,
        seed: int,
        items: Sequence[NewItem],
        config: dict[str, Any],
        asks_alignment: bool = True,
        raters: Sequence[str] = (),
    ) -> Study:
        if not items:
            raise StudyError("a study needs at least one item")
        missing = [item.sha256 for item in items if not self.image_path(item.sha256).exists()]
        if missing:
            raise StudyError(
                f"{len(missing)} study image(s) are not in {self.images_dir}; store them with put_image first"
            )
        allowed = sorted({check_rater_id(r) for r in raters})
        with self._write() as db:
            while True:
                code = "".join(secrets.choice(CODE_ALPHABET) for _ in range(CODE_LENGTH))
                if not db.execute("SELECT 1 FROM studies WHERE code = ?", (code,)).fetchone():
                    break
            cursor = db.execute(
                "INSERT INTO studies (code, title, seed, asks_alignment, status, created, config, raters, secret) "
                "VALUES (?, ?, ?, ?, 'open', ?, ?, ?, ?)",
                (
                    code,
                    title.strip(),
                    seed,
                    int(asks_alignment),
                    now_iso(),
                    json.dumps(config),
                    json.dumps(allowed),
                    secrets.token_bytes(32),
                ),
            )
            study_id = cursor.lastrowid
            db.executemany(
                "INSERT INTO items (id, study_id, position, domain, label, source, sha256, prompt, provenance) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                [
                    (f"it-{secrets.token_hex(8)}", study_id, position, item.domain, item.label, item.source,
                     item.sha256, item.prompt, json.dumps(dict(item.provenance), default=str))
                    for position, item in enumerate(items)
                ],
            )  # fmt: skip
        logger.info("created study %s (%s) with %d items", code, title, len(items))
        return self.get_study(code)

    def get_study(self, code: Any) -> Study:
        with self._connection() as db:
            return self._get_study(db, code)

    @staticmethod
    def _get_study(db: sqlite3.Connection, code: Any) -> Study:
        code = normalise_code(code)
        row = db.execute("SELECT * FROM studies WHERE code = ?", (code,)).fetchone()
        if row is None:
            raise UnknownStudyError(f"no study has the code {code!r}; check the code you were given")
        return _study(row)

    def list_studies(self) -> list[StudySummary]:
        with self._connection() as db:
            rows = db.execute(
                """SELECT s.code, s.title, s.status, s.created,
                          (SELECT COUNT(*) FROM items i WHERE i.study_id = s.id) AS items,
                          (SELECT COUNT(*) FROM raters r WHERE r.study_id = s.id) AS raters,
                          (SELECT COUNT(*) FROM ratings g WHERE g.study_id = s.id) AS ratings
                   FROM studies s ORDER BY s.id"""
            ).fetchall()
        return [StudySummary(**dict(row)) for row in rows]

    def close_study(self, code: Any) -> Study:
        """Close a study: raters can no longer sign in or submit. Closing twice is harmless."""
        study = self.get_study(code)
        if study.is_open:
            with self._write() as db:
                db.execute("UPDATE studies SET status = 'closed', closed = ? WHERE id = ?", (now_iso(), study.id))
            logger.info("closed study %s", study.code)
        return self.get_study(study.code)

    def items(self, code: Any) -> list[Item]:
        return list(self._study_items(self.get_study(code)))

    def _study_items(self, study: Study, db: sqlite3.Connection | None = None) -> list[Item]:
        with self._items_lock:
            cached = self._items.get(study.id)
        if cached is not None:
            return cached
        if db is None:
            with self._connection() as own:
                rows = own.execute("SELECT * FROM items WHERE study_id = ? ORDER BY position", (study.id,)).fetchall()
        else:
            rows = db.execute("SELECT * FROM items WHERE study_id = ? ORDER BY position", (study.id,)).fetchall()
        items = [
            Item(r["id"], r["domain"], r["label"], r["source"], r["sha256"], r["prompt"], json.loads(r["provenance"]))
            for r in rows
        ]
        with self._items_lock:
            self._items[study.id] = items
        return items

    def _secret(self, study_id: int, db: sqlite3.Connection | None = None) -> bytes:
        with self._items_lock:
            secret = self._secrets.get(study_id)
        if secret is None:
            if db is None:
                with self._connection() as own:
                    secret = own.execute("SELECT secret FROM studies WHERE id = ?", (study_id,)).fetchone()[0]
            else:
                secret = db.execute("SELECT secret FROM studies WHERE id = ?", (study_id,)).fetchone()[0]
            with self._items_lock:
                self._secrets[study_id] = secret
        return secret

    def pseudonym(self, study: Study, rater: str) -> str:
        """A stable, non-reversible stand-in for a rater id (keyed by the study's secret, which never leaves)."""
        return "R-" + hmac.new(self._secret(study.id), rater.encode(), hashlib.sha256).hexdigest()[:10]

    def ratings(self, code: Any, pseudonymise: bool = False) -> list[dict[str, Any]]:
        """One row per rating, joined with what the admin knows about the item (its source and class)."""
        study = self.get_study(code)
        with self._connection() as db:
            rows = db.execute(
                """SELECT g.rater, g.item_id, i.domain, i.label, i.source, g.realism, g.alignment, g.guess,
                          g.confidence, g.comment, g.seconds, g.revisions, g.created, g.updated
                   FROM ratings g JOIN items i ON i.id = g.item_id
                   WHERE g.study_id = ? ORDER BY g.rater, i.position""",
                (study.id,),
            ).fetchall()
        names: dict[str, str] = {}
        result = []
        for row in rows:
            record = dict(row)
            if pseudonymise:
                if record["rater"] not in names:
                    names[record["rater"]] = self.pseudonym(study, record["rater"])
                record["rater"] = names[record["rater"]]
            record["study"] = study.code
            record["correct"] = record["guess"] == record["source"]
            result.append({column: record[column] for column in RATING_COLUMNS})
        return result

    # --------------------------------------------------------------- raters

    def issue_keys(self, code: Any, raters: Sequence[str] = ()) -> dict[str, str]:
        """Admin: a fresh secret key per rater (default: every rater on the study's list), replacing earlier keys.

        Keys are returned once and stored only as hashes; a rater signs in with their id and key, so nobody
        with the study code alone can rate, read or revise as someone else.
        """
        study = self.get_study(code)
        wanted = sorted({check_rater_id(r) for r in raters}) or list(study.raters)
        if not wanted:
            raise RaterError("this study is open to anyone: name the rater ids to issue keys for")
        strangers = [r for r in wanted if study.raters and r not in study.raters]
        if strangers:
            raise RaterError(f"not on this study's list of raters: {', '.join(strangers)}")
        keys = {rater: new_key() for rater in wanted}
        with self._write() as db:
            db.executemany(
                "INSERT INTO rater_keys (study_id, rater, key_hash, issued) VALUES (?, ?, ?, ?) "
                "ON CONFLICT (study_id, rater) DO UPDATE SET key_hash = excluded.key_hash, issued = excluded.issued",
                [(study.id, rater, key_hash(key), now_iso()) for rater, key in keys.items()],
            )
        logger.info("issued %d rater key(s) for study %s", len(keys), study.code)
        return keys

    def join(self, code: Any) -> tuple[RaterSession, str]:
        """A newcomer to an open study: a fresh pseudonymous rater id with its own key (shown to them once)."""
        with self._write() as db:
            study = self._open_study(db, code)
            if study.raters:
                raise RaterError("this study has named raters: sign in with the rater id and key from your invite")
            while True:
                rater = "r-" + secrets.token_hex(4)
                if not db.execute(
                    "SELECT 1 FROM rater_keys WHERE study_id = ? AND rater = ?", (study.id, rater)
                ).fetchone():
                    break
            key, stamp = new_key(), now_iso()
            db.execute("INSERT INTO rater_keys VALUES (?, ?, ?, ?)", (study.id, rater, key_hash(key), stamp))
            db.execute(
                "INSERT INTO raters (study_id, rater, joined, last_seen) VALUES (?, ?, ?, ?)",
                (study.id, rater, stamp, stamp),
            )
        return RaterSession(study.code, rater), key

    def sign_in(self, code: Any, rater: Any, key: Any) -> RaterSession:
        """Check the code, the rater id and the rater's key; nothing else is revealed."""
        rater = check_rater_id(rater)
        stamp = now_iso()
        with self._write() as db:
            study = self._open_study(db, code)
            if study.raters and rater not in study.raters:
                raise RaterError(f"rater id {rater!r} is not on this study's list of raters; ask the study's organiser")
            row = db.execute(
                "SELECT key_hash FROM rater_keys WHERE study_id = ? AND rater = ?", (study.id, rater)
            ).fetchone()
            if row is None:
                hint = (
                    "ask the study's organiser for your invite"
                    if study.raters
                    else "leave the id empty to join as a new rater"
                )
                raise RaterError(f"no key has been issued to rater {rater!r} in this study; {hint}")
            if not isinstance(key, str) or not hmac.compare_digest(key_hash(key.strip()), row["key_hash"]):
                raise RaterError(f"wrong key for rater {rater!r}; use the key from your invite")
            db.execute(
                "INSERT INTO raters (study_id, rater, joined, last_seen) VALUES (?, ?, ?, ?) "
                "ON CONFLICT (study_id, rater) DO UPDATE SET last_seen = excluded.last_seen",
                (study.id, rater, stamp, stamp),
            )
        return RaterSession(study.code, rater)

    def _open_study(self, db: sqlite3.Connection, code: Any) -> Study:
        study = self._get_study(db, code)
        if not study.is_open:
            raise StudyClosedError(f"study {study.code} is closed; no more ratings are taken. Thank you!")
        return study

    def _session_study(self, db: sqlite3.Connection, session: RaterSession) -> Study:
        if not isinstance(session, RaterSession):
            raise RaterError("sign in with your study code and rater id first")
        study = self._open_study(db, session.study_code)
        known = db.execute(
            "SELECT 1 FROM raters WHERE study_id = ? AND rater = ?", (study.id, session.rater)
        ).fetchone()
        if not known:
            raise RaterError("sign in with your study code and rater id first")
        return study

    def order(self, session: RaterSession) -> list[str]:
        study = self.get_study(session.study_code)
        return rater_order(study.seed, study.code, session.rater, [item.id for item in self._study_items(study)])

    def view(self, session: RaterSession, position: int | None = None) -> ItemView:
        """The item at `position` in this rater's order (default: the first one not yet rated).

        Raters may go back to any item they rated, and on to the first unrated one, never beyond.
        Showing an item issues a fresh one-use ticket; its issue time starts the item's clock.
        """
        with self._write(durable=False) as db:  # a lost ticket only means showing the item again
            study = self._session_study(db, session)
            items = {item.id: item for item in self._study_items(study, db)}
            order = rater_order(study.seed, study.code, session.rater, list(items))
            rated = {
                row["item_id"]: _answers(row)
                for row in db.execute(
                    "SELECT * FROM ratings WHERE study_id = ? AND rater = ?", (study.id, session.rater)
                )
            }
            resume = next((i for i, item_id in enumerate(order) if item_id not in rated), len(order))
            if position is None:
                position = resume
            if isinstance(position, bool) or not isinstance(position, int) or not 0 <= position <= resume:
                raise OrderError(
                    f"image {position!r} is not open to you yet: rate images in order (next: {resume + 1})"
                )
            db.execute(
                "UPDATE raters SET last_seen = ? WHERE study_id = ? AND rater = ?", (now_iso(), study.id, session.rater)
            )
            if position == len(order):
                return ItemView(position, len(order), len(rated), None, None, None, None, study.asks_alignment)
            item = items[order[position]]
            nonce = secrets.token_hex(16)
            db.execute(
                "INSERT INTO tickets (nonce, study_id, rater, item_id, issued) VALUES (?, ?, ?, ?, ?)",
                (nonce, study.id, session.rater, item.id, time.time()),
            )
            ticket = (
                f"{item.id}.{nonce}.{_signature(self._secret(study.id, db), study.id, session.rater, item.id, nonce)}"
            )
        return ItemView(
            position=position,
            total=len(order),
            done=len(rated),
            image_path=str(self.image_path(item.sha256)),
            prompt=item.prompt if study.asks_alignment else None,
            ticket=ticket,
            previous=rated.get(item.id),
            asks_alignment=study.asks_alignment,
        )

    def submit(self, session: RaterSession, ticket: Any, answers: Answers) -> SubmitResult:
        """Record (or replace) this rater's rating of the item the ticket was issued for.

        Refused, with nothing written: a ticket not signed by this server for this study and rater
        (forged, or an item of another study), a ticket already used (replayed), answers out of range.
        """
        stamp = now_iso()
        with self._write() as db:
            study = self._session_study(db, session)
            checked = answers.checked(study.asks_alignment)
            parts = ticket.split(".") if isinstance(ticket, str) else []
            if len(parts) != 3 or not all(parts):
                raise TicketError("this submission carries no valid ticket; reload the item and answer again")
            item_id, nonce, signature = parts
            expected = _signature(self._secret(study.id, db), study.id, session.rater, item_id, nonce)
            if not hmac.compare_digest(expected, signature):
                raise TicketError(
                    "this submission was not issued to you for an item of this study (forged or foreign); nothing was saved"
                )
            issued = db.execute(
                "SELECT t.issued, t.used FROM tickets t JOIN items i ON i.id = t.item_id "
                "WHERE t.nonce = ? AND t.study_id = ? AND t.rater = ? AND t.item_id = ? AND i.study_id = ?",
                (nonce, study.id, session.rater, item_id, study.id),
            ).fetchone()
            if issued is None:
                raise TicketError(
                    "this submission does not match an item shown to you in this study; nothing was saved"
                )
            if issued["used"] is not None:
                raise TicketError(
                    "this answer was already recorded (a repeated submission); open the item again to change it"
                )
            seconds = max(0.0, time.time() - issued["issued"])
            existed = db.execute(
                "SELECT 1 FROM ratings WHERE study_id = ? AND rater = ? AND item_id = ?",
                (study.id, session.rater, item_id),
            ).fetchone()
            db.execute(
                """INSERT INTO ratings (study_id, rater, item_id, realism, alignment, guess, confidence, comment,
                                        seconds, revisions, created, updated)
                   VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, 0, ?, ?)
                   ON CONFLICT (study_id, rater, item_id) DO UPDATE SET
                       realism = excluded.realism, alignment = excluded.alignment, guess = excluded.guess,
                       confidence = excluded.confidence, comment = excluded.comment,
                       seconds = ratings.seconds + excluded.seconds, revisions = ratings.revisions + 1,
                       updated = excluded.updated""",
                (study.id, session.rater, item_id, checked.realism, checked.alignment, checked.guess,
                 checked.confidence, checked.comment, seconds, stamp, stamp),
            )  # fmt: skip
            db.execute("UPDATE tickets SET used = ? WHERE nonce = ?", (time.time(), nonce))
        return SubmitResult(item_id, bool(existed), seconds)
