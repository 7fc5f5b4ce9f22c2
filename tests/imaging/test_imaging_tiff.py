"""Validated TIFF reader: formats it must read and hostile files it must refuse."""

from __future__ import annotations

import io
import struct

import numpy as np
import pytest
import tifffile
from numpy.testing import assert_array_equal

from imaging import ImageLimits, ImageTooLargeError, ImagingError, InvalidImageError, read_tiff


def _tiff(data: np.ndarray, **kwargs: object) -> bytes:
    buffer = io.BytesIO()
    tifffile.imwrite(buffer, data, **kwargs)
    return buffer.getvalue()


@pytest.mark.parametrize("dtype", ["uint8", "uint16", "int32", "float32"])
@pytest.mark.parametrize("byteorder", ["<", ">"])
def test_reads_every_dtype_in_both_byte_orders(dtype: str, byteorder: str) -> None:
    data = (np.arange(35).reshape(5, 7) * 3).astype(dtype)
    image = read_tiff(_tiff(data, byteorder=byteorder), name="x.tif")
    assert image.byteorder == byteorder
    assert image.data.dtype == np.dtype(dtype)
    assert image.data.dtype.isnative
    assert_array_equal(image.data, data)
    assert not image.data.flags.writeable


def test_multi_page_is_stacked(tmp_path) -> None:
    data = np.arange(3 * 4 * 5, dtype=np.uint16).reshape(3, 4, 5)
    path = tmp_path / "stack.tif"
    tifffile.imwrite(path, data, photometric="minisblack")
    image = read_tiff(path)
    assert image.pages == 3
    assert_array_equal(image.data, data)
    assert image.source == "stack.tif"


def test_ome_pixel_size_is_read() -> None:
    content = _tiff(
        np.zeros((4, 5), np.uint16),
        ome=True,
        metadata={"PhysicalSizeX": 10.0, "PhysicalSizeY": 20.0},
    )
    image = read_tiff(content)
    assert image.ome_xml is not None
    assert image.physical_pixel_size_cm == pytest.approx((20e-4, 10e-4))


def test_reference_big_endian_background(ivis_reference_folder) -> None:
    image = read_tiff(ivis_reference_folder / "background.TIF")
    assert image.byteorder == ">"
    assert image.data.shape == (240, 240)
    assert int(image.data.max()) == 65534  # tifffile's own decode, checked with `file`


def test_wrong_magic_names_the_file() -> None:
    with pytest.raises(InvalidImageError, match=r"photo\.png: not a TIFF"):
        read_tiff(b"\x89PNG\r\n\x1a\n" + bytes(100), name="photo.png")


