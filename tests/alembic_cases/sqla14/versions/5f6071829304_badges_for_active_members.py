"""Badges, one for each active member

Written for SQLAlchemy 1.4: select() takes a list of columns, which SQLAlchemy 2
refuses.

Revision ID: 5f6071829304
Revises: 4e5f60718293
"""

import sqlalchemy as sa
from alembic import op

revision = "5f6071829304"
down_revision = "4e5f60718293"
branch_labels = None
depends_on = None

members = sa.table("members", sa.column("id"), sa.column("active"))
badges = sa.table("badges", sa.column("member_id"), sa.column("kind"))


def upgrade():
    op.create_table(
        "badges",
        sa.Column("member_id", sa.Integer, sa.ForeignKey("members.id"), nullable=False),
        sa.Column("kind", sa.Text, nullable=False),
    )
    active = sa.select([members.c.id, sa.literal("founder")]).where(members.c.active)
    op.execute(badges.insert().from_select(["member_id", "kind"], active))


def downgrade():
    op.drop_table("badges")
