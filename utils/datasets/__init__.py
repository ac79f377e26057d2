"""Images in: the data loader of a dataset folder (loader.py, the book's DataLoader), downloads with
their checks (download.py), and the synthetic stand-in datasets drawn on the fly (synthetic.py, with
its drawing helpers drawing.py, landscape.py and still_life.py)."""
