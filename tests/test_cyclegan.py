"""The CycleGAN class trains the right networks in Keras 3 (the frozen-discriminator pitfall: see
models/combined.py's docstring, item 1, "The freeze").

Every check compares snapshots of `model.weights` (all variables, trainable or not) before and
after real `train_on_batch` steps: a frozen model's `trainable_weights` is empty, so a check on it
would prove nothing.
"""

import keras
import numpy as np
import pytest

from models import CycleGAN
from utils.training import checkpoint

SIZE = 32


def batch(seed, n=1, size=SIZE):
    return np.random.default_rng(seed).uniform(-1, 1, (n, size, size, 3)).astype("float32")


def snapshot(gan):
    return {name: [keras.ops.convert_to_numpy(w).copy() for w in getattr(gan, name).weights]
            for name in ("g_AB", "g_BA", "d_A", "d_B")}


def changed(before, after):
    """Names of the networks any of whose weights moved."""
    return {name for name in before if any(not np.array_equal(b, a) for b, a in zip(before[name], after[name]))}


@pytest.fixture(scope="module")
def gan():
    gan = CycleGAN(input_dim=(SIZE, SIZE, 3), gen_n_filters=4, disc_n_filters=4, seed=1)
    gan.train_step(batch(0), batch(1))  # every train function traced once, as in a notebook mid-run
    return gan


def test_full_step_changes_all_four_networks(gan):
    before = snapshot(gan)
    gan.train_step(batch(2), batch(3))
    assert changed(before, snapshot(gan)) == {"g_AB", "g_BA", "d_A", "d_B"}


@pytest.mark.parametrize("name", ["d_A", "d_B"])
def test_discriminator_step_changes_only_that_discriminator(gan, name):
    d = getattr(gan, name)
    valid, fake = np.ones((1,) + gan.disc_patch), np.zeros((1,) + gan.disc_patch)
    before = snapshot(gan)
    d.train_on_batch(np.concatenate([batch(4), batch(5)]), np.concatenate([valid, fake]))
    assert changed(before, snapshot(gan)) == {name}


@pytest.mark.parametrize("form", ["named", "positional (the book's)"])
def test_combined_step_changes_only_the_generators(gan, form):
    x_A, x_B = batch(6), batch(7)
    valid = np.ones((1,) + gan.disc_patch)
    before = snapshot(gan)
    if form == "named":
        gan.combined.train_on_batch({"img_A": x_A, "img_B": x_B},
                                    {"valid_A": valid, "valid_B": valid, "reconstr_A": x_A, "reconstr_B": x_B,
                                     "id_A": x_A, "id_B": x_B})
    else:
        gan.combined.train_on_batch([x_A, x_B], [valid, valid, x_A, x_B, x_A, x_B])
    assert changed(before, snapshot(gan)) == {"g_AB", "g_BA"}
    # The discriminators' weights are inputs of the combined step, never its trainable weights.
    combined_trainable = {id(w) for w in gan.combined.trainable_weights}
    assert combined_trainable == {id(w) for w in gan.g_AB.trainable_weights + gan.g_BA.trainable_weights}
    assert gan.d_A.trainable and gan.d_B.trainable  # the flag is never flipped


def test_train_generators_hands_back_this_steps_fakes_and_only_moves_the_generators(gan):
    """The fakes the discriminators train on are g_BA(img_B) and g_AB(img_A) before the update.

    They travel out of Keras' train function as per-image logs (models/combined.py): this fails
    if a Keras upgrade drops, averages or reorders them."""
    x_A, x_B = batch(20, n=2), batch(21, n=2)
    expected_A, expected_B = gan.translate(x_B, "BtoA"), gan.translate(x_A, "AtoB")
    before = snapshot(gan)
    losses, fake_A, fake_B = gan.combined.train_generators(x_A, x_B, np.ones((2,) + gan.disc_patch, "float32"))
    assert changed(before, snapshot(gan)) == {"g_AB", "g_BA"}
    np.testing.assert_allclose(fake_A, expected_A, atol=1e-5)
    np.testing.assert_allclose(fake_B, expected_B, atol=1e-5)
    assert set(losses) == {"loss", "valid_A", "valid_B", "reconstr_A", "reconstr_B", "id_A", "id_B"}
    assert all(isinstance(value, float) and np.isfinite(value) for value in losses.values())


