"""Quality parity: a minigen model and its PyTorch build, trained the same way, must reach
the same test likelihood: within 2% of PyTorch's test_bpd for realnvp on digits (issue 6)
and for made, pixelcnn, gated-pixelcnn, wavenet and transformer on digits-bin (issue 5);
within 2% on test_elbo_nats and test_iwae_nats (K = 1000) for the vae on digits-bin
(issue 13); for gan and wgan-gp on digits (issue 16) the mean fid_local of 2000 samples
over seeds (--seeds, default 0 1 2) within 10% (GAN_CASES, gan_parity); for ddpm on
digits (issue 19) test_bpd, the full variational bound, within 3% and fid_local of 2000
ancestral and 2000 DDIM-50 samples within 10% (ddpm_parity).

    python -m benchmarks.parity MODEL [--steps N] [--data NAME] [--seed S] [--threads T] [--no-write]
    python -m benchmarks.parity gan|wgan-gp [--steps N] [--seeds 0 1 2] [--keep DIR]
    python -m benchmarks.parity ddpm [--steps N] [--samples N] [--sample-steps S] [--device D]
                                     [--config KEY=VALUE ...]
                                     [--side both|minigen|torch|combine|apart]

"The same way" means: the same initial weights (minigen's, copied into PyTorch by name
before either side trains), the same batches in the same order (minigen.data.BatchSampler
with the run's seed, drawn as the trainer draws them), the same optimiser (Adam, the
config's lr, default betas and eps) and the same number of steps. minigen's side is its own
trainer (minigen.trainer.Run), so what is compared is what `minigen train` produces. For
realnvp what stays different is each side's random noise (dequantization), so the two test
figures differ by training noise even where the models are identical. The autoregressive
models have no noise: their likelihood is exact, so both runs differ only by float32
rounding (which order each side sums in), and their curves track each other closely. The
vae's reparameterisation draws its own noise on each side (minigen's generator, torch's),
so its runs differ by training noise, and so do the two sides' evaluations (one sample of z
per image for the ELBO, 1000 for the IWAE bound).

Before training, both models score the same test images (dequantized with one draw for
realnvp) with the copied weights, and again after training with minigen's trained weights
copied into a fresh PyTorch model: that isolates model differences (a wrong term, mask or
sign) from training noise, and must agree to float32 rounding. For the vae both sides get
the same draws eps and are compared on two figures per image: the ELBO (one draw, the KL
in closed form) and L_100 (100 draws). The result goes to
benchmarks/results/parity-MODEL.json.

Seconds per step are each side's training time alone (minigen's trainer's own count);
OMP_WAIT_POLICY=PASSIVE unless set, as in the benchmarks: on the 2-core machine under a load
of 11 to 16, PyTorch's realnvp step took a median 0.93 to 1.1 s with PASSIVE and 6.5 to 7.3 s
without it (its spinning OpenMP workers competing with everything else).
"""
import argparse
import json
import csv
import math
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import numpy as np  # noqa: E402
import torch  # noqa: E402

from minigen import checkpoint, data, trainer  # noqa: E402
from minigen.autograd import no_grad, tensor  # noqa: E402

from . import common  # noqa: E402


@dataclass
class Case:
    """What a parity run needs to know about one model."""
    model: str            # minigen's registry name
    data: str
    config: dict          # minigen config overrides: the model's keys and the training ones
    build_torch: callable  # (spec, config, minigen model) -> the PyTorch module
    mg_log_prob: callable  # (minigen model, y Tensor) -> log p(y) Tensor (N,)
    torch_log_prob: callable  # (PyTorch module, y tensor) -> log p(y) tensor (N,)
    dequantize: bool      # score y = (x + u) / K (a flow's density) rather than x itself
    target: float         # |minigen - torch| / torch allowed on the test metric
    # A model scored by bounds rather than an exact nll (the vae) says which test metrics to
    # compare, how PyTorch's side computes them ((torch module, spec, config, x, generator,
    # final) -> {test_KEY: value}; the default: the nll and its bpd) and which figures the
    # same-input check scores: then the log_prob functions take a third argument, the same
    # noise for both sides from noise(n, rng), per example, and return {name: (N,)}.
    metrics: tuple = None  # default: test_bpd for discrete data, else test_nll_nats
    torch_metrics: callable = None
    noise: callable = None


def realnvp_case():
    from .torch_models.realnvp import RealNVP

    def build(spec, config, model):
        return RealNVP(spec.shape, spec.levels, config["couplings"], config["channels"],
                       config["hidden_layers"], config["alpha"])

    return Case("realnvp", "digits",
                dict(couplings=6, channels=64, hidden_layers=2, alpha=0.05, steps=1500,
                     batch_size=128, lr=1e-3),
                build, lambda model, y: model.log_prob(y), lambda model, y: model.log_prob(y),
                dequantize=True, target=0.02)


def autoregressive_case(name, config, build):
    """An exact-likelihood model on digits-bin: log p(x) = -nll(x) on both sides. The
    configs are issue 5's, with its Adam 1e-3, batch sizes and step counts."""
    return Case(name, "digits-bin", dict(config, lr=1e-3), build,
                lambda model, x: -model.nll(x), lambda model, x: -model.nll(x),
                dequantize=False, target=0.02)


def made_case():
    from .torch_models.made import MADE

    def build(spec, config, model):
        # the masks come from minigen's generator (its hidden-unit degrees): take them
        return MADE(spec.dims, spec.levels, config["hidden"], model.masks[0])

    return autoregressive_case("made", dict(hidden=(512, 512), steps=1500, batch_size=100),
                               build)


def pixelcnn_case():
    from .torch_models.pixelcnn import PixelCNN

    def build(spec, config, model):
        return PixelCNN(spec.shape, spec.levels, config["channels"], config["blocks"],
                        config["first_kernel"], config["kernel"])

    return autoregressive_case("pixelcnn", dict(channels=64, blocks=5, first_kernel=5,
                                                kernel=3, steps=750, batch_size=128), build)


def gated_pixelcnn_case():
    from .torch_models.gated_pixelcnn import GatedPixelCNN

    def build(spec, config, model):
        return GatedPixelCNN(spec.shape, spec.levels, config["channels"], config["layers"],
                             config["kernel"])

    return autoregressive_case("gated-pixelcnn", dict(channels=64, layers=5, kernel=3,
                                                      steps=750, batch_size=128), build)


