"""Learning-rate schedule of the paper (section 4, "Training details"; official `--n_epochs`,
`--n_epochs_decay`, `--lr_policy linear`): the same rate for the first `epochs` epochs, then a
linear decay to zero over the next `decay_epochs` epochs.

Unlike the official code, which changes the rate once per epoch, the rate here moves with the
fraction of epochs done, so it is smooth within an epoch and exact for a resumed run.
"""


def learning_rate_at(progress, base_lr, epochs, decay_epochs):
    """Learning rate after `progress` epochs (a float: epoch + batch / batches_per_epoch).

    base_lr for progress < epochs; then base_lr * (1 - (progress - epochs) / decay_epochs), down to 0
    at epochs + decay_epochs and after. With decay_epochs == 0 the rate stays constant.
    """
    if decay_epochs <= 0 or progress <= epochs:
        return float(base_lr)
    return float(base_lr) * max(0.0, 1.0 - (progress - epochs) / decay_epochs)
