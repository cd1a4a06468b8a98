"""A reproducible benchmark of the Tasks API (issue 6): `scripts/bench`, or `python -m bench`.

It starts its own PostgreSQL, seeds it, serves the app and a hand-written ceiling
app with the production gunicorn config, loads both with wrk, and reports.
"""
