import { useState } from "preact/hooks";
import { all, api } from "../lib/api";
import { parseRoster } from "../lib/csv";
import type { Animal, Arm, Me, Study } from "../types";
import { ErrorBox, Field, Loading, formValues, useLoad } from "../ui";
import { TemplateEditor } from "./template";

const CONTROL_CLASSES = ["vehicle", "isotype_control", "other"];
const TREATMENT_CLASSES = ["inhibitor", "neutralizing_antibody", "other"];

export function SetupPage({ study, me }: { study: Study; me: Me }) {
  const base = `/studies/${study.id}`;
  const arms = useLoad(() => all<Arm>(`${base}/arms`), [study.id]);
  const animals = useLoad(() => all<Animal>(`${base}/animals`), [study.id]);
  const canWrite = me.role === "admin" || me.role === "editor";
  return (
    <div class="setup">
      <section>
        <h2>Arms</h2>
        <ErrorBox error={arms.error} />
        {arms.data ? <ArmTable arms={arms.data} /> : <Loading what="arms" />}
        {canWrite && arms.data && <ArmForm base={base} arms={arms.data} onDone={arms.reload} />}
      </section>
      <section>
        <h2>Animals</h2>
        <ErrorBox error={animals.error} />
        {animals.data && arms.data ? <AnimalTable animals={animals.data} arms={arms.data} /> : <Loading what="animals" />}
        {canWrite && arms.data && arms.data.length > 0 && (
          <div class="two">
            <AnimalForm base={base} arms={arms.data} onDone={animals.reload} />
            <RosterImport base={base} arms={arms.data} onDone={animals.reload} />
          </div>
        )}
        {canWrite && arms.data && arms.data.length === 0 && <p class="muted">Add an arm first; every animal belongs to one.</p>}
      </section>
      <section>
        <h2>ROI site template</h2>
        <TemplateEditor studyId={study.id} canWrite={canWrite} />
      </section>
    </div>
  );
}

function ArmTable({ arms }: { arms: Arm[] }) {
  if (arms.length === 0) return <p class="muted">No arm yet.</p>;
  const byId = new Map(arms.map((a) => [a.id, a]));
  return (
    <table class="list" data-testid="arms">
      <thead>
        <tr>
          <th>Arm</th>
          <th>Role</th>
          <th>Agent</th>
          <th>Dose</th>
          <th>Route / schedule</th>
          <th>Compared with</th>
        </tr>
      </thead>
      <tbody>
        {arms.map((a) => (
          <tr key={a.id}>
            <td>{a.name}</td>
            <td>
              <span class={`pill ${a.role}`}>{a.role}</span> {a.agent_class.replace(/_/g, " ")}
            </td>
            <td>
              {a.agent ?? ""}
              {a.target ? ` (anti-${a.target})` : ""}
            </td>
            <td>{a.dose !== null ? `${a.dose} ${a.dose_unit ?? ""}` : ""}</td>
            <td>{[a.route, a.schedule].filter(Boolean).join(", ")}</td>
            <td>{a.control_arm_id ? byId.get(a.control_arm_id)?.name ?? "?" : ""}</td>
          </tr>
        ))}
      </tbody>
    </table>
  );
}

function ArmForm({ base, arms, onDone }: { base: string; arms: Arm[]; onDone: () => void }) {
  const [role, setRole] = useState<"control" | "treatment">(arms.some((a) => a.role === "control") ? "treatment" : "control");
  const [error, setError] = useState<unknown>();
  const controls = arms.filter((a) => a.role === "control");
  async function submit(e: Event) {
    e.preventDefault();
    const form = e.target as HTMLFormElement;
    const v: Record<string, unknown> = formValues(form);
    if (v.dose !== undefined) v.dose = Number(v.dose);
    setError(undefined);
    try {
      await api(`${base}/arms`, { json: v });
      form.reset();
      onDone();
    } catch (err) {
      setError(err);
    }
  }
  return (
    <form class="card grid" onSubmit={submit} aria-label="Add an arm">
      <h3>Add an arm</h3>
      <Field label="Name">
        <input name="name" required placeholder={role === "control" ? "Vehicle" : "1D11 10 mg/kg"} />
      </Field>
      <Field label="Role">
        <select name="role" value={role} onChange={(e) => setRole((e.target as HTMLSelectElement).value as "control")}>
          <option value="control">control</option>
          <option value="treatment">treatment</option>
        </select>
      </Field>
      <Field label="Agent class">
        <select name="agent_class">
          {(role === "control" ? CONTROL_CLASSES : TREATMENT_CLASSES).map((c) => (
            <option value={c}>{c.replace(/_/g, " ")}</option>
          ))}
        </select>
      </Field>
      {role === "treatment" && (
        <Field label="Control arm" hint="The arm this treatment is compared with.">
          <select name="control_arm_id" required>
            {controls.map((c) => (
              <option value={c.id}>{c.name}</option>
            ))}
          </select>
        </Field>
      )}
      <Field label="Agent">
        <input name="agent" placeholder={role === "control" ? "PBS" : "1D11"} />
      </Field>
      <Field label="Target">
        <input name="target" placeholder="TGF-β" />
      </Field>
      <Field label="Dose">
        <input name="dose" type="number" step="any" min="0" />
      </Field>
      <Field label="Dose unit">
        <input name="dose_unit" placeholder="mg/kg" />
      </Field>
      <Field label="Route">
        <input name="route" placeholder="i.p." />
      </Field>
      <Field label="Schedule">
        <input name="schedule" placeholder="3×/week from day 3" />
      </Field>
      <div class="actions">
        <button type="submit" disabled={role === "treatment" && controls.length === 0}>
          Add arm
        </button>
        {role === "treatment" && controls.length === 0 && <span class="hint">Add its control arm first.</span>}
      </div>
      <ErrorBox error={error} />
    </form>
  );
}

