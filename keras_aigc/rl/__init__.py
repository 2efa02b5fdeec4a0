"""Reward fine-tuning of generative models: policy gradient with a KL leash."""

from keras_aigc.rl.reward_fine_tuning import RewardFineTuning
from keras_aigc.rl.rewards import REWARDS, get, register_reward

__all__ = ["REWARDS", "RewardFineTuning", "get", "register_reward"]
