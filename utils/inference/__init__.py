"""Using a trained model: load its two generators from a run, a checkpoint or a model folder
(trained_model.py), translate photos at their own size and write them safely (translation.py),
export a generator (export.py) and serve the classroom page (serve.py)."""
