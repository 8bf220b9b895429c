"""grid cases: departments, routes, cases, reports, timeline, Open311 keys, city data documents

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-30 00:20:00
"""
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = '0006'
down_revision: str | None = '0005'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        'departments',
        sa.Column('code', sa.String(length=32), nullable=False),
        sa.Column('kind', sa.String(length=16), nullable=False),
        sa.Column('name_zh', sa.String(length=200), nullable=False),
        sa.Column('name_en', sa.String(length=200), nullable=False),
        sa.Column('contact_name', sa.String(length=100), nullable=True),
        sa.Column('contact_urn', sa.String(length=200), nullable=True),
        sa.Column('supervisors', sa.JSON(), nullable=False),
        sa.Column('active', sa.Boolean(), nullable=False),
        sa.Column('forward_kind', sa.String(length=16), nullable=True),
        sa.Column('forward_url', sa.String(length=500), nullable=True),
        sa.Column('forward_secret', sa.String(length=200), nullable=True),
        sa.Column('forward_jurisdiction', sa.String(length=64), nullable=True),
        sa.Column('origin', sa.String(length=16), nullable=False),
        sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint('code', name=op.f('pk_departments')),
    )
    op.create_table(
        'case_routes',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('class_prefix', sa.String(length=8), nullable=False),
        sa.Column('area_prefix', sa.String(length=15), nullable=False),
        sa.Column('department_code', sa.String(length=32), nullable=False),
        sa.Column('origin', sa.String(length=16), nullable=False),
        sa.ForeignKeyConstraint(['department_code'], ['departments.code'],
                                name=op.f('fk_case_routes_department_code_departments'), ondelete='CASCADE'),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_case_routes')),
        sa.UniqueConstraint('class_prefix', 'area_prefix', name=op.f('uq_case_routes_class_prefix_area_prefix')),
    )
    with op.batch_alter_table('case_routes', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_case_routes_department_code'), ['department_code'], unique=False)

    op.create_table(
        'cases',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('status', sa.String(length=16), nullable=False),
        sa.Column('class_code', sa.String(length=8), nullable=True),
        sa.Column('description', sa.Text(), nullable=False),
        sa.Column('address', sa.String(length=300), nullable=True),
        sa.Column('landmark', sa.String(length=200), nullable=True),
        sa.Column('cell_id', sa.String(length=15), nullable=True),
        sa.Column('area_class', sa.String(length=8), nullable=True),
        sa.Column('lat', sa.Float(), nullable=True),
        sa.Column('lon', sa.Float(), nullable=True),
        sa.Column('source', sa.String(length=16), nullable=False),
        sa.Column('media', sa.JSON(), nullable=False),
        sa.Column('attributes', sa.JSON(), nullable=False),
        sa.Column('reports_count', sa.Integer(), nullable=False),
        sa.Column('department_code', sa.String(length=32), nullable=True),
        sa.Column('status_note', sa.Text(), nullable=True),
        sa.Column('limit_minutes', sa.Integer(), nullable=True),
        sa.Column('timer_started_at', sa.DateTime(timezone=True), nullable=True),
        sa.Column('timer_used_minutes', sa.Float(), nullable=False),
        sa.Column('warn_at', sa.DateTime(timezone=True), nullable=True),
        sa.Column('due_at', sa.DateTime(timezone=True), nullable=True),
        sa.Column('warned_at', sa.DateTime(timezone=True), nullable=True),
        sa.Column('escalated_at', sa.DateTime(timezone=True), nullable=True),
        sa.Column('suspended_from', sa.String(length=16), nullable=True),
        sa.Column('extension_request', sa.JSON(), nullable=True),
        sa.Column('dispatch_count', sa.Integer(), nullable=False),
        sa.Column('return_count', sa.Integer(), nullable=False),
        sa.Column('rework_count', sa.Integer(), nullable=False),
        sa.Column('reopen_count', sa.Integer(), nullable=False),
        sa.Column('extension_count', sa.Integer(), nullable=False),
        sa.Column('handled_on_time', sa.Boolean(), nullable=True),
        sa.Column('closed_on_time', sa.Boolean(), nullable=True),
        sa.Column('rating', sa.Integer(), nullable=True),
        sa.Column('void_reason', sa.String(length=16), nullable=True),
        sa.Column('duplicate_of_id', sa.Integer(), nullable=True),
        sa.Column('external_id', sa.String(length=128), nullable=True),
        sa.Column('reported_at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('registered_at', sa.DateTime(timezone=True), nullable=True),
        sa.Column('dispatched_at', sa.DateTime(timezone=True), nullable=True),
        sa.Column('handled_at', sa.DateTime(timezone=True), nullable=True),
        sa.Column('checked_at', sa.DateTime(timezone=True), nullable=True),
        sa.Column('closed_at', sa.DateTime(timezone=True), nullable=True),
        sa.Column('voided_at', sa.DateTime(timezone=True), nullable=True),
        sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(['department_code'], ['departments.code'],
                                name=op.f('fk_cases_department_code_departments'), ondelete='SET NULL'),
        sa.ForeignKeyConstraint(['duplicate_of_id'], ['cases.id'],
                                name=op.f('fk_cases_duplicate_of_id_cases'), ondelete='SET NULL'),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_cases')),
    )
    with op.batch_alter_table('cases', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_cases_cell_id'), ['cell_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_cases_department_code'), ['department_code'], unique=False)
        batch_op.create_index(batch_op.f('ix_cases_reported_at'), ['reported_at'], unique=False)
        batch_op.create_index('ix_cases_class_status', ['class_code', 'status', 'reported_at'], unique=False)
        batch_op.create_index('ix_cases_status_due', ['status', 'due_at'], unique=False)

    op.create_table(
        'case_reports',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('case_id', sa.Integer(), nullable=False),
        sa.Column('contact_id', sa.Integer(), nullable=True),
        sa.Column('urn', sa.String(length=200), nullable=True),
        sa.Column('channel', sa.String(length=16), nullable=False),
        sa.Column('text', sa.Text(), nullable=False),
        sa.Column('address', sa.String(length=300), nullable=True),
        sa.Column('lat', sa.Float(), nullable=True),
        sa.Column('lon', sa.Float(), nullable=True),
        sa.Column('details', sa.JSON(), nullable=False),
        sa.Column('rating', sa.Integer(), nullable=True),
        sa.Column('rated_at', sa.DateTime(timezone=True), nullable=True),
        sa.Column('reported_at', sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(['case_id'], ['cases.id'], name=op.f('fk_case_reports_case_id_cases'),
                                ondelete='CASCADE'),
        sa.ForeignKeyConstraint(['contact_id'], ['contacts.id'], name=op.f('fk_case_reports_contact_id_contacts'),
                                ondelete='SET NULL'),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_case_reports')),
    )
    with op.batch_alter_table('case_reports', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_case_reports_case_id'), ['case_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_case_reports_contact_id'), ['contact_id'], unique=False)

    op.create_table(
        'case_steps',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('case_id', sa.Integer(), nullable=False),
        sa.Column('at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('action', sa.String(length=32), nullable=False),
        sa.Column('from_status', sa.String(length=16), nullable=True),
        sa.Column('to_status', sa.String(length=16), nullable=False),
        sa.Column('actor', sa.String(length=100), nullable=False),
        sa.Column('actor_role', sa.String(length=16), nullable=False),
        sa.Column('department_code', sa.String(length=32), nullable=True),
        sa.Column('note', sa.Text(), nullable=True),
        sa.Column('photos', sa.JSON(), nullable=False),
        sa.Column('data', sa.JSON(), nullable=False),
        sa.ForeignKeyConstraint(['case_id'], ['cases.id'], name=op.f('fk_case_steps_case_id_cases'),
                                ondelete='CASCADE'),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_case_steps')),
    )
    with op.batch_alter_table('case_steps', schema=None) as batch_op:
        batch_op.create_index('ix_case_steps_case', ['case_id', 'id'], unique=False)

    op.create_table(
        'open311_keys',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('name', sa.String(length=64), nullable=False),
        sa.Column('key_hash', sa.String(length=64), nullable=False),
        sa.Column('hint', sa.String(length=8), nullable=False),
        sa.Column('created_by', sa.String(length=100), nullable=False),
        sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('revoked_at', sa.DateTime(timezone=True), nullable=True),
        sa.Column('last_used_at', sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_open311_keys')),
        sa.UniqueConstraint('key_hash', name=op.f('uq_open311_keys_key_hash')),
        sa.UniqueConstraint('name', name=op.f('uq_open311_keys_name')),
    )
    op.create_table(
        'case_documents',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('kind', sa.String(length=16), nullable=False),
        sa.Column('name', sa.String(length=200), nullable=False),
        sa.Column('content', sa.Text(), nullable=False),
        sa.Column('sha256', sa.String(length=64), nullable=False),
        sa.Column('loaded_by', sa.String(length=100), nullable=False),
        sa.Column('loaded_at', sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_case_documents')),
    )
    with op.batch_alter_table('case_documents', schema=None) as batch_op:
        batch_op.create_index('ix_case_documents_kind', ['kind', 'id'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('case_documents', schema=None) as batch_op:
        batch_op.drop_index('ix_case_documents_kind')
    op.drop_table('case_documents')
    op.drop_table('open311_keys')
    with op.batch_alter_table('case_steps', schema=None) as batch_op:
        batch_op.drop_index('ix_case_steps_case')
    op.drop_table('case_steps')
    with op.batch_alter_table('case_reports', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_case_reports_contact_id'))
        batch_op.drop_index(batch_op.f('ix_case_reports_case_id'))
    op.drop_table('case_reports')
    with op.batch_alter_table('cases', schema=None) as batch_op:
        batch_op.drop_index('ix_cases_status_due')
        batch_op.drop_index('ix_cases_class_status')
        batch_op.drop_index(batch_op.f('ix_cases_reported_at'))
        batch_op.drop_index(batch_op.f('ix_cases_department_code'))
        batch_op.drop_index(batch_op.f('ix_cases_cell_id'))
    op.drop_table('cases')
    with op.batch_alter_table('case_routes', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_case_routes_department_code'))
    op.drop_table('case_routes')
    op.drop_table('departments')
