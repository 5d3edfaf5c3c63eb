"""`medsynth domain add`: a domain from labelled images to served and evaluated, on tiny components; bad data refused
in one line with the registry left as it was; and (with ../shared/data) a real domain and a MedMNIST set."""

from __future__ import annotations

import json
import re
import tomllib
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from medsynth.cli import main
from medsynth.generation.engine import MedSynth
from medsynth.onboarding.add import STAGES, DomainAdd
from medsynth.onboarding.config import DomainAddConfig
from medsynth.registry import load_registry
from medsynth.ui import generate_tab
from medsynth.ui.studio import Studio

SHORT = ["--lora-steps", "2", "--batch-size", "4", "--classifier-epochs", "1", "--evaluator-epochs", "1",
         "--guidance", "3", "--sweep-per-class", "2", "--eval-per-class", "2", "--min-per-class", "10"]  # fmt: skip
COLOURS = {"cyst": (200, 60, 60), "solid_mass": (60, 60, 200)}


def image_folder(root: Path, n: int = 20, classes=COLOURS) -> Path:
    """An ImageFolder tree of non-square images whose classes differ in colour, and a stray text file."""
    rng = np.random.default_rng(0)
    for name, colour in classes.items():
        (root / name).mkdir(parents=True)
        for i in range(n):
            pixels = np.clip(rng.normal(0, 25, (40, 48, 3)) + np.array(colour), 0, 255).astype(np.uint8)
            Image.fromarray(pixels).save(root / name / f"{i}.png")
    (root / "README.txt").write_text("not an image, not a class")
    return root


def add(tiny_pack, user: Path, *options: str) -> int:
    return main(["--registry", str(tiny_pack.registry_path), "--user-registry", str(user), "domain", "add", *options])


