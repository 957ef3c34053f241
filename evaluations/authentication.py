"""Token authentication that accepts both `Token <key>` and `Bearer <key>`."""

from __future__ import annotations

import re
from typing import Any

from drf_spectacular.extensions import OpenApiAuthenticationExtension
from rest_framework import exceptions
from rest_framework.authentication import TokenAuthentication, get_authorization_header
from rest_framework.request import Request

# Keys are 40 hex characters; anything else cannot match, so it is refused
# before it reaches the database (which also cannot store NUL characters).
_PLAUSIBLE_KEY = re.compile(r"[\x21-\x7e]{1,40}")


class TokenOrBearerAuthentication(TokenAuthentication):
    keywords = ("Token", "Bearer")

    def authenticate(self, request: Request):  # type: ignore[no-untyped-def]
        parts = get_authorization_header(request).split()
        if not parts:
            return None
        scheme = parts[0].decode("latin-1").lower()
        for keyword in self.keywords:
            if scheme == keyword.lower():
                self.keyword = keyword
                return super().authenticate(request)
        return None

    def authenticate_credentials(self, key: str):  # type: ignore[no-untyped-def]
        if not _PLAUSIBLE_KEY.fullmatch(key):
            raise exceptions.AuthenticationFailed("Invalid token.")
        return super().authenticate_credentials(key)

    def authenticate_header(self, request: Request) -> str:
        return 'Token realm="api", Bearer realm="api"'


class TokenOrBearerScheme(OpenApiAuthenticationExtension):
    """Both schemes in the OpenAPI schema, as alternatives."""

    target_class = "evaluations.authentication.TokenOrBearerAuthentication"
    name = ["tokenAuth", "bearerAuth"]
    priority = 1

    def get_security_requirement(self, auto_schema: Any) -> list[dict[str, list]]:
        return [{"tokenAuth": []}, {"bearerAuth": []}]

    def get_security_definition(self, auto_schema: Any) -> list[dict[str, str]]:
        return [
            {
                "type": "apiKey",
                "in": "header",
                "name": "Authorization",
                "description": 'API token with the prefix "Token", '
                'e.g. "Token 9944b09199c62bcf9418ad846dd0e4bbdfc6ee4b".',
            },
            {
                "type": "http",
                "scheme": "bearer",
                "description": "The same API token as a bearer token.",
            },
        ]
