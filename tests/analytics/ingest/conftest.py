"""Fixtures shared by the ingestion tests (events API, xAPI, the input boundary)."""

from django.contrib.auth.models import Permission
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from tests.factories import UserFactory


def ingest_client(username: str) -> APIClient:
    """A token client of a user allowed to write learning events (sending the xAPI version
    header the xAPI routes require; the events API ignores it)."""
    user = UserFactory(username=username)
    user.user_permissions.add(Permission.objects.get(codename="add_learningevent"))
    client = APIClient()
    client.credentials(
        HTTP_AUTHORIZATION=f"Token {Token.objects.create(user=user).key}",
        HTTP_X_EXPERIENCE_API_VERSION="1.0.3",
    )
    return client
