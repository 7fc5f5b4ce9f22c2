"""osteolux numeric core: bioluminescence images in, calibrated numbers out.

Pure library (numpy, scipy, tifffile; matplotlib only inside :mod:`imaging.render`). Arrays
and frozen dataclasses in and out; inputs are never modified. Errors: see
:mod:`imaging.errors` (one hierarchy rooted at :class:`ImagingError`).

Typical use::

    click = read_ivis_click("DG20220105114235.zip")
    image = calibrate_click(click)                    # counts → p/s/cm²/sr
    measurements = quantify(image, rois_from_click(click))

    # Living Image's own corrected image when the click has it, raw counts checked beside it,
    # detection limits from a background patch of the stage:
    result = quantify_click(click, rois, background=stage, subtract_background=False)
    result.measurements[0].flags        # e.g. {"calibration_disagrees", "below_detection"}

QC of a series (:mod:`imaging.qc`): :func:`check_settings_series`, :func:`check_exposure`,
:func:`luciferin_timing`, :func:`kinetic_sequences`, :func:`kinetic_peak`,
:func:`failed_injections`. Figures (:mod:`imaging.render`): :func:`render_overlay`,
:func:`render_sequence`, :func:`colour_range`.
"""

from ._version import __version__
from .animals import (
    DEFAULT_SITE_TEMPLATE,
    AnimalBody,
    SiteTemplate,
    background_square,
    find_animals,
    site_rois,
)
from .calibration import (
    RADIANCE_UNITS,
    CalibratedImage,
    CalibrationStep,
    CosmicRayRemoval,
    calibrate_click,
    calibrate_counts,
    corrected_image,
    flat_field_map,
    image_from_array,
    remove_cosmic_rays,
)
from .clickinfo import ClickInfo, ClickSection, parse_clickinfo
from .contours import contour_rois
from .errors import (
    CalibrationError,
    ClickFolderError,
    ImageTooLargeError,
    ImagingError,
    InvalidImageError,
    LivingImageExportError,
    RoiError,
)
from .fidelity import (
    CalibrationComparison,
    CalibrationTolerance,
    ClickQuantification,
    compare_calibrations,
    primary_image,
    quantify_click,
    same_frame,
    same_primary_inputs,
)
from .geometry import (
    CircleRoi,
    EllipseRoi,
    MaskRoi,
    PolygonRoi,
    RectangleRoi,
    Roi,
    RoiMask,
    WeightMethod,
    roi_mask,
)
from .ivis import (
    CameraCalibration,
    ClickPreview,
    FlatFieldCoefficients,
    Frame,
    IvisClick,
    LivingImageRoi,
    LuminescentSettings,
    ZipLimits,
    click_photograph,
    partial_click,
    read_ivis_click,
)
from .livingimage_csv import LivingImageMeasurement, read_living_image_measurements
from .qc import (
    SETTING_IMPACT,
    AcquisitionSettings,
    AcquisitionTime,
    ExposureCheck,
    KineticPeak,
    LuciferinTiming,
    SettingsCheck,
    acquisition_time,
    check_exposure,
    check_settings_series,
    failed_injections,
    kinetic_peak,
    kinetic_sequences,
    luciferin_timing,
)
from .quantify import (
    DETECTION_FLOOR_RADIANCE,
    DETECTION_K,
    DetectionLimit,
    RoiMeasurement,
    detection_limit,
    quantify,
    quantify_roi,
    roi_from_living_image,
    rois_from_click,
)
from .render import OverlayPanel, colour_range, place_labels, render_overlay, render_sequence
from .synthetic import (
    SyntheticClick,
    SyntheticMouse,
    SyntheticSource,
    default_hotel,
    write_synthetic_click,
)
from .tiff import ImageLimits, TiffImage, read_tiff
from .zipstream import StreamedMember, ZipStream

__all__ = [
    "DEFAULT_SITE_TEMPLATE",
    "DETECTION_FLOOR_RADIANCE",
    "DETECTION_K",
    "RADIANCE_UNITS",
    "SETTING_IMPACT",
    "AcquisitionSettings",
    "AcquisitionTime",
    "AnimalBody",
    "CalibratedImage",
    "CalibrationComparison",
    "CalibrationError",
    "CalibrationStep",
    "CalibrationTolerance",
    "CameraCalibration",
    "CircleRoi",
    "ClickFolderError",
    "ClickInfo",
    "ClickPreview",
    "ClickQuantification",
    "ClickSection",
    "CosmicRayRemoval",
    "DetectionLimit",
    "EllipseRoi",
    "ExposureCheck",
    "FlatFieldCoefficients",
    "Frame",
    "ImageLimits",
    "ImageTooLargeError",
    "ImagingError",
    "InvalidImageError",
    "IvisClick",
    "KineticPeak",
    "LivingImageExportError",
    "LivingImageMeasurement",
    "LivingImageRoi",
    "LuciferinTiming",
    "LuminescentSettings",
    "MaskRoi",
    "OverlayPanel",
    "PolygonRoi",
    "RectangleRoi",
    "Roi",
    "RoiError",
    "RoiMask",
    "RoiMeasurement",
    "SettingsCheck",
    "SiteTemplate",
    "StreamedMember",
    "SyntheticClick",
    "SyntheticMouse",
    "SyntheticSource",
    "TiffImage",
    "WeightMethod",
    "ZipLimits",
    "ZipStream",
    "__version__",
    "acquisition_time",
    "background_square",
    "calibrate_click",
    "calibrate_counts",
    "check_exposure",
    "check_settings_series",
    "click_photograph",
    "colour_range",
    "compare_calibrations",
    "contour_rois",
    "corrected_image",
    "default_hotel",
    "detection_limit",
    "failed_injections",
    "find_animals",
    "flat_field_map",
    "image_from_array",
    "kinetic_peak",
    "kinetic_sequences",
    "luciferin_timing",
    "parse_clickinfo",
    "partial_click",
    "place_labels",
    "primary_image",
    "quantify",
    "quantify_click",
    "quantify_roi",
    "read_ivis_click",
    "read_living_image_measurements",
    "read_tiff",
    "remove_cosmic_rays",
    "render_overlay",
    "render_sequence",
    "roi_from_living_image",
    "roi_mask",
    "rois_from_click",
    "same_frame",
    "same_primary_inputs",
    "site_rois",
    "write_synthetic_click",
]
