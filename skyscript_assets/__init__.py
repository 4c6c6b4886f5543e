"""SkyScript factory: short-drama videos in, shooting scripts and scripts out.

Map of the package:
  stages/      plain Python, one module per pipeline product (no Dagster here)
  models/      model backends behind small interfaces
  catalog/     SQLAlchemy tables, sessions, Alembic migrations
  defs/        the Dagster layer: thin assets, checks, sensors, schedules, resources
  schema.py    pydantic data contracts shared by stages and exports
  settings.py  where things live (SKYSCRIPT_HOME and friends), read at call time
  cli.py       the `skyscript` command
"""

__version__ = "0.1.0"
