"""The model card is written from the training records: commands repeat the options each run used."""

import json

import pytest
import torch

from medsynth.pack.model_card import ModelCardConfig, render_model_card
from medsynth.registry import load_registry
from medsynth.research.reports import render_pack_report

DOMAINS = ("dermatology", "ophthalmology", "brain_mri", "chest_xray")


def write_record(path, config, steps):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"config": config, "steps": steps, "wall_time_s": 120.0, "hardware": "CPU test"}))


def test_card_names_each_runs_options_and_the_lora_and_classifier_layouts(tmp_path):
    pack = tmp_path / "mini"
    for i, domain in enumerate(DOMAINS):
        targets = "attention" if domain == "ophthalmology" else "attention+resnet"
        balance = {"class_power": 1.0} if domain == "dermatology" else {"class_power": 0.5}
        write_record(
            pack / "lora" / domain / f"training_lora_{domain}.json",
            {"rank": 8, "targets": targets, "steps": 100 + i, **balance},
            100 + i,
        )
        size, stem = (128, "imagenet") if domain == "ophthalmology" else (64, "conv3s2")
        write_record(
            pack / "classifiers" / domain / "training_classifier.json",
            {"epochs": 5, "image_size": size, "stem": stem},
            5,
        )
        (pack / "classifiers" / domain / "config.json").write_text(json.dumps({"image_size": size, "stem": stem}))
    card = render_model_card(ModelCardConfig(pack_dir=pack, results=tmp_path / "missing.json"), load_registry())
    text = card.read_text()
    assert "`python -m medsynth train lora --domain brain_mri --steps 102 --targets attention+resnet`" in text
    assert "`python -m medsynth train lora --domain ophthalmology --steps 101 --targets attention`" in text
    assert (
        "`python -m medsynth train lora --domain dermatology --steps 100 --targets attention+resnet --class-power 1.0`"
        in text
    )
    assert "`python -m medsynth train classifier --domain chest_xray --epochs 5 --image-size 64 --stem conv3s2`" in text
    assert (
        "`python -m medsynth train classifier --domain ophthalmology --epochs 5 --image-size 128 --stem imagenet`"
        in text
    )
    assert (
        "64×64 px, 3×3 stride-2 stem: dermatology, brain_mri, chest_xray; 128×128 px, 7×7 stride-2 stem + max-pool: ophthalmology"
        in text
    )
    assert (
        "rank 8, attention and feed-forward projections; rank 8, attention, feed-forward and ResNet-block convolutions"
        in text
    )


def test_a_continued_base_lists_every_run_of_its_chain_and_the_pack_keeps_their_records(tmp_path, monkeypatch):
    from medsynth.pack.assemble import PackAssembleConfig, assemble_pack

    runs = tmp_path / "runs"
    monkeypatch.chdir(tmp_path)  # a relative --init-unet is read from where the command ran
    write_record(runs / "base" / "training_base.json", {"steps": 2500, "lr": 3e-4, "init_unet": None}, 2500)
    write_record(runs / "more" / "training_base.json",
                 {"steps": 900, "lr": 2e-4, "init_unet": "runs/base/pipeline/unet", "out": "runs/more"}, 900)  # fmt: skip
    write_record(runs / "last" / "training_base.json",
                 {"steps": 300, "init_unet": "runs/more/pipeline/unet", "out": "runs/last"}, 300)  # fmt: skip
    for run in ("base", "more", "last"):
        (runs / run / "pipeline" / "unet").mkdir(parents=True)
    write_record(runs / "autoencoder" / "training_autoencoder.json", {"steps": 10}, 10)
    for domain in DOMAINS:
        (runs / "lora_last" / domain / "adapter").mkdir(parents=True)
        lora_config = {"rank": 8, "steps": 7, "base": "runs/last/pipeline", "out": f"runs/lora_last/{domain}"}
        write_record(runs / "lora_last" / domain / f"training_lora_{domain}.json", lora_config, 7)
    pack = assemble_pack(
        PackAssembleConfig(runs=runs, out=tmp_path / "mini", base_run="last", lora_run="lora_last"), load_registry()
    )
    assert sorted(p.name for p in (pack / "base" / "earlier_runs").iterdir()) == ["base.json", "more.json"]
    text = render_model_card(
        ModelCardConfig(pack_dir=pack, results=tmp_path / "missing.json"), load_registry()
    ).read_text()
    assert "| shared base UNet, run 1 of 3 | `python -m medsynth train base --steps 2500` | 2500 |" in text
    continued = (
        "`python -m medsynth train base --steps 900 --lr 0.0002 --init-unet runs/base/pipeline/unet --out runs/more`"
    )
    assert f"| shared base UNet, run 2 of 3 | {continued} | 900 |" in text
    last = "`python -m medsynth train base --steps 300 --init-unet runs/more/pipeline/unet --out runs/last`"
    assert f"| shared base UNet, run 3 of 3 | {last} | 300 |" in text
    # the adapters name the base they were trained on, which is not the default folder
    assert (
        "`python -m medsynth train lora --domain chest_xray --steps 7 --base runs/last/pipeline --out runs/lora_last/chest_xray`"
        in text
    )

    # a pack whose earlier record went missing cannot say how its base began
    (pack / "base" / "earlier_runs" / "base.json").unlink()
    with pytest.raises(FileNotFoundError, match="continued from runs/base/pipeline/unet"):
        render_model_card(ModelCardConfig(pack_dir=pack, results=tmp_path / "missing.json"), load_registry())
    # nor can runs whose start run's record is gone be assembled
    (runs / "base" / "training_base.json").unlink()
    with pytest.raises(FileNotFoundError, match="continued from runs/base/pipeline/unet"):
        assemble_pack(
            PackAssembleConfig(runs=runs, out=tmp_path / "mini2", base_run="last", lora_run="lora_last"),
            load_registry(),
        )


