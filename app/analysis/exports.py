"""Exports for spreadsheets and GraphPad Prism."""

from __future__ import annotations

import io
import math
import zipfile
from collections import defaultdict
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from app.analysis.results import CensoredGrowthModel, ComparisonResults, Effect, TestResult
from app.analysis.schemas import SummaryRead
from app.csv_cells import safe_cell
from app.measurements.schemas import SeriesPoint
from app.responses import csv_cell, csv_text

if TYPE_CHECKING:
    from openpyxl.packaging.core import DocumentProperties

_XLSX_CORE = "docProps/core.xml"  # the workbook's document properties


def prism_wide_csv(points: Sequence[SeriesPoint], *, arms: Sequence[str], value_label: str) -> str:
    """A Prism *grouped* XY table: one row per day, one column group per arm, one
    sub-column per animal (replicates). Row 1 names the arm above its first sub-column,
    row 2 names the animals; paste into an XY table with "Enter replicate values".

    Duplicate images of one animal on one day are averaged (arithmetic mean), as in the
    statistics; empty cells are days an animal was not imaged.
    """
    animals: dict[str, list[str]] = defaultdict(list)
    values: dict[tuple[str, int], list[float]] = defaultdict(list)
    for p in points:
        if p.animal not in animals[p.arm]:
            animals[p.arm].append(p.animal)
        if p.value is not None:
            values[(p.animal, p.day)].append(p.value)
    columns = [(arm, animal) for arm in arms for animal in sorted(animals.get(arm, []))]
    group_row: list[object] = [f"Day ({value_label})"]
    previous = None
    for arm, _ in columns:
        group_row.append(arm if arm != previous else "")
        previous = arm
    rows: list[list[object]] = [["day", *(animal for _, animal in columns)]]
    for day in sorted({p.day for p in points}):
        cells = [values.get((animal, day)) for _, animal in columns]
        rows.append([day, *(sum(c) / len(c) if c else None for c in cells)])
    # Prism's two header rows: the arms (the CSV's header row), then the animals.
    return csv_text([csv_cell(c) for c in group_row], rows)


def summary_csv(summary: SummaryRead) -> str:
    """``GET …/summary?format=csv``: one row per arm and day with the statistics under their
    JSON names and units (the excluded and adjusted values are listed in the JSON only)."""
    table = summary.summary
    stat = f" [{summary.statistics_unit}]"
    geo = f" [{summary.geometric_mean_unit}]"
    header = [
        "arm", "day", "n", f"mean{stat}", f"sd{stat}", f"sem{stat}", f"geometric_mean{geo}",
        f"geometric_ci_low{geo}", f"geometric_ci_high{geo}", f"median{stat}", f"q1{stat}",
        f"q3{stat}", "site", "scale", "floor", "baseline", "image_combination",
    ]  # fmt: skip
    rows = [
        [r.arm, r.day, r.n, r.mean, r.sd, r.sem, r.geometric_mean, r.geometric_ci_low,
         r.geometric_ci_high, r.median, r.q1, r.q3, table.site, table.scale, table.floor,
         table.baseline, summary.image_combination]
        for r in table.rows
    ]  # fmt: skip
    return csv_text(header, rows)


# ------------------------------------------------------------------ comparison tables


Table = tuple[list[str], list[list[object]]]


def _write(header: list[str], rows: list[list[object]]) -> Table:
    return header, rows


def _effect(e: Effect | None) -> list[object]:
    return [None, None, None] if e is None else [e.estimate, e.ci_low, e.ci_high]


def _test(t: TestResult) -> list[object]:
    return [t.statistic, t.df, t.p_value, t.p_adjusted]


def _per_day(res: ComparisonResults) -> Table | None:
    out = res.per_day.result if res.per_day else None
    if out is None:
        return None
    header = [
        "day", "n_control", "n_treated", "scale",
        "mean_difference", "mean_difference_ci_low", "mean_difference_ci_high",
        "welch_t", "welch_df", "welch_p", "welch_p_adjusted",
        "hodges_lehmann_shift", "shift_ci_low", "shift_ci_high",
        "mann_whitney_u", "mann_whitney_df", "mann_whitney_p", "mann_whitney_p_adjusted",
        "mann_whitney_method", "correction",
    ]  # fmt: skip
    rows = [
        [r.day, r.n_control, r.n_treated, out.scale, *_effect(r.mean_difference),
         *_test(r.welch), *_effect(r.shift), *_test(r.mann_whitney), r.mann_whitney.method,
         out.correction]
        for r in out.rows
    ]  # fmt: skip
    return _write(header, rows)


