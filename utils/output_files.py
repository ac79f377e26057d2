"""Where translated images go: never over the originals, never over a file unless asked, one per input.

`translate.py --output` equal to `--input` once replaced the originals, and `dup.jpg` and `dup.png`
both became `dup.png`. Three rules, checked before the first image is written:

1. the output folder is neither the input folder nor inside it (`check_output_folder`);
2. every input gets its own output name, also on case-insensitive disks (`output_names`);
3. an existing file is only replaced with overwrite=True (`--overwrite`) (`refuse_existing`).
"""

from pathlib import Path


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
