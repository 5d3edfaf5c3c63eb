"""`medsynth train COMPONENT`: one command per trainable part of the embedded pack (resumable runs under runs/)."""

from __future__ import annotations

from medsynth.cli.parsing import ConfigCommand, Parser, add_config_command

TRAINABLE = {
    "autoencoder": ConfigCommand(
        "medsynth.training.config:AutoencoderTrainConfig", "medsynth.training.autoencoder:train_autoencoder"
    ),
    "base": ConfigCommand("medsynth.training.config:BaseTrainConfig", "medsynth.training.base:train_base"),
    "lora": ConfigCommand("medsynth.training.config:LoraTrainConfig", "medsynth.training.lora:train_lora"),
    "classifier": ConfigCommand(
        "medsynth.training.config:ClassifierTrainConfig", "medsynth.training.classifier:train_classifier"
    ),
    "class-thresholds": ConfigCommand(
        "medsynth.training.config:ClassThresholdsConfig", "medsynth.training.classifier:write_class_thresholds"
    ),
    "clip": ConfigCommand("medsynth.training.config:ClipTrainConfig", "medsynth.training.clip:train_clip"),
    "evaluator": ConfigCommand(
        "medsynth.training.config:EvaluatorTrainConfig", "medsynth.training.evaluator:train_evaluator"
    ),
    "pack": ConfigCommand("medsynth.pack.config:PackAssembleConfig", "medsynth.pack.assemble:assemble_pack"),
    "model-card": ConfigCommand("medsynth.pack.config:ModelCardConfig", "medsynth.pack.model_card:render_model_card"),
}


def add_commands(commands) -> None:
    train = commands.add_parser(
        "train",
        help="train one component of the embedded pack (resumable; checkpoints under runs/)",
        description="Train one component. Runs resume from their checkpoint; options override the config defaults.",
    )
    parts = train.add_subparsers(dest="component", metavar="COMPONENT", parser_class=Parser, required=True)
    for component, command in TRAINABLE.items():
        add_config_command(parts, component, command)
    add_config_command(commands, "train-lora", TRAINABLE["lora"])  # the name the SD 1.5 docs use
