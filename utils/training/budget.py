"""How long will training take here? Time a few steps, print the estimate, fit the run to a budget.

The paper's schedule (200 epochs; about 200,000 steps for apple2orange) takes hours on a GPU and
days on a laptop CPU. The notebooks call `plan_steps` before training with MAX_STEPS = "auto":

    max_steps = plan_steps(gan, loader.n_batches(BATCH_SIZE), MAX_STEPS, BUDGET_MINUTES, BATCH_SIZE)

- on a CPU, "auto" trains as many steps as fit in `budget_minutes` on this machine, measured, and
  shrinks the learning-rate schedule to match (half the epochs at the full rate, half decaying to
  0, as the paper's 100 + 100), so that a short run still ends with the decay;
- with a GPU, "auto" does the same with `gpu_budget_minutes` (05_02: 40 minutes, a Colab T4 session),
  or keeps the book's full schedule (max_steps None) when that is None;
- a number or None is kept as given; the estimate is printed either way:
  "... about N minutes on this machine", with how to change it.
"""

import time

import keras
import numpy as np

from models import CycleGAN
from utils.runtime import devices

# Grids, loss plots, GIF, page and checkpoints on top of the steps (docs/speed.md#the-time-estimate-before-training)
OVERHEAD = 1.15

# The first training step of a process, at 128 px on 2 idle cores with TensorFlow: it traces the three
# train functions, Grappler optimises them and oneDNN creates its kernels. Seconds by generator and CPU
# kind, measured (docs/speed.md#the-first-step); a kind not measured has no entry.
FIRST_STEP_S = {("resnet", "avx512"): 6.0,   # ResNet-9 32/64
                ("resnet", "avx2"): 16.0,    # ResNet-9 32/64
                ("unet", "avx512"): 2.7}     # the book's U-Net 32/32
FIRST_STEP_PER_AREA = 0.08   # + 8 % for each further 128 x 128 px (docs/speed.md#the-first-step)

# Without a GPU, the fewest steps of 05_02's CPU recipe that show a result; below it, the slow-CPU recipe
# (docs/monet2photo.md#on-a-slow-cpu)
MIN_CPU_STEPS = 600


def seconds_per_step(model, batch_size=1, n_timed=5):
    """Seconds of one training step on this machine: the fastest of `n_timed`, after one untimed
    (tracing) step. Why the fastest, not the median: a job starting beside the notebook slows a few
    steps, and the run mostly sees the undisturbed speed (docs/speed.md#the-time-estimate-before-training).

    model: a CycleGAN, timed on random images and then put back exactly as it was (weights,
    optimizer moments, image pools, step), so timing it trains nothing; its train functions stay
    traced, so the real first step is quick. Or a CycleGANConfig: a throwaway CycleGAN is timed.
    """
    gan = model if isinstance(model, CycleGAN) else CycleGAN(model)
    saved = _state(gan)
    images = np.random.default_rng(0).uniform(-1, 1, (2, batch_size) + tuple(gan.img_shape)).astype(np.float32)
    try:
        if gan.combined.trace_count == 0:
            print(first_step_note(gan.config), flush=True)
        gan.train_step(images[0], images[1])   # the first step traces the train functions: not timed
        times = []
        for _ in range(n_timed):
            start = time.perf_counter()
            gan.train_step(images[0], images[1])
            times.append(time.perf_counter() - start)
    finally:
        _restore(gan, saved)
    return float(np.min(times))


def _variables(gan):
    networks = [w for net in (gan.g_AB, gan.g_BA, gan.d_A, gan.d_B) for w in net.weights]
    return networks + [v for optimizer in gan.optimizers.values() for v in optimizer.variables]


def _state(gan):
    return {"variables": [keras.ops.convert_to_numpy(v).copy() for v in _variables(gan)],
            "pools": [pool.get_state() for pool in (gan.pool_A, gan.pool_B)],
            "position": (gan.epoch, gan.batch, gan.step)}


def _restore(gan, saved):
    for variable, value in zip(_variables(gan), saved["variables"]):
        variable.assign(value)
    for pool, (images, rng_state) in zip((gan.pool_A, gan.pool_B), saved["pools"]):
        pool.set_state(images, rng_state)
    gan.epoch, gan.batch, gan.step = saved["position"]


