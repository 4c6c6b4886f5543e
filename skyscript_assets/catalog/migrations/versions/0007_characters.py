"""characters: the drama's character library

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-24 22:10:00
"""

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "characters",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("drama_id", sa.String(length=64), nullable=False),
        sa.Column("character_id", sa.String(length=32), nullable=False),
        sa.Column("name", sa.Text(), nullable=False),
        sa.Column("named_from", sa.String(length=16), nullable=False),
        sa.Column("observations", sa.Integer(), nullable=False),
        sa.Column("first_episode_id", sa.String(length=200), nullable=False),
        sa.Column("first_time_s", sa.Float(), nullable=False),
        sa.Column("face_uri", sa.Text(), nullable=False),
        sa.Column("embedding_kind", sa.String(length=16), nullable=False),
        sa.Column("run_id", sa.String(length=64), nullable=False),
        sa.Column("asset_key", sa.String(length=128), nullable=False),
        sa.Column("partition", sa.String(length=64), nullable=False),
        sa.Column("stage_version", sa.String(length=32), nullable=False),
        sa.Column("model_id", sa.String(length=256), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("characters", schema=None) as batch_op:
        batch_op.create_index("ix_characters_character", ["drama_id", "character_id"], unique=True)
        batch_op.create_index(batch_op.f("ix_characters_asset_key"), ["asset_key"], unique=False)
        batch_op.create_index(batch_op.f("ix_characters_partition"), ["partition"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("characters", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_characters_partition"))
        batch_op.drop_index(batch_op.f("ix_characters_asset_key"))
        batch_op.drop_index("ix_characters_character")
    op.drop_table("characters")
