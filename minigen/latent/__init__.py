"""The pieces latent-variable models share: encoders (q(z | x)), decoders and likelihoods
(p(x | z)), the variational bounds (ELBO and the importance-weighted bound) and vector
quantization. The models themselves are in minigen/models/ (vae, iwae, hvae, ae, vq-vae)."""
