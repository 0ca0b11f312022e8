import os

import pytest
import torch

# Under pytest-xdist every worker would start PyTorch's default thread pool (one thread per core): n workers ×
# n threads on n cores thrash (measured 28 s → 261 s on 2 cores). One thread per worker keeps them apart.
if os.environ.get("PYTEST_XDIST_WORKER"):
    torch.set_num_threads(1)


@pytest.fixture(autouse=True)
def _seed_and_threads():
    torch.manual_seed(0)
    yield
