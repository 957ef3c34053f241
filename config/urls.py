from django.contrib import admin
from django.urls import include, path

from config import health, metrics

urlpatterns = [
    path("healthz", health.healthz, name="healthz"),
    path("readyz", health.readyz, name="readyz"),
    path("metrics", metrics.metrics_view, name="metrics"),
    path("admin/", admin.site.urls),
    path("v1/", include("evaluations.urls")),
]

# The API's error envelope under /v1/, Django's pages elsewhere.
handler400 = "evaluations.errors.bad_request"
handler403 = "evaluations.errors.permission_denied"
handler404 = "evaluations.errors.page_not_found"
handler500 = "evaluations.errors.server_error"
