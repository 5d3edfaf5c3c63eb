"""Generator benchmark: cold start, request latency against the pipeline's FLOP floor and an earlier pack,
and adapter switching against the naive ways.

    python bench/bench_generator.py [--pack mini] [--repeats 3] [--baseline-registry OLD.toml]

The FLOP floor: the pipeline's floating-point operations for one request (counted by torch's FlopCounterMode)
divided by the matmul rate measured in the same run, in bf16 and in float32 (the precision served on a CPU
without bf16 units); no implementation on these cores could be faster in that precision.

Everything is measured in this run on this machine, so the ratios hold even on a noisy host.
Uses the embedded pack when it is present, else a tiny random pack (and says so).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from medsynth.generation.engine import GenerationRequest, MedSynth  # noqa: E402
from medsynth.generation.pipeline import Generator, load_pipeline, quiet_libraries  # noqa: E402
from tests.support.tiny_pack import pack_or_tiny  # noqa: E402


def timed(function, repeats: int) -> list[float]:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        function()
        times.append(time.perf_counter() - start)
    return times


def matmul_rate(dtype: torch.dtype = torch.bfloat16, size: int = 2048, repeats: int = 5) -> float:
    """matmul GFLOP/s in `dtype` on this machine, now (the cores' practical ceiling in that precision)."""
    a, b = torch.randn(size, size, dtype=dtype), torch.randn(size, size, dtype=dtype)
    a @ b
    best = min(timed(lambda: a @ b, repeats))
    return 2 * size**3 / best / 1e9


def request_flops(request) -> float:
    """One request's floating-point operations, as torch's FlopCounterMode counts them."""
    from torch.utils.flop_counter import FlopCounterMode

    with FlopCounterMode(display=False) as counter:
        request()
    return counter.get_total_flops()


def with_fresh_weights(generator: Generator) -> Generator:
    """`generator` with its UNet and autoencoder re-initialised (same shapes, diffusers' default init): the time of
    an architecture, so a measurement of one pack's shapes holds for any weights of those shapes."""
    for model in (generator.pipe.unet, generator.pipe.vae):
        model.load_state_dict(type(model).from_config(model.config).state_dict())
    return generator


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--pack", default="mini")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--switch-steps", type=int, default=4, help="denoising steps per request in the switching test")
    parser.add_argument(
        "--baseline-registry", type=Path, default=None, help="a registry whose same-named pack is the earlier one"
    )
    args = parser.parse_args()
    quiet_libraries()
    registry, pack, note = pack_or_tiny(args.pack)
    if note:
        print(note)
    print(
        f"# torch {torch.__version__}, {torch.get_num_threads()} threads, device {'cuda' if torch.cuda.is_available() else 'cpu'}"
    )

    cold = timed(lambda: MedSynth(registry, pack), 1)[0]
    engine = MedSynth(registry, pack)
    domains = engine.available_domains
    first = registry.get_domain(domains[0])
    request = GenerationRequest(domain=first.name, label=first.classes[0].code, n=4, seed=0)
    engine.run(request)  # warm-up
    latency = timed(lambda: engine.run(request), args.repeats)

    def generation(generator: Generator, adapter: str | None):
        return lambda: generator.generate(
            "warm", [0, 1, 2, 3], adapter, engine.pack.default_steps, engine.pack.default_guidance
        )

    generate_only = timed(generation(engine.generator, first.name), args.repeats)
    flops = request_flops(generation(engine.generator, first.name))
    # the floor is at the bf16 rate; a CPU without AMX serves float32, whose floor is at its own rate
    rates = {"bf16": matmul_rate(torch.bfloat16), "float32": matmul_rate(torch.float32)}
    served_precision = "bf16" if engine.generator.cpu_bf16 else "float32"  # the rates are the CPU's
    baseline = None
    if args.baseline_registry is not None:
        from medsynth.registry import load_registry

        old = MedSynth(load_registry(args.baseline_registry), pack)
        generation(old.generator, first.name)()
        baseline = statistics.median(timed(generation(old.generator, first.name), args.repeats))
        del old
    served = "guided against the bare base" if first.name in engine.generator.base_guided else "usual guidance"
    # baselines in the same run, each a generator of its own: the adapter fused with the usual guidance, the
    # adapter applied unfused by the PEFT layers, and the adapter guided against the bare base's unconditional
    # prediction (a second UNet, two half-batch calls), whichever of these the registry serves
    variants = {
        "LoRA fused, usual guidance": (True, False),
        "LoRA unfused (PEFT layers), usual guidance": (False, False),
        "LoRA fused, guided against the bare base": (True, True),
    }
    variant_times = {}
    for name, (fuse, base_unconditional) in variants.items():
        variant = Generator(engine.pack.base, engine.pack.text_encoder, fuse_adapters=fuse)
        variant.add_adapter(first.name, first.sources_for(pack).adapter, base_unconditional=base_unconditional)
        generation(variant, first.name)()  # warm-up
        variant_times[name] = timed(generation(variant, first.name), args.repeats)
        del variant
    generate_bare = timed(generation(engine.generator, None), args.repeats)
    fresh = with_fresh_weights(Generator(engine.pack.base, engine.pack.text_encoder))
    fresh.add_adapter(first.name, first.sources_for(pack).adapter, first.name in engine.generator.base_guided)
    generation(fresh, first.name)()  # warm-up
    generate_fresh = timed(generation(fresh, first.name), args.repeats)
    del fresh

    # adapter switching: the same request sequence, alternating domains, three ways
    sequence = [domains[i % len(domains)] for i in range(2 * len(domains))]
    steps = args.switch_steps
    prompt = "benchmark prompt"
    adapters = {d: registry.get_domain(d).sources_for(pack).adapter for d in domains}

    def with_set_adapters():
        for domain in sequence:
            engine.generator.generate(prompt, [0], domain, steps, 3.0)

    def with_load_per_request():
        generator = Generator(engine.pack.base, engine.pack.text_encoder)
        for domain in sequence:
            generator.pipe.load_lora_weights(adapters[domain].location, adapter_name="request")
            generator.pipe.set_adapters(["request"])
            generator.pipe(
                prompt, num_inference_steps=steps, guidance_scale=3.0, generator=torch.Generator().manual_seed(0)
            )
            generator.pipe.delete_adapters("request")

    def with_fresh_pipeline():
        for domain in sequence:
            pipe = load_pipeline(engine.pack.base, engine.pack.text_encoder)
            pipe.set_progress_bar_config(disable=True)
            pipe.load_lora_weights(adapters[domain].location, adapter_name=domain)
            pipe(prompt, num_inference_steps=steps, guidance_scale=3.0, generator=torch.Generator().manual_seed(0))

    switch = {name: min(timed(fn, max(1, args.repeats - 1))) / len(sequence) for name, fn in [
        ("preloaded, switched by set_adapters + fuse", with_set_adapters),
        ("load_lora_weights per request", with_load_per_request),
        ("fresh pipeline per request", with_fresh_pipeline),
    ]}  # fmt: skip

    base = switch["preloaded, switched by set_adapters + fuse"]
    print(f"\n## generator — pack {pack}, {len(domains)} domain adapters\n")
    print("| measure | seconds | note |")
    print("|---|---:|---|")
    print(f"| cold start: pipeline + all adapters + scorers | {cold:.2f} | once per process |")
    print(
        f"| one request: 4 images, {engine.pack.default_steps} steps, guidance {engine.pack.default_guidance:g}, scored | {statistics.median(latency):.2f} | median of {args.repeats} |"
    )
    print(
        f"| the same, generation only (no scoring), as served ({first.name}: LoRA fused, {served}) | {statistics.median(generate_only):.2f} | median of {args.repeats} |"
    )
    for precision, rate in rates.items():
        floor = flops / (rate * 1e9)
        served = " (the precision served here)" if precision == served_precision else ""
        print(f"| FLOP floor of that request: {flops / 1e9:.1f} GFLOP at {rate:.3g} GFLOP/s ({precision} matmul, this run){served} | "
              f"{floor:.2f} | served is {statistics.median(generate_only) / floor:.1f}× the floor |")  # fmt: skip
    if baseline is not None:
        print(f"| the same request on the baseline pack ({args.baseline_registry}) | {baseline:.2f} | "
              f"{statistics.median(generate_only) / baseline:.2f}× |")  # fmt: skip
    for name, times in variant_times.items():
        print(f"| generation only, {name} | {statistics.median(times):.2f} | same run |")
    print(f"| generation only, bare base (no LoRA) | {statistics.median(generate_bare):.2f} | lower bound, same run |")
    print(f"| the request as served, freshly initialised weights of the same shapes | "
          f"{statistics.median(generate_fresh):.2f} | {statistics.median(generate_fresh) / statistics.median(generate_only):.2f}× "
          f"(the time is the architecture's) |")  # fmt: skip
    print(f"\n### adapter switching: {len(sequence)} requests alternating domains, 1 image, {steps} steps each\n")
    print("| way | seconds per request | × preloaded |")
    print("|---|---:|---:|")
    for name, seconds in switch.items():
        print(f"| {name} | {seconds:.3f} | {seconds / base:.1f} |")


if __name__ == "__main__":
    main()
