"""Content recommender (Django-free): implicit feedback, a timeline-aware scoring
network, serving API and offline evaluation. See docs/recommender-model.md.
"""

from eduplatform.ml.recommender.interactions import interaction_weights
from eduplatform.ml.recommender.service import Recommendation, Recommender
from eduplatform.ml.recommender.train import TrainConfig

__all__ = ["Recommendation", "Recommender", "TrainConfig", "interaction_weights"]
