"""How training draws its data: seeded generators and endless batches of indices."""

from __future__ import annotations

import random

import numpy as np
import torch


def seed_everything(seed: int) -> torch.Generator:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)
    return torch.Generator().manual_seed(seed)


def infinite_batches(n_items: int, batch_size: int, generator: torch.Generator, weights: torch.Tensor | None = None):
    """Endless shuffled index batches; with weights, sampled with replacement (class balancing)."""
    while True:
        if weights is not None:
            yield torch.multinomial(weights, batch_size, replacement=True, generator=generator)
            continue
        order = torch.randperm(n_items, generator=generator)
        for start in range(0, n_items - batch_size + 1, batch_size):
            yield order[start : start + batch_size]


def shuffled_batches(n: int, batch_size: int, generator: torch.Generator):
    """Endless mini-batches of indices: full shuffled passes, a short tail carried into the next pass."""
    carry = torch.empty(0, dtype=torch.long)
    while True:
        order = torch.cat([carry, torch.randperm(n, generator=generator)])
        whole = len(order) // batch_size * batch_size
        for start in range(0, whole, batch_size):
            yield order[start : start + batch_size]
        carry = order[whole:]