def for_this_machine(settings, gpu, cpu, slow_cpu=None, build=None, budget_minutes=10, min_steps=None):
    """Fill in the settings left "auto": from `gpu` when there is a GPU, from `cpu` when there is none.

    settings: {name: value or "auto"}; gpu, cpu: {name: value} for every name. Returns the values in
    the order of `settings` and prints what "auto" chose. 05_02 uses it to train the book's setup
    (ResNet, 256 px, a 64-filter discriminator) on a GPU and the CPU recipe (the same ResNet at 128 px,
    32 filters) on a CPU, where the book's setup makes few steps in a notebook's budget
    (docs/speed.md#the-time-estimate-before-training).

    slow_cpu, build: without a GPU, `build(**values)` (a CycleGANConfig) is timed on a throwaway model; when
    fewer than `min_steps` (default MIN_CPU_STEPS) of it fit in `budget_minutes`, the "auto" settings come
    from `slow_cpu` instead: a recipe small enough to show a result in the budget on a slow CPU.
    """
    recipe, device = (gpu, "a GPU") if devices.gpu() else (cpu, "no GPU")
    chosen = {name: recipe[name] if value == "auto" else value for name, value in settings.items()}
    auto = [name for name, value in settings.items() if value == "auto"]
    if auto and device == "no GPU" and slow_cpu is not None and build is not None:
        min_steps = MIN_CPU_STEPS if min_steps is None else min_steps
        step_s = seconds_per_step(build(**chosen), n_timed=3)
        fit = int(budget_minutes * 60 / (step_s * OVERHEAD))
        if fit < min_steps:
            chosen.update({name: slow_cpu[name] for name in auto})
            print(f"Timed the CPU recipe here: {step_s:.2f} s a step, {fit:,} steps in {budget_minutes:g} minutes, "
                  f"fewer than the {min_steps:,} that show a result; so the slow-CPU recipe.", flush=True)
    if auto:
        print(f'"auto" with {device}: ' + ", ".join(f"{name} = {chosen[name]!r}" for name in auto), flush=True)
    return tuple(chosen.values())


def time_budget(max_steps, budget_minutes, gpu_budget_minutes=None, n_runs=1):
    """The minutes each run keeps to with `train(time_budget_minutes=...)`: the notebook's budget when its
    MAX_STEPS is "auto" (BUDGET_MINUTES on a CPU, GPU_BUDGET_MINUTES with a GPU, shared by `n_runs`), else None
    (a number of steps, or the book's schedule, is kept as given). The steps plan_steps timed before training
    are planned again from the run's own (utils/training/loop.TrainingLoop.keep_to_budget)."""
    if max_steps != "auto":
        return None
    minutes = gpu_budget_minutes if devices.gpu() else budget_minutes
    return None if minutes is None else minutes / n_runs


def first_step_estimate(config, measured=None):
    """About how many seconds the first step of a process takes here: `measured` (this run's own first
    step, from an earlier session) when given, else FIRST_STEP_S for this generator and CPU kind scaled to
    the image size; None where nothing was measured (another CPU, a GPU, another backend)."""
    if measured:
        return float(measured)
    from utils.runtime.onednn import cpu_has_avx512
    if devices.gpu() or keras.backend.backend() != "tensorflow":
        return None
    base = FIRST_STEP_S.get((config.generator_type, "avx512" if cpu_has_avx512() else "avx2"))
    if base is None:
        return None
    height, width = config.input_dim[:2]
    return base * (1 + FIRST_STEP_PER_AREA * (height * width / 128 ** 2 - 1))


def first_step_note(config, measured=None):
    """The line shown while the first step prepares the training graph, so that nobody thinks it hung."""
    seconds = first_step_estimate(config, measured)
    about = (f"about {seconds:.0f} s here ({'this run, last time' if measured else 'measured on this kind of CPU'})"
             if seconds else "timed now; a --resume of this run will say how long")
    return (f"Preparing the training graph: the first step traces and optimises it once, {about}; "
            "the steps after it are much faster.")


