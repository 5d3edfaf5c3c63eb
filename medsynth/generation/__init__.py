"""Generation: a GenerationRequest through prompts, the pipeline (base + the domain's LoRA), scorers, the validation loop and provenance to a result."""
