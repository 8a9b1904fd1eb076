"""Helpers for the cache tests: module files written on the fly, the environment of a child."""

from __future__ import annotations

import importlib.util
import os
import pathlib
import sys
import textwrap
from types import ModuleType

import hypernodes

SRC = str(pathlib.Path(hypernodes.__file__).resolve().parent.parent)
#: the secret of the FsspecCache stores the tests make
KEY = b"conformance-key-" * 2


class ModuleWriter:
    """Writes module files into a folder on sys.path and imports them afresh."""

    def __init__(self, folder: pathlib.Path) -> None:
        self.folder = folder

    def load(self, name: str, source: str) -> ModuleType:
        path = self.folder / f"{name}.py"
        path.write_text(textwrap.dedent(source))
        sys.modules.pop(name, None)
        spec = importlib.util.spec_from_file_location(name, path)
        assert spec is not None and spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        spec.loader.exec_module(module)
        return module


def subprocess_env(*paths: str, **extra: str) -> dict[str, str]:
    """The environment for a child ``python`` that can import hypernodes and ``paths``."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([SRC, *paths, env.get("PYTHONPATH", "")])
    env.update(extra)
    return env


def run_pickled_items(payload: bytes) -> bytes:
    """What a worker process of a parallel map does: run items of a pickled plan, relay writes."""
    import cloudpickle

    plan, items, ctx = cloudpickle.loads(payload)
    from hypernodes.execution.loops import run_item

    results = [run_item(plan, values, ctx) for values in items]
    return cloudpickle.dumps((results, ctx.cache.export_writes()))


class MotoServer:
    """``moto_server`` (an S3-compatible server) run on 127.0.0.1 at a free port."""

    def __init__(self, folder: pathlib.Path) -> None:
        import shutil
        import socket
        import subprocess
        import time
        import urllib.request

        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            port = probe.getsockname()[1]
        command = shutil.which("moto_server", path=os.path.dirname(sys.executable))
        assert command is not None, "moto_server is not installed (pip install 'moto[server]')"
        self.log = open(folder / "moto.log", "wb")  # noqa: SIM115 - closed in stop()
        self.process = subprocess.Popen(
            [command, "-H", "127.0.0.1", "-p", str(port)], stdout=self.log, stderr=self.log
        )
        self.endpoint = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 30
        while True:
            try:
                urllib.request.urlopen(self.endpoint + "/moto-api/", timeout=1).close()
                break
            except OSError as exc:
                if self.process.poll() is not None or time.monotonic() > deadline:
                    self.stop()
                    log = folder / "moto.log"
                    raise RuntimeError(f"moto_server did not start: see {log}") from exc
                time.sleep(0.1)
        self.options = {
            "endpoint_url": self.endpoint,
            "key": "testing",
            "secret": "testing",
            "client_kwargs": {"region_name": "us-east-1"},
        }
        try:
            import boto3

            client = boto3.client(
                "s3",
                endpoint_url=self.endpoint,
                aws_access_key_id="testing",
                aws_secret_access_key="testing",
                region_name="us-east-1",
            )
            client.create_bucket(Bucket="hypernodes-tests")
        except BaseException:
            self.stop()
            raise

    def bucket_url(self, name: str) -> str:
        """A folder of the test bucket, fresh for ``name``."""
        return f"s3://hypernodes-tests/{name}"

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(timeout=10)
        except Exception:
            self.process.kill()
            self.process.wait()
        self.log.close()
