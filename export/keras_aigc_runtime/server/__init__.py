"""Open Inference Protocol (KServe v2) server for a keras-aigc export bundle."""

from keras_aigc_runtime.server.app import ServerConfig, create_app
from keras_aigc_runtime.server.batcher import DynamicBatcher

__all__ = ["ServerConfig", "create_app", "DynamicBatcher"]
