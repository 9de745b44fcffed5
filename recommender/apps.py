from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class RecommenderConfig(AppConfig):
    name = "recommender"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from analytics.pages.panels import register_panel_data
        from eduplatform.registry.kinds import register_kind_module
        from recommender import selectors

        # By module path: recommender.services imports PyTorch, loaded when first asked for.
        register_kind_module(
            "recommender", "recommender.services", title=_("Recommender"), order=20
        )
        register_panel_data(
            "course_next_items", selectors.batch_next_items, csv=selectors.batch_next_items_csv
        )
        register_panel_data("learner_recommendations", selectors.learner_panel)
