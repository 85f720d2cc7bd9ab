"""Add tasks with a status enum

Revision ID: 2b3c4d5e6f02
Revises: 1a2b3c4d5e01
Create Date: 2026-01-12 09:30:00

"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "2b3c4d5e6f02"
down_revision: str | None = "1a2b3c4d5e01"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

task_status = postgresql.ENUM("todo", "doing", "done", name="task_status")


def upgrade() -> None:
    op.create_table(
        "tasks",
        sa.Column("id", sa.BigInteger(), sa.Identity(), primary_key=True),
        sa.Column("project_id", sa.Integer(), nullable=False),
        sa.Column("assignee_id", sa.Integer(), nullable=True),
        sa.Column("title", sa.String(length=200), nullable=False),
        sa.Column("status", task_status, server_default="todo", nullable=False),
        sa.ForeignKeyConstraint(["project_id"], ["projects.id"], name="fk_tasks_project_id"),
        sa.ForeignKeyConstraint(
            ["assignee_id"], ["users.id"], name="fk_tasks_assignee_id", ondelete="SET NULL"
        ),
    )


def downgrade() -> None:
    op.drop_table("tasks")
    # Dropping the table leaves the type behind: drop it too, as Alembic's docs advise.
    task_status.drop(op.get_bind(), checkfirst=False)
