"""CKMDiff: channel gain maps from limited, noisy observations by conditional latent decoupled diffusion.

- :mod:`.diffusion`: the forward process, its posterior, Alg. 2's sampler and eq. (22)'s weights (no learning);
- :mod:`.swin`: the Swin Transformer condition encoder, from Keras layers;
- :mod:`.network`: the VAE, the two-branch decoupled-diffusion UNet, and Alg. 1 as a Keras model;
- :mod:`.data`: truth pixels, the 3-channel condition image, the example streams with a random degradation;
- :mod:`.train`: the TOML training config and the two training stages over the shared trainer;
- :mod:`.method`: :class:`~ckmsim.models.ckmdiff.method.CKMDiffMethod`.
"""
