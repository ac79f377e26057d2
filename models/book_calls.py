"""The book's positional calls on the combined model, turned into its named form before Keras sees them.

The book (Example 5-6) calls `combined.train_on_batch([imgs_A, imgs_B], [valid, valid, imgs_A, imgs_B,
imgs_A, imgs_B])` and `combined.predict([imgs_A, imgs_B])`. models/combined.py takes and returns its inputs,
targets and outputs by name; `BookPositionalCalls` (a base class of it) turns the book's lists into those
names first (inputs A, B; targets and predictions in OUTPUT_NAMES order, the book's), so the positional
calls run the very train function the named calls run, and answers in the book's lists:
`train_on_batch` returns [total, valid_A, valid_B, reconstr_A, reconstr_B, id_A, id_B].
"""

OUTPUT_NAMES = ("valid_A", "valid_B", "reconstr_A", "reconstr_B", "id_A", "id_B")   # the book's order


def named_inputs(x):
    """{'img_A', 'img_B'} from the book's positional [imgs_A, imgs_B] (a dict passes through)."""
    if isinstance(x, dict):
        return x
    if isinstance(x, (list, tuple)) and len(x) == 2:
        return {"img_A": x[0], "img_B": x[1]}
    raise ValueError("the combined model takes [imgs_A, imgs_B] or {'img_A': ..., 'img_B': ...}, "
                     f"got {type(x).__name__}" + (f" of {len(x)} items" if isinstance(x, (list, tuple)) else ""))


def named_targets(y):
    """{output name: target} from the book's six positional targets (a dict or None passes through)."""
    if y is None or isinstance(y, dict):
        return y
    if isinstance(y, (list, tuple)) and len(y) == len(OUTPUT_NAMES):
        return dict(zip(OUTPUT_NAMES, y))
    raise ValueError(f"the combined model takes six targets in the order {list(OUTPUT_NAMES)} (the book's "
                     f"[valid, valid, imgs_A, imgs_B, imgs_A, imgs_B]) or a dict by those names, got "
                     f"{type(y).__name__}" + (f" of {len(y)} items" if isinstance(y, (list, tuple)) else ""))


def _book_list(logs):
    return [logs["loss"]] + [logs[f"{name}_loss"] for name in OUTPUT_NAMES]


class BookPositionalCalls:
    """Keras' train/test/predict calls of a keras.Model, taking the book's lists as well as the names."""

    def train_on_batch(self, x, y=None, sample_weight=None, class_weight=None, return_dict=False):
        """One generator step; positional form returns the book's [total, six output losses]."""
        logs = super().train_on_batch(named_inputs(x), named_targets(y), sample_weight=sample_weight,
                                      class_weight=class_weight, return_dict=True)
        return logs if return_dict else _book_list(logs)

    def test_on_batch(self, x, y=None, sample_weight=None, return_dict=False):
        """The losses of one batch without training; positional form as in train_on_batch."""
        logs = super().test_on_batch(named_inputs(x), named_targets(y), sample_weight=sample_weight,
                                     return_dict=True)
        return logs if return_dict else _book_list(logs)

    def predict(self, x, *args, **kwargs):
        """The six outputs: a dict for named inputs, the book's list (OUTPUT_NAMES order) for [A, B]."""
        outputs = super().predict(named_inputs(x), *args, **kwargs)
        return outputs if isinstance(x, dict) else [outputs[name] for name in OUTPUT_NAMES]

    def predict_on_batch(self, x):
        outputs = super().predict_on_batch(named_inputs(x))
        return outputs if isinstance(x, dict) else [outputs[name] for name in OUTPUT_NAMES]
