"""`python -m genvid_devstack.kubelet`: run the process kubelet until SIGTERM or SIGINT.

On either signal it ends every pod's processes, then exits 0, so a stopped stack leaves nothing
running; if one of its loops fails it does the same and exits 1 (the stack supervisor notices).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import signal
import sys
from pathlib import Path

import aiohttp
from kubernetes_asyncio import client
from kubernetes_asyncio.client.exceptions import ApiException

from genvid_devstack.kubelet import logserver
from genvid_devstack.kubelet.agent import Agent
from genvid_devstack.kubelet.binder import Binder
from genvid_devstack.kubelet.kube import api_client, cluster_ca_pem
from genvid_devstack.kubelet.node import NodeAgent, NodeSettings, node_manifest
from genvid_devstack.kubelet.runtime import Runtime

log = logging.getLogger("genvid_devstack.kubelet")

_REGISTER_TIMEOUT_SECONDS = 60.0


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m genvid_devstack.kubelet",
        description="Run pods bound to one node as local processes (development stack only).",
    )
    parser.add_argument(
        "--kubeconfig", type=Path, required=True, help="credentials of system:node:<node-name>"
    )
    parser.add_argument(
        "--scheduler-kubeconfig",
        type=Path,
        help="credentials of system:kube-scheduler, to bind pending pods to this node "
        "(without it, something else must schedule)",
    )
    parser.add_argument("--node-name", default="genvid-node")
    parser.add_argument(
        "--root-dir", type=Path, required=True, help="pod folders: logs, termination messages"
    )
    parser.add_argument("--address", default="127.0.0.1", help="node and pod IP; log server host")
    parser.add_argument(
        "--port", type=int, default=0, help="log server port (0: any free port); needs --tls-*"
    )
    parser.add_argument("--tls-cert", type=Path, help="serving certificate of the log server")
    parser.add_argument("--tls-key", type=Path, help="its private key")
    parser.add_argument(
        "--client-ca",
        type=Path,
        help="CA of the apiserver's client certificate (default: --kubeconfig's cluster CA)",
    )
    parser.add_argument("--log-level", default="INFO")
    args = parser.parse_args(argv)
    if (args.tls_cert is None) != (args.tls_key is None):
        parser.error("--tls-cert and --tls-key go together")
    return args


async def _register(node: NodeAgent) -> None:
    """The apiserver may still be settling (RBAC bootstrap) right after it reports ready."""
    deadline = asyncio.get_running_loop().time() + _REGISTER_TIMEOUT_SECONDS
    while True:
        try:
            await node.register()
            return
        except (ApiException, aiohttp.ClientError, TimeoutError) as error:
            if asyncio.get_running_loop().time() > deadline:
                raise
            log.warning("node registration failed, retrying: %s", error)
            await asyncio.sleep(1)


async def run(args: argparse.Namespace) -> int:
    loop = asyncio.get_running_loop()
    main_task = asyncio.current_task()
    assert main_task is not None

    def on_signal() -> None:
        log.info("stopping: ending every pod's processes")
        for sig in (signal.SIGTERM, signal.SIGINT):  # a second signal must not cut the cleanup
            loop.add_signal_handler(sig, lambda: None)
        main_task.cancel()

    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, on_signal)

    apis: list[client.ApiClient] = [await api_client(args.kubeconfig)]
    node_api = apis[0]
    runtime = Runtime(args.root_dir)
    agent = Agent(node_api, runtime, args.node_name, args.address)
    runner = None
    tasks: list[asyncio.Task[None]] = []
    exit_code = 0
    try:
        port: int | None = None
        if args.tls_cert is not None:
            client_ca = (
                args.client_ca.read_text() if args.client_ca else cluster_ca_pem(args.kubeconfig)
            )
            tls = logserver.tls_context(args.tls_cert, args.tls_key, client_ca)
            runner = await logserver.serve(
                agent.container_log, host=args.address, port=args.port, tls=tls
            )
            port = int(runner.addresses[0][1])
            log.info("serving container logs on https://%s:%d", args.address, port)
        settings = NodeSettings(args.node_name, args.address, args.root_dir, port)
        node = NodeAgent(node_api, settings)
        await _register(node)
        tasks += [asyncio.create_task(agent.run()), asyncio.create_task(node.run())]
        if args.scheduler_kubeconfig is not None:
            apis.append(await api_client(args.scheduler_kubeconfig))
            labels = node_manifest(settings)["metadata"]["labels"]
            tasks.append(asyncio.create_task(Binder(apis[-1], args.node_name, labels).run()))
        log.info("node %s ready; pod folders in %s", args.node_name, args.root_dir)
        # The loops run until cancelled: returning at all means one of them failed.
        done, _ = await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
        for task in done:
            log.error("a kubelet loop ended; stopping", exc_info=task.exception())
        exit_code = 1
    except asyncio.CancelledError:
        pass  # SIGTERM or SIGINT
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        await agent.shutdown()
        if runner is not None:
            await runner.cleanup()
        for api in apis:
            with contextlib.suppress(Exception):
                await api.close()
    log.info("stopped")
    return exit_code


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    logging.basicConfig(
        level=args.log_level.upper(),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    return asyncio.run(run(args))


if __name__ == "__main__":
    sys.exit(main())
