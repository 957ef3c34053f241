"""Rate limits per token and per client address."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, cast

from rest_framework.settings import api_settings
from rest_framework.throttling import SimpleRateThrottle

if TYPE_CHECKING:
    # rest_framework.views imports the throttle classes named in the settings.
    from rest_framework.request import Request
    from rest_framework.views import APIView


class _SettingsRateThrottle(SimpleRateThrottle):
    def get_rate(self) -> str | None:
        # DRF copies the rates into a class attribute at import time; reading
        # them per request lets settings changes (and tests) take effect.
        rates = cast(Mapping[str, str | None], api_settings.DEFAULT_THROTTLE_RATES)
        return rates.get(self.scope or "")


class TokenRateThrottle(_SettingsRateThrottle):
    scope = "token"

    def get_cache_key(self, request: Request, view: APIView) -> str | None:
        if getattr(request, "auth", None) is None or request.user is None:
            return None
        # The user's id, not the token key: cache keys must not hold secrets.
        return self.cache_format % {"scope": self.scope, "ident": request.user.pk}


class IpRateThrottle(_SettingsRateThrottle):
    scope = "ip"

    def get_cache_key(self, request: Request, view: APIView) -> str | None:
        return self.cache_format % {
            "scope": self.scope,
            "ident": self.get_ident(request),
        }
