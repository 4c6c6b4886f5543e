"""release shards

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-24 20:00:36.217138
"""

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:

    op.create_table(
        "release_shards",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("drama_id", sa.String(length=64), nullable=False),
        sa.Column("uri", sa.Text(), nullable=False),
        sa.Column("rows", sa.Integer(), nullable=False),
        sa.Column("size_bytes", sa.BigInteger(), nullable=False),
        sa.Column("run_id", sa.String(length=64), nullable=False),
        sa.Column("asset_key", sa.String(length=128), nullable=False),
        sa.Column("partition", sa.String(length=64), nullable=False),
        sa.Column("stage_version", sa.String(length=32), nullable=False),
        sa.Column("model_id", sa.String(length=256), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("release_shards", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_release_shards_asset_key"), ["asset_key"], unique=False)
        batch_op.create_index(batch_op.f("ix_release_shards_drama_id"), ["drama_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_release_shards_partition"), ["partition"], unique=False)


def downgrade() -> None:

    with op.batch_alter_table("release_shards", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_release_shards_partition"))
        batch_op.drop_index(batch_op.f("ix_release_shards_drama_id"))
        batch_op.drop_index(batch_op.f("ix_release_shards_asset_key"))

    op.drop_table("release_shards")
