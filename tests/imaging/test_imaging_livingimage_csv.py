"""Living Image ROI-measurement exports with the ² in its several encodings."""

from __future__ import annotations

import pytest

from imaging import LivingImageExportError, read_living_image_measurements

HEADER = (
    "Image Number,ROI,Total Flux [p/s],Avg Radiance [p/s/cm{sq}/sr],Stdev Radiance,"
    "Min Radiance,Max Radiance,Animal Number,View\r\n"
)
ROWS = (
    "DG20220105114235,ROI 1,2.370e+05,3.5e+03,1.2e+03,-3.6e+03,4.1e+04,3466,Dorsal\r\n"
    "DG20220105114235,ROI 2,9.330e+06,1.4e+05,2.2e+05,1.0e+02,2.1e+06,3467,Dorsal\r\n"
)


@pytest.mark.parametrize(
    ("sq", "encoding"), [("²", "utf-8"), ("²", "cp1252"), ("_", "ascii"), ("?", "ascii")]
)
def test_tolerant_headers(sq: str, encoding: str) -> None:
    content = (HEADER.format(sq=sq) + ROWS).encode(encoding)
    rows = read_living_image_measurements(content, name="export.csv")
    assert [r.roi for r in rows] == ["ROI 1", "ROI 2"]
    assert rows[1].total_flux_ps == 9.330e6
    assert rows[0].radiance_mean == 3.5e3 and rows[0].radiance_min == -3.6e3
    assert rows[0].labels["Animal Number"] == "3466"


def test_tab_separated_with_preamble() -> None:
    text = "Living Image export\n\n" + (HEADER.format(sq="²") + ROWS).replace(",", "\t")
    rows = read_living_image_measurements(text.encode("cp1252"))
    assert rows[0].total_flux_ps == 2.370e5 and rows[0].image_number == "DG20220105114235"


def test_bad_exports() -> None:
    with pytest.raises(LivingImageExportError, match=r"x\.csv: no header"):
        read_living_image_measurements(b"a,b\n1,2\n", name="x.csv")
    bad = (HEADER.format(sq="2") + "1,ROI 1,lots,1,1,1,1,1,D\n").encode()
    with pytest.raises(LivingImageExportError, match="line 2"):
        read_living_image_measurements(bad, name="y.csv")
