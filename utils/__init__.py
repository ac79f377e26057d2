import models  # noqa: F401  before any utility loads Keras: TensorFlow's CPU kernels (models/onednn.py)
