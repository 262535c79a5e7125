"""Image filters, thumbnails and terminal previews for images we post, on bytes in and bytes out.

Pure processing: no Textual, no network. Pillow is imported inside the functions, so importing
this module costs nothing until an image is actually touched.

Every function that returns image bytes re-encodes the pixels from scratch, so EXIF (GPS
position, camera serial, timestamps), XMP, comments and text chunks never leave the device.

Exceptions::

    ImageError (a ValueError)
    ├── FilterError       an unknown filter name or a bad strength
    ├── UnreadableImage   not a PNG, JPEG, WebP or GIF, or truncated
    └── ImageTooLarge     more pixels than ``max_pixels`` (decompression bombs)
"""

from __future__ import annotations

import io
import math
import warnings
from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from PIL import Image

__all__ = [
    "FILTERS",
    "MAX_PIXELS",
    "ImageError",
    "FilterError",
    "UnreadableImage",
    "ImageTooLarge",
    "parse_filter",
    "apply_filter",
    "thumbnail",
    "image_info",
    "preview_cells",
]

# A 40-megapixel image is already ~160 MB as RGBA once decoded; anything larger is refused
# from its header, before a single pixel is decompressed.
MAX_PIXELS = 40_000_000

# The only decoders we let Pillow try: fewer parsers exposed to bytes from strangers.
_FORMATS = ("PNG", "JPEG", "WEBP", "GIF")

JPEG_QUALITY = 90
WEBP_QUALITY = 90

RGB = tuple[int, int, int]


class ImageError(ValueError):
    """An image could not be processed as asked."""


class FilterError(ImageError):
    """An unknown filter name or a strength out of range; the message lists the valid filters."""


class UnreadableImage(ImageError):
    """The bytes are not a PNG, JPEG, WebP or GIF image we can decode."""


class ImageTooLarge(ImageError):
    """The image declares more pixels than allowed."""


@dataclass(frozen=True, slots=True)
class _Strength:
    """The optional ``:value`` of a parameterised filter."""

    label: str  # what the value means, for messages: "radius", "block size", "factor"
    default: float
    low: float  # inclusive bounds
    high: float
    integer: bool = False


_STRENGTHS: dict[str, _Strength] = {
    "blur": _Strength("radius", 2.0, 0.1, 50.0),
    "pixelate": _Strength("block size", 8, 2, 256, integer=True),
    "brightness": _Strength("factor", 1.2, 0.1, 4.0),
    "contrast": _Strength("factor", 1.3, 0.1, 4.0),
}

FILTERS: Mapping[str, str] = MappingProxyType({
    "none": "no change (still strips metadata)",
    "grayscale": "shades of gray",
    "sepia": "warm brown tones of an old photograph",
    "blur": "Gaussian blur; blur:RADIUS in pixels (default 2, 0.1 to 50)",
    "pixelate": "coarse square blocks; pixelate:SIZE in pixels (default 8, 2 to 256)",
    "brightness": "lighter or darker; brightness:FACTOR (default 1.2, 0.1 to 4, 1 = unchanged)",
    "contrast": "more or less contrast; contrast:FACTOR (default 1.3, 0.1 to 4, 1 = unchanged)",
})


def _valid_filters() -> str:
    return ", ".join(f"{name}[:{_STRENGTHS[name].label.replace(' ', '_')}]"
                     if name in _STRENGTHS else name for name in FILTERS)


def parse_filter(spec: str) -> tuple[str, float | int | None]:
    """Split ``"name"`` or ``"name:value"`` into the filter name and its strength.

    A parameterised filter given without a value gets its default; the others return ``None``.
    Raises :class:`FilterError` for an unknown name or a value that isn't a number in range.
    """
    name, sep, raw = spec.strip().partition(":")
    name, raw = name.strip().lower(), raw.strip()
    if name not in FILTERS:
        raise FilterError(f"unknown filter {name!r}; valid filters: {_valid_filters()}")
    strength = _STRENGTHS.get(name)
    if strength is None:
        if sep:
            raise FilterError(f"filter {name!r} takes no value (got {raw!r}); "
                              f"valid filters: {_valid_filters()}")
        return name, None
    if not sep:
        default = strength.default
        return name, int(default) if strength.integer else default
    kind = "a whole number" if strength.integer else "a number"
    bounds = f"{strength.low:g} to {strength.high:g}"
    try:
        value: float = int(raw) if strength.integer else float(raw)
    except ValueError:
        raise FilterError(f"{name} {strength.label} must be {kind} from {bounds}, not {raw!r}; "
                          f"valid filters: {_valid_filters()}") from None
    if not (math.isfinite(value) and strength.low <= value <= strength.high):
        raise FilterError(f"{name} {strength.label} must be {kind} from {bounds}, not {raw!r}; "
                          f"valid filters: {_valid_filters()}")
    return name, value


