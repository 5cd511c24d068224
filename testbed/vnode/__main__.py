"""python -m vnode --node vk-slurm --kubeconfig admin.kubeconfig --batch slurm --state-dir DIR

    python -m vnode --node vk-htcondor --batch htcondor --chroot ROOT --port 10350 \
        --label testbed.interlink/batch-system=htcondor --taint testbed.interlink/site=htcondor:NoSchedule ...
"""

from __future__ import annotations

import argparse
import logging
import shutil
import signal
import sys
from pathlib import Path
from types import FrameType

from .agent import CREATE_DELAY, Agent, AgentConfig
from .batch import make_backend
from .htcondor import PLUGIN_BUILDS
from .jobfiles import SandboxConfig
from .kube import Kube
from .logs_server import (
    ensure_certificate,
    read_condor_logs,
    read_logs,
    serve,
    serve_without_certificate,
)
from .node import parse_taint
from .sandbox import load_image
from .sbatch import CONTAINER_PATH


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="vnode", description="interLink virtual node stand-in for the testbed")
    parser.add_argument("--node", default="vk-slurm", help="Node name to register")
    parser.add_argument(
        "--kubeconfig", required=True, help="kubeconfig with rights on nodes, pods, secrets, configmaps, events"
    )
    parser.add_argument("--port", type=int, default=10250, help="kubelet HTTPS port (logs)")
    parser.add_argument("--address", default="127.0.0.1", help="InternalIP of the node; the logs server binds it")
    parser.add_argument(
        "--batch",
        choices=("slurm", "local", "htcondor"),
        default="slurm",
        help="run pods as Slurm jobs, local processes, or HTCondor jobs (in --chroot)",
    )
    parser.add_argument("--chroot", type=Path, help="htcondor: the chroot holding HTCondor (setup-chroot.sh)")
    parser.add_argument("--submit-user", default="tester", help="htcondor: the chroot's user that submits the jobs")
    parser.add_argument(
        "--plugin-build",
        choices=PLUGIN_BUILDS,
        default="working",
        help="htcondor: which interLink HTCondor plugin to stand in for: 'head' is 6f5ee3e as it is (its /create "
        "answers 201, which the VK refuses: every pod ProviderFailed while its job runs); 'working' is the same "
        "code with /create answering 200 (default). Both serve logs as '\"NOT IMPLEMENTED\"' (HTTP 200)",
    )
    parser.add_argument(
        "--command-prefix",
        default="",
        help="htcondor: the plugin's CommandPrefix (SidecarConfig.yaml; default empty), a line of the executable",
    )
    parser.add_argument("--logs-not-implemented", action="store_true", help=argparse.SUPPRESS)  # gone: see main()
    parser.add_argument(
        "--serving-certificate-pending",
        action="store_true",
        help="the VK's serving-certificate CSR is not approved: the kubelet port fails every TLS handshake",
    )
    parser.add_argument(
        "--label", action="append", default=[], metavar="KEY=VALUE", help="extra Node label (repeatable)"
    )
    parser.add_argument(
        "--taint", action="append", default=[], metavar="KEY[=VALUE]:EFFECT", help="extra Node taint (repeatable)"
    )
    parser.add_argument(
        "--status-timing",
        choices=("real", "fast"),
        default="real",
        help="real: interLink's timing (a VK pass every --vk-status-interval, one pod per plugin request, "
        "the Slurm plugin's --plugin-status-cache); fast: every pod updated every --poll seconds (benchmarks)",
    )
    parser.add_argument(
        "--vk-status-interval", type=float, default=5.0, help="real timing: seconds between the VK's status passes"
    )
    parser.add_argument(
        "--plugin-status-cache",
        type=float,
        default=10.0,
        help="real timing: seconds the Slurm plugin answers from its cache (the HTCondor plugin has none)",
    )
    parser.add_argument(
        "--min-job-age",
        type=float,
        default=300.0,
        help="local backend: seconds after its end a job is forgotten by the stand-in squeue (Slurm's "
        "MinJobAge; with --batch slurm it is slurm.conf's, TESTBED_SLURM_MIN_JOB_AGE in up.sh)",
    )
    parser.add_argument(
        "--local-slots",
        type=int,
        default=None,
        help="local backend: jobs that run at once; the others wait in state PD (default: no limit)",
    )
    parser.add_argument(
        "--local-nice", type=int, default=0, help="local backend: the jobs' nice value (load tests: 10)"
    )
    parser.add_argument("--poll", type=float, default=1.0, help="fast timing: seconds between status rounds")
    parser.add_argument(
        "--ping-interval",
        type=float,
        default=30.0,
        help="seconds between pings / Node updates; the node is NotReady until the first (interLink: 30)",
    )
    parser.add_argument(
        "--cfg-timeout", type=float, default=300.0, help="seconds to wait for missing ConfigMap/Secret volumes"
    )
    parser.add_argument("--state-dir", type=Path, required=True, help="job directories go to STATE_DIR/jobs")
    parser.add_argument(
        "--image-path",
        default="",
        help="directories put first on the job's PATH: they stand in for what the pod's image holds "
        "(Python and Snakemake), since there is no container runtime",
    )
    parser.add_argument(
        "--sandbox",
        choices=("none", "bwrap"),
        default="none",
        help="how containers run: none = on the host with a clean environment, in the job dir (default); "
        "bwrap = as `singularity exec --containall` would, in bubblewrap over --image-root: only the binds "
        "visible, HOME and /tmp on a private 64 MiB tmpfs, working directory HOME (Slurm flavour)",
    )
    parser.add_argument(
        "--image-root",
        type=Path,
        help="--sandbox bwrap: the root filesystem every pod's image maps to (testbed/setup-image.sh)",
    )
    parser.add_argument(
        "--create-delay",
        type=float,
        default=CREATE_DELAY,
        help="seconds between the VK's CreatePod returning and the plugin's sbatch (interLink creates "
        "asynchronously: a pod deleted meanwhile still gets its job, orphaned); raise it to widen that window",
    )
    parser.add_argument(
        "--ping-always-ok",
        action="store_true",
        help="a released Slurm plugin (<= 0.6.2-pre5): the ping answers 200 even with Slurm down, so the node "
        "stays Ready (new pods then fail ProviderFailed at sbatch) and the capacity stays --cpu/--memory",
    )
    parser.add_argument(
        "--static-capacity",
        action="store_true",
        help="keep --cpu/--memory; by default (interLink 0.6.2 + Slurm plugin HEAD) every successful ping "
        "overwrites cpu and memory capacity/allocatable with the batch system's free resources",
    )
    parser.add_argument(
        "--full-mesh",
        action="store_true",
        help="the site's interLink has Network.FullMesh: pods without the annotation "
        "interlink.eu/mesh-network: disabled fail ProviderFailed after the wstunnel set-up times out "
        "(~31 s, holding up every other pod event), as this cluster has no node for the wstunnel pod",
    )
    parser.add_argument(
        "--job-script-template",
        action="store_true",
        help="the site's interLink renders a JobScriptTemplate: the plugin runs it as the job's only container "
        "(jobScript), so no run-<ctn>.status/.out: exit codes come from squeue (768 reads as 68) and logs are "
        "job.out only (Slurm flavour; the HTCondor plugin ignores it)",
    )
    parser.add_argument("--cpu", default="8", help="advertised cpu capacity (the Helm default)")
    parser.add_argument("--memory", default="49Gi", help="advertised memory capacity (the Helm default)")
    parser.add_argument("--pods", default="100", help="advertised pod capacity")
    parser.add_argument("--gpus", default="0", help="advertised nvidia.com/gpu capacity")
    parser.add_argument("--log-level", default="INFO")
    return parser.parse_args(argv)


