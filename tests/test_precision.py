"""Number formats chosen by measurement: bf16 autocast on CPUs where a short probe finds it faster, float32 elsewhere."""

from __future__ import annotations

import logging

import pytest
import torch

from medsynth import precision


@pytest.fixture
def cpu_without_bf16(monkeypatch):
    monkeypatch.delenv(precision.CPU_BF16_ENV, raising=False)
    monkeypatch.setattr(precision, "cpu_bf16_pays", lambda: False)


def test_autocast_follows_the_measured_probe(monkeypatch, cpu_without_bf16):
    assert precision.autocast_dtype("cpu") is None
    assert precision.precision_name("cpu") == "float32"
    with precision.autocast("cpu"):
        assert not torch.is_autocast_enabled("cpu")
    monkeypatch.setattr(precision, "cpu_bf16_pays", lambda: True)
    assert precision.autocast_dtype("cpu") == torch.bfloat16
    with precision.autocast("cpu"):
        assert torch.is_autocast_enabled("cpu") and torch.get_autocast_dtype("cpu") == torch.bfloat16
    with precision.autocast("cpu", enabled=False):
        assert not torch.is_autocast_enabled("cpu")


def test_the_setting_overrides_the_capability(monkeypatch, cpu_without_bf16):
    monkeypatch.setenv(precision.CPU_BF16_ENV, "1")
    assert precision.autocast_dtype("cpu") == torch.bfloat16
    monkeypatch.setattr(precision, "cpu_bf16_pays", lambda: True)
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


def test_the_probe_decides_by_measured_times_once_per_cpu_and_logs_its_choice(monkeypatch, tmp_path, caplog):
    monkeypatch.setenv(precision.PROBE_CACHE_ENV, str(tmp_path / "probe.json"))
    calls = []

    def fake_probe(bf16_s: float):
        def measure():
            calls.append(bf16_s)
            return precision.PrecisionProbe(
                precision.cpu_model(), torch.get_num_threads(), torch.__version__, 1.0, bf16_s
            )

        return measure

    precision.cpu_bf16_pays.cache_clear()
    monkeypatch.setattr(precision, "measure_precision", fake_probe(0.5))  # bf16 twice as fast: chosen
    with caplog.at_level(logging.INFO, logger="medsynth.precision"):
        assert precision.cpu_bf16_pays() is True
    assert "bf16 autocast" in caplog.text and "float32 1000.0 ms, bf16 500.0 ms" in caplog.text
    precision.cpu_bf16_pays.cache_clear()
    monkeypatch.setattr(precision, "measure_precision", fake_probe(0.9))  # the cached verdict, not a new probe
    assert precision.cpu_bf16_pays() is True and calls == [0.5]
    (tmp_path / "probe.json").unlink()
    precision.cpu_bf16_pays.cache_clear()
    assert precision.cpu_bf16_pays() is False and calls == [0.5, 0.9]  # 0.9 of float32's time is not a clear win
    precision.cpu_bf16_pays.cache_clear()


def test_the_real_probe_is_short_and_measures_both_formats():
    import time

    started = time.perf_counter()
    probe = precision.measure_precision()
    assert time.perf_counter() - started < 5  # about half a second on an idle machine; scalar bf16 is cut short
    assert probe.float32_s > 0 and probe.bf16_s > 0 and isinstance(probe.bf16_pays, bool)
