"""The exchange's schema history: one Alembic revision per change, oldest first.

See README beside this file for how to add a revision.
"""
