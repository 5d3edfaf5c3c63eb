"""A small CLIP (open_clip) trained on image–caption pairs of all pack domains.

Captions repeat (many images share a class), so in-batch "negatives" with the same domain
and class are not negatives: the contrastive targets spread over every pair with the same
(domain, class), which keeps the class-prompt ranking honest.
"""

from __future__ import annotations

import json
import random
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import open_clip
import torch
from torch import nn
from tqdm import tqdm

from medsynth.data.cache import load_domain_images
from medsynth.data.sampling import seed_everything
from medsynth.generation.prompts import class_prompt
from medsynth.imaging import to_unit_tensor
from medsynth.models.clip import REFERENCE_NAME, save_clip
from medsynth.models.fitting import augment, one_cycle
from medsynth.precision import autocast, training_device
from medsynth.registry import Registry
from medsynth.training.captions import caption_for
from medsynth.training.config import ClipTrainConfig
from medsynth.training.runs import write_run_record

PERCENTILES = list(range(0, 101, 5))


def model_cfg(config: ClipTrainConfig) -> dict:
    return {
        "embed_dim": config.embed_dim,
        "vision_cfg": {
            "image_size": config.resolution,
            "layers": config.vision_layers,
            "width": config.vision_width,
            "head_width": 32,
            "patch_size": config.patch_size,
        },
        "text_cfg": {
            "context_length": config.context_length,
            "vocab_size": 49408,
            "width": config.text_width,
            "heads": 4,
            "layers": config.text_layers,
        },
    }


def train_clip(config: ClipTrainConfig, registry: Registry) -> Path:
    device = training_device()
    generator = seed_everything(config.seed)
    rng = random.Random(config.seed)
    config = replace(config, domains=config.domains or registry.trained_domains())  # the record names them
    images, rows, domains = [], [], []
    for name in config.domains:
        data = load_domain_images(registry.get_domain(name), config.resolution).split("train")
        images.append(data.images)
        rows += data.frame.to_dict("records")
        domains += [name] * len(data)
    images = np.concatenate(images)
    group_ids = {key: i for i, key in enumerate(sorted({(d, r["label"]) for d, r in zip(domains, rows)}))}
    groups = torch.tensor([group_ids[(d, r["label"])] for d, r in zip(domains, rows)])
    # balance domains and classes a little, as the base does
    counts = torch.bincount(groups).float()
    weights = counts[groups] ** -0.5

    cfg = model_cfg(config)
    model = open_clip.CLIP(**cfg).to(device).train()
    tokenizer = open_clip.SimpleTokenizer(context_length=config.context_length)
    optimizer = torch.optim.AdamW(model.parameters(), lr=config.lr, weight_decay=0.1)
    schedule = one_cycle(optimizer, config.lr, config.steps, pct_start=0.05)
    started = time.perf_counter()
    bar = tqdm(range(config.steps), desc="clip", unit="step")
    for step in bar:
        index = torch.multinomial(weights, config.batch_size, replacement=True, generator=generator)
        batch = to_unit_tensor(images[index.numpy()])
        batch = augment(batch, False, generator).to(device)  # no mirroring: laterality matters in some domains
        texts = [caption_for(registry.get_domain(domains[i]), rows[i], rng) for i in index.tolist()]
        with autocast(device):
            image_emb = nn.functional.normalize(model.encode_image(batch).float(), dim=-1)
            text_emb = nn.functional.normalize(model.encode_text(tokenizer(texts).to(device)).float(), dim=-1)
        logits = model.logit_scale.exp() * image_emb @ text_emb.T
        same = (groups[index][:, None] == groups[index][None, :]).float().to(device)
        targets = same / same.sum(dim=1, keepdim=True)
        loss = 0.5 * (
            torch.sum(-targets * logits.log_softmax(1), 1).mean()
            + torch.sum(-targets * logits.T.log_softmax(1), 1).mean()
        )
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        schedule.step()
        with torch.no_grad():
            model.logit_scale.clamp_(0, np.log(100))
        bar.set_postfix(loss=f"{loss.item():.3f}")
    model.eval()
    metrics = zero_shot_accuracy(model, tokenizer, registry, config, device)
    reference = alignment_reference(model, tokenizer, registry, config, device)
    model = model.cpu().half()
    save_clip(
        model,
        cfg,
        config.out,
        {"size": config.resolution, "mean": [0.5] * 3, "std": [0.5] * 3, "interpolation": "bicubic"},
    )
    (Path(config.out) / REFERENCE_NAME).write_text(json.dumps(reference))
    write_run_record(config.out, "clip", config, metrics, time.perf_counter() - started, config.steps)
    return config.out


@torch.no_grad()
def alignment_reference(model, tokenizer, registry, config: ClipTrainConfig, device, split: str = "val") -> dict:
    """Per domain and class: percentiles (0, 5, …, 100) of real images' cosine with their class prompt.

    Lets the app say where a generated image's alignment falls among real images of its class.
    """
    reference: dict[str, dict[str, list[float]]] = {}
    for name in config.domains:
        domain = registry.get_domain(name)
        data = load_domain_images(domain, config.resolution).split(split)
        reference[name] = {}
        for code in domain.class_codes:
            images = data.images[(data.frame["label"] == code).to_numpy()]
            if len(images) == 0:
                continue
            text = nn.functional.normalize(
                model.encode_text(tokenizer([class_prompt(domain, code)]).to(device)), dim=-1
            )
            batch = to_unit_tensor(images)
            emb = nn.functional.normalize(model.encode_image(batch.to(device)), dim=-1)
            cosines = (emb @ text.T).squeeze(1).cpu().numpy()
            reference[name][code] = [round(float(v), 5) for v in np.percentile(cosines, PERCENTILES)]
    return reference


@torch.no_grad()
def zero_shot_accuracy(
    model, tokenizer, registry, config: ClipTrainConfig, device, split: str = "val"
) -> dict[str, float]:
    """Per domain: how often the image's own class prompt ranks first among the domain's class prompts."""
    results = {}
    for name in config.domains:
        domain = registry.get_domain(name)
        data = load_domain_images(domain, config.resolution).split(split)
        prompts = [class_prompt(domain, code) for code in domain.class_codes]
        text = nn.functional.normalize(model.encode_text(tokenizer(prompts).to(device)), dim=-1)
        correct = 0
        for start in range(0, len(data), 256):
            batch = to_unit_tensor(data.images[start : start + 256])
            emb = nn.functional.normalize(model.encode_image(batch.to(device)), dim=-1)
            predicted = (emb @ text.T).argmax(1).cpu()
            truth = torch.tensor([domain.class_codes.index(c) for c in data.frame["label"][start : start + 256]])
            correct += (predicted == truth).sum().item()
        results[f"{split}_zero_shot_accuracy_{name}"] = correct / len(data)
    return results
