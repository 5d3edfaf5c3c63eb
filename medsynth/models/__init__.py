"""Model components with their own save/load format (ordinary safetensors folders)."""
