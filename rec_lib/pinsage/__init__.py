"""Stage 3, PinSage: the users-movies graph, the sampler, layers and model, training, checkpoints, inference (every
movie's vector) and the export of those vectors. Needs torch."""
