"""Re-encrypt learners' personal data (names, emails, intervention notes) with the newest key
of FIELD_ENCRYPTION_KEYS.

Rotation: 1. prepend a new Fernet key to FIELD_ENCRYPTION_KEYS (old ones stay
listed, so everything still decrypts); 2. run this command; 3. drop the old key.
"""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand
from django.db import connection, transaction

from eduplatform.core.privacy import fernet
from eduplatform.core.progress import command_bar


class Command(BaseCommand):
    help = "Re-encrypt learners' names, emails and intervention notes with the primary key."

    def handle(self, *args: Any, **options: Any) -> None:
        multi = fernet()
        done = 0
        with transaction.atomic(), connection.cursor() as cursor:
            cursor.execute(
                "SELECT id, name, email FROM analytics_learner WHERE name <> '' OR email <> ''"
            )
            rows = cursor.fetchall()
            updates = []
            # decrypting and encrypting is the slow part (about 20k learners a second)
            with command_bar(self, options, total=len(rows), unit="learners") as bar:
                for pk, name, email in rows:
                    updates.append(
                        (
                            multi.rotate(name.encode()).decode() if name else "",
                            multi.rotate(email.encode()).decode() if email else "",
                            pk,
                        )
                    )
                    bar.update()
            cursor.executemany(
                "UPDATE analytics_learner SET name = %s, email = %s WHERE id = %s", updates
            )
            done = len(updates)
            # Intervention notes (#27 item 5) are encrypted with the same keys: without this
            # dropping the old key would make every older note unreadable.
            cursor.execute("SELECT id, note FROM analytics_intervention WHERE note <> ''")
            notes = [(multi.rotate(note.encode()).decode(), pk) for pk, note in cursor.fetchall()]
            cursor.executemany("UPDATE analytics_intervention SET note = %s WHERE id = %s", notes)
        self.stdout.write(f"re-encrypted personal data of {done} learners with the primary key")
        self.stdout.write(f"re-encrypted the notes of {len(notes)} interventions")
