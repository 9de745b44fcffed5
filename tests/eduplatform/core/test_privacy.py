import hashlib
import hmac

import pytest
from cryptography.fernet import Fernet
from django.db import connection

from analytics.models import Learner
from eduplatform.core.privacy import pseudonymise
from tests.factories import LearnerFactory


def test_pseudonyms_are_keyed_and_stable(settings):
    settings.PSEUDONYM_KEY = "key-one"
    first = pseudonymise("oulad", "11391")
    # Exactly the keyed HMAC of (namespace, id), truncated (#30: not just "no name inside").
    expected = hmac.new(b"key-one", b"oulad\x1f11391", hashlib.sha256).hexdigest()[:24]
    assert first == expected == pseudonymise("oulad", "11391")
    assert first != pseudonymise("demo", "11391")
    settings.PSEUDONYM_KEY = "another-key"
    assert pseudonymise("oulad", "11391") != first
    unkeyed = hashlib.sha256(b"oulad\x1f11391").hexdigest()[:24]
    assert unkeyed not in (first, pseudonymise("oulad", "11391"))


@pytest.mark.django_db
def test_personal_data_is_encrypted_at_rest():
    learner = LearnerFactory(name="Ada Lovelace", email="ada@example.org")
    with connection.cursor() as cursor:
        cursor.execute("SELECT name, email FROM analytics_learner WHERE id = %s", [learner.pk])
        raw_name, raw_email = cursor.fetchone()
    assert "Ada" not in raw_name and "ada@" not in raw_email
    fresh = Learner.objects.get(pk=learner.pk)
    assert (fresh.name, fresh.email) == ("Ada Lovelace", "ada@example.org")


@pytest.mark.django_db
def test_key_rotation_keeps_old_rows_readable(settings):
    old, new = Fernet.generate_key().decode(), Fernet.generate_key().decode()
    settings.FIELD_ENCRYPTION_KEYS = [old]
    learner = LearnerFactory(email="grace@example.org")
    settings.FIELD_ENCRYPTION_KEYS = [new, old]
    assert Learner.objects.get(pk=learner.pk).email == "grace@example.org"
    settings.FIELD_ENCRYPTION_KEYS = [new]
    with pytest.raises(ValueError, match="cannot decrypt"):
        Learner.objects.get(pk=learner.pk)


@pytest.mark.django_db
def test_rotate_field_keys_command_lets_the_old_key_go(settings):
    from django.core.management import call_command

    old, new = Fernet.generate_key().decode(), Fernet.generate_key().decode()
    settings.FIELD_ENCRYPTION_KEYS = [old]
    learner = LearnerFactory(name="Ada Lovelace", email="ada@example.org")
    settings.FIELD_ENCRYPTION_KEYS = [new, old]
    call_command("rotate_field_keys")
    settings.FIELD_ENCRYPTION_KEYS = [new]
    fresh = Learner.objects.get(pk=learner.pk)
    assert (fresh.name, fresh.email) == ("Ada Lovelace", "ada@example.org")


@pytest.mark.django_db
def test_rotate_field_keys_re_encrypts_intervention_notes(settings):
    from django.core.management import call_command

    from analytics.models import Intervention
    from tests.factories import InterventionFactory

    old, new = Fernet.generate_key().decode(), Fernet.generate_key().decode()
    settings.FIELD_ENCRYPTION_KEYS = [old]
    record = InterventionFactory(note="Agreed a two-week extension")
    settings.FIELD_ENCRYPTION_KEYS = [new, old]
    call_command("rotate_field_keys", verbosity=0)
    settings.FIELD_ENCRYPTION_KEYS = [new]
    assert Intervention.objects.get(pk=record.pk).note == "Agreed a two-week extension"
