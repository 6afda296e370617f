"""Stage 6, reports: figures and tables for the notebooks, the notebook picker, recording notebook values, and
the headless notebook runner with its baselines."""
