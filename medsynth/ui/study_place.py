"""Where the app's reader studies live: the study database, opened on first use, and the admin credential."""

from __future__ import annotations

import hmac
import os
import threading
from dataclasses import dataclass, field
from pathlib import Path

from medsynth.studies import StudyStore, default_db_path
from medsynth.studies.store import IMAGES_DIR

ADMIN_TOKEN_ENV = "MEDSYNTH_ADMIN_TOKEN"


@dataclass
class StudyPlace:
    """The study store (created lazily, so an app that never rates writes nothing) and who may administer it."""

    db_path: Path
    admin_token: str | None = None  # None or empty: the Studies tab stays locked
    _store: StudyStore | None = field(default=None, init=False, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, init=False, repr=False)

    @classmethod
    def create(cls, db_path: str | Path | None = None, admin_token: str | None = None) -> "StudyPlace":
        token = admin_token if admin_token is not None else os.environ.get(ADMIN_TOKEN_ENV)
        return cls(Path(db_path) if db_path else default_db_path(), token or None)

    @property
    def store(self) -> StudyStore:
        with self._lock:
            if self._store is None:
                self._store = StudyStore(self.db_path)
            return self._store

    @property
    def images_dir(self) -> Path:
        return self.db_path.parent / IMAGES_DIR

    @property
    def admin_enabled(self) -> bool:
        return bool(self.admin_token)

    def is_admin(self, credential: object) -> bool:
        """Constant-time comparison with the configured admin token; False when none is configured."""
        if not self.admin_token or not isinstance(credential, str) or not credential:
            return False
        return hmac.compare_digest(credential.encode(), self.admin_token.encode())
