"""article_terms.top: per-token lists of the articles naming it as a topic

Revision ID: 0004a
Revises: 0004
Create Date: 2026-11-30 00:40:00

The lists are filled by knowledge.search.refresh_terms, which runs when the shipped knowledge
base is re-indexed on the next start (knowledge.tokens.INDEX_VERSION was bumped with this).
"""
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = '0004a'
down_revision: str | None = '0004'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table('article_terms') as batch_op:
        batch_op.add_column(sa.Column('top', sa.LargeBinary(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('article_terms') as batch_op:
        batch_op.drop_column('top')
