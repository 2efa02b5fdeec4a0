from keras_aigc.utils.image_grid import make_grid, save_grid, to_uint8

__all__ = ["make_grid", "save_grid", "to_uint8"]
