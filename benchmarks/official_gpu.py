"""The official PyTorch CycleGAN's training step on a CUDA GPU, for benchmarks/gpu_check.sh.

The shared harness (shared/bench/official_cyclegan_cpu.py, beside the repository) runs the official
`CycleGANModel.optimize_parameters` on the CPU. This runs the same harness's options and model set-up
with `opt.device = cuda` (the official code's own device switch), times each step between two
`torch.cuda.synchronize()` calls and adds the GPU's peak memory. Same arguments as the harness, plus
--script; prints one RESULT_JSON line with the fields bench_train.py reads.

    python benchmarks/official_gpu.py --repo PCG --netG resnet_9blocks --size 256 --ngf 32 --ndf 64 --iters 20
"""

import importlib.util
import json
import resource
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
HARNESS_PLACES = (ROOT.parent / "shared" / "bench", ROOT / "shared" / "bench", ROOT / ".gpu")   # .gpu: gpu_check.sh --prepare


def find_harness(given=None):
    candidates = [Path(given)] if given else [place / "official_cyclegan_cpu.py" for place in HARNESS_PLACES]
    for path in candidates:
        if path.is_file():
            return path
    sys.exit(f"error: the official harness is not at {' or '.join(map(str, candidates))}: pass --script")


def load_harness(path):
    spec = importlib.util.spec_from_file_location("official_harness", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def main():
    script = None
    if "--script" in sys.argv:   # ours; the rest are the harness's own arguments
        i = sys.argv.index("--script")
        script = sys.argv[i + 1]
        del sys.argv[i:i + 2]
    harness = load_harness(find_harness(script))
    args = harness.parse_args()
    sys.path.insert(0, str(Path(args.repo).resolve()))
    import torch

    if not torch.cuda.is_available():
        sys.exit("error: no CUDA GPU visible to PyTorch")
    torch.manual_seed(args.seed)
    from models.cycle_gan_model import CycleGANModel   # the official model

    opt = harness.build_opt(args, CycleGANModel, torch)
    opt.device = torch.device("cuda")
    model = CycleGANModel(opt)
    model.setup(opt)   # init_net, then net.to(opt.device)
    s = args.size
    inputs = [{"A": torch.rand(1, 3, s, s) * 2 - 1, "B": torch.rand(1, 3, s, s) * 2 - 1,
               "A_paths": [f"A{i}"], "B_paths": [f"B{i}"]} for i in range(max(1, args.n_inputs))]

    def timed_step(i):
        torch.cuda.synchronize()
        t = time.perf_counter()
        model.set_input(inputs[i % len(inputs)])   # the official loop copies each batch to the GPU too
        model.optimize_parameters()
        torch.cuda.synchronize()
        return time.perf_counter() - t

    torch.cuda.reset_peak_memory_stats()
    warm = [timed_step(i) for i in range(args.warmup)]
    times = [timed_step(args.warmup + i) for i in range(args.iters)]
    median = statistics.median(times)
    result = {"impl": "official PyTorch CycleGAN on CUDA", "netG": args.netG, "size": s, "ngf": args.ngf,
              "ndf": args.ndf, "torch": torch.__version__, "device": torch.cuda.get_device_name(0),
              "warmup_s": [round(x, 4) for x in warm], "iter_s": [round(x, 4) for x in times],
              "s_per_iter_median": round(median, 5), "iters_per_s": round(1 / median, 3),
              "peak_gpu_mib": round(torch.cuda.max_memory_allocated() / 2**20, 1),
              "peak_rss_mib": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0, 1)}
    print("RESULT_JSON " + json.dumps(result), flush=True)


if __name__ == "__main__":
    main()
