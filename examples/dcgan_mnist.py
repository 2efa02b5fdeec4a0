"""Train the TensorFlow-tutorial DCGAN on MNIST with plain model.fit, then save and reload.

    python examples/dcgan_mnist.py --epochs 2        # from the repo root
"""

import argparse

import keras

import keras_aigc as ka

parser = argparse.ArgumentParser()
parser.add_argument("--data", default="mnist",
                    help="mnist, fashion_mnist, digits, npz:PATH, tfds:NAME or dir:PATH")
parser.add_argument("--epochs", type=int, default=5)
parser.add_argument("--out", default="runs/example-dcgan-mnist")
args = parser.parse_args()

ds, info = ka.data.load(args.data, batch_size=256, with_info=True)
print(f"{info.num_examples} training images of shape {info.image_shape}")

gan = ka.models.DCGAN.from_preset("tf_tutorial", image_shape=info.image_shape)
gan.compile(g_optimizer=keras.optimizers.Adam(2e-4, beta_1=0.5),
            d_optimizer=keras.optimizers.Adam(2e-4, beta_1=0.5))
gan.fit(ds, epochs=args.epochs,
        callbacks=[ka.callbacks.SampleGrid(f"{args.out}/samples", num_images=64)])

gan.save(f"{args.out}/model.keras")
reloaded = keras.models.load_model(f"{args.out}/model.keras")  # no custom_objects needed
images = reloaded.generate(16, seed=0)  # float32 in [-1, 1], shape (16, 28, 28, 1)
print(f"saved {args.out}/model.keras; samples in {args.out}/samples/")
