"""Every table of the service: importing this module registers all models on ``Base.metadata``.

Alembic's autogenerate and the test fixtures need the whole schema; the models themselves live
beside the code that owns them (core, knowledge, bookings, grid cases).
"""

from __future__ import annotations

import helpline.booking.models  # noqa: F401
import helpline.cases.models  # noqa: F401
import knowledge.models  # noqa: F401
from helpline.models import Base

metadata = Base.metadata
