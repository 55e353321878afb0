"""latlab's bundled Hydra config groups (installed as the package ``latlab.conf``)."""
