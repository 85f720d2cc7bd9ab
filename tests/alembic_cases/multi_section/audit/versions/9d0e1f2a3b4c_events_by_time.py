"""Events by time

Revision ID: 9d0e1f2a3b4c
Revises: 8c9d0e1f2a3b
"""

from alembic import op

revision = "9d0e1f2a3b4c"
down_revision = "8c9d0e1f2a3b"
branch_labels = None
depends_on = None


def upgrade():
    op.create_index("ix_events_at", "events", ["at"], schema="audit")


def downgrade():
    op.drop_index("ix_events_at", table_name="events", schema="audit")
