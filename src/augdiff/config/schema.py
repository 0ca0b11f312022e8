"""The run configuration's dataclasses: one field per key, with its default (checked by ``config/rules.py``)."""

from __future__ import annotations

from dataclasses import dataclass, field

from augdiff.config.rules import validate

__all__ = [
    "ModelConfig",
    "DiffusionConfig",
    "OptimConfig",
    "CADDConfig",
    "LADDConfig",
    "TextConfig",
    "TrainConfig",
]


@dataclass
class ModelConfig:
    """Backbone overrides; ``None`` takes the value of the ``model_size`` preset."""

    hidden_size: int | None = None
    n_layers: int | None = None
    n_heads: int | None = None
    mlp_ratio: int = 4
    dropout: float = 0.0
    # MDLM and LADD drop time conditioning from the token denoiser; it also makes the sampler's cache exact.
    time_conditioning: bool = False
    # Kernel of a depthwise convolution over positions added to the token embeddings (nn.layers.LocalMixer):
    # against masked diffusion's slow start on locally structured data; 0 = none (MDLM's DiT).
    local_mixer: int = 0
    # LayerNorms with a learned scale, as MDLM's DiT (its released checkpoints need it; augdiff import-mdlm).
    norm_affine: bool = False


@dataclass
class DiffusionConfig:
    """Token-channel masked diffusion: schedule, loss weighting, time sampling."""

    schedule: str = "loglinear"
    schedule_eps: float = 1e-3
    schedule_power: float = 2.0
    geometric_sigma_min: float = 1e-4
    geometric_sigma_max: float = 20.0
    loss_weighting: str = "elbo"
    antithetic: bool = True
    time_eps: float = 1e-3


@dataclass
class CADDConfig:
    """CADD's latent channel (``method: cadd``); names follow the paper (App. B.1, C.3)."""

    schedule: str = "flow"
    fusion: str = "add"
    z0_hat: str = "hard"
    mse_weight: float = 0.0
    #: constant (plain ‖ẑ_0 − z_0‖², Table 10) or elbo (−½SNR′(t): ~10⁹ near t = 0 on the flow path)
    mse_weighting: str = "constant"
    k: int = 1
    z0_grad: bool = True
    #: latent rows L2-normalised to this norm (CDCD); null: the raw embedding rows (the paper)
    radius: float | None = None
    #: noise scale of the latent path; null: the RMS of the embedding's elements when training starts
    sigma: float | None = 1.0


@dataclass
class LADDConfig:
    """Co-LADD / Di-LADD latent channel (``method: co-ladd | di-ladd``); names follow LADD §3, App. C–E.

    Where the paper and the authors' code (GitHub darioShar/LADD) differ, both are one value away
    (ARCHITECTURE.md, "LADD: paper and code"): ``normalize`` (unit: Eq 75 and the authors' text configs; their
    sawtooth config: none), ``schedule`` for Di-LADD (auto = their code's polynomial; App. C.3: linear).
    """

    stage: int = 1
    latent_len: int = 1
    latent_dim: int = 32
    encoder: str = "dit"
    encoder_path: str | None = None
    encoder_size: str = "xxs"
    pool: str = "last"
    encoder_readout: str = "adaln"
    encoder_dropout: float = 0.0
    encoder_noise: float = 0.0
    normalize: str = "unit"  # unit (Eq 75) | none | radius (every latent vector of norm ladd.radius)
    radius: float = 1.0
    schedule: str = "auto"  # co-ladd: ladd-sqrt; di-ladd: polynomial (α = 1 − t², the authors' code)
    codebook_size: int = 512
    vq_decay: float = 0.95
    commitment_weight: float = 0.1
    dead_code_threshold: float = 2.0
    kmeans_init: bool = True
    lambda_x: float = 1.0
    lambda_y: float = 1.0
    latent_weighting: str = "constant"
    latent_mse: str = "mean"
    # Co-LADD: what the latent heads regress — y0 (the paper, LDDM), eps, v or flow (the path's velocity)
    latent_target: str = "y0"  # mean | sum over the latent width d′
    p_cf: float = 0.1
    p_drop: float = 0.0
    independent_t: bool = False
    p_seq: float = 0.5  # 0: trained for joint inference only, 1: sequential only (the authors' way), between: both
    # Sampling defaults (CLI --lag, --latent-steps, --eta, --guidance; the API's sampling_options(...) keywords):
    # the latent's lead λ (0 joint, 1 sequential), latent-only steps T_y, Co-LADD's DDIM η, latent guidance w.
    lag: float = 0.0
    latent_steps: int = 128
    eta: float = 0.0
    guidance: float = 1.0
    prior: str = "auto"
    prior_hidden: int = 128
    prior_layers: int = 3
    latent_embed: str = "mlp"  # mlp | linear: the MM-DiT's latent input embedding
    latent_positions: str = "after"  # after (rotary L … L+L′−1) | restart (0 … L′−1)


