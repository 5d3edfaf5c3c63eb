"""The one image conversion: uint8 NHWC ⇄ float NCHW in [-1, 1] ⇄ PIL, exact where it can be."""

import numpy as np
import torch
from PIL import Image

from medsynth.imaging import resized_rgb, to_pil_images, to_uint8, to_uint8_array, to_unit_interval, to_unit_tensor


def test_uint8_and_unit_tensors_round_trip_exactly():
    images = np.random.default_rng(0).integers(0, 256, (3, 5, 7, 3), dtype=np.uint8)
    tensor = to_unit_tensor(images)
    assert tensor.shape == (3, 3, 5, 7) and tensor.dtype == torch.float32
    assert tensor.min() >= -1 and tensor.max() <= 1
    assert np.array_equal(to_uint8(tensor), images)
    assert torch.allclose(to_unit_interval(images), (tensor + 1) / 2)
    assert np.array_equal(to_uint8(torch.full((1, 3, 2, 2), 5.0)), np.full((1, 2, 2, 3), 255, np.uint8))  # clipped


def test_pil_images_convert_resize_and_read_only_arrays_are_fine():
    images = np.random.default_rng(1).integers(0, 256, (2, 8, 8, 3), dtype=np.uint8)
    pil = to_pil_images(images)
    assert np.array_equal(to_uint8_array(pil), images)
    grey = Image.fromarray(np.full((10, 10), 200, np.uint8))
    assert resized_rgb(grey, 4).size == (4, 4) and resized_rgb(grey).mode == "RGB"
    read_only = np.asarray(pil[0])[None]  # PIL hands out read-only arrays
    assert not read_only.flags.writeable
    assert np.array_equal(to_uint8(to_unit_tensor(read_only)), images[:1])
