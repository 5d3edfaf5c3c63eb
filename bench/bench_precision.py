"""bf16 autocast against float32 on this CPU: a matmul, UNet, autoencoder and EfficientNet training steps, UNet
inference.

    python bench/bench_precision.py [--repeats 3]

Every line is a ratio measured in this run (machines are noisy). It is the measurement behind
medsynth.precision's default: bf16 autocast on CPUs with AMX units (AVX-512 BF16 alone is slower than float32).
"""

from __future__ import annotations

import argparse
import time

import torch
from diffusers import AutoencoderKL, UNet2DConditionModel

from medsynth.precision import cpu_has_bf16_units


def best_of(function, repeats: int) -> float:
    function()  # warm-up: kernels, caches
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        function()
        times.append(time.perf_counter() - start)
    return min(times)


def unet(channels: tuple[int, ...], latent: int, latent_channels: int = 4) -> UNet2DConditionModel:
    levels = len(channels)
    return UNet2DConditionModel(
        sample_size=latent, in_channels=latent_channels, out_channels=latent_channels, block_out_channels=channels,
        layers_per_block=1, down_block_types=("DownBlock2D",) + ("CrossAttnDownBlock2D",) * (levels - 1),
        up_block_types=("CrossAttnUpBlock2D",) * (levels - 1) + ("UpBlock2D",), cross_attention_dim=384,
        attention_head_dim=8, norm_num_groups=16,
    )  # fmt: skip


def train_step(model, inputs, loss_of):
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-4)

    def step(bf16: bool):
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
            loss = loss_of(model, *inputs)
        optimizer.zero_grad(set_to_none=True)
        loss.float().backward()
        optimizer.step()

    return step


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    print(f"# torch {torch.__version__}, {torch.get_num_threads()} threads, CPU bf16 units: {cpu_has_bf16_units()}")
    print("| workload | float32 | bf16 autocast | speed-up |")
    print("|---|---:|---:|---:|")

    a, b = torch.randn(2048, 2048), torch.randn(2048, 2048)
    flops = 2 * 2048**3
    rates = {}
    for bf16 in (False, True):
        x, y = (a.bfloat16(), b.bfloat16()) if bf16 else (a, b)
        rates[bf16] = flops / best_of(lambda: x @ y, args.repeats) / 1e9
    print(
        f"| 2048² matmul | {rates[False]:.0f} GFLOP/s | {rates[True]:.0f} GFLOP/s | {rates[True] / rates[False]:.1f}× |"
    )

    def denoise_loss(model, latents, states):
        t = torch.randint(0, 1000, (len(latents),))
        return torch.nn.functional.mse_loss(model(latents, t, states).sample.float(), latents)

    cases = [
        ("UNet (128,256,256) 16×16×8 latents, train step batch 32", unet((128, 256, 256), 16, 8), 32, 16, 8),
        ("UNet (96,192,288) 32×32×4 latents, train step batch 32", unet((96, 192, 288), 32), 32, 32, 4),
    ]
    for name, model, batch, size, channels in cases:
        inputs = (torch.randn(batch, channels, size, size), torch.randn(batch, 64, 384))
        step = train_step(model, inputs, denoise_loss)
        times = {bf16: best_of(lambda bf16=bf16: step(bf16), args.repeats) for bf16 in (False, True)}
        params = sum(p.numel() for p in model.parameters()) / 1e6
        print(
            f"| {name} ({params:.0f} M) | {times[False]:.2f} s | {times[True]:.2f} s | {times[False] / times[True]:.1f}× |"
        )

    vae = AutoencoderKL(
        block_out_channels=(64, 128, 256), down_block_types=("DownEncoderBlock2D",) * 3,
        up_block_types=("UpDecoderBlock2D",) * 3, layers_per_block=1, latent_channels=4, norm_num_groups=16,
        mid_block_add_attention=False,
    )  # fmt: skip
    crops = torch.rand(16, 3, 64, 64) * 2 - 1
    step = train_step(vae, (crops,), lambda m, x: (m(x).sample.float() - x).abs().mean())
    times = {bf16: best_of(lambda bf16=bf16: step(bf16), args.repeats) for bf16 in (False, True)}
    print(f"| AutoencoderKL (64,128,256), 64 px crops, train step batch 16 | {times[False]:.2f} s | {times[True]:.2f} s | "
          f"{times[False] / times[True]:.1f}× |")  # fmt: skip

    # the evaluators' network: depthwise convolutions, which have no bf16 fast path on the CPU
    # (medsynth.precision.autocast_pays); channels-last memory is what speeds it up
    from medsynth.models.features import efficientnet_lite0

    net = efficientnet_lite0(num_classes=7, pretrained=False)
    images, labels = torch.randn(64, 3, 128, 128), torch.randint(0, 7, (64,))
    for layout in (torch.contiguous_format, torch.channels_last):
        net, inputs = net.to(memory_format=layout), images.contiguous(memory_format=layout)
        step = train_step(net, (inputs,), lambda m, x: torch.nn.functional.cross_entropy(m(x).float(), labels))
        times = {bf16: best_of(lambda bf16=bf16: step(bf16), args.repeats) for bf16 in (False, True)}
        name = "channels-last" if layout == torch.channels_last else "contiguous"
        print(f"| EfficientNet-Lite0 128 px, train step batch 64, {name} | {times[False]:.2f} s | {times[True]:.2f} s | "
              f"{times[False] / times[True]:.1f}× |")  # fmt: skip

    model = unet((128, 256, 256), 16, 8).eval()
    latents, states = torch.randn(8, 8, 16, 16), torch.randn(8, 64, 384)

    def infer(bf16: bool):
        with torch.inference_mode(), torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
            model(latents, torch.tensor([500] * 8), states)

    times = {bf16: best_of(lambda bf16=bf16: infer(bf16), args.repeats) for bf16 in (False, True)}
    print(f"| UNet (128,256,256) inference batch 8 | {1000 * times[False]:.0f} ms | {1000 * times[True]:.0f} ms | "
          f"{times[False] / times[True]:.1f}× |")  # fmt: skip


if __name__ == "__main__":
    main()
