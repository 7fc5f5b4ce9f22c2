"""``osteolux demo``: a realistic demo study created through the real API.

Four arms (vehicle, isotype control, a TGF-βRI inhibitor, a neutralizing anti-TGF-β antibody)
× 10 mice after intracardiac MDA-MB-231-luc injection, imaged on 8 days, five mice per image
("hotel"), dorsal and ventral. The images are synthetic Living Image clicks
(:func:`imaging.write_synthetic_click`) with known flux per mouse and site, uploaded exactly
as a lab would; deaths and humane endpoints are recorded and those mice are not imaged
afterwards. Then each treatment arm is compared with its control.

Without ``--url`` it works on the configured database (the same ``OSTEOLUX_*`` settings as
``osteolux serve``), creates a lab "Demo lab" (then "Demo lab 2", … on later runs) and drives
the app in-process; with ``--url`` and ``--key`` it drives a running server over HTTP (a study
name already taken in that lab gets " (2)", " (3)", …). ``--small``: 5 mice per arm, 4 sessions.

Why one long module: it is a script to be read top to bottom as the story of a study
— the seeded plan (arms, mice, lesions, deaths; pure data), the synthetic clicks drawn from it,
then the same plan driven through the API and summarised. Each part is only meaningful beside
the others, nothing else imports them, and splitting would scatter one walkthrough over files.
"""

from __future__ import annotations

import argparse
import io
import math
import sys
import tempfile
import time
import zipfile
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import httpx2
import numpy as np

import imaging

# ----------------------------------------------------------------------------- the study

DAY0 = date(2026, 3, 2)
SESSION_DAYS: tuple[int, ...] = (0, 3, 7, 10, 14, 17, 21, 24)
MICE_PER_ARM = 10
MICE_PER_CAGE = 5
VIEWS: tuple[str, ...] = ("dorsal", "ventral")
STUDY_NAME = "DEMO BM-01 TGF-β blockade in MDA-MB-231 bone metastasis"
LAB_NAME = "Demo lab"
SEED = 20260302
UTC_OFFSET = timezone(timedelta(hours=1))
#: Humane endpoint: mean (dorsal, ventral) whole-body flux above this at a session.
HUMANE_ENDPOINT_PS = 5e8
#: Comparisons: "metastasis" = whole-body flux above this on two images in a row.
THRESHOLD_PS = 3e6
DETECTION_FLOOR_PS = 1e4
SITE_DETECTION_LIMIT_PS = 1e5
"""A bone-site ROI's detection limit for the demo's spine comparison: its synthetic images have
a noise-free background, so their own recorded limit is 0 and this study-wide one applies."""


@dataclass(frozen=True)
class ArmSpec:
    key: str
    body: dict[str, Any]
    control: str | None
    growth_per_day: float  # median exponential growth rate of bone lesions
    onset_day: float  # mean day a lesion first appears
    incidence: dict[str, float]  # site → probability the site ever develops a lesion


ARMS: tuple[ArmSpec, ...] = (
    ArmSpec(
        "vehicle",
        {
            "name": "Vehicle",
            "role": "control",
            "agent_class": "vehicle",
            "agent": "10 % DMSO in saline",
            "route": "p.o.",
            "schedule": "daily from day 3",
        },
        None,
        0.40,
        4.0,
        {"spine": 0.9, "skull": 0.7, "left_femur": 0.6, "right_femur": 0.6, "thorax": 0.3},
    ),
    ArmSpec(
        "isotype",
        {
            "name": "Isotype IgG1",
            "role": "control",
            "agent_class": "isotype_control",
            "agent": "13C4",
            "dose": 10,
            "dose_unit": "mg/kg",
            "route": "i.p.",
            "schedule": "3×/week from day 3",
        },
        None,
        0.39,
        4.0,
        {"spine": 0.9, "skull": 0.7, "left_femur": 0.6, "right_femur": 0.6, "thorax": 0.3},
    ),
    ArmSpec(
        "inhibitor",
        {
            "name": "LY2109761 50 mg/kg",
            "role": "treatment",
            "agent_class": "inhibitor",
            "agent": "LY2109761",
            "target": "TGF-βRI/II kinase",
            "dose": 50,
            "dose_unit": "mg/kg",
            "route": "p.o.",
            "schedule": "daily from day 3",
        },
        "vehicle",
        0.32,
        7.5,
        {"spine": 0.6, "skull": 0.3, "left_femur": 0.4, "right_femur": 0.3, "thorax": 0.2},
    ),
    ArmSpec(
        "antibody",
        {
            "name": "1D11 10 mg/kg",
            "role": "treatment",
            "agent_class": "neutralizing_antibody",
            "agent": "1D11",
            "target": "TGF-β1/2/3",
            "dose": 10,
            "dose_unit": "mg/kg",
            "route": "i.p.",
            "schedule": "3×/week from day 3",
        },
        "isotype",
        0.30,
        8.0,
        {"spine": 0.5, "skull": 0.3, "left_femur": 0.3, "right_femur": 0.3, "thorax": 0.1},
    ),
)


