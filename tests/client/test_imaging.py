"""Image filters: each moves pixels the expected way, formats survive, metadata doesn't,
bad specs and oversized images are refused, previews have the right shape."""

from __future__ import annotations

import io
import struct
import subprocess
import sys
import zlib

import pytest
from PIL import Image, ImageStat

from tenchat.client.imaging import (
    FILTERS,
    MAX_PIXELS,
    FilterError,
    ImageTooLarge,
    UnreadableImage,
    apply_filter,
    image_info,
    parse_filter,
    preview_cells,
    thumbnail,
)


def encode(im: Image.Image, fmt: str, **params: object) -> bytes:
    out = io.BytesIO()
    im.save(out, fmt, **params)
    return out.getvalue()


def decode(data: bytes) -> Image.Image:
    im = Image.open(io.BytesIO(data))
    im.load()
    return im


def pixels(im: Image.Image) -> list[tuple[int, ...]]:
    # getdata() is deprecated from Pillow 12.1; get_flattened_data() doesn't exist before it.
    flat = getattr(im, "get_flattened_data", None) or im.getdata
    return list(flat())


def gradient(width: int = 64, height: int = 48) -> Image.Image:
    """Mid-tone colours varying in both directions, so every filter has something to change."""
    im = Image.new("RGB", (width, height))
    im.putdata([(60 + x * 2 % 120, 50 + y * 3 % 140, 90 + (x + y) % 80)
                for y in range(height) for x in range(width)])
    return im


def gray_ramp(width: int = 64, height: int = 48) -> Image.Image:
    return Image.linear_gradient("L").resize((width, height)).convert("RGB")


def stats(data: bytes) -> ImageStat.Stat:
    return ImageStat.Stat(decode(data).convert("L"))


PNG = encode(gradient(), "PNG")


# -- parsing --------------------------------------------------------------------------------

def test_filters_are_listed_in_order() -> None:
    assert list(FILTERS) == ["none", "grayscale", "sepia", "blur", "pixelate", "brightness",
                             "contrast"]


@pytest.mark.parametrize(("spec", "expected"), [
    ("none", ("none", None)),
    ("Grayscale", ("grayscale", None)),
    (" sepia ", ("sepia", None)),
    ("blur", ("blur", 2.0)),
    ("blur:3.5", ("blur", 3.5)),
    ("pixelate", ("pixelate", 8)),
    ("pixelate:12", ("pixelate", 12)),
    ("brightness:1.3", ("brightness", 1.3)),
    ("contrast", ("contrast", 1.3)),
])
def test_parse_filter(spec: str, expected: tuple[str, float | None]) -> None:
    assert parse_filter(spec) == expected


def test_unknown_filter_lists_the_valid_ones() -> None:
    with pytest.raises(FilterError, match="unknown filter 'vintage'") as info:
        parse_filter("vintage")
    assert isinstance(info.value, ValueError)
    for name in FILTERS:
        assert name in str(info.value)


@pytest.mark.parametrize("spec", [
    "blur:abc", "blur:0", "blur:nan", "blur:inf", "blur:-1", "blur:", "pixelate:12.5",
    "pixelate:1", "pixelate:10000", "brightness:0", "contrast:9", "grayscale:2", "", ":3",
])
def test_bad_filter_values(spec: str) -> None:
    with pytest.raises(ValueError, match="valid filters: none, grayscale"):
        parse_filter(spec)


def test_bad_spec_fails_before_decoding() -> None:
    with pytest.raises(FilterError):
        apply_filter(b"not an image", "sharpen")


# -- the filters ----------------------------------------------------------------------------

def test_none_keeps_the_pixels() -> None:
    assert pixels(decode(apply_filter(PNG, "none"))) == pixels(gradient())


def test_grayscale_makes_r_g_b_equal() -> None:
    im = decode(apply_filter(PNG, "grayscale")).convert("RGB")
    assert all(r == g == b for r, g, b in pixels(im))
    assert len(set(pixels(im))) > 1


def test_sepia_on_gray_orders_r_g_b() -> None:
    im = decode(apply_filter(encode(gray_ramp(), "PNG"), "sepia"))
    seen = pixels(im)
    assert all(r >= g >= b for r, g, b in seen)
    assert any(r > b for r, g, b in seen)  # actually tinted, not left gray


def test_blur_reduces_variance() -> None:
    before = stats(PNG).var[0]
    light = stats(apply_filter(PNG, "blur:1")).var[0]
    heavy = stats(apply_filter(PNG, "blur:6")).var[0]
    assert heavy < light < before


