"""The login page: Django's, plus a captcha once a username or an IP has failed before."""

from __future__ import annotations

from typing import Any

from captcha.fields import CaptchaField
from django.conf import settings
from django.contrib.auth.forms import AuthenticationForm
from django.contrib.auth.views import LoginView
from django.db.models import Q, Sum
from django.utils.translation import gettext_lazy as _

from eduplatform.core.access import PUBLIC, declare


class CaptchaAuthenticationForm(AuthenticationForm):
    captcha = CaptchaField(label=_("Type the letters in the picture"))

    def clean(self) -> dict[str, Any]:
        # The captcha is checked before the password: with a wrong or missing answer the
        # password is never tried, so the page is the same whatever the password was
        # (otherwise the captcha error alone would say "right password").
        if "captcha" in self.errors:
            return self.cleaned_data
        return super().clean()


def recent_failures(*, username: str, ip_address: str) -> int:
    """Failed logins recorded by django-axes for this username or this IP."""
    from axes.models import AccessAttempt

    query = Q(ip_address=ip_address)
    if username:
        query |= Q(username=username)
    total = AccessAttempt.objects.filter(query).aggregate(n=Sum("failures_since_start"))["n"]
    return int(total or 0)


@declare(PUBLIC)
class HardenedLoginView(LoginView):
    def get_form_class(self) -> type[AuthenticationForm]:
        if not settings.AXES_ENABLED:
            return AuthenticationForm
        username = self.request.POST.get("username", "") if self.request.method == "POST" else ""
        failures = recent_failures(
            username=username, ip_address=self.request.META.get("REMOTE_ADDR", "")
        )
        if failures >= settings.CAPTCHA_AFTER_FAILURES:
            return CaptchaAuthenticationForm
        return AuthenticationForm

    def get_context_data(self, **kwargs: Any) -> dict[str, Any]:
        context = super().get_context_data(**kwargs)
        context["needs_captcha"] = "captcha" in context["form"].fields
        return context
