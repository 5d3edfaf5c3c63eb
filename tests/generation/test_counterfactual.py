"""Counterfactual pairs: an image redrawn as another class, with the source's structure measured and its provenance."""

import csv

import numpy as np
import pytest
from PIL import Image

from medsynth.generation.counterfactual import (
    CounterfactualRequest,
    make_counterfactual,
    pixel_correlation,
    structure_kept,
)
from medsynth.generation.engine import RequestError
from medsynth.generation.provenance import read_provenance
from tests.cli.test_cli import cli  # noqa: F401  (the fixture)


def stripes(size: int = 64, period: int = 8) -> Image.Image:
    row = ((np.arange(size) // (period // 2)) % 2 * 200 + 20).astype(np.uint8)
    return Image.fromarray(np.tile(row, (size, 1)))


def test_structure_kept_is_one_for_the_same_image_and_falls_with_change():
    source = stripes()
    same = structure_kept(source, source)
    assert same.pixel_correlation == pytest.approx(1) and same.ssim_outside_change == pytest.approx(1)
    shifted = Image.fromarray(np.roll(np.asarray(source), 4, axis=1))  # stripes moved by half a period: inverted
    assert pixel_correlation(source, shifted) == pytest.approx(-1, abs=0.05)
    patched = np.asarray(source).copy()
    patched[20:40, 20:40] = 255  # one square changed, the rest kept
    kept = structure_kept(source, Image.fromarray(patched))
    assert kept.changed.shape == (64, 64) and kept.changed.max() == 1.0  # scaled for the heat map
    assert kept.changed[22:38, 22:38].min() > 0.1 and kept.changed[:12, :12].max() == 0  # only the square changed
    assert kept.ssim_outside_change > 0.5 > structure_kept(source, shifted).ssim_outside_change


def test_a_counterfactual_is_scored_before_and_after_and_repeats_with_its_seed(engine):
    source = Image.fromarray(np.random.default_rng(0).integers(0, 255, (80, 96, 3), dtype=np.uint8))
    request = CounterfactualRequest(domain="alpha", target="a2", strength=0.5, n=2, seed=3, steps=4)
    result = make_counterfactual(engine, source, request, {"file": "ref.png", "label": "a1"})
    assert result.source.size == (engine.generator.resolution,) * 2  # centre square at the generator's size
    assert [item.image.seed for item in result.items] == [3, 4]
    for item in result.items:
        record = item.image.record
        assert record["kind"] == "counterfactual" and record["label"] == "a2" and record["strength"] == 0.5
        assert record["source"] == {"kind": "reference image", "file": "ref.png", "label": "a1"}
        assert set(record["source_scores"]["probabilities"]) == {"a1", "a2", "a3"}
        assert -1 <= record["structure_kept"]["pixel_correlation_64px"] <= 1
        assert item.heat_map.size == result.source.size
    again = make_counterfactual(engine, source, request, {"file": "ref.png"})
    assert np.array_equal(np.asarray(again.items[1].image.image), np.asarray(result.items[1].image.image))
    with pytest.raises(RequestError, match="strength must be between 0.1 and 1"):
        make_counterfactual(engine, source, CounterfactualRequest(domain="alpha", target="a2", strength=0))
    with pytest.raises(KeyError, match="unknown class 'zz'"):
        make_counterfactual(engine, source, CounterfactualRequest(domain="alpha", target="zz"))


def test_cli_counterfactual_writes_marked_pngs_heat_maps_and_a_manifest(cli, tmp_path):  # noqa: F811
    source = tmp_path / "ref.png"
    stripes(48).save(source)
    out = tmp_path / "out"
    argv = ["--domain", "alpha", "--source", str(source), "--to", "a3", "--source-label", "a1", "--n", "2"]
    code, stdout, err = cli("counterfactual", *argv, "--seed", "5", "--steps", "4", "--out", str(out))
    assert code == 0, err
    assert "source read as" in stdout and "wrote 5 file(s)" in stdout
    with (out / "manifest.csv").open() as handle:
        rows = list(csv.DictReader(handle))
    assert [(r["label"], r["seed"], r["source"], r["source_label"], r["strength"]) for r in rows] == [
        ("a3", "5", str(source), "a1", "0.6"), ("a3", "6", str(source), "a1", "0.6")
    ]  # fmt: skip
    for row in rows:
        record = read_provenance(out / row["file"])
        assert record["synthetic"] and record["kind"] == "counterfactual" and record["source"]["file"] == str(source)
        assert (out / row["heat_map"]).is_file() and float(row["pixel_correlation_64px"]) <= 1
    assert read_provenance(out / "source.png") == {}  # the reference is written as it was seen, unmarked
    generated = out / rows[0]["file"]  # a generated image as the source: its own record travels along
    code, _, err = cli("counterfactual", "--domain", "alpha", "--source", str(generated), "--to", "a1", "--steps", "4",
                       "--out", str(tmp_path / "again"))  # fmt: skip
    assert code == 0, err
    (again,) = [p for p in (tmp_path / "again").glob("*_s*.png") if "_heat" not in p.name]
    assert read_provenance(again)["source"]["record"]["label"] == "a3"


@pytest.mark.parametrize(
    "argv, message",
    [
        (["--to", "zz"], "unknown class 'zz'"),
        (["--to", "a2", "--strength", "0"], "strength must be between 0.1 and 1"),
        (["--to", "a2", "--n", "40"], "n must be between 1 and 16"),
        (["--to", "a2", "--source", "missing.png"], "no such file"),
        (["--to", "a2", "--source", "notes.txt"], "is not a readable image"),
        (["--to", "a2", "--domain", "gamma"], "unavailable"),
    ],
)
def test_cli_counterfactual_refuses_bad_input_in_one_line(cli, tmp_path, monkeypatch, argv, message):  # noqa: F811
    monkeypatch.chdir(tmp_path)
    stripes().save(tmp_path / "ref.png")
    (tmp_path / "notes.txt").write_text("not an image")
    args = {"--domain": "alpha", "--source": "ref.png", **dict(zip(argv[::2], argv[1::2]))}
    code, _, err = cli("counterfactual", *[x for pair in args.items() for x in pair], "--out", str(tmp_path / "out"))
    assert code == 2 and len(err.strip().splitlines()) == 1 and message in err and "Traceback" not in err
    assert not (tmp_path / "out").exists()
