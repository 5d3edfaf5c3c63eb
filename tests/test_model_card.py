"""The model card is written from the training records: commands repeat the options each run used."""

import json

from medsynth.training.model_card import ModelCardConfig, render_model_card

DOMAINS = ("dermatology", "ophthalmology", "brain_mri", "chest_xray")


def write_record(path, config, steps):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"config": config, "steps": steps, "wall_time_s": 120.0, "hardware": "CPU test"}))


def test_card_names_each_runs_options_and_the_lora_layers(tmp_path):
    pack = tmp_path / "mini"
    for i, domain in enumerate(DOMAINS):
        targets = "attention" if domain == "ophthalmology" else "attention+resnet"
        write_record(pack / "lora" / domain / f"training_lora_{domain}.json", {"rank": 8, "targets": targets, "steps": 100 + i}, 100 + i)
        write_record(pack / "classifiers" / domain / "training_classifier.json", {"epochs": 5, "image_size": 64}, 5)
    card = render_model_card(ModelCardConfig(pack_dir=pack, results=tmp_path / "missing.json"))
    text = card.read_text()
    assert "`python -m medsynth train lora --domain brain_mri --steps 102 --targets attention+resnet`" in text
    assert "`python -m medsynth train lora --domain ophthalmology --steps 101 --targets attention`" in text
    assert "`python -m medsynth train classifier --domain chest_xray --epochs 5 --image-size 64`" in text
    assert "rank 8, attention and feed-forward projections; rank 8, attention, feed-forward and ResNet-block convolutions" in text
