"""Stage 1, data: MovieLens datasets (registry, checksummed downloads), loaders, synthetic data, the
chronological split and its cache, title text keys and the movies' content features. Needs numpy and pandas,
not torch."""
