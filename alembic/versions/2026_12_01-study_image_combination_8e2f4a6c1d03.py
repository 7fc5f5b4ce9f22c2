"""study image combination

How several images of one animal on one day are combined is an explicit study setting
(``mean`` as before: existing studies keep their numbers, now said in every output).

Revision ID: 8e2f4a6c1d03
Revises: 5c1d2e7a9b40
Create Date: 2026-12-01 06:00:00

"""

from collections.abc import Sequence

import sqlalchemy as sa

from alembic import op

# revision identifiers, used by Alembic.
revision: str = "8e2f4a6c1d03"
down_revision: str | Sequence[str] | None = "5c1d2e7a9b40"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


_VALUES = ("mean", "sum_of_views", "dorsal", "ventral", "peak")


def upgrade() -> None:
    """Upgrade schema: a plain ADD COLUMN (with its CHECK inline), so SQLite need not rebuild
    the study table that every other table refers to."""
    values = ", ".join(f"'{v}'" for v in _VALUES)
    op.add_column(
        "study",
        sa.Column(
            "image_combination",
            sa.String(length=12),
            sa.CheckConstraint(
                f"image_combination IN ({values})", name="ck_study_image_combination"
            ),
            server_default="mean",
            nullable=False,
        ),
    )


def downgrade() -> None:
    """Downgrade schema."""
    with op.batch_alter_table("study") as batch:
        batch.drop_constraint("ck_study_image_combination", type_="check")
        batch.drop_column("image_combination")