def test_train_generators_stops_loudly_when_keras_loses_the_fakes(gan):
    x = batch(22)

    def keras_without_fakes(model, x, y):
        logs = model.train_on_batch(x, y, return_dict=True)
        return {name: value for name, value in logs.items() if not name.startswith("fake_")}

    with pytest.raises(RuntimeError, match="changed how train_on_batch returns per-image logs"):
        gan.combined.train_generators(x, x, np.ones((1,) + gan.disc_patch, "float32"), keras_without_fakes)


def test_the_books_own_calls_from_chapter_5(gan):
    """The calls of the book's CycleGAN class (train_discriminators, train_generators, sample_images), typed as printed."""
    imgs_A, imgs_B = batch(60), batch(61)
    valid = np.ones((1,) + gan.disc_patch)
    fake = np.zeros((1,) + gan.disc_patch)
    # the named form first, as train_step calls it: the positional calls below must reuse its traced step
    gan.combined.train_on_batch({"img_A": imgs_A, "img_B": imgs_B}, {"valid_A": valid, "valid_B": valid,
                                "reconstr_A": imgs_A, "reconstr_B": imgs_B, "id_A": imgs_A, "id_B": imgs_B})
    traces = gan.combined.trace_count

    # train_discriminators
    before = snapshot(gan)
    fake_B = gan.g_AB.predict(imgs_A)
    fake_A = gan.g_BA.predict(imgs_B)
    dA_loss_real = gan.d_A.train_on_batch(imgs_A, valid)
    dA_loss_fake = gan.d_A.train_on_batch(fake_A, fake)
    dA_loss = 0.5 * np.add(dA_loss_real, dA_loss_fake)
    dB_loss_real = gan.d_B.train_on_batch(imgs_B, valid)
    dB_loss_fake = gan.d_B.train_on_batch(fake_B, fake)
    dB_loss = 0.5 * np.add(dB_loss_real, dB_loss_fake)
    d_loss = 0.5 * np.add(dA_loss, dB_loss)
    assert changed(before, snapshot(gan)) == {"d_A", "d_B"}
    assert np.isfinite(d_loss) and d_loss > 0

    # train_generators
    before = snapshot(gan)
    g_loss = gan.combined.train_on_batch([imgs_A, imgs_B],
                                         [valid, valid,
                                          imgs_A, imgs_B,
                                          imgs_A, imgs_B])
    assert changed(before, snapshot(gan)) == {"g_AB", "g_BA"}
    assert len(g_loss) == 7  # total, then the six outputs in the book's order: g_loss[1:3], [3:5], [5:7]
    weights = [gan.config.lambda_validation] * 2 + [gan.config.lambda_reconstr] * 2 + [gan.config.lambda_id] * 2
    assert g_loss[0] == pytest.approx(float(np.dot(weights, g_loss[1:])), rel=1e-4)
    named = gan.combined.test_on_batch({"img_A": imgs_A, "img_B": imgs_B},
                                       {"valid_A": valid, "valid_B": valid, "reconstr_A": imgs_A,
                                        "reconstr_B": imgs_B, "id_A": imgs_A, "id_B": imgs_B}, return_dict=True)
    positional = gan.combined.test_on_batch([imgs_A, imgs_B], [valid, valid, imgs_A, imgs_B, imgs_A, imgs_B])
    assert positional == pytest.approx([named["loss"]] + [named[f"{n}_loss"] for n in
                                       ("valid_A", "valid_B", "reconstr_A", "reconstr_B", "id_A", "id_B")], rel=1e-5)

    # sample_images, and the combined model's predictions in the book's order
    fake_B = gan.g_AB.predict(imgs_A)
    reconstr_A = gan.g_BA.predict(fake_B)
    id_A = gan.g_BA.predict(imgs_A)
    valid_A, valid_B, reconstr_A_c, reconstr_B_c, id_A_c, id_B_c = gan.combined.predict([imgs_A, imgs_B])
    np.testing.assert_allclose(reconstr_A_c, reconstr_A, atol=1e-5)
    np.testing.assert_allclose(id_A_c, id_A, atol=1e-5)
    np.testing.assert_allclose(id_B_c, gan.g_AB.predict(imgs_B), atol=1e-5)
    np.testing.assert_allclose(reconstr_B_c, gan.g_AB.predict(gan.g_BA.predict(imgs_B)), atol=1e-5)
    np.testing.assert_allclose(valid_B, gan.d_B.predict(fake_B), atol=1e-5)
    assert valid_A.shape == (1,) + gan.disc_patch
    if keras.backend.backend() == "tensorflow":  # the positional calls ran the named calls' traced step
        assert gan.combined.trace_count == traces + 2  # one test function and one predict function, no train retrace