@dataclass(frozen=True)
class SiteSpec:
    label: str  # words Living Image ROI labels use (osteolux reads the site from them)
    api_site: str
    row_fraction: float  # from the body centre along the long axis (head up), × body length
    col_cm: float  # from the midline; the animal's left is image-left in dorsal view
    sigma_cm: float
    dorsal: float  # light reaching the camera in each view (tissue attenuation)
    ventral: float


SITES: dict[str, SiteSpec] = {
    "skull": SiteSpec("skull", "skull_mandible", -0.40, 0.0, 0.20, 1.0, 0.7),
    "thorax": SiteSpec("thorax", "thorax", -0.15, 0.0, 0.25, 0.5, 1.0),
    "spine": SiteSpec("spine", "spine", 0.10, 0.0, 0.25, 1.0, 0.35),
    "left_femur": SiteSpec("left femur", "left_hindlimb", 0.36, -0.75, 0.15, 0.8, 0.8),
    "right_femur": SiteSpec("right femur", "right_hindlimb", 0.36, 0.75, 0.15, 0.8, 0.8),
}
FOV_CM = 22.4
UPLOAD_WORKERS = 2  # the server quantifies one click while the next is generated and sent
SENSOR_PIXELS = 1920
BINNING = 8
BODY_LENGTH_CM = 8.0
BODY_WIDTH_CM = 2.6
#: Diffuse signal of every mouse (residual cells, autoluminescence), p/s, never an ROI of its own.
GLOW_PS = 3e4
GLOW_SIGMA_CM = 0.5
#: Whole-body ROI: the body ellipse plus this margin (so it holds every source's tails).
BODY_ROI_MARGIN_CM = 0.5


@dataclass(frozen=True)
class Lesion:
    onset_day: float
    flux_at_onset: float
    growth_per_day: float


@dataclass
class DemoAnimal:
    identifier: str
    arm: str
    cage: str
    slot: int  # position in its cage's hotel image, 0..4 left → right
    seeded_ps: float  # day-0 signal of the injected cells (lungs/thorax), clears in days
    lesions: dict[str, Lesion]
    end: tuple[int, str, str] | None = None  # (day, reason, note)

    def site_flux(self, site: str, day: float) -> float:
        """True flux [p/s] emitted at a site on a day (before tissue attenuation)."""
        flux = 0.0
        if site == "thorax":
            flux += self.seeded_ps * 0.5 ** (day / 1.5)
        lesion = self.lesions.get(site)
        if lesion is not None and day >= lesion.onset_day:
            flux += lesion.flux_at_onset * math.exp(
                lesion.growth_per_day * (day - lesion.onset_day)
            )
        return flux

    def seen_flux(self, site: str, day: float, view: str) -> float:
        spec = SITES[site]
        return self.site_flux(site, day) * (spec.dorsal if view == "dorsal" else spec.ventral)

    def whole_body(self, day: float, view: str) -> float:
        """What a whole-body ROI should measure in this view (all sites plus the glow)."""
        return GLOW_PS + sum(self.seen_flux(site, day, view) for site in SITES)

    def imaged_on(self, day: int) -> bool:
        return self.end is None or day <= self.end[0]


@dataclass
class DemoPlan:
    animals: list[DemoAnimal]
    days: tuple[int, ...]

    def cages(self) -> dict[str, list[DemoAnimal]]:
        out: dict[str, list[DemoAnimal]] = {}
        for animal in self.animals:
            out.setdefault(animal.cage, []).append(animal)
        return out

    def animal(self, identifier: str) -> DemoAnimal:
        return next(a for a in self.animals if a.identifier == identifier)


SMALL_DAYS: tuple[int, ...] = (0, 7, 14, 21)
SMALL_MICE_PER_ARM = 5


