"""The machine a CycleGAN runs on, below models/ (no module here imports the project's networks):

    onednn.py      TensorFlow's CPU kernels (oneDNN or Eigen) per workload and CPU, and the CPU's flags
    devices.py     which device trains and which mixed precision suits it
    executor.py    where the steps run: one device, or data parallel across several
    disk_space.py  free space, and a clear error when a disk fills
    files.py       atomic writes, and reads that refuse links, bombs and oversize files
"""
