import type { Geometry } from "./lib/geometry";

export interface Page<T> {
  items: T[];
  total: number;
}

export interface Study {
  id: string;
  name: string;
  cell_line: string;
  injection_model: string;
  day0: string;
  iacuc_number: string | null;
  description: string | null;
  archived_at: string | null;
}

export interface Arm {
  id: string;
  name: string;
  role: "control" | "treatment";
  agent_class: string;
  agent: string | null;
  target: string | null;
  dose: number | null;
  dose_unit: string | null;
  route: string | null;
  schedule: string | null;
  control_arm_id: string | null;
  archived_at: string | null;
}

export interface Animal {
  id: string;
  study_id: string;
  identifier: string;
  arm_id: string;
  cage: string | null;
  sex: string;
  strain: string | null;
  date_of_birth: string | null;
  end: { date: string; reason: string; note: string | null } | null;
  archived_at: string | null;
}

export interface ImagingSession {
  id: string;
  acquired_at: string;
  acquired_on: string;
  day: number;
  operator: string | null;
  instrument: string | null;
}

export interface Measurement {
  measurement_id: string;
  roi_id: string;
  animal: string | null;
  site: string;
  label: string | null;
  roi_source: string;
  total_flux_ps: number | null;
  radiance_mean: number | null;
  area_cm2: number | null;
  flags: string[];
  units: string;
  geometry?: Geometry;
}

export interface Acquisition {
  id: string;
  session_id: string;
  view: string;
  click_number: string | null;
  exposure_s: number | null;
  binning: number | null;
  units: string | null;
  already_stored?: boolean;
  animals: { position: number; animal_id: string | null; identifier: string }[];
  measurements: Measurement[];
}

export interface Me {
  lab_id: string;
  lab_name: string;
  key_id: string;
  role: string;
}

export const SITES = [
  "whole_body",
  "skull_mandible",
  "spine",
  "thorax",
  "forelimbs_scapula",
  "left_hindlimb",
  "right_hindlimb",
  "custom",
] as const;

export const siteLabel = (s: string) => s.replace(/_/g, " ");