def _animals(res: ComparisonResults) -> Table | None:
    """One row per animal: its AUC, growth rate and survival time where computed."""
    table: dict[tuple[str, str], dict[str, object]] = {}
    for name in ("auc", "growth_rate"):
        outcome = getattr(res, name)
        if outcome is None or outcome.result is None:
            continue
        for a in outcome.result.animals:
            row = table.setdefault((a.arm, a.animal), {})
            row[name] = a.value
            row[f"{name}_n_images"] = a.n_points
            row[f"{name}_from_day"] = a.first_day
            row[f"{name}_to_day"] = a.last_day
            if name == "growth_rate":
                row["growth_rate_intercept"] = a.intercept
                row["doubling_time_days"] = a.doubling_time_days
    if res.survival is not None and res.survival.result is not None:
        for o in res.survival.result.animals:
            row = table.setdefault((o.arm, o.animal), {})
            row |= {
                "threshold": o.threshold,
                "onset_day": o.onset_day,
                "survival_time_days": o.time,
                "event": o.event,
                "end_reason": o.reason,
            }
    if not table:
        return None
    columns = list(dict.fromkeys(k for row in table.values() for k in row))
    header = ["arm", "animal", *columns]
    rows = [
        [arm, animal, *(v.get(c) for c in columns)] for (arm, animal), v in sorted(table.items())
    ]
    return _write(header, rows)


def _mixed_model(res: ComparisonResults) -> Table | None:
    m = res.mixed_model.result if res.mixed_model else None
    if m is None:
        return None
    # the censored (Tobit) model has Wald tests, not a small-sample df method
    df_method = m.inference if isinstance(m, CensoredGrowthModel) else m.df_method
    criterion = None if isinstance(m, CensoredGrowthModel) else m.reml_criterion
    header = ["term", "estimate", "se", "df", "t", "p_value", "ci_low", "ci_high", "df_method"]
    rows: list[list[object]] = [
        [f.name, f.estimate, f.se, f.df, f.t, f.p_value, f.ci_low, f.ci_high, df_method]
        for f in m.fixed_effects
    ]
    for g in m.growth_rates:
        rows.append(
            [f"growth rate {g.arm}", *_effect(g.rate)[:1], g.rate_se, g.rate_df, None, None,
             g.rate.ci_low, g.rate.ci_high, df_method]
        )  # fmt: skip
        if g.difference is not None:
            rows.append(
                [f"growth rate {g.arm} - {m.control}", g.difference.estimate, g.difference_se,
                 g.df, g.t, g.p_value, g.difference.ci_low, g.difference.ci_high, df_method]
            )  # fmt: skip
    for term, value in (
        ("variance: random intercept", m.re_intercept_variance),
        ("variance: random slope", m.re_slope_variance),
        ("correlation: random intercept, slope", m.re_correlation),
        ("variance: residual", m.residual_variance),
        ("REML criterion" if criterion is not None else "-2 log-likelihood",
         criterion if criterion is not None else -2 * m.log_likelihood),
    ):  # fmt: skip
        if value is not None:
            rows.append([term, value, None, None, None, None, None, None, None])
    rows.append([f"random effects: {m.random_effects}", None, None, None, None, None, None,
                 None, None])  # fmt: skip
    if res.censoring is not None:
        rows.append([f"below detection limit: {res.censoring.method} "
                     f"({res.censoring.description})", None, None, None, None, None, None,
                     None, None])  # fmt: skip
        for c in res.censoring.n_censored:
            rows.append([f"censored values {c.arm} (of {c.n_points})", c.n_censored, None,
                         None, None, None, None, None, None])  # fmt: skip
    return _write(header, rows)


