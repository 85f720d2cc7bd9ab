"""Rename users.name to display_name

Revision ID: 4d5e6f708104
Revises: 3c4d5e6f7003
Create Date: 2026-02-20 11:00:00

"""

from collections.abc import Sequence

from alembic import op

revision: str = "4d5e6f708104"
down_revision: str | None = "3c4d5e6f7003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.alter_column("users", "name", new_column_name="display_name")


def downgrade() -> None:
    op.alter_column("users", "display_name", new_column_name="name")
