"""medsynth: synthetic medical images for clinical education, with classifier and CLIP checks."""

__version__ = "0.1.0"
