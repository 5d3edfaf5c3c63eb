"""Bring your own domain: `medsynth domain add` takes a labelled image folder (or CSV, or a MedMNIST set) to a served,
evaluated domain of a pack: data checked and split, a registry entry in the user layer, then the domain's adapter,
classifier, CLIP percentiles and evaluator trained on the pack's shared base, its guidance chosen on val and the
result measured on test once. Each stage is resumable and recorded in the domain's run folder."""
