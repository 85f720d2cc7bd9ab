"""Invoices by email

Revision ID: 1a0000000007
"""

import sqlalchemy as sa
from alembic import op

revision = "1a0000000007"
down_revision = "0f0000000006"
branch_labels = None
depends_on = None


def upgrade():
    op.add_column("invoices", sa.Column("sent_to", sa.Text, nullable=True))


def downgrade():
    op.drop_column("invoices", "sent_to")