def test_a_pack_takes_its_autoencoder_record_classifiers_and_clip_from_named_runs(tmp_path):
    """Pack v9 trains every part into runs/ and the pack folder changes only when assembled."""
    from medsynth.pack.assemble import PackAssembleConfig, assemble_pack

    runs, pack = tmp_path / "runs", tmp_path / "mini"
    write_record(runs / "base128" / "training_base.json", {"steps": 5, "init_unet": None}, 5)
    (runs / "base128" / "pipeline" / "unet").mkdir(parents=True)
    write_record(runs / "ae128" / "training_autoencoder.json", {"steps": 6000, "resolution": 128}, 6000)
    for domain in DOMAINS:
        (runs / "lora128" / domain / "adapter").mkdir(parents=True)
        write_record(runs / "lora128" / domain / f"training_lora_{domain}.json", {"steps": 7}, 7)
        write_record(runs / "classifiers128" / domain / "training_classifier.json", {"image_size": 128}, 14)
        write_record(pack / "classifiers" / domain / "training_classifier.json", {"image_size": 64}, 20)  # v8's
    write_record(runs / "clip128" / "training_clip.json", {"resolution": 128}, 800)
    config = PackAssembleConfig(runs=runs, out=pack, base_run="base128", lora_run="lora128", autoencoder_run="ae128")
    with pytest.raises(FileNotFoundError, match="name the base.s autoencoder run: --autoencoder-run"):
        assemble_pack(PackAssembleConfig(runs=runs, out=pack, base_run="base128", lora_run="lora128"), load_registry())
    assert not (pack / "base").exists() and not (pack / "lora").exists()  # checked before anything was written
    assemble_pack(config, load_registry())  # no classifier or CLIP run named: the pack keeps its own
    assert json.loads((pack / "classifiers" / "chest_xray" / "training_classifier.json").read_text())["steps"] == 20
    assert not (pack / "clip").exists()
    config.classifier_run, config.clip_run = "classifiers128", "clip128"
    assemble_pack(config, load_registry())
    assert json.loads((pack / "base" / "training_autoencoder.json").read_text())["steps"] == 6000
    for domain in DOMAINS:
        record = json.loads((pack / "classifiers" / domain / "training_classifier.json").read_text())
        assert record["config"]["image_size"] == 128
    assert json.loads((pack / "clip" / "training_clip.json").read_text())["config"]["resolution"] == 128