def plan_study(seed: int = SEED, *, small: bool = False) -> DemoPlan:
    """The simulated truth: every mouse's lesions, growth and end (deterministic).

    ``small``: 5 mice per arm and 4 sessions (a quick look; the tests' second run)."""
    rng = np.random.default_rng(seed)
    per_arm = SMALL_MICE_PER_ARM if small else MICE_PER_ARM
    days = SMALL_DAYS if small else SESSION_DAYS
    animals: list[DemoAnimal] = []
    for a, arm in enumerate(ARMS):
        for i in range(per_arm):
            animal_rate = arm.growth_per_day * math.exp(rng.normal(0.0, 0.12))
            lesions = {}
            for site, p in arm.incidence.items():
                develops = rng.random() < p
                onset = max(1.0, rng.normal(arm.onset_day, 2.5))
                flux0 = 2e4 * math.exp(rng.normal(0.0, 0.5))
                rate = animal_rate * math.exp(rng.normal(0.0, 0.08))
                if develops:
                    lesions[site] = Lesion(onset, flux0, rate)
            cage = a * math.ceil(per_arm / MICE_PER_CAGE) + i // MICE_PER_CAGE + 1
            animals.append(
                DemoAnimal(
                    identifier=str(4101 + a * per_arm + i),
                    arm=arm.key,
                    cage=f"C{cage:02d}",
                    slot=i % MICE_PER_CAGE,
                    seeded_ps=4e5 * math.exp(rng.normal(0.0, 0.5)),
                    lesions=lesions,
                )
            )
    _plan_ends(animals, days)
    return DemoPlan(animals, days)


def _plan_ends(animals: list[DemoAnimal], days: tuple[int, ...]) -> None:
    """Humane endpoints at high burden (two days after the last image), one mouse found dead
    in each control arm late in the study; everyone else ends at the last session."""
    for animal in animals:
        for day in days[:-1]:
            burden = (animal.whole_body(day, "dorsal") + animal.whole_body(day, "ventral")) / 2
            if burden > HUMANE_ENDPOINT_PS:
                animal.end = (day + 2, "humane_endpoint", "hind-limb paralysis, >15 % weight loss")
                break
    for arm in ARMS:
        if arm.control is not None:
            continue
        alive = [a for a in animals if a.arm == arm.key and a.end is None]
        if alive:
            worst = max(alive, key=lambda a: a.whole_body(17, "dorsal"))
            worst.end = (19, "death", "found dead in cage")
    for animal in animals:
        if animal.end is None:
            animal.end = (days[-1], "study_end", "terminal harvest")


# ----------------------------------------------------------------------------- the images


def _slot_col_cm(slot: int) -> float:
    return FOV_CM * (slot + 0.5) / MICE_PER_CAGE


def hotel_click(
    folder: Path, animals: list[DemoAnimal], day: int, view: str, click_number: str
) -> bytes:
    """A zipped synthetic Living Image click of these mice (in their cage slots), with a
    whole-body ROI and one ROI per site on each mouse, as a technician would draw them."""
    mice, sources, rois = [], [], []
    to_px = SENSOR_PIXELS / FOV_CM
    centre_row = FOV_CM / 2
    for animal in animals:
        col = _slot_col_cm(animal.slot)
        mice.append(
            imaging.SyntheticMouse(
                animal_number=animal.identifier,
                center_row_cm=centre_row,
                center_col_cm=col,
                length_cm=BODY_LENGTH_CM,
                width_cm=BODY_WIDTH_CM,
            )
        )
        sources.append(
            imaging.SyntheticSource(
                center_row_cm=centre_row,
                center_col_cm=col,
                total_flux_ps=GLOW_PS,
                sigma_cm=GLOW_SIGMA_CM,
            )
        )
        rois.append(
            (
                "Ellipse",
                col,
                centre_row,
                BODY_WIDTH_CM + 2 * BODY_ROI_MARGIN_CM,
                BODY_LENGTH_CM + 2 * BODY_ROI_MARGIN_CM,
                f"{animal.identifier} whole body",
            )
        )
        mirror = 1.0 if view == "dorsal" else -1.0
        for site, spec in SITES.items():
            row = centre_row + spec.row_fraction * BODY_LENGTH_CM
            site_col = col + mirror * spec.col_cm
            flux = animal.seen_flux(site, day, view)
            if flux > 0:
                sources.append(
                    imaging.SyntheticSource(
                        center_row_cm=row,
                        center_col_cm=site_col,
                        total_flux_ps=flux,
                        sigma_cm=spec.sigma_cm,
                    )
                )
            diameter = 8 * spec.sigma_cm
            rois.append(
                ("Circle", site_col, row, diameter, diameter, f"{animal.identifier} {spec.label}")
            )
    click = imaging.write_synthetic_click(
        folder,
        mice=tuple(mice),
        sources=tuple(sources),
        binning=BINNING,
        photograph_binning=BINNING,
        fov_cm=FOV_CM,
        sensor_pixels=SENSOR_PIXELS,
        click_number=click_number,
        seed=int(click_number[-8:]),
    )
    _relabel(click.path, view=view, day=day, rois=rois, cm_per_pixel=1 / to_px)
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for path in sorted(click.path.iterdir()):
            archive.write(path, f"{click_number}/{path.name}")
    return buffer.getvalue()


