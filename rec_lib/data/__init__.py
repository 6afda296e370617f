"""Stage 1, data: MovieLens datasets (registry, checksummed downloads), loaders, synthetic data, the
chronological split and its cache, and title text keys. Needs numpy and pandas, not torch."""
