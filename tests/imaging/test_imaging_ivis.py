"""Living Image text parsing and the IVIS export-folder reader (folder or zip)."""

from __future__ import annotations

import io
import shutil
import stat
import zipfile
from pathlib import Path

import numpy as np
import pytest

from imaging import (
    ClickFolderError,
    InvalidImageError,
    ZipLimits,
    parse_clickinfo,
    read_ivis_click,
)


def test_parser_handles_crlf_cp1252_comments_and_duplicate_keys() -> None:
    text = (
        "*** ClickNumber:\tAB1\r\n"
        "# a comment\r\n"
        "*** luminescent image:\tlum.TIF\r\n"
        "Binning Factor:\t4\r\n"
        "Comment1:\tTumour 5 µm² caf\xe9\r\n"
        "Unknown Key:\tkept\r\n"
        "Unknown Key:\tagain\r\n"
        'Motor Driver Number:\t0\t\t# ("A") note\r\n'
        "*** photographic image:\tphoto.TIF\r\n"
        "Binning Factor:\t2\r\n"
    )
    info = parse_clickinfo(text.encode("cp1252", errors="replace"), source="ClickInfo.txt")
    lum = info.section("luminescent image")
    assert lum is not None and lum.value == "lum.TIF"
    assert lum.get("binning factor") == "4"
    assert lum.get_all("Unknown Key") == ("kept", "again")
    assert lum.get("Comment1").endswith("café")
    assert lum.get("Motor Driver Number") == "0"
    assert info.section("photographic image").get("Binning Factor") == "2"


def test_parser_refuses_non_living_image_text() -> None:
    with pytest.raises(ClickFolderError, match=r"notes\.txt"):
        parse_clickinfo("hello: world\n", source="notes.txt")


def test_reference_click(ivis_reference_folder: Path) -> None:
    click = read_ivis_click(ivis_reference_folder)
    s = click.settings
    # Values as printed in ClickInfo.txt of the reference folder.
    assert (s.exposure_s, s.binning, s.f_number, s.fov_cm) == (40.0, 8, 1.0, 22.4)
    assert s.read_bias_level == pytest.approx(496.628)
    assert click.luminescent.data.shape == (240, 240)
    assert click.photograph is not None and click.photograph.binning == 2
    assert click.photograph.data.shape == (960, 960)
    assert click.readbias is not None and click.readbias.data_multiplier == 10
    assert click.dark is not None and click.dark.filename == "background.TIF"
    assert click.corrected is not None and click.corrected.data.dtype == np.float32
    assert click.sensor_pixels == 1920
    assert click.sensor_pixel_cm == pytest.approx(0.011666666667)
    assert click.animal_numbers == ("3466", "3467", "3468", "3469", "3470")
    assert click.labels["View"] == "Dorsal"
    cam = click.camera
    assert cam is not None
    assert cam.c_ccd_for(22.4, 1) == 7.223e5
    assert cam.c_ccd_for(4, 8) == 4.633e7
    assert cam.saturation_counts == 61000
    ff = cam.flat_field_for(22.4, 1)
    assert ff is not None and ff.shelf == "D" and ff.y0_cm == pytest.approx(0.602904)
    assert [r.name for r in click.rois] == [f"ROI {i}" for i in range(1, 6)]
    assert click.rois[0].xc == pytest.approx(225.944522555256)
    assert click.rois[0].attributes["ColorTable"] == "BlueRedGreen"
    # unknown keys are kept
    graph = click.clickinfo.section("Graph Controls")
    assert graph is not None and graph.get("Color Table") == "Rainbow"


def _zip_folder(folder: Path, *, prefix: str = "DG/") -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as zf:
        for file in sorted(folder.iterdir()):
            zf.write(file, prefix + file.name)
    return buffer.getvalue()


@pytest.mark.parametrize("prefix", ["DG20220105114235/", ""])
def test_zip_equals_folder(ivis_reference_folder: Path, tmp_path: Path, prefix: str) -> None:
    content = _zip_folder(ivis_reference_folder, prefix=prefix)
    from_bytes = read_ivis_click(content, name="upload.zip")
    path = tmp_path / "click.zip"
    path.write_bytes(content)
    from_file = read_ivis_click(path)
    folder = read_ivis_click(ivis_reference_folder)
    for click in (from_bytes, from_file):
        np.testing.assert_array_equal(click.luminescent.data, folder.luminescent.data)
        assert click.rois == folder.rois