def fit_schedule(config, steps_per_epoch, max_steps):
    """Shrink the paper's schedule to a budget of `max_steps`, in place: (steps trained, its shape in words).

    Half the whole epochs that fit at the full learning rate, half decaying to 0, as the paper's
    100 + 100, so that a short run still ends with the decay; a budget of one epoch decays all of it.
    The steps trained end with the last whole epoch (the rest of a partial epoch is not trained).
    Used by the notebooks' "auto" (plan_steps) and `train.py --max-steps N --fit-schedule`.
    """
    fit = max_steps // steps_per_epoch
    if fit < 1:
        raise ValueError(f"max_steps={max_steps}: fitting the schedule needs at least one epoch, {steps_per_epoch:,} "
                         "steps here (or keep the paper's schedule and stop early, without fitting it)")
    config.epochs, config.decay_epochs = (fit - fit // 2, fit // 2) if fit >= 2 else (0, 1)
    plural = "s" * (config.epochs != 1)
    return fit * steps_per_epoch, (f"{config.epochs} epoch{plural} at the full learning rate, then "
                                   f"{config.decay_epochs} decaying to 0")


def duration(seconds):
    """'about N minutes' (and the hours when it is long), for the estimates."""
    minutes = max(1, round(seconds / 60))
    text = f"about {minutes} minute{'s' if minutes != 1 else ''}"
    return text + (f" ({seconds / 3600:.1f} hours)" if minutes >= 120 else "")


def plan_steps(model, steps_per_epoch, max_steps="auto", budget_minutes=10, batch_size=1, n_runs=1, n_timed=5,
               gpu_budget_minutes=None):
    """Time a few steps, print how long training takes on this machine, and return max_steps for `train`.

    model: the CycleGAN about to be trained, or the CycleGANConfig of the runs (see seconds_per_step).
    steps_per_epoch: `loader.n_batches(batch_size)`.
    max_steps: "auto" (see the module docstring), a number of steps, or None (the full schedule).
    budget_minutes: what "auto" aims at on a CPU, all `n_runs` runs together (an ablation's variants).
    gpu_budget_minutes: the same with a GPU; None keeps the book's schedule there.
    When "auto" shortens the run, the config's epochs and decay_epochs are shrunk to fit it.
    """
    config = model.config if isinstance(model, CycleGAN) else model
    if not (max_steps is None or max_steps == "auto" or (isinstance(max_steps, int) and max_steps > 0)):
        raise ValueError(f"MAX_STEPS={max_steps!r}: must be 'auto', a number of steps > 0, or None (the full schedule)")
    if budget_minutes <= 0:
        raise ValueError(f"BUDGET_MINUTES={budget_minutes!r}: must be > 0")
    if gpu_budget_minutes is not None and not gpu_budget_minutes > 0:
        raise ValueError(f"GPU_BUDGET_MINUTES={gpu_budget_minutes!r}: must be > 0, or None for the book's schedule")
    step_s = seconds_per_step(model, batch_size, n_timed)
    device = "GPU" if devices.gpu() else "CPU"
    epochs = config.epochs + config.decay_epochs
    schedule = epochs * steps_per_epoch
    lines = [f"Timed {n_timed} training steps on this machine ({device}, {keras.backend.backend()}): "
             f"{step_s:.3g} s a step (the fastest).",
             f"The book's schedule here, {epochs} epochs x {steps_per_epoch:,} steps = {schedule:,} steps, would take "
             f"{duration(schedule * step_s * OVERHEAD * n_runs)} on this machine."]
    if max_steps == "auto" and device == "GPU" and gpu_budget_minutes is None:
        max_steps = None
        lines.append(f'MAX_STEPS = "auto" with a GPU: the book\'s schedule, '
                     f"{duration(schedule * step_s * OVERHEAD * n_runs)} on this machine.")
    elif max_steps == "auto":
        minutes = budget_minutes if device == "CPU" else gpu_budget_minutes
        budget = int(minutes * 60 / (step_s * OVERHEAD * n_runs))
        max_steps = max(1, min(schedule, budget // 100 * 100 if budget >= 200 else budget))
        if max_steps < schedule and max_steps // steps_per_epoch >= 2:   # end with the decay
            max_steps, shape = fit_schedule(config, steps_per_epoch, max_steps)
        else:
            shape = "the learning rate stays at its start value" if max_steps < schedule else "the full schedule"
        runs = f" for each of {n_runs} runs" if n_runs > 1 else ""
        lines.append(f'MAX_STEPS = "auto" {"without" if device == "CPU" else "with"} a GPU: {max_steps:,} steps{runs} ({shape}), '
                     f"{duration(max_steps * step_s * OVERHEAD * n_runs)} on this machine.")
    else:
        total = schedule if max_steps is None else min(max_steps, schedule)
        runs = f" for each of {n_runs} runs" if n_runs > 1 else ""
        lines.append(f"MAX_STEPS = {max_steps!r}: {total:,} steps{runs}, "
                     f"{duration(total * step_s * OVERHEAD * n_runs)} on this machine.")
    gpu = "" if gpu_budget_minutes is None else f" and GPU_BUDGET_MINUTES (now {gpu_budget_minutes:g}) with a GPU"
    lines.append(f"To change it, in the Settings cell: MAX_STEPS = a number of steps, None for the book's schedule, "
                 f'or "auto" with BUDGET_MINUTES (now {budget_minutes:g}) minutes of training on a CPU{gpu}.')
    print("\n".join(lines), flush=True)
    return max_steps if max_steps is None else int(max_steps)

