"""utils/images.py: every Pillow mode becomes uint8 RGB, every broken file a named ImageReadError."""

import struct
import zlib
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from utils.images import ImageReadError, check_header, list_images, read_rgb, resize_rgb, to_model_range, to_uint8

FIXTURES = Path(__file__).parent / "fixtures" / "real_mini"


def _rgb_blocks():
    """4x6 RGB image: left half red, right half blue, so any flip or rotation is visible."""
    image = np.zeros((4, 6, 3), np.uint8)
    image[:, :3] = (255, 0, 0)
    image[:, 3:] = (0, 0, 255)
    return image


# ----------------------------------------------------------------------------- modes
def test_rgb_is_returned_unchanged(tmp_path):
    image = np.random.default_rng(0).integers(0, 256, (5, 7, 3), dtype=np.uint8)
    Image.fromarray(image).save(tmp_path / "x.png")
    out = read_rgb(tmp_path / "x.png")
    assert out.dtype == np.uint8 and out.shape == (5, 7, 3)
    np.testing.assert_array_equal(out, image)


def test_grayscale_L_becomes_three_equal_channels(tmp_path):
    gray = np.arange(12, dtype=np.uint8).reshape(3, 4) * 20
    Image.fromarray(gray, "L").save(tmp_path / "g.png")
    out = read_rgb(tmp_path / "g.png")
    assert out.shape == (3, 4, 3)
    for channel in range(3):
        np.testing.assert_array_equal(out[..., channel], gray)


def test_palette_P_becomes_its_colours(tmp_path):
    image = Image.fromarray(_rgb_blocks()).convert("P", palette=Image.Palette.ADAPTIVE, colors=4)
    assert image.mode == "P"
    image.save(tmp_path / "p.png")
    np.testing.assert_array_equal(read_rgb(tmp_path / "p.png"), _rgb_blocks())


def test_palette_with_transparency_is_composited_on_white(tmp_path):
    image = Image.fromarray(_rgb_blocks()).convert("P", palette=Image.Palette.ADAPTIVE, colors=4)
    blue_index = image.getpixel((5, 0))
    image.save(tmp_path / "pt.png", transparency=blue_index)
    out = read_rgb(tmp_path / "pt.png")
    np.testing.assert_array_equal(out[:, 3:], 255)  # the transparent blue half is now white
    np.testing.assert_array_equal(out[:, :3], _rgb_blocks()[:, :3])


def test_rgba_alpha_is_composited_on_white(tmp_path):
    rgba = np.zeros((2, 3, 4), np.uint8)
    rgba[..., 0] = 200  # red 200, green 0, blue 0
    rgba[:, 0, 3], rgba[:, 1, 3], rgba[:, 2, 3] = 0, 255, 128
    Image.fromarray(rgba, "RGBA").save(tmp_path / "a.png")
    out = read_rgb(tmp_path / "a.png").astype(int)
    np.testing.assert_array_equal(out[:, 0], 255)  # fully transparent -> white
    np.testing.assert_array_equal(out[:, 1], [[200, 0, 0]] * 2)  # opaque -> the colour
    half = 128 / 255
    np.testing.assert_allclose(out[:, 2], [[200 * half + 255 * (1 - half), 255 * (1 - half), 255 * (1 - half)]] * 2,
                               atol=1)


def test_la_alpha_is_composited_on_white(tmp_path):
    la = np.zeros((2, 2, 2), np.uint8)
    la[..., 0] = 50
    la[0, :, 1], la[1, :, 1] = 255, 0
    Image.fromarray(la, "LA").save(tmp_path / "la.png")
    out = read_rgb(tmp_path / "la.png")
    np.testing.assert_array_equal(out[0], 50)
    np.testing.assert_array_equal(out[1], 255)


def test_cmyk_becomes_rgb(tmp_path):
    cmyk = Image.new("CMYK", (4, 4), (0, 255, 255, 0))  # no cyan, full magenta and yellow: red
    cmyk.save(tmp_path / "c.tif")
    out = read_rgb(tmp_path / "c.tif")
    assert out.shape == (4, 4, 3)
    np.testing.assert_array_equal(out[0, 0], [255, 0, 0])


def test_sixteen_bit_gray_is_scaled_to_eight_bits(tmp_path):
    values = np.array([[0, 257, 32896, 65535]], np.uint16)
    Image.fromarray(values).save(tmp_path / "16.png")
    assert Image.open(tmp_path / "16.png").mode.startswith("I")
    out = read_rgb(tmp_path / "16.png")
    np.testing.assert_array_equal(out[0, :, 0], [0, 1, 128, 255])
    np.testing.assert_array_equal(out[..., 0], out[..., 2])