def _relabel(
    folder: Path,
    *,
    view: str,
    day: int,
    rois: list[tuple[str, float, float, float, float, str]],
    cm_per_pixel: float,
) -> None:
    """Set the View / Time Point labels and replace the generator's ROI lines (one per light
    source) by the ROIs a technician draws: whole body and every site, lit or not."""
    to_px = 1 / cm_per_pixel
    for name in ("ClickInfo.txt", "AnalyzedClickInfo.txt"):
        path = folder / name
        text = path.read_bytes().decode("cp1252")
        text = text.replace("View:\tDorsal", f"View:\t{view.capitalize()}")
        text = text.replace("Time Point:\tday 0", f"Time Point:\tday {day}")
        if name == "AnalyzedClickInfo.txt":
            head = text.split("*** ROIs:\t")[0]
            lines = [
                f"ROI {i + 1}:\tROI Type=Measurement;Bkg ROI=_none_;Shape={shape};"
                f"Xc={x * to_px:.12g};Yc={y * to_px:.12g};Width={w * to_px:.12g};"
                f"Height={h * to_px:.12g};Angle=0.0000;Label={label};"
                f"cm per pixel={cm_per_pixel:.12f};"
                for i, (shape, x, y, w, h, label) in enumerate(rois)
            ]
            text = head + "\r\n".join(["*** ROIs:\t", *lines, ""])
        path.write_bytes(text.encode("cp1252"))


# ----------------------------------------------------------------------------- the API


class DemoError(RuntimeError):
    pass


class Api:
    """A thin wrapper that fails loudly with the server's problem detail."""

    def __init__(self, client: httpx2.Client) -> None:
        self.client = client

    def call(self, method: str, path: str, expect: tuple[int, ...] = (200, 201), **kw: Any) -> Any:
        response = self.client.request(method, path, **kw)
        if response.status_code not in expect:
            raise DemoError(f"{method} {path} answered {response.status_code}: {response.text}")
        if response.headers.get("content-type", "").startswith("application/json"):
            return response.json()
        return response.content


@dataclass
class DemoResult:
    study_id: str
    study_name: str
    arm_ids: dict[str, str]
    animal_ids: dict[str, str]
    session_ids: dict[int, str]
    comparison_ids: dict[str, str]
    acquisitions: int
    ends: dict[str, tuple[int, str]] = field(default_factory=dict)
    seconds: float = 0.0
    readout_ids: dict[str, str] = field(default_factory=dict)


def _create_study(api: Api) -> tuple[str, str]:
    body = {
        "cell_line": "MDA-MB-231-luc (bone-seeking subclone 1833)",
        "injection_model": "intracardiac",
        "day0": DAY0.isoformat(),
        "iacuc_number": "IACUC-DEMO-0001",
        "description": "Synthetic demo data made by `osteolux demo`: 1e5 cells into the left "
        "ventricle on day 0; TGF-β pathway blockade (LY2109761 vs vehicle, 1D11 vs isotype "
        "IgG1 13C4); BLI twice a week, 5 mice per image, dorsal and ventral.",
    }
    for n in range(1, 100):
        name = STUDY_NAME if n == 1 else f"{STUDY_NAME} ({n})"
        response = api.client.post("/studies", json=body | {"name": name})
        if response.status_code == 409:
            continue
        if response.status_code != 201:
            raise DemoError(f"POST /studies answered {response.status_code}: {response.text}")
        return str(response.json()["id"]), name
    raise DemoError("could not find a free study name")


