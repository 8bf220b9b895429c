"""knowledge articles and their search index

SQLite: an external-content FTS5 table over the pre-tokenised columns, kept in step by triggers.
PostgreSQL: stored generated tsvector columns with GIN indexes, one over titles and keywords
(``search_key_vector``, asked first) and one over everything (``search_vector``, weighted); the
search ranks on the stored vectors instead of re-parsing every matching article's text.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-29 21:58:28.148553
"""
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op


revision: str = '0002'
down_revision: str | None = '0001'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


PG_VECTOR = (
    "setweight(to_tsvector('simple'::regconfig, search_key), 'A') || "
    "setweight(to_tsvector('simple'::regconfig, search_body), 'D')"
)

SQLITE_FTS = (
    "CREATE VIRTUAL TABLE articles_fts USING fts5("
    "search_key, search_body, content='articles', content_rowid='id', tokenize='unicode61')",
    "CREATE TRIGGER articles_fts_ai AFTER INSERT ON articles BEGIN "
    "INSERT INTO articles_fts(rowid, search_key, search_body) VALUES (new.id, new.search_key, new.search_body); END",
    "CREATE TRIGGER articles_fts_ad AFTER DELETE ON articles BEGIN "
    "INSERT INTO articles_fts(articles_fts, rowid, search_key, search_body) "
    "VALUES ('delete', old.id, old.search_key, old.search_body); END",
    "CREATE TRIGGER articles_fts_au AFTER UPDATE OF search_key, search_body ON articles BEGIN "
    "INSERT INTO articles_fts(articles_fts, rowid, search_key, search_body) "
    "VALUES ('delete', old.id, old.search_key, old.search_body); "
    "INSERT INTO articles_fts(rowid, search_key, search_body) VALUES (new.id, new.search_key, new.search_body); END",
)


def upgrade() -> None:
    op.create_table('articles',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('slug', sa.String(length=100), nullable=False),
    sa.Column('category', sa.String(length=32), nullable=False),
    sa.Column('topic', sa.String(length=64), nullable=True),
    sa.Column('title_zh', sa.String(length=200), nullable=False),
    sa.Column('title_en', sa.String(length=200), nullable=False),
    sa.Column('keywords', sa.JSON(), nullable=False),
    sa.Column('short_zh', sa.Text(), nullable=False),
    sa.Column('short_en', sa.Text(), nullable=False),
    sa.Column('full_zh', sa.Text(), nullable=False),
    sa.Column('full_en', sa.Text(), nullable=False),
    sa.Column('source', sa.String(length=300), nullable=False),
    sa.Column('reviewer', sa.String(length=100), nullable=True),
    sa.Column('reviewed', sa.Date(), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('origin', sa.String(length=16), nullable=False),
    sa.Column('content_hash', sa.String(length=64), nullable=False),
    sa.Column('search_key', sa.Text(), nullable=False),
    sa.Column('search_body', sa.Text(), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_articles')),
    sa.UniqueConstraint('slug', name=op.f('uq_articles_slug'))
    )
    with op.batch_alter_table('articles', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_articles_category'), ['category'], unique=False)
    op.create_table('article_terms',
    sa.Column('term', sa.String(length=64), nullable=False),
    sa.Column('df', sa.Integer(), nullable=False),
    sa.Column('df_all', sa.Integer(), nullable=False),
    sa.PrimaryKeyConstraint('term', name=op.f('pk_article_terms'))
    )
    if op.get_bind().dialect.name == "sqlite":
        for statement in SQLITE_FTS:
            op.execute(statement)
    else:
        op.execute(f"ALTER TABLE articles ADD COLUMN search_vector tsvector GENERATED ALWAYS AS ({PG_VECTOR}) STORED")
        op.execute("CREATE INDEX ix_articles_search ON articles USING GIN (search_vector)")
        # Titles and keywords alone: asked first, and small enough to rank quickly at any size.
        op.execute(
            "ALTER TABLE articles ADD COLUMN search_key_vector tsvector GENERATED ALWAYS AS "
            "(to_tsvector('simple'::regconfig, search_key)) STORED"
        )
        op.execute("CREATE INDEX ix_articles_search_key ON articles USING GIN (search_key_vector)")


def downgrade() -> None:
    if op.get_bind().dialect.name == "sqlite":
        for name in ("articles_fts_ai", "articles_fts_ad", "articles_fts_au"):
            op.execute(f"DROP TRIGGER IF EXISTS {name}")
        op.execute("DROP TABLE IF EXISTS articles_fts")
    else:
        op.execute("DROP INDEX IF EXISTS ix_articles_search_key")
        op.execute("DROP INDEX IF EXISTS ix_articles_search")
        op.execute("ALTER TABLE articles DROP COLUMN IF EXISTS search_key_vector")
        op.execute("ALTER TABLE articles DROP COLUMN IF EXISTS search_vector")
    with op.batch_alter_table('articles', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_articles_category'))

    op.drop_table('articles')
    op.drop_table('article_terms')
