"""Pipeline stages: plain Python, one module per product, no Dagster import.

Each stage takes plain inputs (paths, rows, arrays) and returns plain results plus the
losses it met, each with a one-line reason; it never raises for one bad item.
"""
