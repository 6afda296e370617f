"""Stage 2, PinSage: the users-movies graph, the sampler, layers and model, training, evaluation
against baselines, runs on disk, the tuning search, and the export of movie vectors. Needs torch."""
