"""jobs

Reserved in the migration chain (issue 14, jobs);
the owner fills in
upgrade()/downgrade() together with the models.

Revision ID: c4a7e1f20b11
Revises: 8e2f4a6c1d03
Create Date: 2026-12-01 08:00:00

"""

from collections.abc import Sequence

# revision identifiers, used by Alembic.
revision: str = "c4a7e1f20b11"
down_revision: str | Sequence[str] | None = "8e2f4a6c1d03"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Upgrade schema."""


def downgrade() -> None:
    """Downgrade schema."""