def test_exif_orientation_is_applied(tmp_path):
    # Stored 4 high x 6 wide, red left; orientation 6 means "rotate 90 degrees clockwise to view".
    image = Image.fromarray(np.kron(_rgb_blocks(), np.ones((4, 4, 1), np.uint8)))  # 16 x 24, blocks survive JPEG
    exif = Image.Exif()
    exif[0x0112] = 6
    image.save(tmp_path / "rotated.jpg", exif=exif, quality=95)
    out = read_rgb(tmp_path / "rotated.jpg")
    assert out.shape == (24, 16, 3)  # upright: now taller than wide
    assert out[2, 8, 0] > 200 and out[2, 8, 2] < 60  # red on top after a clockwise turn
    assert out[-3, 8, 2] > 200 and out[-3, 8, 0] < 60  # blue at the bottom


def test_real_grayscale_jpeg_fixture_has_three_channels():
    path = FIXTURES / "trainB" / "n02391049_8008.jpg"
    assert Image.open(path).mode == "L"
    out = read_rgb(path)
    assert out.shape == (256, 256, 3) and out.dtype == np.uint8
    np.testing.assert_array_equal(out[..., 0], out[..., 1])


# ----------------------------------------------------------------------------- bad files
def _png_with_size(path, width, height):
    """A valid tiny PNG whose header claims width x height (how a decompression bomb looks)."""
    Image.new("L", (1, 1)).save(path, format="PNG")
    data = bytearray(path.read_bytes())
    ihdr = data.index(b"IHDR")
    data[ihdr + 4:ihdr + 12] = struct.pack(">II", width, height)
    data[ihdr + 17:ihdr + 21] = struct.pack(">I", zlib.crc32(bytes(data[ihdr:ihdr + 17])))
    path.write_bytes(bytes(data))


def _truncated_jpeg(path):
    data = (FIXTURES / "trainA" / "n02381460_767.jpg").read_bytes()
    path.write_bytes(data[: len(data) // 3])


@pytest.mark.parametrize("make, words", [
    (lambda p: p.write_bytes(b""), "empty (0 bytes)"),
    (lambda p: p.write_text("this is not an image, just text saved as .jpg\n"), "not an image"),
    (_truncated_jpeg, "truncated"),
    (lambda p: _png_with_size(p, 100_000, 100_000), "decompression bomb"),
    (lambda p: None, "no such file"),
])
def test_each_bad_file_gives_an_error_naming_it(tmp_path, make, words):
    path = tmp_path / "bad file.jpg"
    make(path)
    with pytest.raises(ImageReadError, match="bad file.jpg") as caught:
        read_rgb(path)
    assert words in str(caught.value)
    assert isinstance(caught.value, ValueError) and caught.value.path == path


def test_bomb_is_refused_from_the_header_without_decoding(tmp_path):
    _png_with_size(tmp_path / "bomb.png", 100_000, 100_000)
    with pytest.raises(ImageReadError, match="decompression bomb") as caught:
        check_header(tmp_path / "bomb.png")
    assert "10000000000 pixels" in str(caught.value)  # Pillow's own refusal, above twice its limit
    _png_with_size(tmp_path / "big.png", 10_000, 10_000)  # above our limit, below twice Pillow's
    with pytest.raises(ImageReadError, match="100,000,000 pixels is more than the limit"):
        read_rgb(tmp_path / "big.png")
    Image.new("RGB", (20, 20)).save(tmp_path / "ok.png")
    with pytest.raises(ImageReadError, match="more than the limit of 100"):
        read_rgb(tmp_path / "ok.png", max_pixels=100)
    assert check_header(tmp_path / "ok.png") == (20, 20)


def test_truncated_file_passes_the_header_check_but_not_decoding(tmp_path):
    _truncated_jpeg(tmp_path / "t.jpg")
    assert check_header(tmp_path / "t.jpg") == (256, 256)
    with pytest.raises(ImageReadError, match="truncated"):
        read_rgb(tmp_path / "t.jpg")


# ----------------------------------------------------------------------------- folders and ranges
def test_list_images_any_case_spaces_sorted_and_skips_the_rest(tmp_path):
    for name in ["b.JPG", "a with space.png", "c.Jpeg", "d.PNG", "e.bmp", "f.webp", "notes.txt", ".hidden.jpg"]:
        (tmp_path / name).write_bytes(b"x")
    (tmp_path / "sub.jpg").mkdir()
    names = [p.name for p in list_images(tmp_path)]
    assert names == ["a with space.png", "b.JPG", "c.Jpeg", "d.PNG", "e.bmp", "f.webp"]
    with pytest.raises(FileNotFoundError, match="missing"):
        list_images(tmp_path / "missing")


def test_model_range_round_trip_and_ends():
    pixels = np.arange(256, dtype=np.uint8)
    scaled = to_model_range(pixels)
    assert scaled.dtype == np.float32 and scaled[0] == -1.0 and scaled[-1] == 1.0
    np.testing.assert_array_equal(to_uint8(scaled), pixels)
    np.testing.assert_array_equal(to_uint8(np.array([-3.0, 0.0, 7.0])), [0, 128, 255])  # clipped


def test_resize_rgb_takes_height_then_width():
    image = np.zeros((10, 20, 3), np.uint8)
    assert resize_rgb(image, (6, 8)).shape == (6, 8, 3)
    assert resize_rgb(image, (10, 20)) is image
