"""Merge invoices and emails

Revision ID: 0f0000000006
"""

revision = "0f0000000006"
down_revision = ("0e0000000005", "0d0000000004")
branch_labels = None
depends_on = None


def upgrade():
    pass


def downgrade():
    pass