def run_demo(
    client: httpx2.Client,
    plan: DemoPlan | None = None,
    *,
    progress: Callable[[str], None] = print,
) -> DemoResult:
    """Create the demo study through the API ``client`` (authenticated, base URL set)."""
    started = time.perf_counter()
    plan = plan or plan_study()
    api = Api(client)
    study_id, study_name = _create_study(api)
    base = f"/studies/{study_id}"
    arm_ids: dict[str, str] = {}
    for arm in ARMS:
        body = dict(arm.body)
        if arm.control is not None:
            body["control_arm_id"] = arm_ids[arm.control]
        arm_ids[arm.key] = api.call("POST", f"{base}/arms", json=body)["id"]
    animal_ids: dict[str, str] = {}
    for animal in plan.animals:
        created = api.call(
            "POST",
            f"{base}/animals",
            json={
                "identifier": animal.identifier,
                "arm_id": arm_ids[animal.arm],
                "cage": animal.cage,
                "sex": "female",
                "strain": "NSG",
                "date_of_birth": (DAY0 - timedelta(days=56)).isoformat(),
            },
        )
        animal_ids[animal.identifier] = created["id"]
    progress(
        f"study '{study_name}': {len(ARMS)} arms, {len(plan.animals)} mice in "
        f"{len(plan.cages())} cages"
    )
    session_ids: dict[int, str] = {}
    ends: dict[str, tuple[int, str]] = {}
    n_acquisitions = 0
    with tempfile.TemporaryDirectory(prefix="osteolux-demo-") as tmp:
        for day in plan.days:
            t0 = time.perf_counter()
            session_ids[day], n = _image_session(api, base, plan, day, Path(tmp))
            n_acquisitions += n
            ended = _record_ends(api, base, plan, day, animal_ids)
            ends.update(ended)
            deaths = [f"{k} ({r})" for k, (_, r) in ended.items() if r != "study_end"]
            progress(
                f"  day {day:2d}: {n} images uploaded"
                + (f"; ended after this session: {', '.join(deaths)}" if deaths else "")
                + f" ({time.perf_counter() - t0:.1f} s)"
            )
            if day == plan.days[0]:
                progress(_randomisation_preview(api, base, plan, day, animal_ids, ends))
    for line in _power_table(api, base, arm_ids["vehicle"]):
        progress(line)
    comparison_ids = {}
    for arm in ARMS:
        if arm.control is None:
            continue
        comparison = api.call(
            "POST",
            f"{base}/comparisons",
            json={
                "treatment_arm_id": arm_ids[arm.key],
                "site": "whole_body",
                "metric": "total_flux_ps",
                "scale": "log10",
                "floor": DETECTION_FLOOR_PS,
                # where an image has no limit of its own (issue 15 §1: Tobit by default)
                "detection_limit": DETECTION_FLOOR_PS,
                "threshold": {"flux_ps": THRESHOLD_PS, "consecutive": 2},
            },
        )
        comparison_ids[arm.key] = comparison["id"]
        progress(_censoring_line(arm.body["name"], comparison["results"].get("censoring")))
    treated = next(a for a in ARMS if a.control is not None)
    spine = api.call(  # early spine lesions sit below the detection limit: censored model
        "POST",
        f"{base}/comparisons",
        json={
            "treatment_arm_id": arm_ids[treated.key],
            "site": "spine",
            "metric": "total_flux_ps",
            "scale": "log10",
            "analyses": ["mixed_model"],
            "detection_limit": SITE_DETECTION_LIMIT_PS,
        },
        expect=(201, 422),
    )
    if "results" in spine:
        name = f"{treated.body['name']} (spine)"
        progress(_censoring_line(name, spine["results"].get("censoring")))
    for line in _onset_and_sites(api, base, arm_ids):
        progress(line)
    readout_ids = _record_readouts(api, base, plan)
    progress(f"  end-of-study readouts: {', '.join(readout_ids)} (imported from a CSV)")
    return DemoResult(
        study_id=study_id,
        study_name=study_name,
        arm_ids=arm_ids,
        animal_ids=animal_ids,
        session_ids=session_ids,
        comparison_ids=comparison_ids,
        acquisitions=n_acquisitions,
        ends=ends,
        seconds=time.perf_counter() - started,
        readout_ids=readout_ids,
    )


def click_number(day: int, index: int) -> str:
    """Living Image names a click by the user's initials and the time it was taken."""
    taken = datetime.combine(DAY0 + timedelta(days=day), datetime.min.time()) + timedelta(
        hours=10, minutes=3 * index
    )
    return f"DM{taken:%Y%m%d%H%M%S}"


def _image_session(api: Api, base: str, plan: DemoPlan, day: int, tmp: Path) -> tuple[str, int]:
    on = DAY0 + timedelta(days=day)
    start = datetime.combine(on, datetime.min.time(), UTC_OFFSET) + timedelta(hours=10)
    session = api.call(
        "POST",
        f"{base}/sessions",
        json={
            "acquired_at": start.isoformat(),
            "operator": "Demo technician",
            "instrument": "IVIS Spectrum (synthetic camera)",
            "luciferin_dose_mg_per_kg": 150,
            "luciferin_injected_at": (start - timedelta(minutes=10)).isoformat(),
        },
    )
    jobs: list[tuple[list[DemoAnimal], str, str]] = []
    for animals in plan.cages().values():
        present = [a for a in animals if a.imaged_on(day)]
        if present:
            for view in VIEWS:
                jobs.append((present, view, click_number(day, len(jobs))))
    url = f"{base}/sessions/{session['id']}/acquisitions"

    def upload(job: tuple[list[DemoAnimal], str, str]) -> None:
        present, view, number = job
        api.call(
            "POST",
            url,
            files={
                "file": (
                    f"{number}.zip",
                    hotel_click(tmp / number, present, day, view, number),
                    "application/zip",
                )
            },
            data={"view": view, "animals": ",".join(a.identifier for a in present)},
        )

    with ThreadPoolExecutor(max_workers=UPLOAD_WORKERS) as pool:
        list(pool.map(upload, jobs))
    return str(session["id"]), len(jobs)


