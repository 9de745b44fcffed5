"""Content recommender (Django-free): the ranker (candidate features -> MLP, listwise
loss on replayed cut days) over a compact run state, its serving API and offline
evaluation. See docs/recommender-model.md.
"""

from recommender.model.parts import Recommendation
from recommender.model.predictor import Recommender
from recommender.model.timeline import Params

__all__ = ["Params", "Recommendation", "Recommender"]