def test_truncated_file_is_rejected() -> None:
    content = _tiff(np.ones((64, 64), np.uint16))
    with pytest.raises(InvalidImageError, match=r"cut\.tif"):
        read_tiff(content[: len(content) // 2], name="cut.tif")


def _patch_tag(content: bytes, tag_name: str, value: int) -> bytes:
    with tifffile.TiffFile(io.BytesIO(content)) as tif:
        tag = tif.pages[0].tags[tag_name]
        offset, dtype = tag.valueoffset, tag.dtype
    fmt = "<H" if dtype == 3 else "<I"
    patched = bytearray(content)
    patched[offset : offset + struct.calcsize(fmt)] = struct.pack(fmt, value)
    return bytes(patched)


def test_absurd_dimensions_are_refused_before_decoding() -> None:
    content = _tiff(np.ones((4, 4), np.uint16))
    content = _patch_tag(content, "ImageWidth", 60000)
    content = _patch_tag(content, "ImageLength", 60000)
    with pytest.raises(ImageTooLargeError, match="above the limit"):
        read_tiff(content, name="huge.tif")


def test_declared_size_larger_than_stored_data_is_refused() -> None:
    content = _tiff(np.ones((4, 4), np.uint16))
    content = _patch_tag(content, "ImageWidth", 400)
    with pytest.raises(InvalidImageError, match=r"liar\.tif"):
        read_tiff(content, name="liar.tif")


def test_pixel_and_page_limits() -> None:
    content = _tiff(np.ones((3, 100, 100), np.uint8), photometric="minisblack")
    with pytest.raises(ImageTooLargeError, match="pixels"):
        read_tiff(content, limits=ImageLimits(max_pixels=20_000))
    with pytest.raises(ImageTooLargeError, match="pages"):
        read_tiff(content, limits=ImageLimits(max_pages=2))
    with pytest.raises(ImageTooLargeError, match="bytes"):
        read_tiff(content, limits=ImageLimits(max_file_bytes=1000))


def test_decompression_bomb_is_refused() -> None:
    content = _tiff(np.zeros((2000, 2000), np.uint8), compression="zlib")  # ~860:1
    with pytest.raises(ImageTooLargeError, match="decompression bomb"):
        read_tiff(content, name="bomb.tif", limits=ImageLimits(max_compression_ratio=100))
    with pytest.raises(ImageTooLargeError, match="bytes when decoded"):
        read_tiff(content, name="bomb.tif", limits=ImageLimits(max_bytes=2**20))


def test_looping_page_chain_is_refused() -> None:
    content = bytearray(_tiff(np.ones((2, 8, 8), np.uint8), photometric="minisblack"))
    with tifffile.TiffFile(io.BytesIO(bytes(content))) as tif:
        first, second = tif.pages[0].offset, tif.pages[1].offset
    (n_tags,) = struct.unpack_from("<H", content, second)
    struct.pack_into("<I", content, second + 2 + 12 * n_tags, first)
    with pytest.raises(ImagingError, match=r"loop\.tif"):
        read_tiff(bytes(content), name="loop.tif")


def test_unsupported_dtype_is_refused() -> None:
    content = _tiff(np.zeros((4, 4), np.complex64))
    with pytest.raises(InvalidImageError, match=r"sample type|unsupported"):
        read_tiff(content, name="c.tif")


def test_missing_file() -> None:
    with pytest.raises(InvalidImageError, match=r"nope\.tif"):
        read_tiff("/nonexistent/nope.tif")


def test_reading_tiffs_on_many_threads_leaves_other_threads_warnings_alone() -> None:
    """Uploads are read on several threads at once: a read must neither turn another
    thread's warnings into errors while it runs nor leave the process's warning filters
    changed after it (``warnings.catch_warnings`` is process-wide, not per thread)."""
    import threading
    import time
    import warnings

    content = _tiff(np.arange(256 * 256, dtype=np.uint16).reshape(256, 256))
    before = list(warnings.filters)
    stop = threading.Event()
    failures: list[BaseException] = []

    def read_until_stopped() -> None:
        try:
            while not stop.is_set():
                read_tiff(content)
        except BaseException as exc:  # pragma: no cover - reported below
            failures.append(exc)

    readers = [threading.Thread(target=read_until_stopped) for _ in range(3)]
    for reader in readers:
        reader.start()
    raised = 0
    try:
        with warnings.catch_warnings(record=True):  # this thread's warnings: recorded
            warnings.simplefilter("always")
            for _ in range(2000):
                time.sleep(0.0002)  # let the readers run between two warnings
                try:
                    warnings.warn("an unrelated warning", UserWarning, stacklevel=1)
                except UserWarning:
                    raised += 1
    finally:
        stop.set()
        for reader in readers:
            reader.join(30)
    assert failures == []
    assert raised == 0, f"{raised} of 2000 warnings of another thread were raised as errors"
    assert list(warnings.filters) == before


@pytest.mark.parametrize("byteorder", ["<", ">"])
@pytest.mark.parametrize(
    ("dtype", "options"),
    [
        ("uint16", {}),
        ("float32", {}),
        ("int32", {}),
        ("uint8", {"rowsperstrip": 7}),
        ("uint16", {"compression": "zlib"}),
        ("uint16", {"compression": "zlib", "predictor": True}),
    ],
)
def test_pixels_read_in_place_are_tifffiles(
    byteorder: str, dtype: str, options: dict[str, object]
) -> None:
    """Uncompressed frames in one piece are read as an array over the file's bytes; every
    layout gives tifffile's own pixels, in native byte order, read-only."""
    rng = np.random.default_rng(3)
    pixels = (rng.random((61, 97)) * 1000).astype(dtype)
    buffer = io.BytesIO()
    tifffile.imwrite(buffer, pixels, byteorder=byteorder, **options)  # type: ignore[arg-type]
    content = buffer.getvalue()
    image = read_tiff(content)
    assert np.array_equal(image.data, tifffile.imread(io.BytesIO(content)))
    assert np.array_equal(image.data, pixels)
    assert image.data.dtype == np.dtype(dtype) and image.data.dtype.isnative
    assert not image.data.flags.writeable


def test_a_plain_frame_is_not_copied_out_by_tifffile(monkeypatch: pytest.MonkeyPatch) -> None:
    pixels = np.arange(64 * 80, dtype="<u2").reshape(64, 80)
    buffer = io.BytesIO()
    tifffile.imwrite(buffer, pixels)
    content = buffer.getvalue()

    def copied(*_: object, **__: object) -> np.ndarray:
        raise AssertionError("tifffile decoded a frame that lies in the file in one piece")

    monkeypatch.setattr(tifffile.TiffPage, "asarray", copied)
    image = read_tiff(content)
    assert np.array_equal(image.data, pixels)
    assert np.shares_memory(image.data, np.frombuffer(content, dtype=np.uint8))
