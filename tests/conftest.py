import os

from hypothesis import HealthCheck, settings

# "ci" draws the same examples on every run, so a CI result can be reproduced exactly
settings.register_profile("dev", deadline=None,
                          suppress_health_check=[HealthCheck.too_slow])
settings.register_profile("ci", parent=settings.get_profile("dev"), derandomize=True,
                          print_blob=True)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "dev"))

# MINIGEN_DEVICE picks the default device the tests make their tensors on: "cpu" (the
# default), "cuda" (CuPy on the GPU) or "standin" (NumPy playing CuPy's part, on any
# machine: tests/devicestandin.py), as in
#     MINIGEN_DEVICE=standin pytest tests/test_models_vae.py
DEVICE = os.environ.get("MINIGEN_DEVICE", "cpu")
if DEVICE == "standin":
    import devicestandin
    devicestandin.install()
elif DEVICE == "cuda":
    from minigen import backend
    backend.set_default_device("cuda")
elif DEVICE != "cpu":
    raise ValueError(f"MINIGEN_DEVICE={DEVICE!r}: expected cpu, cuda or standin")
