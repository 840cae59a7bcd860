"""Create (or update the password of) the admin user named in the environment."""

import os

from django.contrib.auth import get_user_model
from django.contrib.auth.password_validation import validate_password
from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError


class Command(BaseCommand):
    help = "Create the staff superuser DJANGO_SUPERUSER_USERNAME / DJANGO_SUPERUSER_PASSWORD."

    def handle(self, *args, **options):
        username = os.environ.get("DJANGO_SUPERUSER_USERNAME", "").strip()
        password = os.environ.get("DJANGO_SUPERUSER_PASSWORD", "")
        if not username or not password:
            raise CommandError("Set DJANGO_SUPERUSER_USERNAME and DJANGO_SUPERUSER_PASSWORD.")
        model = get_user_model()
        existing = model.objects.filter(username=username).first()
        # The same validators as the admin's own password forms (AUTH_PASSWORD_VALIDATORS):
        # this account can switch off matchmaking for everyone.
        try:
            validate_password(password, existing or model(username=username))
        except ValidationError as error:
            raise CommandError(
                "DJANGO_SUPERUSER_PASSWORD is refused: " + " ".join(error.messages)
            ) from None
        user, created = model.objects.get_or_create(
            username=username, defaults={"is_staff": True, "is_superuser": True}
        )
        user.is_staff = user.is_superuser = True
        user.set_password(password)
        user.save()
        self.stdout.write(f"admin user {username!r} {'created' if created else 'updated'}")
