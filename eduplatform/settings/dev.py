from eduplatform.settings.base import *  # noqa: F403
from eduplatform.settings.env import env_bool

DEBUG = env_bool("DEBUG", True)
