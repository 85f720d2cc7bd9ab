"""A column type of the application, as revisions often import one."""

import sqlalchemy as sa


def money() -> sa.Numeric:
    return sa.Numeric(12, 2)
