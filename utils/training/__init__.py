"""Training a run: `train()` and `load_run()` (trainer.py), the loop of steps with its NaN guard
(loop.py), the run's settings (settings.py), the run folder's layout (run_folder.py), loss logs
(logs.py), the one-trainer lock (lock.py), the step budget for a time limit (budget.py) and the
run's results page (page.py)."""
