"""Moves the plaintext keys of DRF's authtoken table into hashed ApiTokens (same keys, so clients
keep working), then empties that table: no key stays stored in plaintext."""

import datetime

from django.db import migrations
from django.utils import timezone
from django.utils.dateparse import parse_datetime

LEGACY_TABLE = "authtoken_token"
LEGACY_NAME = "api_token (migrated)"


def hash_legacy_tokens(apps, schema_editor):
    from knox.crypto import hash_token

    connection = schema_editor.connection
    if LEGACY_TABLE not in connection.introspection.table_names():
        return
    ApiToken = apps.get_model("accounts", "ApiToken")
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT key, user_id, created FROM {LEGACY_TABLE}")  # noqa: S608
        rows = cursor.fetchall()
    for key, user_id, created in rows:
        token = ApiToken(
            digest=hash_token(key),
            token_key=key[:15],
            user_id=user_id,
            name=LEGACY_NAME,
            scope="full",
            expiry=None,  # as before: the owner revokes it on the Tokens page
        )
        token.save()
        if isinstance(created, str):
            created = parse_datetime(created)
        if created is not None and timezone.is_naive(created):
            created = timezone.make_aware(created, datetime.UTC)
        if created is not None:
            ApiToken.objects.filter(pk=token.pk).update(created=created)
    with connection.cursor() as cursor:
        cursor.execute(f"DELETE FROM {LEGACY_TABLE}")  # noqa: S608


class Migration(migrations.Migration):
    dependencies = [("accounts", "0001_initial")]

    operations = [migrations.RunPython(hash_legacy_tokens, migrations.RunPython.noop)]