def test_the_losses_are_the_papers_formulas(gan):
    """The generators. terms and total (models/losses.py, generator_loss) and the
    discriminators' loss with its implicit 1/2 (CycleGAN.train_step), recomputed in numpy."""
    a, b = batch(70, n=2), batch(71, n=2)
    valid, fake = np.ones((2,) + gan.disc_patch, "float32"), np.zeros((2,) + gan.disc_patch, "float32")
    logs = gan.combined.test_on_batch([a, b], [valid, valid, a, b, a, b])
    g_AB, g_BA = gan.g_AB.predict(a, verbose=0), gan.g_BA.predict(b, verbose=0)  # G(a), F(b)
    terms = [np.mean((gan.d_A.predict(g_BA, verbose=0) - 1) ** 2),             # LSGAN, eq. 1
             np.mean((gan.d_B.predict(g_AB, verbose=0) - 1) ** 2),
             np.mean(np.abs(gan.g_BA.predict(g_AB, verbose=0) - a)),            # cycle, eq. 2
             np.mean(np.abs(gan.g_AB.predict(g_BA, verbose=0) - b)),
             np.mean(np.abs(gan.g_BA.predict(a, verbose=0) - a)),               # identity, section 5.2
             np.mean(np.abs(gan.g_AB.predict(b, verbose=0) - b))]
    cfg = gan.config
    lambdas = [cfg.lambda_validation] * 2 + [cfg.lambda_reconstr] * 2 + [cfg.lambda_id] * 2
    np.testing.assert_allclose(logs[1:], terms, rtol=1e-4, atol=1e-6)
    assert logs[0] == pytest.approx(float(np.dot(lambdas, terms)), rel=1e-4)          # eq. 3

    d_loss = gan.d_A.test_on_batch(np.concatenate([a, g_BA]), np.concatenate([valid, fake]))
    half = 0.5 * (np.mean((gan.d_A.predict(a, verbose=0) - 1) ** 2) + np.mean(gan.d_A.predict(g_BA, verbose=0) ** 2))
    assert d_loss == pytest.approx(float(half), rel=1e-4)


@pytest.mark.parametrize("stack_calls", [True, False])
@pytest.mark.parametrize("lambda_id", [2.0, 0.0])
def test_stacked_generator_calls_give_the_six_translations_of_separate_calls(lambda_id, stack_calls):
    """models/combined.py may run each generator once on everything it translates, stacked (4. in its
    docstring; on by itself only with oneDNN on a CPU without AVX-512): every output must equal the
    separate calls, in a training pass (with and without the identity branch) and in predict."""
    gan = CycleGAN(input_dim=(SIZE, SIZE, 3), gen_n_filters=4, disc_n_filters=4, lambda_id=lambda_id, seed=2)
    gan.combined.stack_calls = stack_calls
    a, b = batch(80, n=2), batch(81, n=2)

    def g(net, x):
        return keras.ops.convert_to_numpy(getattr(gan, net)(x, training=True))

    fake_B, fake_A = g("g_AB", a), g("g_BA", b)
    expected = {"fake_A": fake_A, "fake_B": fake_B, "reconstr_A": g("g_BA", fake_B), "reconstr_B": g("g_AB", fake_A),
                "valid_A": keras.ops.convert_to_numpy(gan.d_A(fake_A)), "valid_B": keras.ops.convert_to_numpy(gan.d_B(fake_B)),
                "id_A": g("g_BA", a), "id_B": g("g_AB", b)}
    outputs = {k: keras.ops.convert_to_numpy(v) for k, v in gan.combined({"img_A": a, "img_B": b}, training=True).items()}
    assert set(outputs) == set(expected) - ({"id_A", "id_B"} if lambda_id == 0 else set())
    for name, value in outputs.items():
        np.testing.assert_allclose(value, expected[name], rtol=1e-4, atol=1e-5, err_msg=name)
    predicted = gan.combined.predict([a, b], verbose=0)   # the book's positional form, identity included
    for name, value in zip(("valid_A", "valid_B", "reconstr_A", "reconstr_B", "id_A", "id_B"), predicted):
        np.testing.assert_allclose(value, expected[name], rtol=1e-4, atol=1e-5, err_msg=name)


