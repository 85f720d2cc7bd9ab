"""Totals in euros, filled by a data migration that skips --sql runs

Revision ID: e3f4a5b6c7d8
Revises: d2e3f4a5b6c7
"""

import sqlalchemy as sa
from alembic import op

revision = "e3f4a5b6c7d8"
down_revision = "d2e3f4a5b6c7"
branch_labels = None
depends_on = None


def upgrade():
    if op.get_context().as_sql:
        return
    op.execute("CREATE TABLE order_totals AS SELECT id, total_cents / 100.0 AS euros FROM orders")


def downgrade():
    op.execute(sa.text("DROP TABLE IF EXISTS order_totals"))
