"""Calibration: confidences learnt from a schema's reviews, and cutoffs for a target precision."""
