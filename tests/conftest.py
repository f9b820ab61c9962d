import os

import matplotlib

matplotlib.use("Agg")
os.environ.setdefault("HYDRA_FULL_ERROR", "0")
