"""gunicorn settings (`gunicorn -c config/gunicorn.py config.wsgi`), overridable by env."""

import multiprocessing
import os

bind = f"{os.environ.get('HOST', '127.0.0.1')}:{os.environ.get('PORT', '8000')}"
# gthread workers: connections are kept alive between requests, and a client idling
# on its connection waits in the worker's poller instead of holding a whole sync
# worker (sync workers need a buffering proxy in front for that). One process per
# core plus one keeps both CPUs busy; four threads each overlap PostgreSQL waits.
# GUNICORN_THREADS=1 gives the plain sync worker.
workers = int(os.environ.get("WEB_CONCURRENCY", multiprocessing.cpu_count() + 1))
threads = int(os.environ.get("GUNICORN_THREADS", "4"))
worker_class = "gthread" if threads > 1 else "sync"
timeout = int(os.environ.get("GUNICORN_TIMEOUT", "30"))
graceful_timeout = int(os.environ.get("GUNICORN_GRACEFUL_TIMEOUT", "20"))
keepalive = int(os.environ.get("GUNICORN_KEEPALIVE", "5"))
# Recycle workers now and then so a slow leak can never grow without bound.
max_requests = int(os.environ.get("GUNICORN_MAX_REQUESTS", "20000"))
max_requests_jitter = max_requests // 10
accesslog = os.environ.get("GUNICORN_ACCESS_LOG") or None
errorlog = "-"
loglevel = os.environ.get("LOG_LEVEL", "info").lower()
# Header lines up to 16 KiB reach the app (gunicorn's default is 8190 bytes), so an oversized
# Authorization header gets the API's own 401 JSON ("token too large") rather than
# gunicorn's bare 431 page; longer lines still get that 431.
limit_request_field_size = 16384
forwarded_allow_ips = os.environ.get("FORWARDED_ALLOW_IPS", "127.0.0.1")
