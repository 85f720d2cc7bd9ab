"""Customer emails, on another branch

Revision ID: 0d0000000004
"""

import sqlalchemy as sa
from alembic import op

revision = "0d0000000004"
down_revision = "0b0000000002"
branch_labels = None
depends_on = None


def upgrade():
    op.add_column("customers", sa.Column("email", sa.Text, nullable=True))
    op.create_index("ix_customers_email", "customers", ["email"], unique=True)


def downgrade():
    op.drop_index("ix_customers_email", table_name="customers")
    op.drop_column("customers", "email")
