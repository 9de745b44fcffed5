from django.contrib import admin
from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView
from rest_framework.permissions import AllowAny

from analytics.ingest.lrs_api import XapiAboutView, XapiStatementsView
from eduplatform.core.access import PUBLIC, declare
from eduplatform.core.accounts import HardenedLoginView
from eduplatform.core.api_docs import RedocView, SwaggerUIView
from eduplatform.core.health import healthz, readyz

# Every route declares who may use it (eduplatform/core/access.py: declare on our views,
# INCLUDED_ROUTES for Django's and third-party apps'); tests/eduplatform/core/
# test_route_matrix.py requests each route as each role and holds it to its declaration.
urlpatterns = [
    path("healthz", healthz, name="healthz"),
    path("readyz", readyz, name="readyz"),
    path("admin/", admin.site.urls),
    path("accounts/login/", HardenedLoginView.as_view(), name="login"),
    path("accounts/", include("django.contrib.auth.urls")),
    path("captcha/", include("captcha.urls")),
    # The header's language switch (POST, CSRF): set_language at /i18n/setlang/.
    path("i18n/", include("django.conf.urls.i18n")),
    # The schema is public: it documents the API, it grants nothing.
    path(
        "api/v1/schema/",
        declare(PUBLIC)(
            SpectacularAPIView.as_view(permission_classes=[AllowAny], authentication_classes=[])
        ),
        name="api-schema",
    ),
    path("api/v1/docs/", SwaggerUIView.as_view(), name="api-docs"),
    path("api/v1/redoc/", RedocView.as_view(), name="api-redoc"),
    path("api/v1/", include("analytics.api_urls")),
    path("api/v1/", include("eduplatform.registry.urls")),
    path("api/v1/", include("churn.urls")),
    path("api/v1/", include("recommender.urls")),
    path("xapi/statements", XapiStatementsView.as_view(), name="xapi-statements"),
    path("xapi/about", XapiAboutView.as_view(), name="xapi-about"),
    path("", include("eduplatform.registry.page_urls")),
    path("", include("analytics.urls")),
]