@pytest.mark.skipif(keras.backend.backend() != "tensorflow", reason="a TensorFlow kernel")
def test_training_steps_with_the_fused_instance_norm_train_as_keras_ops_do(monkeypatch):
    """utils/runtime/fused_norm.py, forced on and off whatever the CPU: the fused kernel is taken inside the
    train functions (the training flag reaches every norm), and two steps leave networks that compute the
    same. (Not the same weights: a convolution's bias before an instance norm has a gradient of 0 but for
    round-off, which Adam scales up to a step of +-lr, a different one for each kernel; the norm removes it.)"""
    from utils.runtime import fused_norm
    kernel, outputs = fused_norm.instance_norm, {}
    probe = batch(7)
    for fused in (True, False):
        calls = []
        monkeypatch.setattr(fused_norm, "wanted", lambda fused=fused: fused)
        monkeypatch.setattr(fused_norm, "instance_norm", lambda x, epsilon: calls.append(1) or kernel(x, epsilon))
        gan = CycleGAN(input_dim=(SIZE, SIZE, 3), gen_n_filters=4, disc_n_filters=4, seed=3)
        gan.combined.stack_calls = False
        for step in range(2):
            gan.train_step(batch(90 + step), batch(95 + step))
        assert bool(calls) is fused
        calls.clear()
        outputs[fused] = [gan.translate(probe), gan.translate(probe, "BtoA"),
                          gan.d_A.predict(probe, verbose=0), gan.d_B.predict(probe, verbose=0)]
        assert not calls   # translation and predict keep keras.ops
    for name, value, expected in zip(("g_AB", "g_BA", "d_A", "d_B"), outputs[True], outputs[False]):
        np.testing.assert_allclose(value, expected, atol=1e-4, err_msg=name)


def test_a_wrong_positional_call_names_the_expected_form(gan):
    valid = np.ones((1,) + gan.disc_patch)
    with pytest.raises(ValueError, match="six targets"):
        gan.combined.train_on_batch([batch(0), batch(1)], [valid, valid, batch(0), batch(1)])
    with pytest.raises(ValueError, match=r"\[imgs_A, imgs_B\]"):
        gan.combined.predict([batch(0)])


def test_retraces_on_a_new_batch_size_still_train_the_right_networks(gan):
    before = snapshot(gan)
    gan.train_step(batch(8, n=2), batch(9, n=2))  # new shape -> every train function retraces
    assert changed(before, snapshot(gan)) == {"g_AB", "g_BA", "d_A", "d_B"}
    valid = np.ones((3,) + gan.disc_patch)
    before = snapshot(gan)
    gan.d_B.train_on_batch(batch(10, n=3).astype("float64"), valid)  # new shape and dtype
    assert changed(before, snapshot(gan)) == {"d_B"}


def test_student_can_train_a_discriminator_by_hand_after_training(gan):
    """A notebook cell `gan.d_A.train_on_batch(...)` after some steps must learn, not warn and idle."""
    for i in range(3):
        gan.train_step(batch(20 + i), batch(30 + i))
    x = np.concatenate([batch(40), gan.g_BA.predict_on_batch(batch(41))])
    y = np.concatenate([np.ones((1,) + gan.disc_patch), np.zeros((1,) + gan.disc_patch)])
    losses = [gan.d_A.train_on_batch(x, y) for _ in range(15)]
    assert losses[-1] < 0.5 * losses[0]


