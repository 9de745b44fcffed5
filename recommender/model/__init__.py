"""Content recommender (Django-free): implicit feedback, a timeline-aware scoring
network, serving API and offline evaluation. See docs/recommender-model.md.
"""

from recommender.model.interactions import interaction_weights
from recommender.model.parts import Recommendation
from recommender.model.predictor import Recommender
from recommender.model.train import TrainConfig

__all__ = ["Recommendation", "Recommender", "TrainConfig", "interaction_weights"]