def _survival(res: ComparisonResults) -> Table | None:
    s = res.survival.result if res.survival else None
    if s is None:
        return None
    header = ["arm", "time_days", "at_risk", "events", "survival", "ci_low", "ci_high",
              "median_time_days"]  # fmt: skip
    rows: list[list[object]] = [
        [c.arm, p.time, p.at_risk, p.events, p.survival, p.ci_low, p.ci_high, c.median_time]
        for c in s.curves
        for p in c.points
    ]
    return _write(header, rows)


TABLE_BUILDERS = {
    "per_day": _per_day,
    "animals": _animals,
    "mixed_model": _mixed_model,
    "survival": _survival,
}


def comparison_csv(res: ComparisonResults, table: str) -> str | None:
    """A stored comparison's ``table`` (per_day, animals, mixed_model, survival) as CSV by
    the API's convention (:func:`app.responses.csv_text`: numbers at full precision), or
    None where the analyses behind it were not run."""
    built = TABLE_BUILDERS[table](res)
    return None if built is None else csv_text(*built)


def comparison_xlsx(
    res: ComparisonResults, parameters: dict[str, object], created: datetime | None = None
) -> bytes:
    """Every table of a stored comparison as one XLSX workbook: a sheet per table that was
    computed (numbers as numbers, to the 16 significant digits openpyxl writes) and a
    sheet with the parameters.

    The same comparison gives the same bytes: the document's created and modified times
    are ``created`` (the comparison's creation time; left out when not given), never the
    time of writing, and so are the times of the parts inside the file (a ZIP)."""
    from openpyxl import Workbook
    from openpyxl.styles import Font
    from openpyxl.worksheet.worksheet import Worksheet

    book = Workbook()
    first = book.active
    assert isinstance(first, Worksheet)  # a new workbook opens with one empty worksheet
    for name, build in TABLE_BUILDERS.items():
        built = build(res)
        if built is None:
            continue
        sheet = book.create_sheet(name)
        header, rows = built
        sheet.append(header)
        for row in rows:
            sheet.append([_xlsx_cell(v) for v in row])
        for cell in sheet[1]:
            cell.font = Font(bold=True)
    params = book.create_sheet("parameters")
    params.append(["parameter", "value"])
    for key, value in parameters.items():
        params.append([key, _xlsx_cell(value if isinstance(value, int | float) else str(value))])
    book.remove(first)
    buffer = io.BytesIO()
    book.save(buffer)  # stamps created, modified and the parts' times now: fixed below
    return _fixed_times(buffer.getvalue(), book.properties, created)


def _naive_utc(at: datetime | None) -> datetime | None:
    """A time as openpyxl writes it (naive, UTC)."""
    if at is None or at.tzinfo is None:
        return at
    return at.astimezone(UTC).replace(tzinfo=None)


def _fixed_times(xlsx: bytes, properties: DocumentProperties, created: datetime | None) -> bytes:
    """The workbook written again with its core properties as given and every part dated
    ``created`` (else the ZIP epoch, 1980-01-01), instead of the time of writing."""
    from openpyxl.xml.functions import tostring

    at = _naive_utc(created)
    stamp = at.timetuple()[:6] if at is not None else (1980, 1, 1, 0, 0, 0)
    properties.created = properties.modified = at or datetime(1980, 1, 1)
    core = properties.to_tree()
    if at is None:  # no time to give: none written
        for element in [e for e in core if e.tag.endswith(("}created", "}modified"))]:
            core.remove(element)
    out = io.BytesIO()
    with zipfile.ZipFile(io.BytesIO(xlsx)) as source, zipfile.ZipFile(out, "w") as target:
        for info in source.infolist():
            content: bytes | str = source.read(info)
            if info.filename == _XLSX_CORE:
                content = tostring(core)
            fixed = zipfile.ZipInfo(info.filename, date_time=stamp)
            fixed.compress_type = zipfile.ZIP_DEFLATED
            fixed.external_attr = info.external_attr
            target.writestr(fixed, content)
    return out.getvalue()


def _xlsx_cell(value: object) -> object:
    """Numbers stay numbers; text a spreadsheet would run as a formula is quoted with ``'``
    (as in the CSVs); missing and non-finite numbers are empty cells."""
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return None
    if isinstance(value, bool | int | float):
        return value
    return safe_cell(str(value))
