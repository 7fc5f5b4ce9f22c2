"""A zip's members unpacked while it arrives (imaging.ZipStream), and read_ivis_click using
them only where they are exactly what zipfile reads from the complete file."""

from __future__ import annotations

import io
import zipfile
from pathlib import Path

import numpy as np
import pytest

from imaging import (
    ClickFolderError,
    ZipStream,
    click_photograph,
    partial_click,
    primary_image,
    read_ivis_click,
    same_primary_inputs,
    write_synthetic_click,
)

CHUNKS = (1, 3, 29, 30, 31, 4096, 1 << 30)


def _stream(content: bytes, chunk: int, **limits: int) -> ZipStream:
    stream = ZipStream(
        max_member_bytes=limits.get("max_member_bytes", 1 << 30),
        max_total_bytes=limits.get("max_total_bytes", 1 << 30),
        max_members=limits.get("max_members", 64),
    )
    for at in range(0, len(content), chunk):
        stream.feed(content[at : at + chunk])
    return stream


def _mixed_zip() -> bytes:
    rng = np.random.default_rng(7)
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("click/", b"")  # a directory entry
        archive.writestr("click/ClickInfo.txt", b"Click Number: X\r\n" * 50, zipfile.ZIP_STORED)
        archive.writestr("click/empty.txt", b"", zipfile.ZIP_STORED)
        archive.writestr("click/empty-deflated.txt", b"", zipfile.ZIP_DEFLATED)
        archive.writestr("click/grün µ.TIF", rng.bytes(70_000), zipfile.ZIP_DEFLATED)
        archive.writestr("click/zeros.TIF", bytes(200_000), zipfile.ZIP_DEFLATED)
        archive.writestr("click/raw.TIF", rng.bytes(50_001), zipfile.ZIP_STORED)
    return buffer.getvalue()


@pytest.mark.parametrize("chunk", CHUNKS)
def test_every_member_streams_as_zipfile_reads_it(chunk: int) -> None:
    content = _mixed_zip()
    stream = _stream(content, chunk)
    assert stream.stopped is None and stream.ended
    with zipfile.ZipFile(io.BytesIO(content)) as archive:
        infos = archive.infolist()
        assert sorted(stream.members) == sorted(i.header_offset for i in infos)
        for info in infos:
            member = stream.members[info.header_offset]
            assert member.name == info.orig_filename
            assert (member.method, member.flags) == (info.compress_type, info.flag_bits)
            assert (member.compress_size, member.file_size) == (
                info.compress_size,
                info.file_size,
            )
            assert member.crc == member.declared_crc == info.CRC
            assert member.data == archive.read(info)


