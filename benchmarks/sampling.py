"""M7, cached sampling against full recompute: PixelCNN, and WaveNet and the Transformer.

M7 is PixelCNN with M2's architecture (a type-A 7x7 first layer, then 5 residual blocks of
type-B 3x3 convolutions, 64 channels: config first_kernel=7 blocks=5 channels=64 kernel=3)
on fashion-mnist-bin's shape (1, 28, 28), drawing 16 images. The model is untrained (the
cost does not depend on the weights). The cached side (PixelModel.sampler) computes every
layer at the new pixel alone from kept activation maps; the full recompute
(cached=False) runs the whole network on the whole image once per pixel, 784 passes.

The full recompute takes about 100 s per image batch on a loaded 2-core machine, so both
sides are timed on the same first ROWS = 2 rows (56 pixels, sample_raster(rows=2)), in the
same order, from the same generator, each call starting from nothing (the cached side
builds its cache, weight matrices and maps, inside every call). Each side's cost per pixel
does not depend on where the pixel is (the naive side always runs the whole 28x28 image,
the cached side always one pixel per layer), so the ratio is that of whole images. The
cached side's time for the whole 28x28 image is measured too and printed on its own line
(and stored in the row as cached_whole_image_s). The full-recompute side is slow, so this
row takes the minimum the rules allow: 5 timed repeats per side and 1 warm-up call.

Extra rows: WaveNet and the Transformer with their registered default configs on
digits-bin (sequences of 64 binary pixels), drawing 16 whole samples, cached (per-layer
input queues, key/value caches) against the naive sampler (one pass over the prefix per
step), median of --repeats.

Before timing, each pair draws from the same generator and must give identical samples.
The ratio column is cached time / naive time (M7's target <= 1/5, i.e. a speed-up of at
least 5x; goal 1/20; the extra rows have none); the speed-ups are printed above the table.
Pure minigen: no PyTorch side here.

    python -m benchmarks.sampling [--threads N] [--repeats R] [--no-write]
"""
import time

from minigen import data, models, trainer
from minigen.autoregressive.pixel_model import sample_raster
from minigen.random import Generator

from . import common

NAME = "sampling"
BATCH = 16
ROWS = 2
M7_REPEATS, M7_WARMUP = 5, 1
M7_CONFIG = dict(first_kernel=7, blocks=5, channels=64, kernel=3)


def _model(name, data_name, config=()):
    x, labels = data.load(data_name, "test")
    spec = trainer.data_spec(data_name, x, labels)
    entry = models.get(name)
    config = models.model_config(models.make_config(entry, config))
    model = entry.cls(spec, generator=Generator(0), **config)
    model.eval()
    return model, config


def _speedup_row(name, timing, config, target=None, goal=None, **extra):
    row = common.row(name, timing, "full recompute", unit="s", target=target, goal=goal)
    row.update(config={k: list(v) if isinstance(v, tuple) else v for k, v in config.items()},
               batch=BATCH, speedup=timing["theirs_s"] / timing["ours_s"], **extra)
    return row


def pixelcnn_row():
    model, config = _model("pixelcnn", "fashion-mnist-bin", M7_CONFIG)

    def draw(cached):
        return sample_raster(model.sampler(BATCH, cached=cached), model.shape, BATCH,
                             Generator(1), rows=ROWS)

    common.check_close(f"M7: the first {ROWS} rows, cached vs full recompute", draw(True),
                       draw(False), rtol=0, atol=0)
    timing = common.time_pair(lambda: draw(True), lambda: draw(False), M7_REPEATS, M7_WARMUP)
    whole = []
    for _ in range(M7_REPEATS):
        start = time.perf_counter()
        model.sample(BATCH, Generator(1))
        whole.append(time.perf_counter() - start)
    whole_s = sorted(whole)[len(whole) // 2]
    print(f"M7 cached sampling of the whole {model.shape} image, batch {BATCH}: "
          f"{whole_s:.3f} s (median of {M7_REPEATS})")
    return _speedup_row(f"M7 pixelcnn sampling, first {ROWS} rows of 28x28, {BATCH} images",
                        timing, config, target=0.2, goal=0.05, rows=ROWS,
                        cached_whole_image_s=whole_s)


def sequence_row(name, args):
    model, config = _model(name, "digits-bin")

    def draw(cached):
        return model.sample(BATCH, Generator(1), cached=cached)

    common.check_close(f"{name}: samples, cached vs naive", draw(True), draw(False),
                       rtol=0, atol=0)
    timing = common.time_pair(lambda: draw(True), lambda: draw(False), args.repeats,
                              args.warmup)
    return _speedup_row(f"{name} sampling, digits-bin length {model.length}, {BATCH} "
                        f"sequences", timing, config)


def run(args):
    rows = [pixelcnn_row()] + [sequence_row(name, args) for name in ("wavenet", "transformer")]
    for row in rows:
        print(f"{row['name']}: cached {row['minigen']:.4g} s, full recompute "
              f"{row['other']:.4g} s, speed-up {row['speedup']:.1f}x")
    return rows


def main(argv=None):
    common.main_for_group(NAME, run, __doc__, argv)


if __name__ == "__main__":
    main()