def test_a_domain_added_from_an_image_folder_is_served_after_a_restart(tiny_pack, tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("MEDSYNTH_RUNS", str(tmp_path / "runs"))
    monkeypatch.chdir(tmp_path)  # a relative --out, as a user types it
    folder, user = image_folder(tmp_path / "images"), tmp_path / "registry.toml"
    command = ["lesions", "--images", str(folder), "--pack", "tiny", "--modality", "test scan", "--out",
               "runs/domains/lesions", "--describe", "cyst=Round, dark, fluid-filled lesion.", *SHORT]  # fmt: skip
    assert add(tiny_pack, user, *command) == 0
    printed = capsys.readouterr().out
    assert "[9/9] register" in printed and "python -m medsynth generate --domain lesions --label" in printed
    # what a trainee gets after a restart: the registry read afresh, the domain served with its chosen guidance
    registry = load_registry(tiny_pack.registry_path, user)
    domain = registry.get_domain("lesions")
    assert registry.user_domains() == ("lesions",) and domain.class_codes == ("cyst", "solid_mass")
    assert domain.get_class("cyst").description == "Round, dark, fluid-filled lesion."
    assert "edit this in" in domain.get_class("solid_mass").description
    assert domain.sources_for("tiny").guidance == 3.0 and registry.domain_availability("tiny")["lesions"].available
    metadata = (domain.image_folder() / "metadata.csv").read_text().splitlines()
    assert len(metadata) == 41 and "README" not in "".join(metadata)  # 40 images, the text file left out
    assert Image.open(domain.image_folder() / metadata[1].split(",")[0]).size == (32, 32)  # squared at the pack's size
    engine = MedSynth(registry, "tiny")
    studio = Studio(registry, "tiny", engine, workdir=tmp_path / "work")
    gallery, cards, *_ = generate_tab.generate(
        studio, "lesions", "cyst", None, generate_tab.FINDINGS_EXTEND, "(any)", None, None, None, 1, 5, False, 2,
        None, False, 3,
    )  # fmt: skip
    assert len(gallery) == 1 and "Classifier sees" in cards[0]["card"]
    # its report, with pictures, measured on test by its own evaluator
    report = tmp_path / "runs" / "domains" / "lesions" / "report"
    assert (report / "lesions_grid.jpg").is_file() and "lesions" in (report / "REPORT.md").read_text()
    results = json.loads((report / "results.json").read_text())["domains"]["lesions"]
    assert set(results["evaluator_real_test"]["per_class_recall"]) == {"cyst", "solid_mass"}
    # a second run finds every stage done and changes nothing; other data under the same name are refused
    before = user.read_text()
    assert add(tiny_pack, user, *command) == 0
    assert capsys.readouterr().out.count("done earlier, kept") == len(STAGES) and user.read_text() == before
    other = image_folder(tmp_path / "other", classes={"a": (0, 0, 0), "b": (255, 255, 255)})
    assert add(tiny_pack, user, "lesions", "--images", str(other), "--pack", "tiny", *SHORT) == 1
    assert "from other data (images differ)" in capsys.readouterr().err and user.read_text() == before
    # and it comes out again; what is left still loads
    assert (
        main(["--registry", str(tiny_pack.registry_path), "--user-registry", str(user), "domain", "remove", "lesions"])
        == 0
    )
    assert "lesions" not in load_registry(tiny_pack.registry_path, user).domains


def csv_folder(root: Path, labels: list[str]) -> Path:
    (root / "img").mkdir(parents=True)
    rows = ["path,diagnosis,site"]
    for i, label in enumerate(labels):
        Image.fromarray(np.full((32, 32, 3), 40 * (i % 5), np.uint8)).save(root / "img" / f"{i}.png")
        rows.append(f"img/{i}.png,{label},{'arm' if i % 2 else 'leg'}")
    (root / "labels.csv").write_text("\n".join(rows) + "\n")
    return root / "labels.csv"


@pytest.mark.parametrize(
    "case, expected",
    [
        ("unreadable", "1 file(s) cannot be read as images:"),
        ("one class", "a domain needs at least 2 classes to tell apart; the data have 1 (cyst)"),
        ("unknown label", "labels.csv:22: label 'cyts' is not one of the classes cyst, solid_mass (--classes)"),
        ("too few", "too few images in solid_mass (11): at least 12 per class are needed (--min-per-class)"),
        ("name exists", "domain alpha already exists in"),
        ("bad name", "domain name 'My Domain': use lower-case letters"),
        ("no column", "no column 'label' (--label-column); it has path, diagnosis, site"),
    ],
)
def test_bad_data_is_one_line_and_leaves_the_registry_unchanged(
    case, expected, tiny_pack, tmp_path, monkeypatch, capsys
):
    monkeypatch.setenv("MEDSYNTH_RUNS", str(tmp_path / "runs"))
    user = tmp_path / "registry.toml"
    user.write_text("# my own domains\n")
    name, options = "lesions", ["--min-per-class", "10"]
    if case == "unreadable":
        folder = image_folder(tmp_path / "images", n=12)
        (folder / "cyst" / "broken.png").write_bytes(b"not a png")
        options += ["--images", str(folder)]
    elif case == "one class":
        options += ["--images", str(image_folder(tmp_path / "images", n=12, classes={"cyst": (1, 2, 3)}))]
    elif case in ("unknown label", "no column"):
        labels = ["cyst"] * 20 + ["cyts"] + ["solid_mass"] * 20
        options += ["--images", str(csv_folder(tmp_path / "data", labels))]
        options += ["--file-column", "path"] + (["--label-column", "diagnosis", "--classes", "cyst,solid_mass"]
                                                 if case == "unknown label" else [])  # fmt: skip
    elif case == "too few":
        options = ["--images", str(image_folder(tmp_path / "images", n=12)), "--min-per-class", "12"]
        (tmp_path / "images" / "solid_mass" / "0.png").rename(tmp_path / "images" / "cyst" / "extra.png")
    elif case == "name exists":
        name, options = "alpha", options + ["--images", str(image_folder(tmp_path / "images", n=12))]
    elif case == "bad name":
        name, options = "My Domain", options + ["--images", str(image_folder(tmp_path / "images", n=12))]
    assert add(tiny_pack, user, name, "--pack", "tiny", *options) == 1
    lines = re.split(r"[\r\n]", capsys.readouterr().err)
    errors = [line for line in lines if line.startswith(("medsynth:", "error:"))]  # the rest is the progress bar
    assert len(errors) == 1 and expected in errors[0], lines
    assert user.read_text() == "# my own domains\n" and not list(tmp_path.glob("registry.toml.*"))
    assert not list((tmp_path / "runs").glob("domains/*/data/metadata.csv"))  # nothing half-written either


def test_csv_attributes_groups_and_the_entry_written_so_far(tiny_pack, tmp_path, monkeypatch):
    """The first two stages: a CSV's repeated columns become prompt attributes, a group never spans two splits, and
    the entry says the domain is being added until the last stage."""
    monkeypatch.setenv("MEDSYNTH_RUNS", str(tmp_path / "runs"))
    root = tmp_path / "data"
    (root / "img").mkdir(parents=True)
    rows = ["file,label,patient,site,age,note"]
    for i in range(60):
        Image.fromarray(np.full((24, 24), 3 * i, np.uint8)).save(root / "img" / f"{i}.png")
        rows.append(f"img/{i}.png,{'benign' if i % 3 else 'malignant'},p{i // 2},{['arm', 'leg'][i % 2]},{30 + i},n{i}")
    (root / "table.csv").write_text("\n".join(rows) + "\n")
    config = DomainAddConfig(name="moles", images=root / "table.csv", group_column="patient", min_per_class=10,
                             grey=True, pack="tiny")  # fmt: skip
    registry = load_registry(tiny_pack.registry_path, tmp_path / "registry.toml")
    run = DomainAdd(config, registry)
    run.run(STAGES[:2], say=lambda _: None)
    written = run.result("data")
    assert written["attributes"] == {"site": ["arm", "leg"], "age": [30, 89]}  # "note" is free text: left out
    frame = __import__("pandas").read_csv(run.out / "data" / "metadata.csv", dtype=str)
    assert frame.groupby("group_id")["split"].nunique().max() == 1
    assert set(frame["split"]) == {"train", "val", "test"}
    assert Image.open(run.out / "data" / frame["file"][0]).mode == "L"
    domain = load_registry(tiny_pack.registry_path, tmp_path / "registry.toml").get_domain("moles")
    assert domain.grey and [a.name for a in domain.attributes] == ["site", "age"]
    assert "being added" in domain.sources_for("tiny").missing_reason()
    layer = tomllib.loads((tmp_path / "registry.toml").read_text())
    assert layer["domains"]["moles"]["captions"] == {"attributes": {"site": "site", "age": "age"}}


def test_a_medmnist_set_fills_the_shipped_pathology_entry_in_its_own_codes(tmp_path, monkeypatch):
    """--from-medmnist pathmnist: the shipped pathology domain (no mini models) gets its images and sources from the
    user layer, its labels mapped in PathMNIST's order onto the shipped codes; its classes and prompts stay shipped."""
    monkeypatch.setenv("MEDSYNTH_RUNS", str(tmp_path / "runs"))
    monkeypatch.setenv("MEDSYNTH_DATA", str(tmp_path / "data"))
    (tmp_path / "data" / "medmnist").mkdir(parents=True)
    rng = np.random.default_rng(0)
    arrays = {}
    for split, n in (("train", 20), ("val", 4), ("test", 4)):
        arrays[f"{split}_images"] = rng.integers(0, 255, (9 * n, 28, 28, 3), dtype=np.uint8)
        arrays[f"{split}_labels"] = np.repeat(np.arange(9), n)[:, None]
    np.savez(tmp_path / "data" / "medmnist" / "pathmnist.npz", **arrays)
    registry = load_registry(None, tmp_path / "registry.toml")
    run = DomainAdd(DomainAddConfig(name="pathology", from_medmnist="pathmnist", min_per_class=20), registry)
    run.run(STAGES[:2], say=lambda _: None)
    frame = __import__("pandas").read_csv(run.out / "data" / "metadata.csv", dtype=str)
    assert frame[frame["origin"] == "pathmnist.npz train[0]"]["label"].item() == "ADI"
    assert frame[frame["origin"] == "pathmnist.npz test[35]"]["label"].item() == "TUM"  # label 8, the last
    pathology = load_registry(None, tmp_path / "registry.toml").get_domain("pathology")
    assert pathology.image_folder() == run.out / "data" and pathology.classes[0].code == "ADI"
    assert "being added" in pathology.sources_for("mini").missing_reason()
    # taken out again: the shipped entry as it was
    assert main(["--user-registry", str(tmp_path / "registry.toml"), "domain", "remove", "pathology"]) == 0
    pathology = load_registry(None, tmp_path / "registry.toml").get_domain("pathology")
    assert pathology.data.folder is None and "too few" in pathology.sources_for("mini").missing_reason()


def test_a_real_domain_from_two_dermatology_classes(real_data, tmp_path, monkeypatch, capsys):
    """A real subset (two dermatology classes, 40 images each, as a user's CSV would list them) added to the
    embedded pack with short training: served, and its report measured with pictures."""
    monkeypatch.setenv("MEDSYNTH_RUNS", str(tmp_path / "runs"))
    frame = __import__("pandas").read_csv(real_data / "dermatology" / "metadata.csv", dtype=str)
    picked = frame[frame["label"].isin(["bcc", "bkl"])].groupby("label").head(40)
    picked = picked.assign(file=[str(real_data / "dermatology" / f) for f in picked["file"]])
    picked[["file", "label", "group_id", "site"]].to_csv(tmp_path / "mine.csv", index=False)
    user = tmp_path / "registry.toml"
    code = main(["--user-registry", str(user), "domain", "add", "skin_pair", "--images", str(tmp_path / "mine.csv"),
                 "--group-column", "group_id", "--modality", "dermoscopy image", "--mirror", "yes", *SHORT])  # fmt: skip
    assert code == 0, capsys.readouterr().err
    registry = load_registry(None, user)
    assert registry.domain_availability("mini")["skin_pair"].available
    result = MedSynth(registry, "mini").run(
        __import__("medsynth.generation.engine", fromlist=["GenerationRequest"]).GenerationRequest(
            domain="skin_pair", label="bcc", n=1, seed=3, steps=4
        )
    )
    assert result.images[0].image.size == (128, 128)
    report = tmp_path / "runs" / "domains" / "skin_pair" / "report"
    assert (report / "skin_pair_grid.jpg").is_file()


@pytest.mark.parametrize(
    "name, classes", [("breastmnist", ("normal_benign", "malignant"))]
)  # pneumoniamnist: 20 s more
def test_the_medmnist_files_in_the_data_folder_become_a_domain_folder(name, classes, real_data, tmp_path, monkeypatch):
    """The offline MedMNIST sets: every image of every split kept in its own split, greyscale, at the pack's size,
    classes named from the set's labels and ordered by size (the largest first)."""
    monkeypatch.setenv("MEDSYNTH_RUNS", str(tmp_path / "runs"))
    arrays = np.load(real_data / "medmnist" / f"{name}.npz")
    run = DomainAdd(DomainAddConfig(name="mine", from_medmnist=name), load_registry(None, tmp_path / "registry.toml"))
    run.run(STAGES[:2], say=lambda _: None)
    frame = __import__("pandas").read_csv(run.out / "data" / "metadata.csv", dtype=str)
    for split in ("train", "val", "test"):
        assert (frame["split"] == split).sum() == len(arrays[f"{split}_labels"])
    assert tuple(run.result("data")["codes"]) == classes and run.result("data")["grey"]
    assert Image.open(run.out / "data" / frame["file"][0]).size == (128, 128)
    domain = load_registry(None, tmp_path / "registry.toml").get_domain("mine")
    assert (
        domain.grey and domain.class_codes == classes and "being added" in domain.sources_for("mini").missing_reason()
    )