def apply_filter(data: bytes, spec: str, *, max_pixels: int = MAX_PIXELS) -> bytes:
    """Apply the filter ``spec`` (see :func:`parse_filter`) to an encoded image.

    PNG, JPEG and WebP come back in their own format (JPEG and WebP at quality 90, PNG and WebP
    keeping their alpha channel); a GIF's first frame comes back as PNG, since filters make more
    colours than a GIF palette holds. The EXIF orientation is applied to the pixels, then all
    metadata is dropped: no GPS position, camera details or timestamps in a posted image.

    Raises :class:`FilterError`, :class:`UnreadableImage`, or :class:`ImageTooLarge` when the
    image has more than ``max_pixels`` pixels.
    """
    name, value = parse_filter(spec)  # a bad spec fails before any decoding
    im, fmt, icc = _decode(data, max_pixels=max_pixels)
    alpha = im.getchannel("A") if im.mode == "RGBA" else None
    rgb = _FILTER_FUNCS[name](im.convert("RGB"), value)
    if alpha is not None:
        rgb.putalpha(alpha)
    return _encode(rgb, fmt, icc)


def thumbnail(data: bytes, max_size: tuple[int, int] = (320, 320), *,
              max_pixels: int = MAX_PIXELS) -> bytes:
    """A copy of the image fitting within ``max_size`` (never enlarged), in the same format
    and with metadata stripped as in :func:`apply_filter`."""
    width, height = max_size
    if width < 1 or height < 1:
        raise ValueError(f"thumbnail size must be positive, not {max_size!r}")
    im, fmt, icc = _decode(data, max_pixels=max_pixels, draft_size=max_size)
    im.thumbnail(max_size)
    return _encode(im, fmt, icc)


def image_info(data: bytes) -> tuple[str, int, int]:
    """``(format, width, height)`` read from the header alone, e.g. ``("JPEG", 4032, 3024)``.

    Width and height are as displayed, after the EXIF orientation. No pixel limit applies,
    since nothing is decoded.
    """
    im = _open(data)
    width, height = im.size
    if _orientation(im) in (5, 6, 7, 8):  # turned a quarter: the sides swap
        width, height = height, width
    return im.format or "", width, height


def preview_cells(data: bytes, columns: int, *, max_rows: int | None = None,
                  background: RGB = (0, 0, 0),
                  max_pixels: int = MAX_PIXELS) -> list[list[tuple[RGB, RGB]]]:
    """A half-block preview: rows of cells, each ``(top_colour, bottom_colour)``.

    Meant to be drawn as "▀" with the top colour as foreground and the bottom one as background.
    A terminal cell is about twice as tall as it is wide, so each cell holds one pixel column and
    two pixel rows, and the grid keeps the image's proportions: ``columns`` wide (fewer if
    ``max_rows`` would otherwise be exceeded) and about ``height / width * columns / 2`` rows.
    Transparent areas are shown over ``background``.
    """
    if columns < 1:
        raise ValueError(f"columns must be positive, not {columns}")
    if max_rows is not None and max_rows < 1:
        raise ValueError(f"max_rows must be positive, not {max_rows}")
    from PIL import Image

    im, _, _ = _decode(data, max_pixels=max_pixels, draft_size=(columns, columns))
    width, height = im.size
    rows = max(1, round(height * columns / width / 2))
    if max_rows is not None and rows > max_rows:
        columns = max(1, round(columns * max_rows / rows))
        rows = max_rows
    if im.mode == "RGBA":
        flat = Image.new("RGB", im.size, background)
        flat.paste(im, mask=im.getchannel("A"))
        im = flat
    # BOX averages exactly the pixels under each cell: no ringing across sharp edges.
    pixels = im.resize((columns, rows * 2), Image.Resampling.BOX).tobytes()

    def colour(x: int, y: int) -> RGB:
        i = (y * columns + x) * 3
        return pixels[i], pixels[i + 1], pixels[i + 2]

    return [[(colour(x, 2 * r), colour(x, 2 * r + 1)) for x in range(columns)]
            for r in range(rows)]


# -- decoding and encoding ------------------------------------------------------------------

_TRANSPOSE_BY_ORIENTATION = {2: "FLIP_LEFT_RIGHT", 3: "ROTATE_180", 4: "FLIP_TOP_BOTTOM",
                             5: "TRANSPOSE", 6: "ROTATE_270", 7: "TRANSVERSE", 8: "ROTATE_90"}


def _open(data: bytes) -> Image.Image:
    """Read the header only."""
    from PIL import Image, UnidentifiedImageError

    with warnings.catch_warnings():
        # Pillow's own bomb check only warns below twice its limit; make that an error too.
        warnings.simplefilter("error", Image.DecompressionBombWarning)
        try:
            return Image.open(io.BytesIO(data), formats=_FORMATS)
        except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
            raise ImageTooLarge(str(exc)) from None
        except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as exc:
            raise UnreadableImage(f"not a PNG, JPEG, WebP or GIF image ({exc})") from None


