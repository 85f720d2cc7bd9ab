"""Invoice totals

Revision ID: 0e0000000005
"""

import sqlalchemy as sa
from alembic import op

revision = "0e0000000005"
down_revision = "0c0000000003"
branch_labels = None
depends_on = None


def upgrade():
    op.add_column("invoices", sa.Column("total_cents", sa.Integer, server_default="0"))


def downgrade():
    op.drop_column("invoices", "total_cents")
