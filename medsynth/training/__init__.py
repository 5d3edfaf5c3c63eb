"""Training: one module per trainable part of the embedded pack (autoencoder, base, lora, classifier, clip, evaluator)."""
