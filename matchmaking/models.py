"""The one model of the matchmaking app: a carrier for its permission.

The live system's data lives in Redis, not in tables, but Django's permissions hang
off models. :class:`MatchmakingControl` has no table (``managed = False``) and exists
only so ``matchmaking.manage_matchmaking`` can be granted to users and groups in the
admin like any other permission.
"""

from django.db import models

MANAGE_PERMISSION = "matchmaking.manage_matchmaking"


class MatchmakingControl(models.Model):
    class Meta:
        managed = False
        default_permissions = ()
        # Removing waiting users, ending sessions, switching maintenance.
        permissions = [("manage_matchmaking", "Can act on live matchmaking")]