def test_pixelate_makes_uniform_blocks() -> None:
    im = decode(apply_filter(PNG, "pixelate:8"))  # 64×48: eight by six whole blocks
    assert im.size == (64, 48)
    for by in range(0, 48, 8):
        for bx in range(0, 64, 8):
            block = im.crop((bx, by, bx + 8, by + 8))
            assert len(set(pixels(block))) == 1, (bx, by)
    assert len(set(pixels(im))) > 1


def test_pixelate_partial_edge_blocks_are_uniform_too() -> None:
    im = decode(apply_filter(encode(gradient(30, 20), "PNG"), "pixelate:8"))
    assert im.size == (30, 20)
    edge = im.crop((24, 16, 30, 20))  # the 6×4 corner left over
    assert len(set(pixels(edge))) == 1


def test_brightness_raises_mean() -> None:
    assert stats(apply_filter(PNG, "brightness:1.3")).mean[0] > stats(PNG).mean[0] + 10
    assert stats(apply_filter(PNG, "brightness:0.5")).mean[0] < stats(PNG).mean[0]


def test_contrast_raises_std() -> None:
    assert stats(apply_filter(PNG, "contrast:1.8")).stddev[0] > stats(PNG).stddev[0] * 1.3
    assert stats(apply_filter(PNG, "contrast:0.5")).stddev[0] < stats(PNG).stddev[0]


# -- formats and metadata -------------------------------------------------------------------

@pytest.mark.parametrize("fmt", ["PNG", "JPEG", "WEBP"])
@pytest.mark.parametrize("spec", list(FILTERS))
def test_format_and_size_preserved(fmt: str, spec: str) -> None:
    data = apply_filter(encode(gradient(), fmt), spec)
    assert image_info(data) == (fmt, 64, 48)


def test_png_alpha_is_kept() -> None:
    im = gradient().convert("RGBA")
    im.putalpha(Image.linear_gradient("L").resize(im.size))
    out = decode(apply_filter(encode(im, "PNG"), "sepia"))
    assert out.mode == "RGBA"
    assert pixels(out.getchannel("A")) == pixels(im.getchannel("A"))


def test_webp_alpha_is_kept() -> None:
    im = gradient().convert("RGBA")
    im.putalpha(0)
    out = decode(apply_filter(encode(im, "WEBP", lossless=True), "blur"))
    assert out.mode == "RGBA"
    assert ImageStat.Stat(out.getchannel("A")).extrema[0] == (0, 0)


def test_gif_first_frame_comes_back_as_png() -> None:
    frames = [Image.new("RGB", (20, 10), colour) for colour in ("red", "blue")]
    gif = encode(frames[0], "GIF", save_all=True, append_images=frames[1:])
    data = apply_filter(gif, "none")
    assert image_info(data) == ("PNG", 20, 10)
    assert decode(data).convert("RGB").getpixel((5, 5)) == (255, 0, 0)


def exif_with_gps() -> Image.Exif:
    exif = Image.Exif()
    exif[0x010F] = "PhoneMaker"  # Make
    exif[0x0110] = "Phone 15"  # Model
    exif[0x0132] = "2024:05:01 12:00:00"  # DateTime
    exif[0x8825] = {1: "N", 2: (48.0, 51.0, 29.0), 3: "E", 4: (2.0, 17.0, 40.0)}  # GPSInfo
    return exif


def test_exif_removed_from_jpeg() -> None:
    data = encode(gradient(), "JPEG", exif=exif_with_gps(), comment=b"taken at home")
    assert decode(data).getexif()  # the fixture does carry EXIF
    for spec in ("none", "sepia"):
        out = apply_filter(data, spec)
        im = decode(out)
        assert not im.getexif()
        assert "exif" not in im.info and "comment" not in im.info
        assert b"PhoneMaker" not in out and b"Exif" not in out and b"taken at home" not in out


def test_metadata_removed_from_png_and_webp() -> None:
    from PIL import PngImagePlugin

    text = PngImagePlugin.PngInfo()
    text.add_text("Location", "48.85 N, 2.29 E")
    png = encode(gradient(), "PNG", pnginfo=text, exif=exif_with_gps())
    webp = encode(gradient(), "WEBP", exif=exif_with_gps(), xmp=b"<x:xmpmeta>secret</x:xmpmeta>")
    for data in (png, webp):
        out = apply_filter(data, "none")
        assert b"PhoneMaker" not in out and b"48.85" not in out and b"secret" not in out
        assert not decode(out).getexif()


