"""dlmi_utils: the helper package of the DLMI labs, laid out like the course.

Base modules (each one idea; they import nothing from the domains)::

    fourier     centred orthonormal FFTs (numpy and torch)
    finite_differences
                the gradient of TV (forward differences) and its adjoint (numpy and torch)
    metrics     MSE, PSNR, SSIM, SNR, EPI, CoC; Dice, Hausdorff, ASD
    losses      torch training losses (pixel, SSIM, Dice, MC-SURE, perceptual)
    noise       Gaussian, Rician, complex k-space, Poisson and X-ray transmission noise; the
                Anscombe transform
    features    a small VGG-style feature network of the course's images (perceptual losses)
    viz         image grids, k-space, error maps, masks, curves
    device      device choice and seeding
    train       a small trainer
    pretrained  the shipped weights and their records
    patches     patches drawn inside a mask (the breast of a mammogram)
    data/       one loader per data set (brain MR, mammograms, DICOMs, radiographs, CT slices,
                fastMRI, mini-MIAS)

Domains (each imports the base, never another domain)::

    mri/        physics (MRIForward), sampling, cs, dc, cascade, unet, datasets, explorer
    denoising/  models (DnCNN, dilated, noise-aware, residual U-Net), geometry, patches,
                training, tiling
    gan/        models, losses, training, data, evaluation
    ct/         physics (ParallelBeamProjector, FBP), dose, noise_texture, classical, denoising
    superres/   physics (ThickSliceForward), interpolation, models, tissue, evaluation, training

Course tooling (imports base and domains)::

    course/     notebooks (dlmi-labs), release, grading (dlmi-grade; not in the student
                release), checks (self-checks), colab

Public names are importable from their domain: ``dlmi_utils.mri.MRIForward``,
``dlmi_utils.mri.DeepCascade``, ``dlmi_utils.denoising.DilatedDenoiser``, ...
"""

__version__ = "0.1.0"