def test_sizes_after_the_data_zip64_or_not_a_zip_stop_quietly() -> None:
    class Unseekable(io.RawIOBase):  # zipfile then writes sizes after each member's data
        def __init__(self) -> None:
            self.data = bytearray()

        def writable(self) -> bool:
            return True

        def write(self, b: bytes) -> int:  # type: ignore[override]
            self.data += b
            return len(b)

    sink = Unseekable()
    with zipfile.ZipFile(sink, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("a.txt", b"a" * 1000)
    assert _stream(bytes(sink.data), 7).stopped == "sizes after the data or ZIP64"

    buffer = io.BytesIO()
    with (
        zipfile.ZipFile(buffer, "w") as archive,
        archive.open("a.txt", "w", force_zip64=True) as handle,
    ):
        handle.write(b"a" * 1000)
    assert _stream(buffer.getvalue(), 7).stopped == "sizes after the data or ZIP64"

    assert _stream(b"MZ self-extractor" + _mixed_zip(), 64).stopped == "not a local file header"
    assert _stream(b"PK\x03\x04garbage", 64).members == {}  # incomplete: nothing, no error


def test_stops_past_the_limits_and_on_lying_deflate() -> None:
    content = _mixed_zip()
    assert _stream(content, 4096, max_member_bytes=100_000).stopped == "past the zip limits"
    assert _stream(content, 4096, max_total_bytes=100_000).stopped == "past the zip limits"
    assert _stream(content, 4096, max_members=3).stopped == "past the zip limits"

    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("zeros.TIF", bytes(100_000))
    lying = bytearray(buffer.getvalue())
    lying[22:26] = (1000).to_bytes(4, "little")  # local header: uncompressed size 1000
    stream = _stream(bytes(lying), 4096)
    assert stream.stopped == "deflated member larger than its header says"
    assert stream.members == {}


# --- read_ivis_click with streamed members ---------------------------------------------


@pytest.fixture(scope="module")
def click_folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("click")
    return write_synthetic_click(folder, binning=8, noise=True, seed=5).path


def _zip_click(folder: Path, method: int) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", method) as archive:
        for member in sorted(folder.iterdir()):
            archive.write(member, f"{folder.name}/{member.name}")
    return buffer.getvalue()


def _same_click(a: object, b: object) -> None:
    for role in ("luminescent", "photograph", "readbias", "dark", "corrected"):
        fa, fb = getattr(a, role), getattr(b, role)
        assert (fa is None) == (fb is None)
        if fa is not None:
            assert np.array_equal(fa.data, fb.data) and fa.data.dtype == fb.data.dtype
            assert (fa.filename, fa.binning) == (fb.filename, fb.binning)
    for attr in ("click_number", "settings", "animal_numbers", "rois", "labels"):
        assert getattr(a, attr) == getattr(b, attr)


@pytest.mark.parametrize("method", [zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED])
def test_click_read_from_streamed_members_is_the_click_read_from_the_file(
    click_folder: Path, tmp_path: Path, method: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    content = _zip_click(click_folder, method)
    path = tmp_path / "click.zip"
    path.write_bytes(content)
    expected = read_ivis_click(path)
    stream = _stream(content, 65_536)
    assert stream.stopped is None

    def no_file_reads(*_: object, **__: object) -> bytes:
        raise AssertionError("a member was read from the file although it had streamed")

    monkeypatch.setattr(zipfile.ZipFile, "read", no_file_reads)
    _same_click(read_ivis_click(path, streamed=stream.members), expected)


def test_a_streamed_member_that_is_not_the_directory_entry_is_not_used(
    click_folder: Path, tmp_path: Path
) -> None:
    """The local header names another file than the directory does: zipfile refuses the
    member, and so does the read with streamed members (it reads the file, as zipfile)."""
    content = bytearray(_zip_click(click_folder, zipfile.ZIP_STORED))
    with zipfile.ZipFile(io.BytesIO(bytes(content))) as archive:
        info = next(i for i in archive.infolist() if i.filename.endswith("luminescent.TIF"))
    at = info.header_offset + 30 + len(info.orig_filename.encode()) - len("TIF")
    content[at : at + 3] = b"TIX"  # the local header's name only
    path = tmp_path / "lying.zip"
    path.write_bytes(bytes(content))
    stream = _stream(bytes(content), 65_536)
    assert stream.members[info.header_offset].name.endswith("luminescent.TIX")
    with pytest.raises(ClickFolderError, match=r"luminescent\.TIF' is corrupt") as plain:
        read_ivis_click(path)
    with pytest.raises(ClickFolderError, match=r"luminescent\.TIF' is corrupt") as early:
        read_ivis_click(path, streamed=stream.members)
    assert str(early.value) == str(plain.value)


def test_a_corrupt_member_is_refused_with_or_without_streaming(
    click_folder: Path, tmp_path: Path
) -> None:
    content = bytearray(_zip_click(click_folder, zipfile.ZIP_STORED))
    with zipfile.ZipFile(io.BytesIO(bytes(content))) as archive:
        info = next(i for i in archive.infolist() if i.filename.endswith("photograph.TIF"))
    content[info.header_offset + 30 + len(info.orig_filename.encode()) + 500] ^= 0xFF
    path = tmp_path / "corrupt.zip"
    path.write_bytes(bytes(content))
    stream = _stream(bytes(content), 4096)
    member = stream.members[info.header_offset]
    assert member.crc != member.declared_crc  # streamed, but not what the directory says
    with pytest.raises(ClickFolderError, match=r"photograph\.TIF' is corrupt.*CRC") as plain:
        read_ivis_click(path)
    with pytest.raises(ClickFolderError, match=r"photograph\.TIF' is corrupt.*CRC") as early:
        read_ivis_click(path, streamed=stream.members)
    assert str(early.value) == str(plain.value)


def test_the_photograph_is_known_once_clickinfo_and_it_are_in(click_folder: Path) -> None:
    files = {p.name: p.read_bytes() for p in click_folder.iterdir()}
    whole = read_ivis_click(click_folder)
    assert whole.photograph is not None
    assert click_photograph({"photograph.TIF": files["photograph.TIF"]}, name="c") is None
    assert click_photograph({"ClickInfo.txt": files["ClickInfo.txt"]}, name="c") is None
    broken = {"ClickInfo.txt": files["ClickInfo.txt"], "photograph.TIF": b"II*\0junk"}
    assert click_photograph(broken, name="c") is None  # the whole read says what is wrong
    early = click_photograph(
        {"ClickInfo.txt": files["ClickInfo.txt"], "photograph.TIF": files["photograph.TIF"]},
        name="c",
    )
    assert early is not None
    assert np.array_equal(early.photograph.data, whole.photograph.data)
    assert early.photograph.binning == whole.photograph.binning
    assert early.animal_numbers == whole.animal_numbers
    assert early.luminescent_binning == whole.luminescent.binning


def test_a_corrupt_deflated_member_stops_the_stream_quietly() -> None:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("a.txt", b"Animal Number: 3466, 3467\r\n" * 5000)
    for at in range(40, 200, 7):  # the deflate data starts at 30 + len("a.txt")
        content = bytearray(buffer.getvalue())
        content[at : at + 4] = b"\xff\x00\xff\x00"
        stream = _stream(bytes(content), 4096)  # never raises
        member = stream.members.get(0)
        assert stream.stopped is not None or (
            member is not None and member.crc != member.declared_crc
        )


def test_a_partial_click_calibrates_like_the_whole_when_nothing_it_reads_is_missing(
    click_folder: Path,
) -> None:
    files = {p.name: p.read_bytes() for p in click_folder.iterdir()}
    whole = read_ivis_click(click_folder, name=click_folder.name)
    assert partial_click({"ClickInfo.txt": files["ClickInfo.txt"]}, name=click_folder.name) is None
    some = {k: files[k] for k in ("ClickInfo.txt", "AnalyzedClickInfo.txt", "luminescent.TIF")}
    partial = partial_click(some, name=click_folder.name)
    assert partial is not None and partial.readbias is None and partial.photograph is None
    assert whole.settings.read_bias_level is not None  # so the bias frame is not read
    assert same_primary_inputs(partial, whole)
    assert np.array_equal(primary_image(partial).radiance, primary_image(whole).radiance)
    other = {**some, "luminescent.TIF": files["readbias.TIF"]}  # other counts, same name
    assert not same_primary_inputs(partial_click(other, name=click_folder.name), whole)  # type: ignore[arg-type]


def test_living_image_corrected_clicks_are_never_taken_as_calibrated_alike(
    ivis_reference_folder: Path,
) -> None:
    click = read_ivis_click(ivis_reference_folder)
    assert click.corrected is not None
    assert not same_primary_inputs(click, click)
