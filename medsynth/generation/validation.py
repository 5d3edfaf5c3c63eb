"""The capped self-validation loop: regenerate what the classifier rejects, at most K rounds."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Generic, Sequence, TypeVar

from medsynth.generation.scoring import Acceptance, ClassifierScore

ImageT = TypeVar("ImageT")


@dataclass(frozen=True)
class Attempt(Generic[ImageT]):
    image: ImageT
    seed: int
    round: int  # 1-based
    score: ClassifierScore
    accepted: bool


@dataclass(frozen=True)
class ValidationOutcome(Generic[ImageT]):
    attempts: list[Attempt[ImageT]]
    requested: int
    rounds: int

    @property
    def accepted(self) -> list[Attempt[ImageT]]:
        return [a for a in self.attempts if a.accepted]

    @property
    def acceptance_rate(self) -> float:
        return len(self.accepted) / len(self.attempts) if self.attempts else 0.0

    @property
    def complete(self) -> bool:
        return len(self.accepted) >= self.requested


def validate_loop(
    generate: Callable[[list[int]], Sequence[ImageT]],
    score: Callable[[Sequence[ImageT]], Sequence[ClassifierScore]],
    acceptance: Acceptance,
    n: int,
    first_seed: int,
    max_rounds: int = 3,
) -> ValidationOutcome[ImageT]:
    """Keep the images `acceptance` accepts (see Acceptance).

    Round 1 uses seeds first_seed..first_seed+n-1; each later round draws the next unused
    seeds for the images still missing. Stops when n are accepted or after max_rounds.
    """
    if n < 1:
        raise ValueError("n must be at least 1")
    if max_rounds < 1:
        raise ValueError("max_rounds must be at least 1")
    attempts: list[Attempt[ImageT]] = []
    next_seed, accepted, rounds = first_seed, 0, 0
    while accepted < n and rounds < max_rounds:
        rounds += 1
        seeds = list(range(next_seed, next_seed + n - accepted))
        next_seed += len(seeds)
        images = generate(seeds)
        for image, seed, result in zip(images, seeds, score(images), strict=True):
            ok = acceptance.accepts(result)
            attempts.append(Attempt(image, seed, rounds, result, ok))
            accepted += ok
    return ValidationOutcome(attempts, n, rounds)