def test_learning_rate_reaches_all_three_optimizers(gan):
    gan.config.epochs, gan.config.decay_epochs = 2, 2
    assert gan.set_learning_rate(1.0) == pytest.approx(gan.config.learning_rate)
    assert gan.set_learning_rate(3.0) == pytest.approx(gan.config.learning_rate / 2)
    gan.set_learning_rate(4.0)  # end of the decay: rate 0, so a full step changes nothing
    for optimizer in gan.optimizers.values():
        assert float(keras.ops.convert_to_numpy(optimizer.learning_rate)) == 0.0
    before = snapshot(gan)
    gan.train_step(batch(50), batch(51))
    assert changed(before, snapshot(gan)) == set()
    gan.set_learning_rate(0.0)
    assert gan.learning_rate == pytest.approx(gan.config.learning_rate)


@pytest.mark.long
def test_loss_weights_change_without_rebuilding():
    gan = CycleGAN(input_dim=(SIZE, SIZE, 3), gen_n_filters=4, disc_n_filters=4)
    gan.set_loss_weights(lambda_validation=0, lambda_reconstr=3, lambda_id=0)
    losses = gan.train_step(batch(0), batch(1))
    assert losses["g_loss"] == pytest.approx(3 * (losses["reconstr_A"] + losses["reconstr_B"]), rel=1e-4)
    gan.set_loss_weights(lambda_id=1)
    losses = gan.train_step(batch(0), batch(1))
    expected = 3 * (losses["reconstr_A"] + losses["reconstr_B"]) + losses["id_A"] + losses["id_B"]
    assert losses["g_loss"] == pytest.approx(expected, rel=1e-4)
    assert set(losses) == {"d_A", "d_B", "d_loss", "g_loss", "valid_A", "valid_B", "reconstr_A", "reconstr_B",
                           "id_A", "id_B"}


def _toy_domains(rng, n, size=SIZE):
    """Domain A: reddish images with a bright square; domain B: the same scenes in blue."""
    base = rng.uniform(-1, -0.2, (n, size, size, 1)).astype("float32")
    imgs = np.repeat(base, 3, axis=-1)
    for img in imgs:
        y, x = rng.integers(0, size - 10, 2)
        img[y:y + 10, x:x + 10] = 0.8
    red, blue = imgs.copy(), imgs.copy()
    red[..., 0] = 0.9
    blue[..., 2] = 0.9
    return red, blue


@pytest.mark.long
def test_a_few_hundred_steps_lower_discriminator_and_cycle_losses():
    rng = np.random.default_rng(0)
    gan = CycleGAN(input_dim=(SIZE, SIZE, 3), gen_n_filters=8, disc_n_filters=8, buffer_max_length=10)
    imgs_A, _ = _toy_domains(rng, 64)
    _, imgs_B = _toy_domains(rng, 64)
    history = []
    for step in range(240):
        i, j = rng.integers(64, size=2)
        history.append(gan.train_step(imgs_A[i:i + 1], imgs_B[j:j + 1]))
    first = {k: np.mean([h[k] for h in history[:30]]) for k in history[0]}
    last = {k: np.mean([h[k] for h in history[-30:]]) for k in history[0]}
    assert last["d_A"] < first["d_A"]
    assert last["d_B"] < first["d_B"]
    assert last["reconstr_A"] < 0.5 * first["reconstr_A"]
    assert last["reconstr_B"] < 0.5 * first["reconstr_B"]


@pytest.mark.parametrize("kwargs, words", [
    ({"generator_type": "vgg"}, ["generator_type", "unet", "resnet"]),
    ({"input_dim": (120, 120, 3)}, ["input_dim", "multiples of 16"]),
    ({"input_dim": (64, 64, 3), "generator_type": "resnet", "gen_n_filters": 0}, ["gen_n_filters", "positive"]),
    ({"input_dim": (64, 64, 4)}, ["channels", "1", "3"]),
    ({"lambda_id": -1}, ["lambda_id", ">= 0"]),
    ({"learning_rate": 0}, ["learning_rate", "> 0"]),
    ({"disc_n_filters": -8}, ["disc_n_filters"]),
    ({"input_dim": (16, 16, 3)}, ["input_dim", "at least 32"]),
    ({"unet_upsampling": "cubic"}, ["unet_upsampling", "nearest", "bilinear"]),
    ({"diff_augment": "color,flip"}, ["diff_augment", "color", "translation", "cutout"]),
    ({"disc_n_layers": 0}, ["disc_n_layers", "1 to 6"]),
    ({"input_dim": (32, 32, 3), "disc_n_layers": 4}, ["disc_n_layers=4", "32 px", "142 px patch", "fewer layers"]),
])
def test_bad_configuration_names_the_value_and_what_is_allowed(kwargs, words):
    with pytest.raises(ValueError) as error:
        CycleGAN(**kwargs)
    for word in words:
        assert word in str(error.value)


