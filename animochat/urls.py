from django.contrib import admin
from django.urls import include, path

from animochat import views

urlpatterns = [
    path("admin/", admin.site.urls),
    path("openapi.json", views.openapi_json, name="openapi"),
    path("docs", views.api_docs, name="docs"),
    path("", include("matchmaking.urls")),
    path("", include("sessions_app.urls")),
]

handler400 = views.bad_request
handler403 = views.permission_denied
handler404 = views.not_found
handler500 = views.server_error
