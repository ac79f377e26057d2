"""History of generated images (paper section 4, "Training details", after Shrivastava et al. 2017).

The discriminators are updated with a history of generated images rather than only the latest
ones, which reduces model oscillation. Same rule as the official `ImagePool`: while the pool has
fewer than `max_size` images, each new fake is stored and returned; afterwards, with probability
1/2 a random stored fake is returned and the new one takes its place, otherwise the new one is
returned. Works for any batch size (the rule is applied per image).
"""

import numpy as np


class ImagePool:
    """A pool of up to `max_size` generated images; `max_size=0` turns it off (query returns its input)."""

    def __init__(self, max_size=50, seed=0):
        self.max_size = int(max_size)
        self.rng = np.random.default_rng(seed)
        self.images = []  # each (h, w, c) float32 in [-1, 1]

    def __len__(self):
        return len(self.images)

    def query(self, images):
        """Return a batch of the same shape as `images` (batch, h, w, c), drawn as described above."""
        images = np.asarray(images, dtype=np.float32)
        if self.max_size == 0:
            return images
        out = np.empty_like(images)
        for i, image in enumerate(images):
            if len(self.images) < self.max_size:
                self.images.append(image.copy())
                out[i] = image
            elif self.rng.uniform() > 0.5:
                j = int(self.rng.integers(self.max_size))
                out[i] = self.images[j]
                self.images[j] = image.copy()
            else:
                out[i] = image
        return out

    def get_state(self):
        """(images array (n, h, w, c), JSON-able RNG state): everything needed to resume."""
        stored = np.stack(self.images) if self.images else np.zeros((0,), np.float32)
        return stored, self.rng.bit_generator.state

    def set_state(self, images, rng_state):
        self.images = [np.asarray(image, np.float32) for image in images] if len(images) else []
        self.rng.bit_generator.state = rng_state
