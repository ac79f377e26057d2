"""Scoring a model: metrics on the paired synthetic test sets (paired.py), the baselines it must beat
and the model as a translator (baselines.py), the domain judge and KID (judge.py), the evaluation on
real unpaired photos (unpaired.py, evaluate.py) and the loss-weight ablation (ablation.py)."""