def wavenet_case():
    from .torch_models.wavenet import WaveNet

    def build(spec, config, model):
        return WaveNet(spec.shape, spec.levels, config["channels"], config["dilations"],
                       config["kernel"], config["positions"])

    return autoregressive_case("wavenet", dict(channels=64, dilations=(1, 2, 4, 8, 16, 32),
                                               kernel=2, steps=500, batch_size=100), build)


def transformer_case():
    from .torch_models.transformer import Transformer

    def build(spec, config, model):
        return Transformer(spec.shape, spec.levels, config["d_model"], config["heads"],
                           config["layers"], config["mlp"], config["positions"])

    return autoregressive_case("transformer", dict(d_model=64, heads=4, layers=2, mlp=256,
                                                   steps=1000, batch_size=100), build)


def vae_case():
    """The issue-13 config: 64 -> 256 -> 256 -> 2 x 16 and back, Bernoulli logits, Adam 1e-3,
    batches of 100, 3000 steps. Same-input figures: the ELBO (closed-form KL) on one shared
    eps per image, and L_100 on 100 shared draws."""
    from minigen.latent.bounds import log_mean_weight

    from .torch_models.vae import VAE
    k_check = 100
    config = dict(hidden=(256, 256), latent=16, steps=3000, batch_size=100, lr=1e-3)

    def build(spec, config, model):
        return VAE(spec.dims, config["hidden"], config["latent"])

    def noise(n, rng):  # per image: the ELBO's draw, then L_100's
        return rng.standard_normal((n, 1 + k_check, config["latent"])).astype(np.float32)

    def ours(model, x, eps):
        y = model.likelihood.inputs(x)
        log_px_z, kl = model.elbo_terms(y, tensor(eps[:, 0]))
        draws = tensor(np.ascontiguousarray(eps[:, 1:].transpose(1, 0, 2)))
        return {"elbo": log_px_z - kl, "iwae": log_mean_weight(model.log_weights(y, draws))}

    def theirs(model, x, eps):
        eps = torch.from_numpy(eps)
        log_px_z, kl = model.elbo_terms(x, eps[:, 0])
        log_w = model.log_weights(x, eps[:, 1:].transpose(0, 1))
        return {"elbo": log_px_z - kl,
                "iwae": torch.logsumexp(log_w, 0) - math.log(k_check)}

    return Case("vae", "digits-bin", config, build, ours, theirs, dequantize=False, target=0.02,
                metrics=("test_elbo_nats", "test_iwae_nats"), torch_metrics=torch_vae_metrics,
                noise=noise)


