"""flags: quality signals on kept data, counted apart from losses

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-04 16:30:00
"""

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "flags",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("drama_id", sa.String(length=64), nullable=False),
        sa.Column("episode_id", sa.String(length=200), nullable=True),
        sa.Column("stage", sa.String(length=64), nullable=False),
        sa.Column("item", sa.Text(), nullable=False),
        sa.Column("reason", sa.String(length=64), nullable=False),
        sa.Column("detail", sa.Text(), nullable=False),
        sa.Column("run_id", sa.String(length=64), nullable=False),
        sa.Column("asset_key", sa.String(length=128), nullable=False),
        sa.Column("partition", sa.String(length=64), nullable=False),
        sa.Column("stage_version", sa.String(length=32), nullable=False),
        sa.Column("model_id", sa.String(length=256), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("flags", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_flags_drama_id"), ["drama_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_flags_stage"), ["stage"], unique=False)
        batch_op.create_index(batch_op.f("ix_flags_asset_key"), ["asset_key"], unique=False)
        batch_op.create_index(batch_op.f("ix_flags_partition"), ["partition"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("flags", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_flags_partition"))
        batch_op.drop_index(batch_op.f("ix_flags_asset_key"))
        batch_op.drop_index(batch_op.f("ix_flags_stage"))
        batch_op.drop_index(batch_op.f("ix_flags_drama_id"))
    op.drop_table("flags")
