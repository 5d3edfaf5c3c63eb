"""Number formats chosen by device capability: bf16 autocast on CPUs with bf16 units, float32 elsewhere."""

from __future__ import annotations

import logging

import pytest
import torch

from medsynth import precision


@pytest.fixture
def cpu_without_bf16(monkeypatch):
    monkeypatch.delenv(precision.CPU_BF16_ENV, raising=False)
    monkeypatch.setattr(precision, "cpu_has_bf16_units", lambda: False)


def test_autocast_follows_the_cpus_capability(monkeypatch, cpu_without_bf16, caplog):
    precision._log_float32_once.cache_clear()
    with caplog.at_level(logging.INFO, logger="medsynth.precision"):
        assert precision.autocast_dtype("cpu") is None
    assert "float32" in caplog.text  # one log line says why
    assert precision.precision_name("cpu") == "float32"
    with precision.autocast("cpu"):
        assert not torch.is_autocast_enabled("cpu")
    monkeypatch.setattr(precision, "cpu_has_bf16_units", lambda: True)
    assert precision.autocast_dtype("cpu") == torch.bfloat16
    with precision.autocast("cpu"):
        assert torch.is_autocast_enabled("cpu") and torch.get_autocast_dtype("cpu") == torch.bfloat16
    with precision.autocast("cpu", enabled=False):
        assert not torch.is_autocast_enabled("cpu")


def test_the_setting_overrides_the_capability(monkeypatch, cpu_without_bf16):
    monkeypatch.setenv(precision.CPU_BF16_ENV, "1")
    assert precision.autocast_dtype("cpu") == torch.bfloat16
    monkeypatch.setattr(precision, "cpu_has_bf16_units", lambda: True)
    monkeypatch.setenv(precision.CPU_BF16_ENV, "off")
    assert precision.autocast_dtype("cpu") is None
    monkeypatch.setenv(precision.CPU_BF16_ENV, "sometimes")
    with pytest.raises(ValueError, match="use auto, 1 or 0"):
        precision.autocast_dtype("cpu")


def test_cuda_keeps_half_precision(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda *args, **kwargs: True)
    assert precision.autocast_dtype("cuda") == torch.bfloat16
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda *args, **kwargs: False)
    assert precision.autocast_dtype("cuda") == torch.float16
    assert precision.inference_device("cuda") == (torch.device("cuda"), torch.float16)
    assert precision.inference_device("cpu") == (torch.device("cpu"), torch.float32)


def test_this_machine_reports_its_units_and_bf16_runs_a_matmul():
    """Whatever the units, a bf16 matmul under autocast gives bf16 out, close to float32."""
    a, b = torch.randn(64, 64), torch.randn(64, 64)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        product = a @ b
    assert product.dtype == torch.bfloat16
    assert torch.allclose(product.float(), a @ b, atol=0.5, rtol=0.05)
    assert isinstance(precision.cpu_has_bf16_units(), bool)


def test_depthwise_networks_train_in_float32_channels_last_on_the_cpu():
    """EfficientNet's depthwise convolutions have no bf16 fast path on the CPU; dense ResNets keep autocast."""
    from medsynth.models.classifier import ClassifierConfig, build_classifier
    from medsynth.models.features import efficientnet_lite0

    efficientnet = efficientnet_lite0(num_classes=3, pretrained=False)
    resnet = build_classifier(ClassifierConfig(classes=["a", "b", "c"], image_size=32))
    assert not precision.autocast_pays(efficientnet, "cpu") and precision.autocast_pays(resnet, "cpu")
    assert precision.autocast_pays(efficientnet, "cuda")  # GPUs keep half precision for every network
    assert not precision.channels_last(efficientnet, "cpu")
    stem = next(m for m in efficientnet.modules() if isinstance(m, torch.nn.Conv2d))
    assert stem.weight.is_contiguous(memory_format=torch.channels_last)
    assert precision.channels_last(resnet, "cpu") and precision.hardware(mixed=False).endswith("float32")
