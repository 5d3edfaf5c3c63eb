"""Research on synthetic images: datasets, distances, evaluator F1, the pack's evaluation and the augmentation experiment."""
