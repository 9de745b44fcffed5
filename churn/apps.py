from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class ChurnConfig(AppConfig):
    name = "churn"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from analytics.pages.panels import register_panel_data, register_row_order
        from analytics.risk_bands import register_band_history
        from churn import selectors
        from eduplatform.registry.kinds import register_kind_module

        # By module path: churn.services imports PyTorch, loaded when a model is first asked for.
        register_kind_module("churn", "churn.services", title=_("Churn risk model"), order=10)
        register_panel_data("course_risk", selectors.batch_risk, csv=selectors.batch_risk_csv)
        register_row_order(
            "risk",
            label=_("Risk"),
            keys=selectors.risk_order,
            fine_for=selectors.sees_probabilities,
            summary=selectors.run_summary,
            legend=_(
                "Riskiest first. High: at or above the probability that best separated "
                "leavers from the others on the model's validation runs; medium: above "
                "the churn rate of those runs; low: below it. Learners not scored yet "
                "come last."
            ),
        )
        register_panel_data("learner_risk", selectors.learner_panel)
        # past bands: the intervention log keeps the band at the action (#27)
        register_band_history(flagged="high", bands_on=selectors.bands_on)
