"""``python -m latlab``: the ``latlab`` command."""

from latlab.runner.app.cli import main

if __name__ == "__main__":
    main()
