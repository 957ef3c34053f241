"""Token authentication that accepts both `Token <key>` and `Bearer <key>`."""

from __future__ import annotations

from rest_framework.authentication import TokenAuthentication
from rest_framework.request import Request


class TokenOrBearerAuthentication(TokenAuthentication):
    keywords = ("Token", "Bearer")

    def authenticate(self, request: Request):  # type: ignore[no-untyped-def]
        header = request.META.get("HTTP_AUTHORIZATION", "")
        scheme = header.split(" ", 1)[0]
        for keyword in self.keywords:
            if scheme.lower() == keyword.lower():
                self.keyword = keyword
                return super().authenticate(request)
        return None

    def authenticate_header(self, request: Request) -> str:
        return 'Token realm="api", Bearer realm="api"'
