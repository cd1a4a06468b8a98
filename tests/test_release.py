"""ReleaseRequestMiddleware: a request's objects are freed by reference counting, not
left in cycles for Python's cyclic garbage collector."""

import gc

import pytest
from django.core.handlers.wsgi import WSGIHandler
from django.core.signals import request_finished
from django.db import close_old_connections
from django.test import RequestFactory
from django.urls import reverse
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.serializers import Field
from rest_framework.views import APIView

from tests.factories import TaskFactory
from tests.tokens import bearer_for

pytestmark = pytest.mark.django_db

BODY = {"title": "T", "tags": ["a"], "due_date": "2027-01-31"}


def _requests(task):
    return {
        "list": ("get", reverse("task-list"), None),
        "get": ("get", reverse("task-detail", args=[task.pk]), None),
        "profile": ("get", reverse("me"), None),
        "create": ("post", reverse("task-list"), BODY),
        "put": ("put", reverse("task-detail", args=[task.pk]), BODY),
        "delete": ("delete", reverse("task-detail", args=[task.pk]), None),
    }


def _cyclic_garbage(handler, method, path, body, bearer) -> tuple[list[str], int]:
    """Names of the request objects that only the cyclic collector could free."""
    factory = getattr(RequestFactory(), method)
    kwargs = {"data": body, "content_type": "application/json"} if body else {}
    gc.collect()
    gc.disable()
    gc.set_debug(gc.DEBUG_SAVEALL)
    try:
        response = handler.get_response(factory(path, HTTP_AUTHORIZATION=bearer, **kwargs))
        status = response.status_code
        request_finished.disconnect(close_old_connections)  # as Django's test client does
        try:
            response.close()
        finally:
            request_finished.connect(close_old_connections)
        del response
        gc.collect()
        found = (Request, Response, APIView, Field)  # a serializer is a Field too
        return [type(obj).__name__ for obj in gc.garbage if isinstance(obj, found)], status
    finally:
        gc.garbage.clear()
        gc.set_debug(0)
        gc.enable()


@pytest.mark.parametrize("name", ["list", "get", "profile", "create", "put", "delete"])
def test_a_request_leaves_nothing_for_the_cyclic_collector(user, signing_key, name):
    TaskFactory.create_batch(3, user=user, tags=["x"])
    method, path, body = _requests(TaskFactory(user=user))[name]
    handler, bearer = WSGIHandler(), bearer_for(user, signing_key)
    _cyclic_garbage(handler, "get", path, None, bearer)  # warm: the key, SQL built once

    garbage, status = _cyclic_garbage(handler, method, path, body, bearer)

    assert status < 300
    assert garbage == []


def test_without_the_middleware_the_same_request_would_leave_cycles(user, signing_key, settings):
    settings.MIDDLEWARE = [
        m for m in settings.MIDDLEWARE if not m.endswith("ReleaseRequestMiddleware")
    ]
    method, path, body = _requests(TaskFactory(user=user))["get"]

    garbage, _ = _cyclic_garbage(WSGIHandler(), method, path, body, bearer_for(user, signing_key))

    assert {"Request", "Response", "TaskViewSet", "TaskSerializer"} <= set(garbage)
