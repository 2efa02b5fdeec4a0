"""Hyperparameter search over run configs with KerasTuner (`keras-aigc tune`).

KerasTuner is optional: `pip install 'keras-aigc[tune]'`. The modules that subclass its
classes (`config_hyper_model`, `config_tuner`) import it; this package does not.
"""

from keras_aigc.tuning.search import ALGORITHMS, require_keras_tuner, search
from keras_aigc.tuning.search_space import SearchSpace, set_dotted

__all__ = ["ALGORITHMS", "SearchSpace", "require_keras_tuner", "search", "set_dotted"]
