"""Models: architectures, their starting weights, model files, the ensemble, and scoring
images with a model (the inference every later step shares)."""
