"""The admin site's log-in is throttled (see animochat/login_throttle.py)."""

from django.contrib import admin

from animochat.login_throttle import protect

protect(admin.site)
