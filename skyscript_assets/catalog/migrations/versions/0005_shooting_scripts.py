"""shooting scripts

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-24 19:58:43.127926
"""

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:

    op.create_table(
        "shooting_scripts",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("drama_id", sa.String(length=64), nullable=False),
        sa.Column("episode_id", sa.String(length=200), nullable=False),
        sa.Column("scene_number", sa.Integer(), nullable=False),
        sa.Column("shots", sa.Integer(), nullable=False),
        sa.Column("script", sa.JSON(), nullable=False),
        sa.Column("text", sa.Text(), nullable=False),
        sa.Column("calibration_status", sa.String(length=32), nullable=False),
        sa.Column("run_id", sa.String(length=64), nullable=False),
        sa.Column("asset_key", sa.String(length=128), nullable=False),
        sa.Column("partition", sa.String(length=64), nullable=False),
        sa.Column("stage_version", sa.String(length=32), nullable=False),
        sa.Column("model_id", sa.String(length=256), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("shooting_scripts", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_shooting_scripts_asset_key"), ["asset_key"], unique=False)
        batch_op.create_index(batch_op.f("ix_shooting_scripts_partition"), ["partition"], unique=False)
        batch_op.create_index("ix_shooting_scripts_scene", ["drama_id", "episode_id", "scene_number"], unique=True)


def downgrade() -> None:

    with op.batch_alter_table("shooting_scripts", schema=None) as batch_op:
        batch_op.drop_index("ix_shooting_scripts_scene")
        batch_op.drop_index(batch_op.f("ix_shooting_scripts_partition"))
        batch_op.drop_index(batch_op.f("ix_shooting_scripts_asset_key"))

    op.drop_table("shooting_scripts")
