"""Stage 4, experiments: training runs on disk, the ablation search and the cold-start runs of PinSage, each scored
with the evaluation stage's protocols beside the baselines."""