def _record_ends(
    api: Api, base: str, plan: DemoPlan, day: int, animal_ids: dict[str, str]
) -> dict[str, tuple[int, str]]:
    """End records of the mice whose last image was today (recorded as the lab would)."""
    following = [d for d in plan.days if d > day]
    ended = {}
    for animal in plan.animals:
        if animal.end is None:
            continue
        end_day, reason, note = animal.end
        if day <= end_day and (not following or following[0] > end_day):
            api.call(
                "PATCH",
                f"{base}/animals/{animal_ids[animal.identifier]}",
                json={
                    "end": {
                        "date": (DAY0 + timedelta(days=end_day)).isoformat(),
                        "reason": reason,
                        "note": note,
                    }
                },
            )
            ended[animal.identifier] = (end_day, reason)
    return ended


#: End-of-study readouts (issue 15 §5): (name, unit, kind, site).
READOUTS: tuple[tuple[str, str | None, str, str | None], ...] = (
    ("tumour area in bone sections", "mm²", "numeric", "right_hindlimb"),
    ("osteolytic lesion area on X-ray", "mm²", "numeric", None),
    ("metastatic bones at necropsy", None, "count", None),
)
_BONES = ("skull", "spine", "left_femur", "right_femur")


def _readout_truth(animal: DemoAnimal, day: int, rng: np.random.Generator) -> tuple[float, ...]:
    """Histology, X-ray and necropsy of one mouse at its end, from its simulated lesions:
    areas grow as flux^(2/3) (volume → section area) with 30 % log-normal reader noise."""

    def area(site: str, scale: float) -> float:
        flux = animal.site_flux(site, day)
        if site not in animal.lesions or flux <= 0:
            return 0.0
        return scale * (flux / 1e6) ** (2 / 3) * math.exp(rng.normal(0.0, 0.3))

    histology = area("right_femur", 0.6)
    xray = sum(area(site, 0.25) for site in ("spine", "left_femur", "right_femur"))
    bones = sum(1 for b in _BONES if b in animal.lesions and animal.lesions[b].onset_day <= day)
    return round(histology, 2), round(xray, 2), float(bones)


def _record_readouts(api: Api, base: str, plan: DemoPlan) -> dict[str, str]:
    """Define the readouts and import every mouse's values from one tidy CSV."""
    ids = {}
    for name, unit, kind, site in READOUTS:
        body = {"name": name, "unit": unit, "kind": kind, "site": site}
        ids[name] = api.call("POST", f"{base}/readouts", json=body)["id"]
    rng = np.random.default_rng(SEED + 15)
    lines = ["ear tag,readout,site,value,date"]
    for animal in plan.animals:
        day = animal.end[0] if animal.end else plan.days[-1]
        on = (DAY0 + timedelta(days=day)).isoformat()
        for (name, _, _, site), value in zip(
            READOUTS, _readout_truth(animal, day, rng), strict=True
        ):
            lines.append(f"{animal.identifier},{name},{site or ''},{value:g},{on}")
    api.call(
        "POST",
        f"{base}/readouts/import",
        files={"file": ("pathology.csv", "\n".join(lines).encode(), "text/csv")},
    )
    return ids


def _censoring_line(name: str, censoring: dict[str, Any] | None) -> str:
    """How the comparison of one arm used the values below the detection limit."""
    if not censoring or censoring.get("method") in (None, "none"):
        return f"  {name} vs its control: no value below the detection limit"
    counts = ", ".join(
        f"{c['arm']} {c['n_censored']}/{c['n_points']}" for c in censoring.get("n_censored", [])
    )
    return (
        f"  {name} vs its control: values below the detection limit ({counts}) "
        f"handled by {censoring['method']} (the censored mixed model, the default)"
    )


