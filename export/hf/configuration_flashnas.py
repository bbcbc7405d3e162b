"""Configuration of a flashnas hybrid language model for Hugging Face transformers.

Written by `flashnas export` next to model.safetensors. The flashnas ArchSpec is
kept whole under `arch` (d_model, vocab_size, n_meta_tokens, tie_embeddings,
norm_eps and the list of sublayers with their canonical hyperparameters); the
usual transformers names are derived from it.
"""
from transformers import PretrainedConfig


class FlashnasConfig(PretrainedConfig):
    model_type = "flashnas"

    # The flashnas model-folder format this code reads; a folder from a newer
    # flashnas may name or lay out things otherwise.
    FORMAT = "flashnas.checkpoint/1"

    def __init__(self, arch=None, **kwargs):
        fmt = kwargs.get("format", self.FORMAT)
        if fmt != self.FORMAT:
            raise ValueError(f"flashnas: config.json field 'format' is {fmt!r}; this modelling code reads "
                             f"{self.FORMAT!r} (export the model again with this flashnas, or use the modelling "
                             f"code of the flashnas that wrote it)")
        self.arch = dict(arch or {})
        # Tied embeddings are handled by the model itself (no lm_head), so
        # transformers must not try to tie anything.
        kwargs["tie_word_embeddings"] = False
        super().__init__(**kwargs)
        self.vocab_size = self.arch.get("vocab_size", 0)
        self.hidden_size = self.arch.get("d_model", 0)
        self.num_hidden_layers = len(self.arch.get("layers", []))