function AnimalTable({ animals, arms }: { animals: Animal[]; arms: Arm[] }) {
  if (animals.length === 0) return <p class="muted">No animal yet.</p>;
  const armName = new Map(arms.map((a) => [a.id, a.name]));
  return (
    <table class="list compact" data-testid="animals">
      <thead>
        <tr>
          <th>Ear tag</th>
          <th>Arm</th>
          <th>Cage</th>
          <th>Sex</th>
          <th>Strain</th>
          <th>Born</th>
          <th>End</th>
        </tr>
      </thead>
      <tbody>
        {animals.map((a) => (
          <tr key={a.id}>
            <td>
              <a href={`#/s/${a.study_id}/animal/${a.id}`}>{a.identifier}</a>
            </td>
            <td>{armName.get(a.arm_id) ?? "?"}</td>
            <td>{a.cage ?? ""}</td>
            <td>{a.sex}</td>
            <td>{a.strain ?? ""}</td>
            <td>{a.date_of_birth ?? ""}</td>
            <td>{a.end ? `${a.end.date} ${a.end.reason.replace(/_/g, " ")}` : ""}</td>
          </tr>
        ))}
      </tbody>
    </table>
  );
}

function AnimalForm({ base, arms, onDone }: { base: string; arms: Arm[]; onDone: () => void }) {
  const [error, setError] = useState<unknown>();
  async function submit(e: Event) {
    e.preventDefault();
    const form = e.target as HTMLFormElement;
    setError(undefined);
    try {
      await api(`${base}/animals`, { json: formValues(form) });
      (form.elements.namedItem("identifier") as HTMLInputElement).value = "";
      (form.elements.namedItem("identifier") as HTMLInputElement).focus();
      onDone();
    } catch (err) {
      setError(err);
    }
  }
  return (
    <form class="card grid" onSubmit={submit} aria-label="Add an animal">
      <h3>Add one animal</h3>
      <Field label="Ear tag">
        <input name="identifier" required />
      </Field>
      <Field label="Arm">
        <select name="arm_id">
          {arms.map((a) => (
            <option value={a.id}>{a.name}</option>
          ))}
        </select>
      </Field>
      <Field label="Cage">
        <input name="cage" />
      </Field>
      <Field label="Sex">
        <select name="sex">
          <option>female</option>
          <option>male</option>
          <option>unknown</option>
        </select>
      </Field>
      <Field label="Strain">
        <input name="strain" placeholder="NSG" />
      </Field>
      <Field label="Date of birth">
        <input name="date_of_birth" type="date" />
      </Field>
      <div class="actions">
        <button type="submit">Add animal</button>
      </div>
      <ErrorBox error={error} />
    </form>
  );
}

interface ImportLine {
  identifier: string;
  status: "waiting" | "added" | "failed";
  message?: string;
}

function RosterImport({ base, arms, onDone }: { base: string; arms: Arm[]; onDone: () => void }) {
  const [errors, setErrors] = useState<string[]>([]);
  const [lines, setLines] = useState<ImportLine[]>([]);
  const [busy, setBusy] = useState(false);
  async function onFile(e: Event) {
    const input = e.target as HTMLInputElement;
    const file = input.files?.[0];
    if (!file) return;
    const parsed = parseRoster(await file.text(), arms.map((a) => a.name));
    setErrors(parsed.errors);
    setLines([]);
    if (parsed.errors.length) return; // nothing is sent from a file with errors
    const armId = new Map(arms.map((a) => [a.name, a.id]));
    const state: ImportLine[] = parsed.rows.map((r) => ({ identifier: r.identifier, status: "waiting" }));
    setLines([...state]);
    setBusy(true);
    for (const [i, r] of parsed.rows.entries()) {
      try {
        await api(`${base}/animals`, {
          json: {
            identifier: r.identifier,
            arm_id: armId.get(r.arm),
            cage: r.cage,
            sex: r.sex,
            strain: r.strain,
            date_of_birth: r.date_of_birth,
          },
        });
        state[i] = { ...state[i], status: "added" };
      } catch (err) {
        state[i] = { ...state[i], status: "failed", message: (err as Error).message };
      }
      setLines([...state]);
    }
    setBusy(false);
    input.value = "";
    onDone();
  }
  const added = lines.filter((l) => l.status === "added").length;
  const failed = lines.filter((l) => l.status === "failed");
  return (
    <div class="card" aria-label="Import a roster">
      <h3>Import a roster (CSV)</h3>
      <p class="hint">
        One animal per line with a header: <code>ear tag, arm, cage, sex, strain, date of birth</code>. Arms by name
        ({arms.map((a) => a.name).join(", ")}); dates as YYYY-MM-DD. The file is checked first: nothing is added from a
        file with errors.
      </p>
      <input type="file" accept=".csv,text/csv" onChange={onFile} disabled={busy} aria-label="Roster CSV file" />
      {errors.length > 0 && (
        <div class="error" role="alert">
          <strong>Nothing imported:</strong>
          <ul>
            {errors.map((m) => (
              <li>{m}</li>
            ))}
          </ul>
        </div>
      )}
      {lines.length > 0 && (
        <p data-testid="roster-status">
          {added} of {lines.length} animals added{failed.length ? `, ${failed.length} failed` : ""}
          {busy ? "…" : "."}
        </p>
      )}
      {failed.length > 0 && (
        <ul class="error">
          {failed.map((l) => (
            <li>
              {l.identifier}: {l.message}
            </li>
          ))}
        </ul>
      )}
    </div>
  );
}
