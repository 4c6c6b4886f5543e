"""The one place the project imports Hugging Face `transformers`.

    transformers = import_transformers()
    model = transformers.AutoModel.from_pretrained(folder, local_files_only=True)

Hub kernels are turned off here (`USE_HUB_KERNELS=0`), before transformers is imported and so
before any model loads. Why: transformers 5.x turns Hugging Face "hub kernels" on by default.
`from_pretrained` then requires the `kernels` package in one exact range (0.19.1 <= version
< 0.20) and raises "Kernels are not available. Please install a compatible version ..." when an
image has none or another version (every model failed to load that way on the CUDA image), and
on CUDA it swaps layers for kernel builds fetched from the Hub at load time. Our pods run with
`HF_HUB_OFFLINE=1` and weights from a volume, nothing is downloaded at run time, and the stock
torch layers are what the tests check; so the project loads every model without them.

`setdefault`: an operator who wants hub kernels (and has provisioned them) sets
`USE_HUB_KERNELS=1` in the environment and is not overridden. `deployments/Dockerfile.gpu` sets
the same variable, so processes that import transformers some other way agree.
"""

from __future__ import annotations

import os

HUB_KERNELS_VARIABLE = "USE_HUB_KERNELS"


def import_transformers():
    """The `transformers` module, with hub kernels off unless the environment turned them on.

    transformers reads the variable at each `from_pretrained`, so this holds even when
    something else imported transformers first."""
    os.environ.setdefault(HUB_KERNELS_VARIABLE, "0")
    import transformers

    return transformers
