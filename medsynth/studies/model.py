"""Typed values that cross the studies package's boundary, their checks and its errors.

Nothing here touches the database or the models: pure data and validation, so the UI, the CLI
and the store agree on one set of rules and one wording of each error.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any, Mapping

LIKERT = (1, 2, 3, 4, 5)
GUESSES = ("real", "synthetic")
SOURCES = GUESSES  # an item is real or synthetic; a rater guesses one of the two
MAX_COMMENT_CHARS = 2000
MAX_PER_CLASS = 500
RATER_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._@-]{0,63}$")
CODE_ALPHABET = "ABCDEFGHJKLMNPQRSTUVWXYZ23456789"  # no 0/O, 1/I: codes are read aloud and typed
CODE_LENGTH = 10


class StudyError(ValueError):
    """A study request that cannot be served; the message is meant for the person who made it."""


class UnknownStudyError(StudyError):
    pass


class StudyClosedError(StudyError):
    pass


class RaterError(StudyError):
    pass


class OrderError(RaterError):
    """A rater asked for an image beyond the first one they have not rated."""


class RatingError(StudyError):
    """An answer is missing or out of range; nothing was written."""


class TicketError(StudyError):
    """A submission the server did not issue (forged), already used (replayed) or for someone else."""


def normalise_code(code: Any) -> str:
    """Study codes are typed by people: ignore case, spaces and dashes."""
    if not isinstance(code, str) or not code.strip():
        raise UnknownStudyError("enter the study code you were given (letters and digits)")
    return re.sub(r"[\s-]", "", code).upper()


def check_rater_id(rater: Any) -> str:
    if not isinstance(rater, str) or not RATER_PATTERN.match(rater.strip()):
        raise RaterError(
            f"the rater id must be 1–64 letters, digits or . _ @ - (starting with a letter or digit); got {rater!r}"
        )
    return rater.strip()


def _likert(name: str, value: Any) -> int:
    """An answer on a 1–5 scale; accepts ints and digit strings (what forms send), nothing else."""
    if isinstance(value, bool) or value is None or value == "":
        raise RatingError(f"{name} is missing: choose 1–5")
    if isinstance(value, str) and value.strip().isdigit():
        value = int(value.strip())
    elif isinstance(value, float) and value.is_integer():
        value = int(value)
    if not isinstance(value, int) or value not in LIKERT:
        raise RatingError(f"{name} must be a whole number from 1 to 5; got {value!r}")
    return value


@dataclass(frozen=True)
class Answers:
    """One rater's answers for one item, as submitted (before checking)."""

    realism: Any
    guess: Any
    confidence: Any
    alignment: Any = None
    comment: Any = None

    def checked(self, asks_alignment: bool) -> "Answers":
        """A copy with every field converted and in range, or RatingError naming the first bad one."""
        realism = _likert("realism", self.realism)
        guess = self.guess.strip().lower() if isinstance(self.guess, str) else self.guess
        if guess not in GUESSES:
            raise RatingError(f"answer 'real' or 'synthetic'; got {self.guess!r}")
        confidence = _likert("confidence", self.confidence)
        if asks_alignment:
            alignment = _likert("alignment", self.alignment)
        elif self.alignment not in (None, ""):
            raise RatingError("this study does not ask for prompt alignment; leave it empty")
        else:
            alignment = None
        comment = self.comment
        if comment is not None and not isinstance(comment, str):
            raise RatingError(f"the comment must be text; got {type(comment).__name__}")
        comment = (comment or "").strip() or None
        if comment and len(comment) > MAX_COMMENT_CHARS:
            raise RatingError(f"the comment is {len(comment)} characters; the limit is {MAX_COMMENT_CHARS}")
        return Answers(realism, guess, confidence, alignment, comment)


@dataclass(frozen=True)
class Cell:
    """One (domain, class) cell of a study design."""

    domain: str
    label: str

    def __str__(self) -> str:
        return f"{self.domain}/{self.label}"


@dataclass(frozen=True)
class StudySpec:
    """What an admin asks for: images per class, real and synthetic, drawn and generated from `seed`."""

    title: str
    cells: tuple[Cell, ...]
    n_synthetic: int  # per class
    n_real: int  # per class
    seed: int
    asks_alignment: bool = True
    raters: tuple[str, ...] = ()  # allowed rater ids; empty: anyone with the code
    image_size: int = 256  # every image is shown square at this size, so size never gives the source away
    match_resolution: bool = True  # real images pass through the synthetic native resolution first
    crop_markers: bool = False  # crop the registry's margin (burned-in markers and text) off every image's sides

    def check(self) -> None:
        if not isinstance(self.title, str) or not self.title.strip() or len(self.title) > 200:
            raise StudyError("give the study a title (1–200 characters)")
        if not self.cells:
            raise StudyError("choose at least one domain and class")
        for name, value in (("synthetic images per class", self.n_synthetic), ("real images per class", self.n_real)):
            if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= MAX_PER_CLASS:
                raise StudyError(f"{name} must be a whole number from 0 to {MAX_PER_CLASS}; got {value!r}")
        if self.n_synthetic + self.n_real == 0:
            raise StudyError("a study needs images: ask for at least one synthetic or real image per class")
        if isinstance(self.seed, bool) or not isinstance(self.seed, int) or not 0 <= self.seed < 2**31:
            raise StudyError(f"the seed must be a whole number from 0 to {2**31 - 1}; got {self.seed!r}")
        if not 32 <= self.image_size <= 1024:
            raise StudyError(f"image size must be 32–1024 pixels; got {self.image_size}")
        for rater in self.raters:
            check_rater_id(rater)


@dataclass(frozen=True)
class NewItem:
    """A frozen study image before it is stored: its file's hash and what only the admin may see."""

    domain: str
    label: str
    source: str  # "real" or "synthetic"
    sha256: str
    prompt: str  # shown to raters when the study asks for alignment
    provenance: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Study:
    id: int
    code: str
    title: str
    seed: int
    asks_alignment: bool
    status: str  # "open" or "closed"
    created: str
    closed: str | None
    config: Mapping[str, Any]
    raters: tuple[str, ...]

    @property
    def is_open(self) -> bool:
        return self.status == "open"


@dataclass(frozen=True)
class StudySummary:
    code: str
    title: str
    status: str
    created: str
    items: int
    raters: int
    ratings: int


@dataclass(frozen=True)
class Item:
    id: str
    domain: str
    label: str
    source: str
    sha256: str
    prompt: str
    provenance: Mapping[str, Any]


@dataclass(frozen=True)
class RaterSession:
    """Who is rating what: the only thing a rater's browser session holds on the server."""

    study_code: str
    rater: str


@dataclass(frozen=True)
class ItemView:
    """What a rater sees for one item: never its source, class, provenance or anyone else's answers."""

    position: int  # 0-based place in this rater's own order
    total: int
    done: int  # items this rater has rated
    image_path: str | None  # None once every item is rated and position == total
    prompt: str | None  # only when the study asks for alignment
    ticket: str | None  # to be sent back with the answers for this item
    previous: Answers | None  # this rater's own earlier answers, for revising
    asks_alignment: bool = True

    @property
    def finished(self) -> bool:
        return self.image_path is None


@dataclass(frozen=True)
class SubmitResult:
    item_id: str
    updated: bool  # True: an earlier rating of this item by this rater was replaced
    seconds: float
