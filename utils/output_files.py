"""Where translated images go: never over the originals, never over a file unless asked, one per input.

`translate.py --output` equal to `--input` once replaced the originals, and `dup.jpg` and `dup.png`
both became `dup.png`. Three rules, checked before the first image is written:

1. the output folder is neither the input folder nor inside it (`check_output_folder`);
2. every input gets its own output name, also on case-insensitive disks (`output_names`);
3. an existing file is only replaced with overwrite=True (`--overwrite`) (`refuse_existing`);
4. no output is an input under another name: a target that is a symbolic link to an input file is
   refused (`refuse_inputs`), and each file is written beside its target and renamed over it
   (`save_png`), so a link at the target is replaced, never written through.
"""

import io
from pathlib import Path

from PIL import Image

from models.files import write_atomic


def check_output_folder(input_dir, output_dir):
    """ValueError if output_dir is input_dir or inside it (the translations would mix with the originals)."""
    source, target = Path(input_dir).resolve(), Path(output_dir).resolve()
    if target == source or source in target.parents:
        where = "the input folder" if target == source else f"inside the input folder {input_dir}"
        raise ValueError(f"output folder {output_dir} is {where}: the translations would replace or mix with "
                         "the originals. Choose an --output outside it")


def output_names(paths, suffix=".png"):
    """{input path: output file name}, all distinct: 'a.jpg' -> 'a.png', then 'a.png' -> 'a_png.png',
    then 'a_2.png'... Compared case-blind, as on macOS and Windows disks."""
    names, taken = {}, set()
    for path in paths:
        stem = path.stem
        candidates = [stem, f"{stem}_{path.suffix.lstrip('.')}"]
        name = next((c for c in candidates if c.casefold() not in taken), None)
        counter = 2
        while name is None:
            if f"{stem}_{counter}".casefold() not in taken:
                name = f"{stem}_{counter}"
            counter += 1
        taken.add(name.casefold())
        names[path] = name + suffix
    return names


def refuse_existing(targets, overwrite=False):
    """FileExistsError naming the files of `targets` that exist already, unless overwrite."""
    existing = [t for t in targets if Path(t).exists()]
    if existing and not overwrite:
        more = f" and {len(existing) - 1} more" if len(existing) > 1 else ""
        raise FileExistsError(f"{existing[0]}{more} exist already: pass --overwrite (overwrite=True) to replace "
                              "them, or choose another --output")


def refuse_inputs(targets, inputs):
    """ValueError naming the first of `targets` that resolves (through links) to one of `inputs`."""
    originals = {Path(p).resolve(): p for p in inputs}
    for target in targets:
        if Path(target).resolve() in originals:
            raise ValueError(f"output file {target} is a link to the input {originals[Path(target).resolve()]}: "
                             "writing it would replace the original. Remove the link or choose another --output")


def save_png(image, target):
    """Write uint8 (h, w) or (h, w, 3) `image` as the PNG `target`: encoded in memory, then written to a
    temporary file beside it and renamed over it (models/files.write_atomic)."""
    buffer = io.BytesIO()
    Image.fromarray(image).save(buffer, format="PNG")
    return write_atomic(target, buffer.getvalue())