def _onset_and_sites(api: Api, base: str, arm_ids: dict[str, str]) -> list[str]:
    """Interval-censored spine onset of the first treated arm, and the whole skeleton:
    total skeletal burden compared by day, sites involved per mouse (issue 15 §2-3)."""
    arm = next(a for a in ARMS if a.control is not None)
    name = arm.body["name"]
    onset = api.call(
        "GET",
        f"{base}/onset/interval-censored",
        expect=(200, 422),
        params={"treatment_arm_id": arm_ids[arm.key], "site": "spine", "threshold": THRESHOLD_PS},
    )
    lines = [f"  spine metastasis onset, {name} vs its control (interval-censored):"]
    if "result" not in onset:
        lines.append(f"    not computed: {onset['detail']}")
    else:
        res = onset["result"]
        for dist in ("weibull", "lognormal"):
            fit = res[dist]
            ratio, lrt = fit["time_ratio"], fit["likelihood_ratio"]
            if ratio["estimate"] is None or lrt is None:
                lines.append(f"    {dist} AFT: not estimable")
                continue
            lines.append(
                f"    {dist} AFT: onset times x{ratio['estimate']:.3g} (95 % CI "
                f"{ratio['ci_low']:.3g}-{ratio['ci_high']:.3g}), likelihood-ratio p = "
                f"{lrt['p_value']:.3g}"
            )
        if res["conventional"] is not None:
            lines.append(
                "    conventional Kaplan-Meier (onset = first positive image): log-rank p = "
                f"{res['conventional']['logrank']['p_value']:.3g}"
            )
    burden = api.call("GET", f"{base}/sites/burden", params={"treatment_arm_id": arm_ids[arm.key]})
    last = burden["comparison"]["rows"][-1]
    lines.append(
        f"  total skeletal burden ({' + '.join(burden['sites'])}), {name} vs control on day "
        f"{last['day']:g}: log10 difference {last['mean_difference']['estimate']:.2f}, "
        f"Holm p = {last['welch']['p_adjusted']:.3g}"
    )
    involvement = api.call("GET", f"{base}/sites/involvement", params={"threshold": THRESHOLD_PS})
    final = max(r["day"] for r in involvement["per_arm"])
    means = ", ".join(
        f"{r['arm']} {r['mean']:.1f}" for r in involvement["per_arm"] if r["day"] == final
    )
    lines.append(f"  bone sites involved per mouse on day {final:g} (mean): {means}")
    return lines


# ----------------------------------------------------------------------------- the command


def _randomisation_preview(
    api: Api,
    base: str,
    plan: DemoPlan,
    day: int,
    animal_ids: dict[str, str],
    ended: dict[str, tuple[int, str]],
) -> str:
    """What a lab does after the day-0 images: allocate the mice to arms balanced on log10
    baseline flux. Only a preview here: the demo's mice keep the arms their simulated
    growth follows."""
    mice = [a for a in plan.animals if a.imaged_on(day) and a.identifier not in ended]
    result = api.call(
        "POST",
        f"{base}/randomisation",
        json={
            "animal_ids": [animal_ids[a.identifier] for a in mice],
            "baseline_day": day,
            "floor": DETECTION_FLOOR_PS,
            "seed": SEED,
        },
    )
    arms = "; ".join(
        f"{b['arm']} n={b['n']} {b['log10_baseline_mean']:.2f}±{b['log10_baseline_sd']:.2f}"
        for b in result["balance"]
    )
    anova = next(t for t in result["tests"] if t["test"] == "one-way ANOVA F")
    return (
        f"  randomisation preview on day-{day} whole-body log10 flux (seed {result['seed']}, "
        f"{result['method']}): {arms}; ANOVA p = {anova['p_value']:.2f}, imbalance M = "
        f"{result['imbalance_m']:.3f} (plain randomisation averages "
        f"{result['expected_m_random']:g})"
    )


def _power_table(api: Api, base: str, pilot_arm_id: str) -> list[str]:
    """Power to detect a halved growth rate, simulated from the vehicle arm as a pilot."""
    result = api.call(
        "POST",
        f"{base}/power",
        json={
            "pilot": {"arm_id": pilot_arm_id, "floor": DETECTION_FLOOR_PS},
            "n_per_arm": [5, 8, 10, 15],
            "interval_days": [3.5, 7],
            "length_days": [SESSION_DAYS[-1]],
            "slope_ratio": 0.5,
            "n_sim": 400,
            "seed": SEED,
        },
    )
    p = result["parameters"]
    lines = [
        f"  power by simulation from the vehicle arm (rate {p['growth_rate']:.3f} log10/day, "
        f"SD between mice {p['sd_slope']:.3f}, residual {p['sd_residual']:.2f}, dropout "
        f"{p['dropout_per_day']:.3f}/day) to detect {result['effect']}:"
    ]
    for interval in sorted({r["interval_days"] for r in result["rows"]}):
        rows = [r for r in result["rows"] if r["interval_days"] == interval]
        lines.append(
            f"    imaged every {interval:g} d: "
            + ", ".join(f"n={r['n_per_arm']} {r['power']:.0%}" for r in rows)
        )
    return lines


