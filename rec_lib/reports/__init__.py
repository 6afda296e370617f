"""Stage 4, reports: figures and tables for the notebooks, recording notebook values, and the headless
notebook runner with its baselines."""