@dataclass
class TextConfig:
    """Text data (``--data text:PATH | hf:NAME``): the tokenizer and how documents become rows (``data/text.py``).

    ``tokenizer``: ``auto`` (the corpus's own characters for ``text:PATH``, each hub corpus's usual choice for
    ``hf:NAME``), ``char``, ``text8`` (27 symbols a–z and space), ``bpe`` (trained on the training split) or a
    path to a ``tokenizer.json`` or a GPT-2 / Qwen3 tokenizer directory. ``packing``: ``auto`` (``none`` for
    characters, ``wrap`` for BPE, ``pad`` for sentence corpora), ``wrap`` (MDLM), ``pad`` or ``none``.
    """

    tokenizer: str = "auto"
    bpe_vocab_size: int = 4096
    packing: str = "auto"


@dataclass
class ImageConfig:
    """Image data (``--data image:NAME``): ``flip`` is the probability that a training image is mirrored
    left–right, ``rotate`` that it is turned by a quarter, half or three-quarter turn (CADD's CIFAR-10
    augmentation keeps these two of Karras et al. 2020's; 0: none)."""

    flip: float = 0.0
    rotate: float = 0.0


@dataclass
class OptimConfig:
    """AdamW with linear warm-up then constant learning rate, gradient clipping and weight EMA."""

    lr: float = 3e-4
    weight_decay: float = 0.0
    beta1: float = 0.9
    beta2: float = 0.999
    warmup_steps: int = 100
    # after the warm-up: constant (MDLM) or cosine, decaying to min_lr_ratio·lr at the last step
    lr_schedule: str = "constant"
    min_lr_ratio: float = 0.1
    grad_clip: float = 1.0
    ema_decay: float = 0.9999


@dataclass
class TrainConfig:
    """Everything a training run needs; saved next to every checkpoint."""

    method: str = "mdlm"
    data: str = "sawtooth"
    seq_len: int | None = None
    vocab_size: int | None = None
    model_size: str = "xs"
    steps: int = 1000
    batch_size: int = 64
    grad_accum: int = 1
    seed: int = 0
    precision: str = "auto"
    device: str = "auto"
    log_every: int = 50
    ckpt_every: int = 1000
    keep_checkpoints: int = 2
    tensorboard: bool = True
    progress: bool = True
    init_from: str | None = None
    # dit; unet: ADM's U-Net over pixel tokens (nn/unet.py); hf:PATH: a local transformers model (mdlm, cadd)
    backbone: str = "dit"
    trust_remote_code: bool = False  # run the modeling code an hf:PATH model ships (auto_map); only code you trust
    compile: bool = False  # torch.compile the network (Trainer); the saved weights are the same
    strategy: str = "auto"  # auto | ddp | fsdp, under torchrun (train/distributed.py)
    model: ModelConfig = field(default_factory=ModelConfig)
    diffusion: DiffusionConfig = field(default_factory=DiffusionConfig)
    optim: OptimConfig = field(default_factory=OptimConfig)
    cadd: CADDConfig = field(default_factory=CADDConfig)
    ladd: LADDConfig = field(default_factory=LADDConfig)
    text: TextConfig = field(default_factory=TextConfig)
    image: ImageConfig = field(default_factory=ImageConfig)

    def __post_init__(self) -> None:
        validate(self)