def test_a_fine_tuned_decoder_replaces_the_base_vae_only_if_its_encoder_made_the_latents(tmp_path):
    from safetensors.torch import load_file

    from medsynth.pack.assemble import install_decoder
    from medsynth.training.autoencoder import AutoencoderTrainConfig, build_autoencoder

    shipped = build_autoencoder(AutoencoderTrainConfig(block_out_channels=(16, 16)))
    shipped.register_to_config(scaling_factor=0.44)
    base = tmp_path / "mini" / "base"
    shipped.half().save_pretrained(base / "vae")
    tuned = build_autoencoder(AutoencoderTrainConfig(block_out_channels=(16, 16)))
    tuned.load_state_dict(shipped.float().state_dict())
    with torch.no_grad():
        tuned.decoder.conv_out.weight.add_(0.5)
    tuned.save_pretrained(tmp_path / "runs" / "decoder" / "vae")  # float32, default scaling factor
    write_record(tmp_path / "runs" / "decoder" / "training_autoencoder.json",
                 {"steps": 30, "lr": 3e-4, "init_vae": "runs/base/pipeline/vae", "decoder_only": True, "adversarial_weight": 0.5,
                  "out": "runs/decoder"}, 30)  # fmt: skip
    install_decoder(tmp_path / "runs" / "decoder", base)
    installed = load_file(base / "vae" / "diffusion_pytorch_model.safetensors")
    assert installed["decoder.conv_out.weight"].dtype == torch.float16  # the pipeline's precision: the pack's size
    assert torch.allclose(installed["decoder.conv_out.weight"].float(), tuned.decoder.conv_out.weight.half().float())
    assert json.loads((base / "vae" / "config.json").read_text())["scaling_factor"] == 0.44  # the base's calibration
    text = render_model_card(
        ModelCardConfig(pack_dir=tmp_path / "mini", results=tmp_path / "missing.json"), load_registry()
    ).read_text()
    command = "`python -m medsynth train autoencoder --steps 30 --lr 0.0003 --init-vae runs/base/pipeline/vae --decoder-only yes --adversarial-weight 0.5 --out runs/decoder`"
    assert f"| autoencoder decoder, continued | {command} | 30 |" in text

    # an autoencoder with another encoder would decode latents the base never made: refused
    with torch.no_grad():
        tuned.encoder.conv_in.weight.add_(0.5)
    tuned.save_pretrained(tmp_path / "runs" / "other" / "vae")
    with pytest.raises(ValueError, match="has another encoder than"):
        install_decoder(tmp_path / "runs" / "other", base)
    # so would one of another layout: the same message, not a tensor-shape error
    build_autoencoder(AutoencoderTrainConfig(block_out_channels=(16, 32))).save_pretrained(
        tmp_path / "runs" / "wider" / "vae"
    )
    with pytest.raises(ValueError, match="has another encoder than"):
        install_decoder(tmp_path / "runs" / "wider", base)


def test_measured_quality_shows_the_evaluator_panels_mean_f1(tmp_path):
    def mode(f1s):
        return {"evaluator_macro_f1": f1s[0], "evaluator_macro_f1_panel": f1s, "frechet_distance": 300.0}

    chest = {
        "classifier_real_test": {"accuracy": 0.8, "balanced_accuracy": 0.79, "macro_f1": 0.78},
        "clip_zero_shot_accuracy": 0.7, "frechet_floor_train_vs_test": 200.0,
        "base": mode([0.6, 0.7, 0.8]), "lora": mode([0.5, 0.6, 0.4]), "validated": {"evaluator_macro_f1": 0.55, "frechet_distance": 310.0},
    }  # fmt: skip
    results = tmp_path / "results.json"
    results.write_text(json.dumps({"pack": "mini", "domains": {"chest_xray": chest}}))
    (tmp_path / "mini").mkdir()
    text = render_model_card(ModelCardConfig(pack_dir=tmp_path / "mini", results=results), load_registry()).read_text()
    assert "| chest_xray | 0.800 / 0.790 / 0.780 | 0.700 | 0.700 → 0.500 → 0.550 | 300.0 → 300.0 (200.0) |" in text
    # results older than the evaluator on real images still render, with a dash where it was not measured
    report = render_pack_report(json.loads(results.read_text()), "cmd")
    assert "| chest_xray | 0.800 | – | 0.790 | 0.780 | 0.700 | – |" in report


def test_contents_data_and_limitations_come_from_the_pack_files_and_the_registry(tmp_path):
    """Nothing measured is written in Python: sizes from the files, sources and limitations from the registry."""
    from medsynth.registry import load_registry
    from tests.support.tiny_pack import save_tiny_pipeline, tiny_unet

    pack = tmp_path / "mini"
    save_tiny_pipeline(pack / "base")
    text = render_model_card(
        ModelCardConfig(pack_dir=pack, results=tmp_path / "missing.json"), load_registry()
    ).read_text()
    parameters = sum(p.numel() for p in tiny_unet().parameters()) / 1e6
    assert f"AutoencoderKL (32×32 ↔ 16×16×4), UNet2DConditionModel ({parameters:.1f} M parameters)" in text
    assert "The generator works at 32×32;" in text
    registry = load_registry()
    for name in registry.trained_domains():
        domain = registry.get_domain(name)
        assert f"| {name} | {domain.data.description} | {domain.data.licence} |" in text
        assert domain.limitations.splitlines()[0] in text
    assert f"not in this pack: {registry.get_domain('pathology').sources_for('mini').unavailable}" in text
    assert "<!-- medsynth:" not in text  # every slot of the template is filled
    assert f"(budget {registry.get_pack('mini').size_budget_mb:g} MB)" in text
