from django.urls import path, re_path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView

from evaluations import api, errors

urlpatterns = [
    path("upload", api.UploadView.as_view(), name="api-upload"),
    path("evaluate", api.EvaluateView.as_view(), name="api-evaluate"),
    path("result/<str:id>", api.ResultView.as_view(), name="api-result"),
    path("schema", SpectacularAPIView.as_view(), name="api-schema"),
    path(
        "docs", SpectacularSwaggerView.as_view(url_name="api-schema"), name="api-docs"
    ),
    # Anything else under /v1/ is a 404 in the API's envelope, in every mode.
    re_path(r"", errors.api_not_found),
]