def torch_vae_metrics(model, spec, config, x, generator, final):
    """test_elbo_nats (one draw of z per image, the KL in closed form) and, when final,
    test_iwae_nats with K = iwae_k and its bpd, as minigen's evaluate computes them; the
    same chunk size as minigen's (its IWAE_FLOATS decoder outputs)."""
    from minigen.latent.model import IWAE_FLOATS
    model.eval()
    elbo, iwae = 0.0, 0.0
    with torch.no_grad():
        for start in range(0, len(x), config["eval_batch_size"]):
            batch = torch.from_numpy(x[start:start + config["eval_batch_size"]])
            log_px_z, kl = model.elbo_terms(batch, model.noise((len(batch),), generator))
            elbo -= float((log_px_z - kl).double().sum())
            if final:
                chunk = max(1, min(config["iwae_k"], IWAE_FLOATS // (len(batch) * spec.dims)))
                iwae -= float(model.iwae_bound(batch, config["iwae_k"], generator, chunk).sum())
    model.train()
    metrics = {"test_elbo_nats": elbo / len(x)}
    if final:
        metrics["test_iwae_nats"] = iwae / len(x)
        metrics["test_bpd"] = metrics["test_iwae_nats"] / (spec.dims * math.log(2))
    return metrics


# ---------------------------------------------------------------------------------------
# GANs (issue 16): no likelihood, so the figure is sample quality, fid_local (and kid_local)
# of 2000 samples on minigen's own classifier features (minigen.quality, the same code for
# both sides); target: the means over seeds within 10%.

GAN_CASES = {
    "gan": dict(data="digits", loss="nonsaturating",
                config=dict(loss="nonsaturating", latent=32, batch_size=64, steps=3000)),
    "wgan-gp": dict(data="digits", loss="wasserstein", config=dict(steps=3000)),
}
GAN_TARGET = 0.10


def train_torch_gan(model, run, seed, steps):
    """minigen's trainer loop for a GAN in PyTorch: the same batches (the k-th update of a
    step from the sampler of (seed, k), as trainer.StepBatches), the same noise and
    interpolation weights (drawn from np.random.default_rng([seed, 1]) in minigen's order:
    per critic update the fake batch's z then eps; then the generator's z), the same Adam
    settings per player. Returns seconds per step and the mean losses per log period."""
    cfg, ours = run.config, run.model
    optimizers = {"D": torch.optim.Adam(model.D.parameters(), lr=ours.d_lr, betas=ours.d_betas),
                  "G": torch.optim.Adam(model.G.parameters(), lr=ours.g_lr, betas=ours.g_betas)}
    samplers = [data.BatchSampler(len(run.x_train), cfg["batch_size"],
                                  seed if k == 0 else (seed, k))
                for k in range(ours.n_critic)]
    rng = np.random.default_rng([seed, 1])
    levels = run.spec.levels - 1
    seconds, curve, period = 0.0, [], {"discriminator_loss": [], "generator_loss": []}
    every = cfg["log_every"] or max(1, steps // 100)
    for step in range(steps):
        started = time.perf_counter()
        for k in range(ours.n_critic):
            x = run.x_train[samplers[k].indices(step)]
            real = torch.from_numpy(x).float() * (2.0 / levels) - 1
            z = torch.from_numpy(rng.normal(0.0, 1.0, (len(x), ours.latent)).astype(np.float32))
            with torch.no_grad():
                fake = model.G(z)
            eps = torch.from_numpy(rng.uniform(0.0, 1.0, (len(x),)).astype(np.float32)) \
                if model.loss == "wasserstein" else None
            loss = model.d_loss(real, fake, eps)
            optimizers["D"].zero_grad()
            loss.backward()
            optimizers["D"].step()
            period["discriminator_loss"].append(loss.item())
        z = torch.from_numpy(rng.normal(0.0, 1.0, (cfg["batch_size"], ours.latent))
                             .astype(np.float32))
        loss = model.g_loss(model.G(z))
        optimizers["G"].zero_grad()
        loss.backward()
        optimizers["G"].step()
        period["generator_loss"].append(loss.item())
        seconds += time.perf_counter() - started
        if (step + 1) % every == 0 or step + 1 == steps:
            curve.append({"step": step + 1, **{k: statistics.fmean(v) for k, v in
                                               period.items()}})
            period = {k: [] for k in period}
    return seconds / steps, curve


def copy_buffers(mg_model, torch_model):
    """Every PyTorch buffer of a name minigen has (batch norm's running statistics) takes
    minigen's value."""
    ours = dict(mg_model.named_buffers())
    with torch.no_grad():
        for name, b in torch_model.named_buffers():
            if name in ours:
                b.copy_(torch.from_numpy(np.array(ours[name].numpy())))


def torch_gan_quality(model, run):
    """minigen's evaluation of the PyTorch generator: eval_samples samples in eval mode
    from the noise minigen's evaluate draws (gan.model.EVALUATION_SEED, SAMPLE_BATCH at a
    time), mapped to levels, scored by minigen.quality."""
    from minigen import quality
    from minigen.gan.model import EVALUATION_SEED, SAMPLE_BATCH
    rng = np.random.default_rng(EVALUATION_SEED)
    n, out = run.model.eval_samples, []
    model.eval()
    with torch.no_grad():
        for start in range(0, n, SAMPLE_BATCH):
            z = rng.normal(0.0, 1.0, (min(SAMPLE_BATCH, n - start), run.model.latent))
            out.append(model.G(torch.from_numpy(z.astype(np.float32))).numpy())
    model.train()
    return quality.image_quality(run.model.unscale(np.concatenate(out)), run.spec)


def gan_parity(name, seeds, steps=None, keep=None, write=True, threads=None):
    """Train minigen's and PyTorch's model from the same initial weights for each seed and
    compare fid_local (and kid_local) of their samples."""
    from .torch_models.gan import DCGAN
    case = GAN_CASES[name]
    config = dict(case["config"])
    if steps is not None:
        config["steps"] = steps
    per_seed = []
    for seed in seeds:
        out = os.path.join(keep, f"{name}-{case['data']}-{seed}") if keep else \
            tempfile.mkdtemp(prefix="parity-gan-")
        run = trainer.Run(name, case["data"], seed, out=out, config=config)
        torch.manual_seed(seed)
        torch_model = DCGAN(run.model.latent, run.spec.shape, run.model.channels, case["loss"],
                            getattr(run.model, "gp_weight", 10.0))
        copy_weights(run.model, torch_model)
        print(f"seed {seed}: minigen's {name} on {case['data']}, {run.config['steps']} steps "
              f"-> {out}", flush=True)
        run.train(progress=False)
        ours = run.finish()
        # the evaluation itself: minigen's trained weights and batch-norm statistics in a
        # fresh PyTorch model must score what minigen scored
        trained = DCGAN(run.model.latent, run.spec.shape, run.model.channels, case["loss"])
        copy_weights(run.model, trained)
        copy_buffers(run.model, trained)
        same = torch_gan_quality(trained, run)["fid_local"]
        print(f"seed {seed}: minigen's trained weights in PyTorch: fid_local {same:.6f} "
              f"(minigen {ours['test_fid_local']:.6f})", flush=True)
        print(f"seed {seed}: torch's {name} ...", flush=True)
        sps, curve = train_torch_gan(torch_model, run, seed, run.config["steps"])
        theirs = torch_gan_quality(torch_model, run)
        row = {"seed": seed, "run": out,
               **{f"{k}_minigen": ours[f"test_{k}"] for k in ("fid_local", "kid_local",
                                                             "is_local", "precision",
                                                             "recall")},
               **{f"{k}_torch": theirs[k] for k in ("fid_local", "kid_local", "is_local",
                                                    "precision", "recall")},
               "fid_local_torch_of_minigen_weights": same,
               "seconds_per_step_minigen": ours["seconds_per_step"],
               "seconds_per_step_torch": sps, "torch_curve": curve}
        per_seed.append(row)
        print(f"seed {seed}: fid_local minigen {row['fid_local_minigen']:.4f}, torch "
              f"{row['fid_local_torch']:.4f}; kid_local minigen {row['kid_local_minigen']:.3f}, "
              f"torch {row['kid_local_torch']:.3f}; s/step minigen "
              f"{row['seconds_per_step_minigen']:.3f}, torch {sps:.3f}", flush=True)
    means = {f"{k}_{side}": statistics.fmean(r[f"{k}_{side}"] for r in per_seed)
             for k in ("fid_local", "kid_local") for side in ("minigen", "torch")}
    rel = (means["fid_local_minigen"] - means["fid_local_torch"]) / means["fid_local_torch"]
    print(f"fid_local over seeds {list(seeds)}: minigen {means['fid_local_minigen']:.4f}, torch "
          f"{means['fid_local_torch']:.4f}, relative difference {rel:+.1%} (allowed "
          f"{GAN_TARGET:.0%}: {'ok' if abs(rel) <= GAN_TARGET else 'MISSED'})")
    if write:
        result = {"model": name, "data": case["data"], "seeds": list(seeds),
                  "config": run.config, "metric": "test_fid_local", **means,
                  "relative_difference": rel, "target": GAN_TARGET,
                  "meets_target": abs(rel) <= GAN_TARGET, "per_seed": per_seed,
                  "classifier_accuracy": ours["test_classifier_accuracy"],
                  "machine": common.machine_info(threads)}
        common.RESULTS.mkdir(exist_ok=True)
        path = common.RESULTS / f"parity-{name}-{case['data']}.json"
        trainer.write_json(str(path), result)
        print(f"wrote {path}")


# ---------------------------------------------------------------------------------------
# DDPM (issue 19): test_bpd (the full variational bound, T network calls per test batch)
# within 3%, and fid_local of ancestral and DDIM samples within 10%, both sides trained on
# the same batches, t and eps.

DDPM_CONFIG = dict(T=1000, schedule="linear", steps=6000, batch_size=128, lr=2e-4,
                   ema=0.999)
DDPM_TARGETS = {"test_bpd": 0.03, "fid_local_ancestral": 0.10, "fid_local_ddim": 0.10}


def train_torch_ddpm(model, run, seed, device):
    """minigen's trainer loop for ddpm in PyTorch: the batch of (seed, step), t and eps
    drawn by minigen's own model.training_noise from Generator([seed, 1]) as the trainer
    does, Adam with the run's lr and betas, and the parameter EMA (decay `ema`) updated
    after every step as minigen.optim.EMA does. Returns the EMA weights, seconds per step
    and the mean loss per log period."""
    from minigen.random import Generator
    cfg = run.config
    optimizer = torch.optim.Adam(model.parameters(), lr=cfg["lr"], betas=tuple(cfg["betas"]))
    ema = [p.detach().clone() for p in model.parameters()]
    sampler = data.BatchSampler(len(run.x_train), cfg["batch_size"], seed)
    generator = Generator([seed, 1])
    every = cfg["log_every"] or max(1, cfg["steps"] // 100)
    seconds, curve, losses = 0.0, [], []
    for step in range(cfg["steps"]):
        x = run.x_train[sampler.indices(step)]
        t, eps = run.model.training_noise(len(x), generator)  # the draws minigen makes
        started = time.perf_counter()
        loss, _ = model.loss(torch.from_numpy(x).to(device), torch.from_numpy(t).to(device),
                             torch.from_numpy(eps.numpy()).to(device))
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        with torch.no_grad():
            for shadow, p in zip(ema, model.parameters()):
                shadow += (1 - cfg["ema"]) * (p - shadow)
        losses.append(loss.item())
        seconds += time.perf_counter() - started
        if (step + 1) % every == 0 or step + 1 == cfg["steps"]:
            curve.append({"step": step + 1, "train_loss": statistics.fmean(losses)})
            losses.clear()
    return ema, seconds / cfg["steps"], curve


def torch_ddpm_metrics(model, run, sample_steps, device):
    """PyTorch's figures as minigen's evaluate computes them: the full bound over the test
    split in eval_batch_size batches (its own draws of x_t, from Generator(EVALUATION_SEED)
    in bound order; minigen's evaluate draws the estimate's first, so the two bounds differ
    by Monte Carlo noise), and minigen.quality of eval_samples ancestral and DDIM samples
    from the noise minigen's sampling draws."""
    from minigen import quality
    from minigen.diffusion.model import EVALUATION_SEED, SAMPLE_BATCH
    from minigen.random import Generator
    ours, n = run.model, run.model.eval_samples
    generator = Generator(EVALUATION_SEED)
    total = 0.0
    model.eval()
    for start in range(0, len(run.x_test), run.config["eval_batch_size"]):
        x = torch.from_numpy(run.x_test[start:start + run.config["eval_batch_size"]])
        prior, terms = model.bound_terms(
            x.to(device), range(model.T),
            lambda shape: generator.normal(shape, dtype=np.float64).numpy())
        total += float(prior.sum()) + sum(float(v.sum()) for v in terms.values())
    metrics = {"test_bpd": total / (len(run.x_test) * run.spec.dims * math.log(2))}
    for name, sampler, steps in (("ancestral", "ancestral", None),
                                 ("ddim", "ddim", sample_steps)):
        generator, out = Generator(EVALUATION_SEED), []
        started = time.perf_counter()
        for start in range(0, n, SAMPLE_BATCH):
            out.append(model.sample(min(SAMPLE_BATCH, n - start),
                                    lambda shape: generator.normal(shape).numpy(), sampler,
                                    steps, 0.0, device).cpu().numpy())
        metrics[f"sampling_seconds_{name}"] = time.perf_counter() - started
        metrics[f"fid_local_{name}"] = quality.image_quality(
            ours.unscale(np.concatenate(out)), run.spec)["fid_local"]
    model.train()
    return metrics


def timed_sampling(model):
    """Record the seconds of every model.sample call, as (n, seconds), in the returned list
    (the trainer's final evaluation samples inside run.finish(), where nothing else times
    it)."""
    calls, sample = [], model.sample

    def timed(n, generator, labels=None):
        started = time.perf_counter()
        out = sample(n, generator, labels)
        calls.append((n, time.perf_counter() - started))
        return out

    model.sample = timed
    return calls


def minigen_ddim_fid(run, sample_steps):
    """fid_local of eval_samples DDIM samples (eta 0) of minigen's run, with its evaluation
    weights and the evaluation's noise, and the seconds they took."""
    from minigen import quality
    from minigen.diffusion.model import EVALUATION_SEED
    from minigen.random import Generator
    run.model.eval()
    with run.evaluation_weights():
        started = time.perf_counter()
        samples = run.model.sample_with(run.model.eval_samples, Generator(EVALUATION_SEED),
                                        "ddim", sample_steps, 0.0)
        seconds = time.perf_counter() - started
    run.model.train()
    return quality.image_quality(samples, run.spec)["fid_local"], seconds


def ddpm_bound_check(run, torch_model, x, seed, steps=(0, 1, 10, 100, 500, 999)):
    """The largest relative difference of the bound terms per image at a few steps (and
    L_T) of minigen's evaluation weights in both models, on the same images and draws."""
    from minigen.random import Generator
    steps = [t for t in steps if t < run.model.T]
    with run.evaluation_weights():
        copy_weights(run.model, torch_model)
        with no_grad():
            prior, terms = run.model.bound_terms(tensor(x, device=run.device), steps,
                                                 Generator([seed, 97]))
    generator = Generator([seed, 97])
    prior_t, terms_t = torch_model.bound_terms(
        torch.from_numpy(x).to(next(torch_model.parameters()).device), steps,
        lambda shape: generator.normal(shape, dtype=np.float64).numpy())
    worst = float(np.max(np.abs(prior - prior_t.cpu().numpy()) / np.abs(prior_t.cpu().numpy())))
    for t in steps:
        theirs = terms_t[t].cpu().numpy()
        worst = max(worst, float(np.max(np.abs(terms[t] - theirs) / np.abs(theirs))))
    return worst


def ddpm_run(steps, seed, samples, device, out, overrides):
    """minigen's run of the checked config (its model already holds the initial weights
    both sides start from) and a function building the PyTorch model of the same shape."""
    from .torch_models.ddpm import DDPM
    config = dict(DDPM_CONFIG, **(overrides or {}))
    if steps is not None:
        config["steps"] = steps
    if samples is not None:
        config["eval_samples"] = samples
    run = trainer.Run("ddpm", "digits", seed, out=out, device=device, config=config)
    ours = run.model

    def build():
        return DDPM(run.spec.shape, run.spec.levels, ours.schedule.betas, ours.variance,
                    ours.vlb_weight, ours.net.channels, ours.net.mults,
                    run.config["groups"], ours.clip_denoised).to(device)
    return run, build


def restore_kept(run, option, finished=False):
    """Put the kept checkpoint's state into `run`: one clear error where it holds another
    seed or config (or, with `finished`, fewer steps than the config's)."""
    state = checkpoint.load(run.checkpoint_path)
    if finished and state["step"] < run.config["steps"]:
        sys.exit(f"parity ddpm {option}: {run.checkpoint_path} is not a finished run "
                 f"(step {state['step']} of {run.config['steps']})")
    differs = [k for k in DDPM_CONFIG if state["config"].get(k) != run.config[k]]
    if differs or state["seed"] != run.seed:
        sys.exit(f"parity ddpm {option}: {run.checkpoint_path} holds another run "
                 f"(seed {state['seed']}, {', '.join(differs) or 'same config'})")
    run.restore(state)


def ddpm_minigen_side(run, build, seed, sample_steps, resume=False):
    """Train minigen's ddpm with its own trainer; its test metrics (the full bound, fid_local
    of ancestral and DDIM samples of the EMA weights) and how long sampling took. With
    `resume`, training continues from the checkpoint in the run's folder (--keep), if it holds
    one of the same config: after a kill, or to evaluate a finished training again."""
    ours = run.model
    if resume and os.path.exists(run.checkpoint_path):
        restore_kept(run, "--resume")
        print(f"resumed minigen's run at step {run.step} from {run.checkpoint_path}",
              flush=True)
    print(f"minigen's ddpm on digits, {run.config['steps']} steps, eval_samples "
          f"{ours.eval_samples} -> {run.out}", flush=True)
    run.train(progress=False)
    sampling_calls = timed_sampling(ours)
    metrics = run.finish()
    ancestral_seconds = next(s for n, s in sampling_calls if n == ours.eval_samples)
    fid_ddim, ddim_seconds = minigen_ddim_fid(run, sample_steps)
    check = ddpm_bound_check(run, build(), run.x_test[:16], seed)
    print(f"bound terms of minigen's trained (EMA) weights in both models: max relative "
          f"difference {check:.2e}", flush=True)
    return {"metrics": {"test_bpd": metrics["test_bpd"],
                        "fid_local_ancestral": metrics["test_fid_local"],
                        "fid_local_ddim": fid_ddim},
            "test_metrics": {k: v for k, v in metrics.items() if k.startswith("test_")},
            "bound_terms_max_rel_diff_trained_weights": check,
            "seconds_per_step": metrics["seconds_per_step"],
            "sampling_seconds": {"ancestral": ancestral_seconds, "ddim": ddim_seconds}}


def ddpm_torch_side(run, build, seed, sample_steps, device):
    """Train the PyTorch build from minigen's initial weights on minigen's batches, t and
    eps; its test metrics and sampling times, as ddpm_minigen_side's."""
    torch.manual_seed(seed)
    torch_model = build()
    copy_weights(run.model, torch_model)
    print("training torch's ddpm ...", flush=True)
    ema, sps, curve = train_torch_ddpm(torch_model, run, seed, device)
    with torch.no_grad():
        for p, shadow in zip(torch_model.parameters(), ema):
            p.copy_(shadow)
    metrics = torch_ddpm_metrics(torch_model, run, sample_steps, device)
    sampling = {name: metrics.pop(f"sampling_seconds_{name}") for name in ("ancestral", "ddim")}
    return {"metrics": metrics, "seconds_per_step": sps, "sampling_seconds": sampling,
            "curve": curve}


def ddpm_sampling_speed(run, build, sample_steps, device, rounds=3):
    """Both sides' sampling time per network call, taken apart from the parity run's own
    sampling (whose two sides may have run at different times or threads): the trained EMA
    weights of minigen's kept run in both models, then `rounds` rounds that alternate which
    side goes first, each side drawing one batch of 500 images with DDIM on `sample_steps`
    steps (a step is one U-Net call and a few elementwise ops, as an ancestral step), at the
    same threads in this one process. Seconds per step, median over the rounds, and the
    time 2000 ancestral samples (4 batches x T steps) take at that rate."""
    from minigen.diffusion.model import EVALUATION_SEED, SAMPLE_BATCH
    from minigen.random import Generator
    ours = run.model
    torch_model = build()
    with run.evaluation_weights():
        copy_weights(ours, torch_model)
    torch_model.eval()
    ours.eval()

    def minigen_batch():
        with run.evaluation_weights():
            ours.sample_with(SAMPLE_BATCH, Generator(EVALUATION_SEED), "ddim", sample_steps, 0.0)

    def torch_batch():
        generator = Generator(EVALUATION_SEED)
        with torch.no_grad():
            torch_model.sample(SAMPLE_BATCH, lambda shape: generator.normal(shape).numpy(),
                               "ddim", sample_steps, 0.0, device)

    sides = {"minigen": minigen_batch, "torch": torch_batch}
    for fn in sides.values():  # warm-up: compilation, allocator, caches
        fn()
    seconds = {name: [] for name in sides}
    for r in range(rounds):
        for name in (("minigen", "torch") if r % 2 == 0 else ("torch", "minigen")):
            started = time.perf_counter()
            sides[name]()
            seconds[name].append((time.perf_counter() - started) / sample_steps)
            print(f"round {r + 1}: {name} {seconds[name][-1] * 1e3:.1f} ms per step of "
                  f"{SAMPLE_BATCH} images", flush=True)
    per_step = {name: statistics.median(v) for name, v in seconds.items()}
    calls = -(-run.model.eval_samples // SAMPLE_BATCH) * run.model.T
    result = {"seconds_per_step": per_step, "rounds": seconds, "batch": SAMPLE_BATCH,
              "ddim_steps": sample_steps, "ratio": per_step["minigen"] / per_step["torch"],
              "ancestral_samples": run.model.eval_samples,
              "ancestral_seconds_at_this_rate": {k: v * calls for k, v in per_step.items()}}
    print(f"sampling, seconds per step of {SAMPLE_BATCH} images: minigen "
          f"{per_step['minigen']:.3f}, torch {per_step['torch']:.3f} (ratio "
          f"{result['ratio']:.2f}); {run.model.eval_samples} ancestral samples, {calls} steps: "
          f"minigen {per_step['minigen'] * calls:.0f} s, torch {per_step['torch'] * calls:.0f} s")
    return result


def ddpm_side_path(seed, side):
    return common.RESULTS / f"parity-ddpm-digits-{side}-seed{seed}.json"


def ddpm_parity(steps=None, seed=0, samples=None, sample_steps=50, write=True, threads=None,
                device="cpu", keep=None, overrides=None, side="both", resume=False):
    """Train minigen's ddpm on digits and its PyTorch build from the same initial weights on
    the same batches, t and eps; compare test_bpd and fid_local of ancestral and DDIM
    samples (each with its EMA weights).

    side "minigen" or "torch" runs one side and writes its figures to
    parity-ddpm-digits-SIDE-seedS.json, so the two can run at once in two processes (one
    thread each); side "combine" compares the two files; "both" runs both in turn."""
    sides = {"both": ("minigen", "torch"), "minigen": ("minigen",), "torch": ("torch",),
             "combine": (), "speed": ()}[side]
    out = keep or tempfile.mkdtemp(prefix="parity-ddpm-")
    run, build = ddpm_run(steps, seed, samples, device, out, overrides)
    if side == "speed":
        if not (keep and os.path.exists(run.checkpoint_path)):
            sys.exit("parity ddpm --side speed: needs --keep DIR holding minigen's trained run")
        restore_kept(run, "--side speed", finished=True)
        result = ddpm_sampling_speed(run, build, sample_steps, device)
        result.update(machine=common.machine_info(threads), run=out)
        if write:
            path = ddpm_side_path(seed, "speed")
            common.RESULTS.mkdir(exist_ok=True)
            trainer.write_json(str(path), result)
            print(f"wrote {path}")
        return
    found = {}
    for name in sides:
        if name == "minigen":
            found[name] = ddpm_minigen_side(run, build, seed, sample_steps, resume)
        else:
            found[name] = ddpm_torch_side(run, build, seed, sample_steps, device)
        found[name].update(config=run.config, ddim_sample_steps=sample_steps,
                           machine=common.machine_info(threads), run=out)
        if write and side != "both":
            common.RESULTS.mkdir(exist_ok=True)
            trainer.write_json(str(ddpm_side_path(seed, name)), found[name])
            print(f"wrote {ddpm_side_path(seed, name)}")
    if side == "combine":
        for name in ("minigen", "torch"):
            path = ddpm_side_path(seed, name)
            if not path.exists():
                sys.exit(f"parity ddpm --side combine: {path} is missing; run --side {name} "
                         f"first")
            with open(path) as f:
                found[name] = json.load(f)
        if found["minigen"]["config"] != found["torch"]["config"]:
            sys.exit("parity ddpm --side combine: the two sides ran different configs")
    if set(found) != {"minigen", "torch"}:
        return
    mine, theirs = found["minigen"], found["torch"]
    rel = {k: (mine["metrics"][k] - theirs["metrics"][k]) / theirs["metrics"][k]
           for k in DDPM_TARGETS}
    for key, target in DDPM_TARGETS.items():
        print(f"{key}: minigen {mine['metrics'][key]:.4f}, torch {theirs['metrics'][key]:.4f}, "
              f"relative difference {rel[key]:+.2%} (allowed {target:.0%}: "
              f"{'ok' if abs(rel[key]) <= target else 'MISSED'})")
    print(f"seconds per step: minigen {mine['seconds_per_step']:.4f}, torch "
          f"{theirs['seconds_per_step']:.4f}")
    n = mine["config"]["eval_samples"]
    sampling = {name: {"minigen": mine["sampling_seconds"][name],
                       "torch": theirs["sampling_seconds"][name]} for name in ("ancestral", "ddim")}
    for name, both in sampling.items():
        print(f"{n} {name} samples: minigen {both['minigen']:.1f} s, torch "
              f"{both['torch']:.1f} s (ratio {both['minigen'] / both['torch']:.2f})")
    print(f"DDIM-{sample_steps} speed-up over ancestral: minigen "
          f"{sampling['ancestral']['minigen'] / sampling['ddim']['minigen']:.1f}x; its "
          f"fid_local cost: minigen "
          f"{mine['metrics']['fid_local_ddim'] - mine['metrics']['fid_local_ancestral']:+.3f}, "
          f"torch "
          f"{theirs['metrics']['fid_local_ddim'] - theirs['metrics']['fid_local_ancestral']:+.3f}")
    if write:
        result = {"model": "ddpm", "data": "digits", "seed": seed, "config": mine["config"],
                  "ddim_sample_steps": sample_steps, "minigen": mine["metrics"],
                  "torch": theirs["metrics"], "relative_difference": rel,
                  "targets": DDPM_TARGETS,
                  "meets_target": all(abs(rel[k]) <= t for k, t in DDPM_TARGETS.items()),
                  "minigen_metrics": mine["test_metrics"],
                  "bound_terms_max_rel_diff_trained_weights":
                      mine["bound_terms_max_rel_diff_trained_weights"],
                  "seconds_per_step": {"minigen": mine["seconds_per_step"],
                                       "torch": theirs["seconds_per_step"]},
                  "sampling_seconds": sampling, "torch_curve": theirs["curve"],
                  "device": device, "run": mine["run"],
                  "machine": {"minigen": mine["machine"], "torch": theirs["machine"]}}
        common.RESULTS.mkdir(exist_ok=True)
        path = common.RESULTS / "parity-ddpm-digits.json"
        trainer.write_json(str(path), result)
        print(f"wrote {path}")


def ddpm_apart(argv):
    """`--side apart`: this command's two sides in two processes at once, one thread each
    (each logs to the console with its side's name in front), then `--side combine`."""
    kept = [a for a in argv if a not in ("--side", "apart", "--side=apart")]
    base = [sys.executable, "-m", "benchmarks.parity"] + kept + ["--threads", "1"]
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    children = {side: subprocess.Popen(base + ["--side", side], cwd=root, text=True,
                                       stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
                for side in ("minigen", "torch")}
    threads = {side: threading.Thread(target=_echo, args=(side, child.stdout))
               for side, child in children.items()}
    for thread in threads.values():
        thread.start()
    codes = {side: child.wait() for side, child in children.items()}
    for thread in threads.values():
        thread.join()
    failed = [side for side, code in codes.items() if code]
    if failed:
        return f"parity ddpm --side apart: the {' and '.join(failed)} side failed"
    return subprocess.run(base + ["--side", "combine"], cwd=root).returncode


def _echo(side, stream):
    for line in stream:
        print(f"[{side}] {line}", end="", flush=True)


CASES = {"realnvp": realnvp_case, "made": made_case, "pixelcnn": pixelcnn_case,
         "gated-pixelcnn": gated_pixelcnn_case, "wavenet": wavenet_case,
         "transformer": transformer_case, "vae": vae_case}


def copy_weights(mg_model, torch_model):
    """Every PyTorch parameter takes the value of minigen's parameter of the same name; the
    two must have exactly the same names and shapes."""
    ours = dict(mg_model.named_parameters())
    theirs = dict(torch_model.named_parameters())
    if set(ours) != set(theirs):
        raise KeyError(f"copy_weights: parameter names differ; only in minigen: "
                       f"{sorted(set(ours) - set(theirs))}, only in torch: "
                       f"{sorted(set(theirs) - set(ours))}")
    with torch.no_grad():
        for name, p in theirs.items():
            value = ours[name].numpy()
            if value.shape != tuple(p.shape):
                raise ValueError(f"copy_weights: parameter {name} is {value.shape} in minigen "
                                 f"but {tuple(p.shape)} in torch")
            p.copy_(torch.from_numpy(np.array(value)))  # in the torch parameter's dtype


def same_input_check(case, mg_model, torch_model, x, levels, seed, batch_size):
    """log p(y) of both models on the same y: y = (x + u) / K (one uniform draw) for a
    dequantized flow, the images x themselves for an exact-likelihood model, scored
    `batch_size` images at a time (a Transformer's attention over 784 pixels for all 10,000
    fashion-mnist test images at once would need about 100 GB). The relative difference of
    the per-image values, and the mean nll of each. A case with noise scores each of its
    figures (the vae: elbo and iwae) on the same noise: max_rel_diff_NAME, NAME_nats_..."""
    const = 0.0
    y = x
    if case.dequantize:
        u = np.random.default_rng([seed, 99]).uniform(size=x.shape).astype(np.float32)
        y = (x.astype(np.float32) + u) * np.float32(1.0 / levels)
        const = x[0].size * math.log(levels)
    noise = None if case.noise is None else case.noise(len(y), np.random.default_rng([seed, 98]))
    ours, theirs = {}, {}
    for start in range(0, len(y), batch_size):
        batch = y[start:start + batch_size]
        extra = () if noise is None else (noise[start:start + batch_size],)
        with no_grad():
            for name, value in _named(case.mg_log_prob(mg_model, tensor(batch), *extra)):
                ours.setdefault(name, []).append(value.numpy().astype(np.float64))
        with torch.no_grad():
            for name, value in _named(case.torch_log_prob(torch_model, torch.from_numpy(batch),
                                                          *extra)):
                theirs.setdefault(name, []).append(value.double().numpy())
    result = {}
    for name in ours:
        a, b = np.concatenate(ours[name]), np.concatenate(theirs[name])
        mean = "nll_nats" if name == "log_p" else f"{name}_nats"
        result.update({f"max_rel_diff_{name}": float(np.max(np.abs(a - b) / np.abs(b))),
                       f"{mean}_minigen": float(const - a.mean()),
                       f"{mean}_torch": float(const - b.mean())})
    return result


def _named(values):
    """(name, per-example values) of a log_prob function's result: one array is log_p."""
    return values.items() if isinstance(values, dict) else [("log_p", values)]


def describe(check):
    """One line of a same_input_check result: the differences, then both means."""
    names = [key[len("max_rel_diff_"):] for key in check if key.startswith("max_rel_diff_")]
    parts = []
    for name in names:
        mean = "nll_nats" if name == "log_p" else f"{name}_nats"
        parts.append(f"{name}: max relative difference {check[f'max_rel_diff_{name}']:.2e}, "
                     f"{mean} {check[f'{mean}_minigen']:.6f} (minigen) vs "
                     f"{check[f'{mean}_torch']:.6f} (torch)")
    return "; ".join(parts)


def torch_test_nll(model, x, batch_size, generator):
    """Mean test nll (nats per example); one uniform noise draw per image for a dequantized
    flow (an exact-likelihood model ignores the generator)."""
    model.eval()
    total = 0.0
    with torch.no_grad():
        for start in range(0, len(x), batch_size):
            batch = torch.from_numpy(x[start:start + batch_size])
            total += float(model.nll(batch, generator).sum())
    model.train()
    return total / len(x)


def torch_metrics(case, model, run, generator, final):
    """PyTorch's test metrics under minigen's names (test_nll_nats and test_bpd, or the
    case's own)."""
    if case.torch_metrics is not None:
        return case.torch_metrics(model, run.spec, run.config, run.x_test, generator, final)
    nll = torch_test_nll(model, run.x_test, run.config["eval_batch_size"], generator)
    return trainer.likelihood_metrics("test", nll, run.spec)


def train_torch(case, model, run, seed, eval_every):
    """The trainer's loop in PyTorch: the same sampler, steps, optimiser and lr."""
    cfg = run.config
    optimizer = torch.optim.Adam(model.parameters(), lr=cfg["lr"])
    sampler = data.BatchSampler(len(run.x_train), cfg["batch_size"], seed)
    noise = torch.Generator().manual_seed(seed)
    eval_noise = torch.Generator().manual_seed(seed + 1)
    seconds, curve, losses = 0.0, [], []
    for step in range(cfg["steps"]):
        started = time.perf_counter()
        batch = torch.from_numpy(run.x_train[sampler.indices(step)])
        loss = model.loss(batch, noise)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        value = loss.item()
        seconds += time.perf_counter() - started
        losses.append(value)
        if eval_every and (step + 1) % eval_every == 0:
            periodic = torch_metrics(case, model, run, eval_noise, final=False)
            curve.append({"step": step + 1, "train_loss": statistics.fmean(losses),
                          **{k: periodic[k] for k in curve_metrics(case)}})
            losses.clear()
    return torch_metrics(case, model, run, eval_noise, final=True), seconds / cfg["steps"], \
        curve


def curve_metrics(case):
    """The test metrics of the periodic evaluations (the ELBO only, for the vae)."""
    return ("test_elbo_nats",) if case.metrics and "test_elbo_nats" in case.metrics \
        else ("test_nll_nats",)


def minigen_curve(case, out):
    """The periodic test metrics every eval_every steps, from the run's log.csv."""
    with open(f"{out}/log.csv") as f:
        return [{"step": int(r["step"]), "train_loss": float(r["train_loss"]),
                 **{k: float(r[k]) if r.get(k) else None for k in curve_metrics(case)}}
                for r in csv.DictReader(f)]


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("model", choices=sorted(CASES) + sorted(GAN_CASES) + ["ddpm"])
    parser.add_argument("--steps", type=int, help="training steps (default: the case's)")
    parser.add_argument("--data", help="dataset (default: the case's); the result file then "
                        "names it: parity-MODEL-DATA.json")
    parser.add_argument("--eval-batch-size", dest="eval_batch_size", type=int,
                        help="examples per evaluation batch on both sides (default: the "
                        "trainer's); smaller for long sequences")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=None,
                        help="threads for both sides; default: all cores")
    parser.add_argument("--eval-every", type=int, default=250,
                        help="steps between test evaluations on both sides (0: only at the end)")
    parser.add_argument("--no-write", action="store_true")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2],
                        help="GANs: the seeds whose means are compared")
    parser.add_argument("--keep", metavar="DIR", help="GANs: keep minigen's runs in "
                        "DIR/MODEL-DATA-SEED; ddpm: keep minigen's run in DIR")
    parser.add_argument("--samples", type=int, help="ddpm: samples for fid_local "
                        "(default: the model's eval_samples, 2000)")
    parser.add_argument("--sample-steps", dest="sample_steps", type=int, default=50,
                        help="ddpm: DDIM's steps (default 50)")
    parser.add_argument("--device", default="cpu", help="ddpm: both sides' device")
    parser.add_argument("--config", nargs="*", default=[], metavar="KEY=VALUE",
                        help="ddpm: more config overrides (T=20 for a smoke test)")
    parser.add_argument("--side", default="both", choices=("both", "minigen", "torch",
                                                             "combine", "apart", "speed"),
                        help="ddpm: one side only (its figures to "
                        "parity-ddpm-digits-SIDE-seedS.json: the two sides can run at once), "
                        "combine the two files, or apart: both sides at once in two "
                        "processes of one thread each, then combine; speed: both sides' "
                        "sampling time per step, alternating, from --keep DIR's trained run")
    parser.add_argument("--resume", action="store_true",
                        help="ddpm: minigen's side continues from the checkpoint in --keep "
                        "DIR (a killed run, or a finished training to evaluate again)")
    args = parser.parse_args(argv)
    if args.resume and not (args.model == "ddpm" and args.keep):
        parser.error("--resume is for ddpm and needs --keep DIR, where the run was kept")
    if args.model == "ddpm" and args.side == "apart":
        if args.no_write:
            parser.error("--side apart combines the two sides' files: drop --no-write")
        sys.exit(ddpm_apart(argv if argv is not None else sys.argv[1:]))
    threads = common.set_threads(args.threads or os.cpu_count())
    common.keep_freed_memory()
    if args.model in GAN_CASES:
        gan_parity(args.model, args.seeds, args.steps, args.keep, not args.no_write, threads)
        return
    if args.model == "ddpm":
        overrides = dict(item.split("=", 1) for item in args.config)
        ddpm_parity(args.steps, args.seed, args.samples, args.sample_steps, not args.no_write,
                    threads, args.device, args.keep, overrides, args.side, args.resume)
        return
    case = CASES[args.model]()
    default_data = case.data
    if args.data is not None:
        case.data = args.data
    config = dict(case.config, eval_every=args.eval_every)
    if args.steps is not None:
        config["steps"] = args.steps
    if args.eval_batch_size is not None:
        config["eval_batch_size"] = args.eval_batch_size

    with tempfile.TemporaryDirectory() as out:
        run = trainer.Run(case.model, case.data, args.seed, out=out, config=config)
        torch.manual_seed(args.seed)
        torch_model = case.build_torch(run.spec, run.config, run.model)
        copy_weights(run.model, torch_model)
        eval_batch = run.config["eval_batch_size"]
        init = same_input_check(case, run.model, torch_model, run.x_test, run.spec.levels,
                                args.seed, eval_batch)
        print(f"same test data, copied initial weights: {describe(init)}", flush=True)

        print(f"training minigen's {case.model} on {case.data}, {run.config['steps']} steps "
              f"...", flush=True)
        run.train(progress=False)
        metrics = run.finish()
        ours_curve = minigen_curve(case, out)
        # realnvp's last layers start at zero, so at init the couplings are the identity and
        # the check above sees only the pre-processing and the prior; and any model's
        # trained weights reach values (larger logits, saturated gates) that initial ones do
        # not: repeat the check on the trained weights
        trained_copy = case.build_torch(run.spec, run.config, run.model)
        copy_weights(run.model, trained_copy)
        trained = same_input_check(case, run.model, trained_copy, run.x_test,
                                   run.spec.levels, args.seed, eval_batch)
        print(f"same test data, minigen's trained weights in both: {describe(trained)}",
              flush=True)
    print(f"training torch's {case.model} ...", flush=True)
    theirs, theirs_sps, theirs_curve = train_torch(case, torch_model, run, args.seed,
                                                   args.eval_every)

    compared = case.metrics or \
        (("test_bpd",) if run.spec.kind == "discrete" else ("test_nll_nats",))
    rel = {m: (metrics[m] - theirs[m]) / theirs[m] for m in compared}
    meets = all(abs(r) <= case.target for r in rel.values())
    params = {"minigen": metrics["params"],
              "torch": sum(p.numel() for p in torch_model.parameters())}
    sps = {"minigen": metrics["seconds_per_step"], "torch": theirs_sps}
    for key in [k for k in metrics if k.startswith("test_") and k in theirs]:
        print(f"{key}: minigen {metrics[key]:.4f}, torch {theirs[key]:.4f}")
    for m, r in rel.items():
        verdict = "ok" if abs(r) <= case.target else "MISSED"
        print(f"{m}: relative difference {r:+.2%} (allowed {case.target:.0%}: {verdict})")
    print(f"seconds per step: minigen {sps['minigen']:.4f}, torch {sps['torch']:.4f} "
          f"({threads} threads; preliminary on a shared machine)")
    print(f"params: minigen {params['minigen']}, torch {params['torch']}")
    if not args.no_write:
        first = compared[0]
        result = {"model": case.model, "data": case.data, "seed": args.seed,
                  "config": run.config, "metric": first if len(compared) == 1 else compared,
                  "minigen": metrics[first], "torch": theirs[first],
                  "relative_difference": rel[first] if len(compared) == 1 else rel,
                  **{k: {"minigen": metrics[k], "torch": theirs[k]} for k in metrics
                     if k.startswith("test_") and k in theirs},
                  "target": case.target, "meets_target": meets,
                  "seconds_per_step": sps, "params": params, "same_input_at_init": init,
                  "same_input_minigen_trained_weights": trained,
                  "curves": {"minigen": ours_curve, "torch": theirs_curve},
                  "machine": common.machine_info(threads)}
        common.RESULTS.mkdir(exist_ok=True)
        suffix = "" if case.data == default_data else f"-{case.data}"
        path = common.RESULTS / f"parity-{case.model}{suffix}.json"
        trainer.write_json(str(path), result)
        print(f"wrote {path}")


if __name__ == "__main__":
    main()
