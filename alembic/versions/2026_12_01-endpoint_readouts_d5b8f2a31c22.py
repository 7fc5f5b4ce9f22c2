"""endpoint readouts

Per-animal end-of-study readouts (issue 15 §5): a study's readout definitions (name, unit,
kind numeric/count/binary, optional site) and each animal's value. New tables only, so
SQLite needs no table rebuild.

Revision ID: d5b8f2a31c22
Revises: c4a7e1f20b11
Create Date: 2026-12-01 08:00:00

"""

from collections.abc import Sequence

import sqlalchemy as sa

from alembic import op

# revision identifiers, used by Alembic.
revision: str = "d5b8f2a31c22"
down_revision: str | Sequence[str] | None = "c4a7e1f20b11"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Upgrade schema."""
    op.create_table(
        "readout",
        sa.Column("study_id", sa.Uuid(), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("unit", sa.String(length=50), nullable=True),
        sa.Column(
            "kind",
            sa.Enum(
                "numeric",
                "count",
                "binary",
                name="readout_kind",
                native_enum=False,
                create_constraint=True,
                length=7,
            ),
            nullable=False,
        ),
        sa.Column("site", sa.String(length=30), nullable=True),
        sa.Column("description", sa.Text(), nullable=True),
        sa.Column("archived_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["study_id"], ["study.id"], name=op.f("fk_readout_study_id_study"), ondelete="RESTRICT"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_readout")),
        sa.UniqueConstraint(
            "study_id", "name", "site", name=op.f("uq_readout_study_id_name_site")
        ),
    )
    op.create_index(op.f("ix_readout_study_id"), "readout", ["study_id"], unique=False)
    op.create_table(
        "readout_value",
        sa.Column("readout_id", sa.Uuid(), nullable=False),
        sa.Column("animal_id", sa.Uuid(), nullable=False),
        sa.Column("value", sa.Float(), nullable=False),
        sa.Column("measured_on", sa.Date(), nullable=True),
        sa.Column("note", sa.Text(), nullable=True),
        sa.Column("created_by_key_id", sa.Uuid(), nullable=True),
        sa.Column("updated_by_key_id", sa.Uuid(), nullable=True),
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["animal_id"],
            ["animal.id"],
            name=op.f("fk_readout_value_animal_id_animal"),
            ondelete="RESTRICT",
        ),
        sa.ForeignKeyConstraint(
            ["created_by_key_id"],
            ["api_key.id"],
            name=op.f("fk_readout_value_created_by_key_id_api_key"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["readout_id"],
            ["readout.id"],
            name=op.f("fk_readout_value_readout_id_readout"),
            ondelete="RESTRICT",
        ),
        sa.ForeignKeyConstraint(
            ["updated_by_key_id"],
            ["api_key.id"],
            name=op.f("fk_readout_value_updated_by_key_id_api_key"),
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_readout_value")),
        sa.UniqueConstraint(
            "readout_id", "animal_id", name=op.f("uq_readout_value_readout_id_animal_id")
        ),
    )
    op.create_index(
        op.f("ix_readout_value_animal_id"), "readout_value", ["animal_id"], unique=False
    )
    op.create_index(
        op.f("ix_readout_value_readout_id"), "readout_value", ["readout_id"], unique=False
    )


def downgrade() -> None:
    """Downgrade schema."""
    op.drop_index(op.f("ix_readout_value_readout_id"), table_name="readout_value")
    op.drop_index(op.f("ix_readout_value_animal_id"), table_name="readout_value")
    op.drop_table("readout_value")
    op.drop_index(op.f("ix_readout_study_id"), table_name="readout")
    op.drop_table("readout")
