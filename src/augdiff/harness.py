"""An lm-evaluation-harness model for augdiff runs, registered as ``augdiff`` when this module is imported:
``import augdiff.harness; lm_eval.simple_evaluate(model="augdiff", model_args="path=RUN,samples=128", tasks=…)``.

:class:`AugdiffLM` answers the harness's three requests:

- ``loglikelihood((context, continuation))``: LLaDA's Monte-Carlo lower bound on log p(continuation | context)
  (:func:`augdiff.metrics.conditional.continuation_log_likelihood`; ``samples`` draws, standard error ∝
  1/√samples), and whether the continuation is the greedy one (argmax of every continuation position with the
  whole continuation masked: the one-step greedy answer);
- ``loglikelihood_rolling((text,))``: the same bound over windows of the model's length, summed;
- ``generate_until((context, {"until": [...], "max_gen_toks": n}))``: the ancestral sampler (``steps`` steps)
  after the context as a prefix, cut at the first stop string.

Importing this module registers the model with ``lm_eval`` when that package is installed (``pip install
lm-eval``); without it the class is a plain object with the same methods (what the tests call).
"""

from __future__ import annotations

from typing import Any

import torch

from augdiff.errors import AugdiffError
from augdiff.metrics.conditional import continuation_log_likelihood, is_greedy

__all__ = ["AugdiffLM"]


def _args(request: Any) -> tuple[Any, ...]:
    return tuple(request.args) if hasattr(request, "args") else tuple(request)


class AugdiffLM:
    """A run (directory, model folder or ``hub:NAME``) of a text MDLM model (or the AR reference: exact
    log-likelihoods), for the harness.

    Args:
        path: what ``augdiff sample`` reads; or give ``model``, ``tokenizer`` and ``seq_len`` directly.
        samples: Monte-Carlo draws per log-likelihood.
        steps: sampling steps of ``generate_until``.
    """

    def __init__(
        self,
        path: str | None = None,
        *,
        model: Any = None,
        tokenizer: Any = None,
        seq_len: int | None = None,
        samples: int = 128,
        steps: int = 64,
        batch_size: int = 64,
        device: str = "cpu",
        seed: int = 0,
    ) -> None:
        if path is not None:
            from augdiff.data.tokenizer import tokenizer_from_description
            from augdiff.runs import load_run

            loaded = load_run(path, device=device)
            model, tokenizer = loaded.model, tokenizer_from_description(loaded.data)
            seq_len = int(loaded.data["seq_len"])
        if model is None or tokenizer is None or seq_len is None:
            raise AugdiffError("the harness model needs a text run (path=RUN) with a tokenizer")
        self.model, self.tokenizer, self.seq_len = model, tokenizer, int(seq_len)
        self.samples, self.steps, self.batch_size, self.seed = int(samples), int(steps), int(batch_size), int(seed)

    @classmethod
    def create_from_arg_string(cls, arg_string: str, additional_config: dict[str, Any] | None = None) -> AugdiffLM:
        """``path=RUN,samples=128,steps=64`` (the harness's ``--model_args``)."""
        kwargs: dict[str, Any] = dict(item.split("=", 1) for item in arg_string.split(",") if item)
        for key in ("samples", "steps", "batch_size", "seed"):
            if key in kwargs:
                kwargs[key] = int(kwargs[key])
        if additional_config and additional_config.get("device"):
            kwargs.setdefault("device", additional_config["device"])
        return cls(**kwargs)

    def _ids(self, text: str) -> torch.Tensor:
        return torch.tensor(self.tokenizer.encode(text), dtype=torch.long)

    def loglikelihood(self, requests: list[Any]) -> list[tuple[float, bool]]:
        out = []
        for request in requests:
            context, continuation = (self._ids(text) for text in _args(request)[:2])
            room = self.seq_len - continuation.numel()
            if room < 0:
                raise AugdiffError(f"a continuation of {continuation.numel()} tokens exceeds seq_len={self.seq_len}")
            context = context[context.numel() - room :] if room < context.numel() else context  # keep its end
            est = continuation_log_likelihood(
                self.model, context, continuation, samples=self.samples, batch_size=self.batch_size, seed=self.seed
            )
            out.append((est.log_likelihood, is_greedy(self.model, context, continuation)))
        return out

    def loglikelihood_rolling(self, requests: list[Any]) -> list[float]:
        out = []
        for request in requests:
            ids = self._ids(_args(request)[0])
            total = 0.0
            for window in ids.split(self.seq_len):
                empty = torch.empty(0, dtype=torch.long)
                est = continuation_log_likelihood(self.model, empty, window, samples=self.samples, seed=self.seed)
                total += est.log_likelihood
            out.append(total)
        return out

    def generate_until(self, requests: list[Any]) -> list[str]:
        out = []
        for request in requests:
            context_text, kwargs = _args(request)[:2]
            until = [kwargs.get("until")] if isinstance(kwargs.get("until"), str) else list(kwargs.get("until", []))
            context = self._ids(context_text)[-(self.seq_len - 1) :]
            length = min(self.seq_len, context.numel() + int(kwargs.get("max_gen_toks", 64)))
            x = self.model.sample(1, self.seq_len, self.steps, prefix=context, seed=self.seed)[0, :length]
            text = self.tokenizer.decode(x[context.numel() :])
            cut = min([text.find(stop) for stop in until if stop and stop in text], default=len(text))
            out.append(text[:cut])
        return out


def _register() -> None:
    """Make ``--model augdiff`` known to lm_eval (an LM subclass with these methods), when it is installed."""
    try:
        from lm_eval.api.model import LM
        from lm_eval.api.registry import register_model
    except ImportError:
        return

    @register_model("augdiff")
    class HarnessModel(AugdiffLM, LM):  # type: ignore[misc]
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            LM.__init__(self)
            AugdiffLM.__init__(self, *args, **kwargs)


_register()
