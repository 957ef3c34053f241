from __future__ import annotations

from io import StringIO

import pytest
from django.contrib.auth import get_user_model
from django.core.management import call_command
from rest_framework.authtoken.models import Token

pytestmark = pytest.mark.django_db


def test_create_api_token_prints_only_the_key() -> None:
    out = StringIO()
    call_command("create_api_token", "--username", "alice", stdout=out)
    key = out.getvalue().strip()
    assert Token.objects.get(user__username="alice").key == key
    assert "\n" not in key and len(key) == 40
    assert not get_user_model().objects.get(username="alice").has_usable_password()
