"""Index tasks, and users are active by default

Revision ID: 3c4d5e6f7003
Revises: 2b3c4d5e6f02
Create Date: 2026-02-02 14:15:00

"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "3c4d5e6f7003"
down_revision: str | None = "2b3c4d5e6f02"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_index("ix_tasks_project_id_status", "tasks", ["project_id", "status"])
    op.add_column(
        "users",
        sa.Column("is_active", sa.Boolean(), server_default=sa.true(), nullable=False),
    )


def downgrade() -> None:
    op.drop_column("users", "is_active")
    op.drop_index("ix_tasks_project_id_status", table_name="tasks")
