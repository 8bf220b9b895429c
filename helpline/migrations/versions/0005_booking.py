"""booking: service catalogue, partner providers, slots, bookings and their dispatches

Revision ID: 0005
Revises: 0004a
Create Date: 2026-11-30 00:20:00
"""
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = '0005'
down_revision: str | None = '0004a'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table('booking_categories',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('code', sa.String(length=32), nullable=False),
    sa.Column('name_zh', sa.String(length=100), nullable=False),
    sa.Column('name_en', sa.String(length=100), nullable=False),
    sa.Column('sort', sa.Integer(), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_booking_categories')),
    sa.UniqueConstraint('code', name=op.f('uq_booking_categories_code'))
    )
    op.create_table('booking_holidays',
    sa.Column('day', sa.Date(), nullable=False),
    sa.Column('name_zh', sa.String(length=100), nullable=False),
    sa.Column('name_en', sa.String(length=100), nullable=False),
    sa.PrimaryKeyConstraint('day', name=op.f('pk_booking_holidays'))
    )
    op.create_table('booking_providers',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('code', sa.String(length=32), nullable=False),
    sa.Column('name_zh', sa.String(length=200), nullable=False),
    sa.Column('name_en', sa.String(length=200), nullable=False),
    sa.Column('phone', sa.String(length=32), nullable=False),
    sa.Column('contact_name', sa.String(length=100), nullable=True),
    sa.Column('lang', sa.String(length=8), nullable=False),
    sa.Column('areas', sa.JSON(), nullable=False),
    sa.Column('plan', sa.JSON(), nullable=False),
    sa.Column('slot_minutes', sa.Integer(), nullable=False),
    sa.Column('capacity', sa.Integer(), nullable=False),
    sa.Column('lead_minutes', sa.Integer(), nullable=False),
    sa.Column('works_holidays', sa.Boolean(), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('status_reason', sa.String(length=500), nullable=True),
    sa.Column('flagged_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('rating_sum', sa.Integer(), nullable=False),
    sa.Column('rating_count', sa.Integer(), nullable=False),
    sa.Column('slots_until', sa.Date(), nullable=True),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_booking_providers')),
    sa.UniqueConstraint('code', name=op.f('uq_booking_providers_code'))
    )
    with op.batch_alter_table('booking_providers', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_booking_providers_phone'), ['phone'], unique=False)

    op.create_table('booking_services',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('code', sa.String(length=32), nullable=False),
    sa.Column('category_id', sa.Integer(), nullable=False),
    sa.Column('name_zh', sa.String(length=100), nullable=False),
    sa.Column('name_en', sa.String(length=100), nullable=False),
    sa.Column('description_zh', sa.Text(), nullable=False),
    sa.Column('description_en', sa.Text(), nullable=False),
    sa.Column('keywords_zh', sa.JSON(), nullable=False),
    sa.Column('keywords_en', sa.JSON(), nullable=False),
    sa.Column('active', sa.Boolean(), nullable=False),
    sa.Column('sort', sa.Integer(), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['category_id'], ['booking_categories.id'], name=op.f('fk_booking_services_category_id_booking_categories'), ondelete='RESTRICT'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_booking_services')),
    sa.UniqueConstraint('code', name=op.f('uq_booking_services_code'))
    )
    with op.batch_alter_table('booking_services', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_booking_services_category_id'), ['category_id'], unique=False)

    op.create_table('booking_slots',
    sa.Column('id', sa.String(length=64), nullable=False),
    sa.Column('provider_id', sa.Integer(), nullable=False),
    sa.Column('starts_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('ends_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('capacity', sa.Integer(), nullable=False),
    sa.Column('booked', sa.Integer(), nullable=False),
    sa.CheckConstraint('booked >= 0', name=op.f('ck_booking_slots_booked_not_negative')),
    sa.ForeignKeyConstraint(['provider_id'], ['booking_providers.id'], name=op.f('fk_booking_slots_provider_id_booking_providers'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_booking_slots')),
    sa.UniqueConstraint('provider_id', 'starts_at', name=op.f('uq_booking_slots_provider_id_starts_at'))
    )
    with op.batch_alter_table('booking_slots', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_booking_slots_starts_at'), ['starts_at'], unique=False)

    op.create_table('booking_provider_services',
    sa.Column('provider_id', sa.Integer(), nullable=False),
    sa.Column('service_id', sa.Integer(), nullable=False),
    sa.ForeignKeyConstraint(['provider_id'], ['booking_providers.id'], name=op.f('fk_booking_provider_services_provider_id_booking_providers'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['service_id'], ['booking_services.id'], name=op.f('fk_booking_provider_services_service_id_booking_services'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('provider_id', 'service_id', name=op.f('pk_booking_provider_services'))
    )
    op.create_table('bookings',
    sa.Column('id', sa.String(length=32), nullable=False),
    sa.Column('number', sa.String(length=16), nullable=False),
    sa.Column('contact_id', sa.Integer(), nullable=False),
    sa.Column('urn', sa.String(length=200), nullable=False),
    sa.Column('notify_urn', sa.String(length=200), nullable=False),
    sa.Column('channel', sa.String(length=16), nullable=False),
    sa.Column('lang', sa.String(length=8), nullable=False),
    sa.Column('service_id', sa.Integer(), nullable=False),
    sa.Column('provider_id', sa.Integer(), nullable=False),
    sa.Column('slot_id', sa.String(length=64), nullable=False),
    sa.Column('holds_seat', sa.Boolean(), nullable=False),
    sa.Column('starts_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('ends_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('name', sa.String(length=100), nullable=False),
    sa.Column('address', sa.String(length=300), nullable=False),
    sa.Column('note', sa.Text(), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('idempotency_key', sa.String(length=200), nullable=True),
    sa.Column('request_hash', sa.String(length=64), nullable=True),
    sa.Column('reschedules', sa.Integer(), nullable=False),
    sa.Column('scheduled_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('reminded_day_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('reminded_hour_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('accepted_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('cancelled_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('cancel_reason', sa.String(length=500), nullable=True),
    sa.Column('completed_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('survey_sent_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('rating', sa.Integer(), nullable=True),
    sa.Column('rated_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['contact_id'], ['contacts.id'], name=op.f('fk_bookings_contact_id_contacts'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['provider_id'], ['booking_providers.id'], name=op.f('fk_bookings_provider_id_booking_providers'), ondelete='RESTRICT'),
    sa.ForeignKeyConstraint(['service_id'], ['booking_services.id'], name=op.f('fk_bookings_service_id_booking_services'), ondelete='RESTRICT'),
    sa.ForeignKeyConstraint(['slot_id'], ['booking_slots.id'], name=op.f('fk_bookings_slot_id_booking_slots'), ondelete='RESTRICT'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_bookings')),
    sa.UniqueConstraint('idempotency_key', name=op.f('uq_bookings_idempotency_key')),
    sa.UniqueConstraint('number', name=op.f('uq_bookings_number'))
    )
    with op.batch_alter_table('bookings', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_bookings_contact_id'), ['contact_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_bookings_provider_id'), ['provider_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_bookings_service_id'), ['service_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_bookings_slot_id'), ['slot_id'], unique=False)
        batch_op.create_index('ix_bookings_status_starts', ['status', 'starts_at'], unique=False)

    op.create_table('booking_dispatches',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('booking_id', sa.String(length=32), nullable=False),
    sa.Column('provider_id', sa.Integer(), nullable=False),
    sa.Column('sent_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('answer', sa.String(length=16), nullable=True),
    sa.Column('answered_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('answered_by', sa.String(length=100), nullable=True),
    sa.Column('reason', sa.String(length=500), nullable=True),
    sa.ForeignKeyConstraint(['booking_id'], ['bookings.id'], name=op.f('fk_booking_dispatches_booking_id_bookings'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['provider_id'], ['booking_providers.id'], name=op.f('fk_booking_dispatches_provider_id_booking_providers'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_booking_dispatches'))
    )
    with op.batch_alter_table('booking_dispatches', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_booking_dispatches_booking_id'), ['booking_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_booking_dispatches_provider_id'), ['provider_id'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('booking_dispatches', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_booking_dispatches_provider_id'))
        batch_op.drop_index(batch_op.f('ix_booking_dispatches_booking_id'))

    op.drop_table('booking_dispatches')
    with op.batch_alter_table('bookings', schema=None) as batch_op:
        batch_op.drop_index('ix_bookings_status_starts')
        batch_op.drop_index(batch_op.f('ix_bookings_slot_id'))
        batch_op.drop_index(batch_op.f('ix_bookings_service_id'))
        batch_op.drop_index(batch_op.f('ix_bookings_provider_id'))
        batch_op.drop_index(batch_op.f('ix_bookings_contact_id'))

    op.drop_table('bookings')
    op.drop_table('booking_provider_services')
    with op.batch_alter_table('booking_slots', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_booking_slots_starts_at'))

    op.drop_table('booking_slots')
    with op.batch_alter_table('booking_services', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_booking_services_category_id'))

    op.drop_table('booking_services')
    with op.batch_alter_table('booking_providers', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_booking_providers_phone'))

    op.drop_table('booking_providers')
    op.drop_table('booking_holidays')
    op.drop_table('booking_categories')