def test_exif_orientation_is_applied_before_stripping() -> None:
    exif = Image.Exif()
    exif[0x0112] = 6  # stored landscape, shown rotated a quarter turn clockwise
    data = encode(gradient(64, 48), "JPEG", exif=exif)
    assert image_info(data) == ("JPEG", 48, 64)
    assert decode(apply_filter(data, "none")).size == (48, 64)


def test_colour_profile_is_kept() -> None:
    from PIL import ImageCms

    icc = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()
    out = apply_filter(encode(gradient(), "JPEG", icc_profile=icc), "grayscale")
    assert decode(out).info.get("icc_profile") == icc


# -- refusals -------------------------------------------------------------------------------

def png_claiming(width: int, height: int) -> bytes:
    """A tiny PNG whose header declares ``width``×``height``: a decompression bomb's shape."""
    data = encode(Image.new("L", (1, 1)), "PNG")
    ihdr = b"IHDR" + struct.pack(">II", width, height) + data[24:29]
    return data[:12] + ihdr + struct.pack(">I", zlib.crc32(ihdr)) + data[33:]


def test_header_size_is_read() -> None:
    assert image_info(png_claiming(9000, 7000)) == ("PNG", 9000, 7000)


@pytest.mark.parametrize("call", [
    lambda data: apply_filter(data, "none"),
    lambda data: thumbnail(data),
    lambda data: preview_cells(data, 40),
])
def test_pixel_limit_refused_from_the_header(call) -> None:  # type: ignore[no-untyped-def]
    assert MAX_PIXELS < 8000 * 6000
    with pytest.raises(ImageTooLarge, match="limit") as info:
        call(png_claiming(8000, 6000))
    assert isinstance(info.value, ValueError)


def test_pixel_limit_is_a_parameter() -> None:
    with pytest.raises(ImageTooLarge):
        apply_filter(PNG, "blur", max_pixels=1000)
    assert apply_filter(PNG, "blur", max_pixels=64 * 48)


def test_pillows_own_bomb_limit_is_an_image_too_large() -> None:
    with pytest.raises(ImageTooLarge):
        apply_filter(png_claiming(20000, 20000), "none", max_pixels=10**12)


@pytest.mark.parametrize("data", [b"", b"hello", PNG[:60], encode(gradient(), "BMP")])
def test_unreadable_images(data: bytes) -> None:
    with pytest.raises(UnreadableImage):
        apply_filter(data, "none")


# -- thumbnails and previews ----------------------------------------------------------------

def test_thumbnail_fits_and_keeps_format() -> None:
    data = encode(gradient(400, 300), "JPEG", exif=exif_with_gps())
    out = thumbnail(data, (100, 100))
    assert image_info(out) == ("JPEG", 100, 75)
    assert b"PhoneMaker" not in out
    assert image_info(thumbnail(PNG, (100, 100))) == ("PNG", 64, 48)  # never enlarged


def test_thumbnail_rejects_empty_size() -> None:
    with pytest.raises(ValueError):
        thumbnail(PNG, (0, 10))


def test_preview_grid_dimensions() -> None:
    grid = preview_cells(encode(gradient(200, 100), "PNG"), 40)
    assert len(grid) == 10  # 40 columns × 20 pixel rows = 10 cells of two pixels
    assert all(len(row) == 40 for row in grid)
    top, bottom = grid[0][0]
    assert len(top) == len(bottom) == 3 and all(0 <= c <= 255 for c in top + bottom)


def test_preview_is_aspect_correct_for_tall_images_and_honours_max_rows() -> None:
    tall = encode(gradient(50, 200), "PNG")
    assert len(preview_cells(tall, 20)) == 40
    grid = preview_cells(tall, 20, max_rows=10)
    assert len(grid) == 10 and len(grid[0]) == 5


def test_preview_colours_top_and_bottom() -> None:
    im = Image.new("RGB", (10, 10), (255, 0, 0))
    im.paste((0, 0, 255), (0, 5, 10, 10))
    grid = preview_cells(encode(im, "PNG"), 2)
    assert len(grid) == 1
    assert grid[0][0] == ((255, 0, 0), (0, 0, 255))


def test_preview_puts_transparency_over_the_background() -> None:
    clear = encode(Image.new("RGBA", (8, 8), (255, 0, 0, 0)), "PNG")
    assert preview_cells(clear, 4, background=(10, 20, 30))[0][0] == ((10, 20, 30),) * 2


# -- cheap to import --------------------------------------------------------------------------

def test_import_loads_neither_pillow_nor_textual() -> None:
    code = ("import sys, tenchat.client.imaging\n"
            "print(sorted({m.split('.')[0] for m in sys.modules} & {'PIL', 'textual'}))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
