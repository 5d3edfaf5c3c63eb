"""Real data: CSV-described image folders, MedMNIST files, the decoded-image cache, index sampling and degradations."""
