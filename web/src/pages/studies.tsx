import { useState } from "preact/hooks";
import { all, api } from "../lib/api";
import type { Me, Study } from "../types";
import { ErrorBox, Field, Loading, formValues, useLoad } from "../ui";

const MODELS = [
  "intracardiac",
  "intratibial",
  "intrafemoral",
  "intra_iliac",
  "tail_vein",
  "mammary_fat_pad",
  "subcutaneous",
  "other",
];

export function StudiesPage({ me }: { me: Me }) {
  const { data: studies, error, reload } = useLoad(() => all<Study>("/studies"), []);
  const [formError, setFormError] = useState<unknown>();
  const [open, setOpen] = useState(false);
  const canWrite = me.role === "admin" || me.role === "editor";

  async function create(e: Event) {
    e.preventDefault();
    const v = formValues(e.target as HTMLFormElement);
    setFormError(undefined);
    try {
      const study = await api<Study>("/studies", { json: v });
      location.hash = `#/s/${study.id}/setup`;
      reload();
    } catch (err) {
      setFormError(err);
    }
  }

  return (
    <section>
      <h1>Studies of {me.lab_name}</h1>
      <ErrorBox error={error} />
      {!studies ? (
        <Loading what="studies" />
      ) : studies.length === 0 ? (
        <p>No study yet{canWrite ? ": register the first one below." : "."}</p>
      ) : (
        <table class="list" data-testid="studies">
          <thead>
            <tr>
              <th>Study</th>
              <th>Cell line</th>
              <th>Model</th>
              <th>Day 0</th>
              <th>IACUC</th>
            </tr>
          </thead>
          <tbody>
            {studies.map((s) => (
              <tr key={s.id} class={s.archived_at ? "archived" : ""}>
                <td>
                  <a href={`#/s/${s.id}/setup`}>{s.name}</a>
                </td>
                <td>{s.cell_line}</td>
                <td>{s.injection_model.replace(/_/g, " ")}</td>
                <td>{s.day0}</td>
                <td>{s.iacuc_number ?? ""}</td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
      {canWrite &&
        (open ? (
          <form class="card grid" onSubmit={create} aria-label="New study">
            <h2>New study</h2>
            <Field label="Name">
              <input name="name" required maxLength={200} />
            </Field>
            <Field label="Cell line">
              <input name="cell_line" required placeholder="MDA-MB-231-luc" />
            </Field>
            <Field label="Injection model">
              <select name="injection_model">
                {MODELS.map((m) => (
                  <option value={m}>{m.replace(/_/g, " ")}</option>
                ))}
              </select>
            </Field>
            <Field label="Day 0 (injection date)">
              <input name="day0" type="date" required />
            </Field>
            <Field label="IACUC protocol">
              <input name="iacuc_number" />
            </Field>
            <div class="actions">
              <button type="submit">Register study</button>
              <button type="button" class="secondary" onClick={() => setOpen(false)}>
                Cancel
              </button>
            </div>
            <ErrorBox error={formError} />
          </form>
        ) : (
          <button onClick={() => setOpen(true)}>New study…</button>
        ))}
    </section>
  );
}
