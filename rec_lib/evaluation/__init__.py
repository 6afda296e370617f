"""Stage 2, evaluation: the leave-one-out and cold-start protocols, their metrics and the baselines, for any model
that scores movies from movies. Knows no model: PinSage is scored through the same scorer interface."""