def _sandbox_config(image_root: Path | None) -> SandboxConfig:
    if image_root is None:
        raise SystemExit("vnode: --sandbox bwrap needs --image-root (testbed/setup-image.sh prints it)")
    tools = {name: shutil.which(name) for name in ("bwrap", "unshare")}
    missing = [name for name, path in tools.items() if path is None]
    if missing:
        raise SystemExit(f"vnode: --sandbox bwrap needs {' and '.join(missing)} (apt-get install bubblewrap)")
    try:
        image = load_image(image_root.resolve())
    except ValueError as exc:
        raise SystemExit(f"vnode: --image-root: {exc}") from None
    return SandboxConfig(image, bwrap=str(tools["bwrap"]), unshare=str(tools["unshare"]))


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.logs_not_implemented:
        raise SystemExit(
            "vnode: --logs-not-implemented is gone: no build of the HTCondor plugin answers logs with HTTP 500; "
            'every build answers 200 "NOT IMPLEMENTED", which vk-htcondor now always does (see --plugin-build)'
        )
    logging.basicConfig(level=args.log_level.upper(), format="%(asctime)s %(levelname)s %(message)s")
    logging.getLogger("httpx").setLevel(logging.WARNING)
    labels = {}
    for item in args.label:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise SystemExit(f"vnode: --label {item!r}: expected KEY=VALUE")
        labels[key] = value
    try:
        taints = tuple(parse_taint(item) for item in args.taint)
    except ValueError as exc:
        raise SystemExit(f"vnode: --taint: {exc}") from None
    config = AgentConfig(
        node=args.node,
        state_dir=args.state_dir.resolve(),
        address=args.address,
        port=args.port,
        poll=args.poll,
        status_timing=args.status_timing,
        vk_status_interval=args.vk_status_interval,
        plugin_status_cache=args.plugin_status_cache,
        ping_interval=args.ping_interval,
        cfg_timeout=args.cfg_timeout,
        container_path=":".join(p for p in (args.image_path, CONTAINER_PATH) if p),
        capacity={"cpu": args.cpu, "memory": args.memory, "pods": args.pods, "nvidia.com/gpu": args.gpus},
        labels=labels,
        taints=taints,
        create_delay=args.create_delay,
        full_mesh=args.full_mesh,
        ping_always_ok=args.ping_always_ok,
        capacity_from_batch=not args.static_capacity,
    )
    sandboxed = None
    if args.sandbox == "bwrap":
        sandboxed = _sandbox_config(args.image_root)
    elif args.image_root is not None:
        raise SystemExit("vnode: --image-root is for --sandbox bwrap")
    backend = make_backend(
        args.batch,
        args.chroot,
        args.submit_user,
        args.min_job_age,
        plugin_build=args.plugin_build,
        container_path=config.container_path,
        command_prefix=args.command_prefix,
        job_script_template=args.job_script_template,
        local_slots=args.local_slots,
        local_nice=args.local_nice,
        sandboxed=sandboxed,
    )
    agent = Agent(config, Kube(args.kubeconfig), backend)

    def stop(signum: int, frame: FrameType | None) -> None:
        logging.info("signal %d: stopping (jobs keep running; pods with a JobID are re-adopted on restart)", signum)
        agent.stop()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    cert, key = ensure_certificate(config.state_dir, config.node, config.address)
    reader = read_logs
    if args.batch == "htcondor":
        reader = read_condor_logs
    if args.serving_certificate_pending:
        serve_without_certificate(config.address, config.port)
    else:
        serve(config.address, config.port, cert, key, agent.locate, reader)
    agent.start_background()
    logging.info(
        "node %s up: %s backend, status timing %s, logs on https://%s:%d, jobs in %s",
        config.node,
        args.batch + (f" (plugin build {args.plugin_build})" if args.batch == "htcondor" else ""),
        (
            f"fast (every {config.poll:g}s)"
            if config.status_timing == "fast"
            else f"real (VK pass every {config.vk_status_interval:g}s, plugin cache "
            f"{0 if args.batch == 'htcondor' else config.plugin_status_cache:g}s)"
        ),
        config.address,
        config.port,
        config.jobs_dir,
    )
    logging.info(
        "create delay %gs; capacity %s; ping %s%s%s",
        config.create_delay,
        "static" if args.static_capacity or args.ping_always_ok else "from the batch system's free resources",
        "always 200 (released plugin)" if args.ping_always_ok else "follows the batch system",
        "; full mesh site" if args.full_mesh else "",
        "; site job script template" if args.job_script_template else "",
    )
    if sandboxed is not None:
        logging.info(
            "containers run in bubblewrap over %s (PATH %s, session tmpfs per container)",
            sandboxed.image.root,
            sandboxed.image.path,
        )
    agent.run()
    return 0


if __name__ == "__main__":
    sys.exit(main())
