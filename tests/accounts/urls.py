"""A test-only endpoint behind the default authentication and IsAuthenticated."""

from django.urls import path
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView


class WhoAmIView(APIView):
    def get(self, request: Request) -> Response:
        return Response({"user_id": request.user.pk, "auth": type(request.auth).__name__})

    def post(self, request: Request) -> Response:
        return self.get(request)


urlpatterns = [path("whoami", WhoAmIView.as_view(), name="whoami")]