def _zip(members: dict[str, bytes], *, symlink: str | None = None) -> bytes:
    buffer = io.BytesIO()
    # bzip2 reaches far beyond deflate's ~1032:1, as zip bombs do
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_BZIP2) as zf:
        for name, data in members.items():
            zf.writestr(name, data)
        if symlink:
            info = zipfile.ZipInfo(symlink)
            info.external_attr = (stat.S_IFLNK | 0o777) << 16
            zf.writestr(info, "/etc/passwd")
    return buffer.getvalue()


@pytest.mark.parametrize(
    ("members", "match"),
    [
        ({"../evil/ClickInfo.txt": b"x"}, "unsafe member"),
        ({"/abs/ClickInfo.txt": b"x"}, "unsafe member"),
        ({"ClickInfo.txt": b"\0" * 10_000_000}, "zip bomb"),
        ({"a/ClickInfo.txt": b"x", "b/luminescent.TIF": b"y"}, "single top-level folder"),
        ({"notes.txt": b"nothing"}, "no ClickInfo.txt"),
    ],
)
def test_hostile_or_incomplete_zip(members: dict[str, bytes], match: str) -> None:
    with pytest.raises(ClickFolderError, match=match):
        read_ivis_click(_zip(members), name="up.zip")


def test_zip_symlink_is_refused() -> None:
    with pytest.raises(ClickFolderError, match="symbolic link"):
        read_ivis_click(_zip({"ClickInfo.txt": b"x"}, symlink="link.TIF"), name="up.zip")


def test_zip_total_size_limit() -> None:
    content = _zip({"ClickInfo.txt": bytes(range(256)) * 400})
    with pytest.raises(ClickFolderError, match="expands to more"):
        read_ivis_click(content, zip_limits=ZipLimits(max_total_bytes=1000))


def test_not_a_zip() -> None:
    with pytest.raises(ClickFolderError, match=r"junk\.zip"):
        read_ivis_click(b"PK\x03\x04garbage", name="junk.zip")


def _copy(folder: Path, tmp_path: Path) -> Path:
    target = tmp_path / "click"
    shutil.copytree(folder, target)
    for file in target.iterdir():
        file.chmod(0o644)
    return target


def test_missing_luminescent_image(ivis_reference_folder: Path, tmp_path: Path) -> None:
    folder = _copy(ivis_reference_folder, tmp_path)
    (folder / "luminescent.TIF").unlink()
    with pytest.raises(ClickFolderError, match=r"luminescent\.TIF"):
        read_ivis_click(folder)


def test_unknown_binning(ivis_reference_folder: Path, tmp_path: Path) -> None:
    folder = _copy(ivis_reference_folder, tmp_path)
    text = (folder / "ClickInfo.txt").read_text()
    text = text.replace("Binning Factor:\t8\nLuminescent", "Binning Factor:\t7\nLuminescent")
    (folder / "ClickInfo.txt").write_text(text)
    with pytest.raises(ClickFolderError, match="unknown binning 7"):
        read_ivis_click(folder)


def test_binning_inconsistent_with_frame_size(ivis_reference_folder: Path, tmp_path: Path) -> None:
    folder = _copy(ivis_reference_folder, tmp_path)
    text = (folder / "ClickInfo.txt").read_text()
    text = text.replace("Binning Factor:\t2", "Binning Factor:\t4", 1)  # photograph
    (folder / "ClickInfo.txt").write_text(text)
    with pytest.raises(ClickFolderError, match=r"photograph\.TIF"):
        read_ivis_click(folder)


def test_broken_tiff_in_folder_names_it(ivis_reference_folder: Path, tmp_path: Path) -> None:
    folder = _copy(ivis_reference_folder, tmp_path)
    content = (folder / "readbias.TIF").read_bytes()
    (folder / "readbias.TIF").write_bytes(content[:1000])
    with pytest.raises(InvalidImageError, match=r"readbias\.TIF"):
        read_ivis_click(folder)
