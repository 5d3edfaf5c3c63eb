"""The embedded pack as it ships: assembled from finished runs, described by its model card."""