def test_book_spelling_and_paper_block_choice():
    from models.config import CycleGANConfig
    assert CycleGANConfig(generator_type="u-net").generator_type == "unet"
    assert CycleGANConfig(input_dim=(128, 128, 3), generator_type="resnet").n_resnet_blocks == 6
    assert CycleGANConfig(input_dim=(256, 256, 3), generator_type="resnet").n_resnet_blocks == 9


def test_issue_26_switches_round_trip_and_a_config_saved_before_them_loads_as_the_book():
    """unet_upsampling and diff_augment: off by default, kept through JSON, architecture (and run) fields."""
    import json

    from utils.training.checkpoint_checks import RUN_FIELDS
    from models.config import CycleGANConfig
    book = CycleGANConfig()
    assert (book.unet_upsampling, book.diff_augment) == ("nearest", "")
    changed = CycleGANConfig(unet_upsampling="bilinear", diff_augment="color,translation,cutout")
    assert CycleGANConfig.from_dict(json.loads(json.dumps(changed.to_dict()))) == changed
    old = {name: value for name, value in book.to_dict().items() if name not in ("unet_upsampling", "diff_augment")}
    assert CycleGANConfig.from_dict(json.loads(json.dumps(old))) == book   # a run's config.json from before
    assert book.architecture_mismatch(changed) == ["unet_upsampling: 'bilinear' != 'nearest'",
                                                   "diff_augment: 'color,translation,cutout' != ''"]
    assert {"unet_upsampling", "diff_augment"} <= set(RUN_FIELDS)


def test_bilinear_unet_is_built_from_the_config_and_its_checkpoint_refuses_the_books_network(tmp_path):
    gan = CycleGAN(input_dim=(SIZE, SIZE, 3), gen_n_filters=4, disc_n_filters=4, unet_upsampling="bilinear")
    assert {layer.interpolation for layer in gan.g_AB.layers if isinstance(layer, keras.layers.UpSampling2D)} == \
        {"bilinear"}
    path = checkpoint.save(gan, tmp_path / "weights")
    with pytest.raises(ValueError, match="unet_upsampling: 'bilinear' != 'nearest'"):
        checkpoint.load(CycleGAN(input_dim=(SIZE, SIZE, 3), gen_n_filters=4, disc_n_filters=4), path)
    assert checkpoint.restore(path).config.unet_upsampling == "bilinear"


def test_a_shallower_discriminator_trains_and_its_checkpoint_refuses_the_papers(tmp_path):
    """disc_n_layers (the official --n_layers_D): 3 by default and in a config.json from before it; 2 gives
    34x34 patches, so the targets of both discriminators and of the combined model take its patch map."""
    import json

    from models.config import CycleGANConfig
    book = CycleGANConfig()
    old = {name: value for name, value in book.to_dict().items() if name != "disc_n_layers"}
    assert book.disc_n_layers == 3 and CycleGANConfig.from_dict(json.loads(json.dumps(old))) == book
    gan = CycleGAN(input_dim=(64, 64, 3), gen_n_filters=4, disc_n_filters=4, disc_n_layers=2)
    assert gan.disc_patch == (14, 14, 1) and gan.d_A.output_shape == (None, 14, 14, 1)
    before = snapshot(gan)
    gan.train_step(batch(0, size=64), batch(1, size=64))
    assert changed(before, snapshot(gan)) == {"g_AB", "g_BA", "d_A", "d_B"}
    path = checkpoint.save(gan, tmp_path / "weights")
    with pytest.raises(ValueError, match="disc_n_layers: 2 != 3"):
        checkpoint.load(CycleGAN(input_dim=(64, 64, 3), gen_n_filters=4, disc_n_filters=4), path)
    assert checkpoint.restore(path).config.disc_n_layers == 2