def _orientation(im: Image.Image) -> int:
    try:
        return int(im.getexif().get(0x0112, 1))  # 0x0112: the EXIF Orientation tag
    except Exception:  # a malformed EXIF block must not stop the image itself
        return 1


def _decode(data: bytes, *, max_pixels: int,
            draft_size: tuple[int, int] | None = None) -> tuple[Image.Image, str, bytes | None]:
    """Decode to an RGB or RGBA image turned upright, checking the size before decoding.

    Returns the image, its format and the ICC colour profile when it still describes the pixels.
    ``draft_size`` lets a JPEG decode at a reduced scale when only a small image is wanted.
    """
    from PIL import Image

    im = _open(data)
    width, height = im.size
    if width * height > max_pixels:
        raise ImageTooLarge(f"image is {width}×{height} = {width * height:,} pixels; "
                            f"the limit is {max_pixels:,}")
    fmt = im.format or "PNG"
    orientation = _orientation(im)
    if draft_size is not None:
        if orientation in (5, 6, 7, 8):
            draft_size = (draft_size[1], draft_size[0])
        im.draft(None, draft_size)
    try:
        im.load()  # a GIF stays on its first frame
    except (OSError, SyntaxError, ValueError) as exc:
        raise UnreadableImage(f"damaged {fmt} image ({exc})") from None
    icc = im.info.get("icc_profile") if im.mode in ("RGB", "RGBA") else None
    if _has_alpha(im):
        im = im.convert("RGBA")
    elif im.mode != "RGB":
        im = im.convert("RGB")
    if transpose := _TRANSPOSE_BY_ORIENTATION.get(orientation):
        im = im.transpose(Image.Transpose[transpose])
    return im, fmt, icc


def _has_alpha(im: Image.Image) -> bool:
    return im.mode in ("RGBA", "LA", "PA", "La", "RGBa") or "transparency" in im.info


def _encode(im: Image.Image, fmt: str, icc: bytes | None) -> bytes:
    # Pillow carries comments and text from im.info into some encoders: start from nothing.
    im.info = {}
    # The colour profile is kept: it is not about the person, and without it a wide-gamut
    # photo (Display P3) would show with washed-out colours.
    extra = {"icc_profile": icc} if icc else {}
    out = io.BytesIO()
    if fmt == "JPEG":
        im.convert("RGB").save(out, "JPEG", quality=JPEG_QUALITY, **extra)
    elif fmt == "WEBP":
        im.save(out, "WEBP", quality=WEBP_QUALITY, **extra)
    else:  # PNG, and a GIF's first frame
        im.save(out, "PNG", **extra)
    return out.getvalue()


# -- the filters: an RGB image and the strength in, an RGB image out -------------------------

def _none(im: Image.Image, value: float | None) -> Image.Image:
    return im


def _grayscale(im: Image.Image, value: float | None) -> Image.Image:
    return im.convert("L").convert("RGB")


# The usual sepia tone matrix (rows give R, G, B from R, G, B); its rows sum to 1.351, 1.203
# and 0.937, so gray stays ordered R ≥ G ≥ B after clipping.
_SEPIA = (0.393, 0.769, 0.189, 0,
          0.349, 0.686, 0.168, 0,
          0.272, 0.534, 0.131, 0)


def _sepia(im: Image.Image, value: float | None) -> Image.Image:
    return im.convert("RGB", _SEPIA)


def _blur(im: Image.Image, value: float | None) -> Image.Image:
    from PIL import ImageFilter

    return im.filter(ImageFilter.GaussianBlur(float(value or 0)))


def _pixelate(im: Image.Image, value: float | None) -> Image.Image:
    from PIL import Image

    block = int(value or 1)
    width, height = im.size
    # reduce() averages exact block×block squares from the top-left; scaling back by the same
    # whole factor keeps every block one colour, and the crop trims the partial edge blocks.
    small = im.reduce(block)
    big = small.resize((small.width * block, small.height * block), Image.Resampling.NEAREST)
    return big.crop((0, 0, width, height))


def _brightness(im: Image.Image, value: float | None) -> Image.Image:
    from PIL import ImageEnhance

    return ImageEnhance.Brightness(im).enhance(float(value or 1))


def _contrast(im: Image.Image, value: float | None) -> Image.Image:
    from PIL import ImageEnhance

    return ImageEnhance.Contrast(im).enhance(float(value or 1))


_FILTER_FUNCS = {
    "none": _none,
    "grayscale": _grayscale,
    "sepia": _sepia,
    "blur": _blur,
    "pixelate": _pixelate,
    "brightness": _brightness,
    "contrast": _contrast,
}
