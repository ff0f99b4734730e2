"""Risk grading: features, rule-based grade, the learned model, and the grading run."""
