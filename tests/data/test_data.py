"""Dataset loaders on small real samples (skipped where ../shared/data is absent)."""

import numpy as np
import pytest
import torch

from medsynth.data.folders import CsvImageDataset, load_metadata, to_tensor
from medsynth.data.medmnist import MedMNISTDataset, load_medmnist
from medsynth.registry import load_registry


@pytest.mark.parametrize("domain", ["dermatology", "ophthalmology", "brain_mri", "chest_xray"])
def test_real_domain_metadata_matches_the_registry_classes(real_data, domain):
    classes = load_registry().get_domain(domain).class_codes
    frame = load_metadata(real_data / domain)
    assert set(frame["label"]) == set(classes)
    assert set(frame["split"]) == {"train", "val", "test"}
    # splits are by group: no lesion / patient spans two splits
    assert frame.groupby("group_id")["split"].nunique().max() == 1
    dataset = CsvImageDataset(real_data / domain, classes, splits=["val"], transform=to_tensor, size=64)
    image, target, row = dataset[0]
    assert image.shape == (3, 64, 64) and -1.0 <= image.min() and image.max() <= 1.0
    assert classes[target] == row["label"] and row["split"] == "val"


def test_pathology_samples_are_one_tile_per_pathmnist_class(real_data):
    classes = load_registry().get_domain("pathology").class_codes
    frame = load_metadata(real_data / "pathology_samples")
    assert sorted(frame["label"]) == sorted(classes)
    dataset = CsvImageDataset(real_data / "pathology_samples", classes, splits=None)
    assert len(dataset) == 9 and dataset.image(0).mode == "RGB"


@pytest.mark.parametrize("name, n_classes", [("pneumoniamnist", 2), ("breastmnist", 2)])
def test_medmnist_npz_files_load_like_the_medmnist_package(real_data, name, n_classes):
    path = real_data / "medmnist" / f"{name}.npz"
    split = load_medmnist(path, "test")
    assert split.images.dtype == np.uint8 and split.images.shape[1:3] == (28, 28)
    assert set(np.unique(split.labels)) == set(range(n_classes))
    dataset = MedMNISTDataset(path, "val", transform=to_tensor)
    image, label = dataset[0]
    assert image.shape == (3, 28, 28) and isinstance(label, int)
    with pytest.raises(ValueError, match="unknown split"):
        load_medmnist(path, "dev")


def test_metadata_errors_are_clear(tmp_path):
    with pytest.raises(FileNotFoundError, match="no metadata.csv"):
        load_metadata(tmp_path)
    (tmp_path / "metadata.csv").write_text("file,group\nx.jpg,a\n")
    with pytest.raises(ValueError, match="missing column"):
        load_metadata(tmp_path)
    (tmp_path / "metadata.csv").write_text("file,label\nx.jpg,a\n")
    with pytest.raises(ValueError, match="no 'split' column"):
        load_metadata(tmp_path, splits=["train"])


def test_to_tensor_maps_pixels_to_minus_one_one():
    from PIL import Image

    tensor = to_tensor(Image.fromarray(np.array([[[0, 255, 127]]], np.uint8)))
    assert torch.allclose(tensor.view(-1), torch.tensor([-1.0, 1.0, 127 / 127.5 - 1]))
