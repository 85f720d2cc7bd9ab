"""Audit schema and its events

Revision ID: 8c9d0e1f2a3b
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "8c9d0e1f2a3b"
down_revision = None
branch_labels = None
depends_on = None


def upgrade():
    op.execute("CREATE SCHEMA audit")
    op.create_table(
        "events",
        sa.Column("id", sa.BigInteger, sa.Identity(), primary_key=True),
        sa.Column("at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False),
        sa.Column("payload", postgresql.JSONB, nullable=False),
        schema="audit",
    )


def downgrade():
    op.drop_table("events", schema="audit")
    op.execute("DROP SCHEMA audit")
