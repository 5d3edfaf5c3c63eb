import numpy as np
from PIL import Image

from medsynth.generation.provenance import add_synthetic_mark, png_bytes, read_provenance, save_png

RECORD = {
    "prompt": "chest X-ray with pneumonia",
    "seed": 7,
    "pack": "mini",
    "base": "models/mini/base",
    "adapter": "models/mini/lora/chest_xray",
    "scheduler": "DPM++",
    "steps": 20,
    "guidance": 4.0,
    "scores": {"predicted": "pneumonia", "confidence": 0.91, "clip_cosine": 0.31},
}


def test_png_carries_provenance_text_chunks_and_reads_back(tmp_path):
    image = Image.fromarray(np.full((64, 64, 3), 120, np.uint8))
    path = save_png(image, tmp_path / "x.png", RECORD)
    back = read_provenance(path)
    assert back["synthetic"] is True
    for key, value in RECORD.items():
        assert back[key] == value
    raw = Image.open(path).text  # plain tEXt chunks, readable by any PNG tool
    assert raw["synthetic"] == "true" and raw["seed"] == "7" and raw["prompt"] == RECORD["prompt"]
    assert read_provenance(png_bytes(image, RECORD)) == back


def test_visible_mark_changes_only_the_bottom_band():
    image = Image.fromarray(np.full((300, 300, 3), 120, np.uint8))
    marked = np.asarray(add_synthetic_mark(image)).astype(int)
    assert marked.shape == (300, 300, 3)
    assert (marked[:270] == 120).all()
    band = marked[-25:]
    assert (band == 0).any() and (band[..., 0] > 200).any()  # black band with yellow letters


def test_small_images_are_enlarged_so_the_mark_is_legible_and_the_native_size_is_recorded():
    image = Image.fromarray(np.full((64, 64, 3), 120, np.uint8))
    marked = add_synthetic_mark(image)
    assert marked.size == (128, 128)  # 64 px: enlarged by a whole factor until the banner can be read
    yellow = np.argwhere(np.asarray(marked)[..., 0] > 200)
    assert yellow[:, 1].min() > 2 and yellow[:, 1].max() < 125  # the whole word fits inside the image
    assert read_provenance(png_bytes(image, RECORD))["native_size"] == [64, 64]
    unmarked = Image.open(__import__("io").BytesIO(png_bytes(image, RECORD, mark=False)))
    assert unmarked.size == (64, 64)


def test_128_px_images_keep_their_pixels_and_grey_images_stay_single_channel():
    from medsynth.generation.provenance import display_copy

    grey = Image.fromarray(np.full((128, 128), 90, np.uint8))
    marked = add_synthetic_mark(grey)
    assert marked.size == (128, 128) and marked.mode == "L"  # native pixels, one channel, banner included
    band = np.asarray(marked)[-10:]
    assert band.min() == 0 and band.max() > 200  # black band, white letters (anti-aliased)
    assert np.array_equal(np.asarray(marked)[:100], np.asarray(grey)[:100])  # above the band, the image itself
    shown = display_copy(grey)
    assert shown.size == (384, 384) and shown.mode == "L"  # the screen gets an enlarged copy
    assert display_copy(Image.new("RGB", (500, 500))).size == (500, 500)


def test_plain_png_has_no_provenance(tmp_path):
    path = tmp_path / "plain.png"
    Image.new("RGB", (8, 8)).save(path)
    assert read_provenance(path) == {}
