"""private attribution: outputs.attribution holds the full attribution; the credential only its public form

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-03
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # NULL for outputs made before: their credential carries the full attribution, read as before
    with op.batch_alter_table("outputs") as batch:
        batch.add_column(sa.Column("attribution", sa.JSON(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("outputs") as batch:
        batch.drop_column("attribution")
