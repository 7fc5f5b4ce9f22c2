"""scale out

Reserved in the migration chain (issue 14, several API processes);
the owner fills in
upgrade()/downgrade() together with the models.

Revision ID: e6c9a3b42d33
Revises: d5b8f2a31c22
Create Date: 2026-12-01 08:00:00

"""

from collections.abc import Sequence

# revision identifiers, used by Alembic.
revision: str = "e6c9a3b42d33"
down_revision: str | Sequence[str] | None = "d5b8f2a31c22"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Upgrade schema."""


def downgrade() -> None:
    """Downgrade schema."""
