"""The simple baselines the README reads bigan's and pix2pix's figures against, on digits:

    python -m benchmarks.gan_baselines

- the linear probe (minigen.eval.linear_probe) on the raw pixels, and on the features of
  an untrained bigan encoder (`minigen train bigan`'s default config, seed 0, no step);
- recon_mse's scale: the mean squared error per pixel on [0, 1] of each test image against
  the mean training image;
- inpainting the lower half of the test images (pix2pix's inpaint_l1 and inpaint_mse, per
  pixel on [0, 1]) by black, by the mean training image, and by the lower half of the
  training image whose upper half is nearest (squared distance).
"""
import numpy as np

from minigen import data, trainer
from minigen import eval as evaluation


def flat(images):
    return images.reshape(len(images), -1).astype(np.float64)


def inpainting_errors(guess, truth):
    error = (guess - truth).astype(np.float64)
    return float(np.abs(error).mean()), float((error ** 2).mean())


def main():
    x, y = data.load("digits", "train")
    x_test, y_test = data.load("digits", "test")
    top = data.levels("digits") - 1
    print(f"probe on raw pixels: {evaluation.linear_probe(flat(x), y, flat(x_test), y_test):.4f}")
    run = trainer.Run("bigan", "digits", out=None)
    run.model.eval()
    probe = evaluation.linear_probe_acc(run.model, x, y, x_test, y_test)
    print(f"probe on an untrained bigan encoder: {probe:.4f}")
    images, test = x / top, x_test / top
    mean = images.mean(axis=0)
    print(f"mse of the test images against the mean training image: "
          f"{((test - mean) ** 2).mean():.4f}")
    half = x.shape[2] // 2
    truth = test[:, :, half:]
    upper, upper_test = flat(images[:, :, :half]), flat(test[:, :, :half])
    distances = (upper_test ** 2).sum(1)[:, None] - 2 * upper_test @ upper.T + \
        (upper ** 2).sum(1)[None, :]
    nearest = images[distances.argmin(axis=1)][:, :, half:]
    for name, guess in (("black", np.zeros_like(truth)), ("the mean training image",
                                                          np.broadcast_to(mean[:, half:],
                                                                          truth.shape)),
                        ("the nearest upper half's training image", nearest)):
        l1, mse = inpainting_errors(guess, truth)
        print(f"inpainting by {name}: L1 {l1:.4f}, MSE {mse:.4f}")


if __name__ == "__main__":
    main()
