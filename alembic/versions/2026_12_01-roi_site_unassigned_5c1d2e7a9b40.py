"""roi site unassigned

A Living Image ROI whose label names no site is stored as ``unassigned`` (it was counted as
whole-body flux); the user assigns its site later, audited.

Revision ID: 5c1d2e7a9b40
Revises: b979d7e05d37
Create Date: 2026-12-01 05:45:00

"""

from collections.abc import Sequence

import sqlalchemy as sa

from alembic import op

# revision identifiers, used by Alembic.
revision: str = "5c1d2e7a9b40"
down_revision: str | Sequence[str] | None = "b979d7e05d37"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_BEFORE = (
    "whole_body",
    "skull_mandible",
    "spine",
    "thorax",
    "forelimbs_scapula",
    "left_hindlimb",
    "right_hindlimb",
    "background",
    "custom",
)
_AFTER = (*_BEFORE, "unassigned")


def _sites(values: Sequence[str]) -> sa.Enum:
    return sa.Enum(*values, name="site", native_enum=False, create_constraint=True, length=17)


def upgrade() -> None:
    """Upgrade schema."""
    with op.batch_alter_table("roi") as batch:
        batch.alter_column(
            "site", existing_type=_sites(_BEFORE), type_=_sites(_AFTER), existing_nullable=False
        )


def downgrade() -> None:
    """Downgrade schema: unassigned ROIs go back to whole-body, as they were stored before."""
    op.execute("UPDATE roi SET site = 'whole_body' WHERE site = 'unassigned'")
    with op.batch_alter_table("roi") as batch:
        batch.alter_column(
            "site", existing_type=_sites(_AFTER), type_=_sites(_BEFORE), existing_nullable=False
        )
