"""endpoint readouts

Reserved in the migration chain (issue 15, pathology readouts and design);
the owner fills in
upgrade()/downgrade() together with the models.

Revision ID: d5b8f2a31c22
Revises: c4a7e1f20b11
Create Date: 2026-12-01 08:00:00

"""

from collections.abc import Sequence

# revision identifiers, used by Alembic.
revision: str = "d5b8f2a31c22"
down_revision: str | Sequence[str] | None = "c4a7e1f20b11"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Upgrade schema."""


def downgrade() -> None:
    """Downgrade schema."""
