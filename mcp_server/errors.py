"""The REST API's error shape for failures of MCP calls (config/errors.py decides it)."""

import logging
from typing import Any

from django.core.exceptions import ObjectDoesNotExist
from rest_framework.exceptions import NotFound

from config.errors import error_body, exception_handler

logger = logging.getLogger(__name__)


def api_error(error: Exception) -> tuple[int, dict[str, Any]]:
    """The HTTP status and body the REST API would answer `error` with."""
    if isinstance(error, ObjectDoesNotExist):
        error = NotFound()  # a missing row is a 404, as in the viewset
    response = exception_handler(error, {})
    if response is None:
        logger.error("MCP call failed", exc_info=error)
        return 500, error_body(500, "Internal server error.")
    return response.status_code, response.data
