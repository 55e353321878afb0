"""``python -m latlab.providers.emulator``: print the base URL, serve until SIGINT/SIGTERM."""

from latlab.providers.emulator.cli import main

if __name__ == "__main__":
    raise SystemExit(main())