@contextmanager
def _local_client() -> Iterator[tuple[httpx2.Client, str, str]]:
    """The configured database, a new demo lab with an admin key, the app in-process."""
    from fastapi.testclient import TestClient

    from app.config import get_settings
    from app.db import make_engine, make_session_factory, transaction
    from app.labs.service import create_lab
    from app.main import create_app
    from app.migrations import upgrade_to_head

    settings = get_settings()
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    settings.resolved_blob_dir.mkdir(parents=True, exist_ok=True)
    upgrade_to_head(settings.resolved_database_url)
    engine = make_engine(settings.resolved_database_url)
    try:
        from sqlalchemy import select

        from app.models import Lab

        with transaction(make_session_factory(engine)) as session:
            taken = set(session.scalars(select(Lab.name).where(Lab.name.like(f"{LAB_NAME}%"))))
            name = next(
                n
                for n in (LAB_NAME, *(f"{LAB_NAME} {i}" for i in range(2, 10_000)))
                if n not in taken
            )
            _, _, secret = create_lab(session, name)
    finally:
        engine.dispose()
    with TestClient(create_app(settings), headers={"X-API-Key": secret}) as client:
        yield client, secret, name


def _print_summary(result: DemoResult, key: str, lab: str | None, url: str | None) -> None:
    docs = f"{url or 'http://127.0.0.1:8000'}/docs"
    print()
    print(
        f"Done in {result.seconds:.1f} s: study {result.study_id} with "
        f"{len(result.animal_ids)} mice, {len(result.session_ids)} imaging sessions, "
        f"{result.acquisitions} images."
    )
    early = sorted(
        (day, tag, reason) for tag, (day, reason) in result.ends.items() if reason != "study_end"
    )
    if early:
        print(
            "Ended early: " + ", ".join(f"{tag} day {day} ({reason})" for day, tag, reason in early)
        )
    if lab is not None:
        print(f"\nLab '{lab}'; its admin API key (shown only once):\n{key}\n")
        print("Start the server with `make serve` (or `.venv/bin/osteolux serve`), then open")
    else:
        print("\nOpen")
    print(f"  {docs}  → Authorize → paste the key")
    print(f"Study id: {result.study_id}")
    for arm, cid in result.comparison_ids.items():
        print(f"Comparison {arm} vs its control: {cid}")
    base = f"{url or 'http://127.0.0.1:8000'}/studies/{result.study_id}"
    print("Try (in Swagger UI, or with the key in an X-API-Key header):")
    print(f"  GET {base}/summary")
    print(f"  GET {base}/plots/growth")
    print(f"  GET {base}/plots/spaghetti?site=spine")
    first = next(iter(result.comparison_ids.values()), None)
    if first:
        print(f"  GET {base}/comparisons/{first}")
        print(f"  GET {base}/comparisons/{first}/plots/survival")
    print(f"  GET {base}/export/prism.csv")
    print(
        f"  GET {base}/onset/interval-censored/plot?site=spine&threshold={THRESHOLD_PS:g}"
        "&treatment_arm_id=…"
    )
    print(f"  GET {base}/sites/burden/plot")
    print(f"  GET {base}/sites/involvement/plot?threshold={THRESHOLD_PS:g}&kind=per_mouse")
    print(f"  POST {base}/randomisation  (body {{}}: a balanced allocation, previewed)")
    print(f"  POST {base}/power?format=png  (the pilot arm and the designs: see /docs)")
    for rid in list(result.readout_ids.values())[:1]:
        print(f"  GET {base}/readouts/{rid}/comparison")
        print(f"  GET {base}/readouts/{rid}/plots/correlation")


def _command(args: argparse.Namespace) -> int:
    if (args.url is None) != (args.key is None):
        print("error: give --url and --key together (or neither)", file=sys.stderr)
        return 2
    print("Creating the demo study (synthetic IVIS images; this takes well under a minute)…")
    try:
        if args.url is not None:
            with httpx2.Client(
                base_url=args.url.rstrip("/"), headers={"X-API-Key": args.key}, timeout=120
            ) as client:
                result = run_demo(client, plan_study(small=args.small))
            _print_summary(result, args.key, None, args.url.rstrip("/"))
        else:
            with _local_client() as (client, key, lab):
                result = run_demo(client, plan_study(small=args.small))
            _print_summary(result, key, lab, None)
    except (DemoError, httpx2.HTTPError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    return 0


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    """Register ``osteolux demo``."""
    parser = subparsers.add_parser(
        "demo",
        help="create a realistic demo study (synthetic images) through the API",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--url", help="drive a running server at this URL instead (with --key)")
    parser.add_argument("--key", help="an editor or admin API key of that server")
    parser.add_argument(
        "--small",
        action="store_true",
        help=f"{SMALL_MICE_PER_ARM} mice per arm, {len(SMALL_DAYS)} sessions (a quicker look)",
    )
    parser.set_defaults(func=_command)
