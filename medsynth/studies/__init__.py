"""Expert reader studies: blinded realism and alignment ratings and a real-vs-synthetic test.

- `model`: typed values, their checks and the errors (messages meant for people);
- `store`: SQLite (WAL) store of studies, items, raters, one-use tickets and ratings; images by hash;
- `build`: set a study up (draw real images, generate synthetic ones, freeze both);
- `stats`: means with intervals, accuracy against chance, inter-rater agreement;
- `export`: ratings and manifest as CSV and Parquet, rater ids optionally pseudonymised;
- `plots`: the admin figures;
- `loadtest`: drive the rating API over HTTP like raters do (reliability tests and the benchmark).
"""

from medsynth.studies.model import (
    Answers,
    Cell,
    ItemView,
    OrderError,
    RaterError,
    RaterSession,
    RatingError,
    Study,
    StudyClosedError,
    StudyError,
    StudySpec,
    TicketError,
    UnknownStudyError,
)
from medsynth.studies.store import StudyStore, default_db_path

__all__ = [
    "Answers", "Cell", "ItemView", "OrderError", "RaterError", "RaterSession", "RatingError", "Study", "StudyClosedError",
    "StudyError", "StudySpec", "StudyStore", "TicketError", "UnknownStudyError", "default_db_path",
]  # fmt: skip
