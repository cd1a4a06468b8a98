"""Django's PostgreSQL backend, with a health check that costs no round trip.

With CONN_HEALTH_CHECKS, Django checks a persistent connection at the start of
every request by running `SELECT 1`: a whole round trip, a third of a small
request's queries. Between requests a healthy connection is idle, with nothing
to read. A connection the server ended (restart, failover, idle timeout,
`pg_terminate_backend`) has its error message or end-of-file waiting on the
socket, so a zero-timeout poll tells the two apart without asking the server.
A middlebox that drops idle connections silently is kept away by TCP keepalives
(settings.py), which also make a dead peer's socket readable.
"""

import select

from django.db.backends.postgresql import base
from psycopg.pq import TransactionStatus

USABLE_STATES = (TransactionStatus.IDLE, TransactionStatus.INTRANS)


class DatabaseWrapper(base.DatabaseWrapper):
    def is_usable(self) -> bool:
        connection = self.connection
        if connection is None or connection.closed:
            return False
        if connection.info.transaction_status not in USABLE_STATES:
            return False  # an aborted transaction, or a connection in an unknown state
        poller = select.poll()  # not select(): it fails for descriptors over 1023
        try:
            poller.register(connection.fileno(), select.POLLIN)
            return not poller.poll(0)
        except (OSError, ValueError):  # the socket is gone
            return False
