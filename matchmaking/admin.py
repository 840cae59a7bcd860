"""The "Matchmaking" dashboard on the project's admin site (see admin_views.py)."""

from django.contrib import admin

from .admin_views import MatchmakingDashboard

admin.site.register_dashboard(MatchmakingDashboard)
