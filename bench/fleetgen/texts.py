"""Message templates: one function per symptom, modelled on the published failure texts in
``../shared/data/gpu-failures/exemplars.jsonl`` (the source each follows is named in a comment).

A template takes ``(r, c)``: the scenario's ``random.Random`` and a context dict with what the
source line would know (``rank``, ``local_rank``, ``host`` as spelled by that source, ``pci``,
``pid``, ``t`` (epoch seconds), ``step``, ``torch``, ``timeout_ms`` ...). Everything a real fleet
varies (ranks, pids, addresses, sequence numbers, shapes, timings) is drawn here, so two events of
one symptom share a shape but rarely a text.
"""

from __future__ import annotations

import random
from datetime import datetime, timezone
from typing import Callable

Template = Callable[[random.Random, dict], str]


def _dt(t: float) -> datetime:
    return datetime.fromtimestamp(t, tz=timezone.utc)


def _glog(t: float, sev: str = "E") -> str:
    d = _dt(t)
    return f"{sev}{d:%m%d} {d:%H:%M:%S}.{int((t % 1) * 1e9):09d}"


def _pg_lines(torch: str) -> tuple[int, int, str]:
    """Source line numbers of ProcessGroupNCCL.cpp and the PG prefix differ by torch release
    (exemplars: 607/1664 for 2.4, 616/1785 for 2.5, 632/1895 for 2.6)."""
    if torch.startswith("2.6") or torch.startswith("2.7"):
        return 632, 1895, "PG ID 0 PG GUID 0(default_pg) "
    if torch.startswith("2.5"):
        return 616, 1785, "PG ID 0 PG GUID 0(default_pg) "
    if torch.startswith("2.4"):
        return 607, 1664, "PG 1 "
    return 563, 1537, "PG 0 "


def _addr(r: random.Random) -> str:
    return f"0x{r.randrange(0x7f0000000000, 0x7fffffffffff):x}"


def _pyenv(r: random.Random, c: dict) -> str:
    return c.get("pyenv", "/opt/conda/lib/python3.10/site-packages")


# ---------------------------------------------------------------- NCCL watchdog storm (exemplars
# "allreduce_timeout_with_pg_exception_line", "reduce_scatter_timeout_fsdp", "desync_ranks_...")

def nccl_watchdog_timeout(r: random.Random, c: dict) -> str:
    line, _, _ = _pg_lines(c.get("torch", "2.4.1"))
    timeout = c["timeout_ms"]
    ran = timeout + r.randint(8, 180)
    op, nin, nout = c.get("optype") or ("ALLREDUCE", 466119168, 466119168)
    head = f"[rank{c['rank']}]:[{_glog(c['t'])} ProcessGroupNCCL.cpp:{line}] "
    if c.get("old_format"):
        head = f"[E ProcessGroupNCCL.cpp:{line}] "
    return (f"{head}[Rank {c['rank']}] Watchdog caught collective operation timeout: "
            f"WorkNCCL(SeqNum={c['seq']}, OpType={op}, NumelIn={nin}, NumelOut={nout}, "
            f"Timeout(ms)={timeout}) ran for {ran} milliseconds before timing out.")


def nccl_watchdog_terminated(r: random.Random, c: dict) -> str:
    """exemplar "watchdog_thread_terminated_std_runtime_error"."""
    _, line2, pg = _pg_lines(c.get("torch", "2.4.1"))
    timeout = c["timeout_ms"]
    ran = timeout + r.randint(8, 900)
    op, nin, nout = c.get("optype") or ("ALLREDUCE", 1, 1)
    return (f"[rank{c['rank']}]:[{_glog(c['t'])} ProcessGroupNCCL.cpp:{line2}] [{pg}Rank {c['rank']}] "
            f"Process group watchdog thread terminated with exception: [Rank {c['rank']}] Watchdog caught "
            f"collective operation timeout: WorkNCCL(SeqNum={c['seq']}, OpType={op}, NumelIn={nin}, "
            f"NumelOut={nout}, Timeout(ms)={timeout}) ran for {ran} milliseconds before timing out.\n"
            f"Exception raised from checkTimeout at /pytorch/torch/csrc/distributed/c10d/ProcessGroupNCCL.cpp:{line2 - 1263}"
            f" (most recent call first):\nframe #0: c10::Error::Error(c10::SourceLocation, std::string) + 0x96 "
            f"({_addr(r)} in {_pyenv(r, c)}/torch/lib/libc10.so)")


def elastic_child_failed(r: random.Random, c: dict) -> str:
    """exemplar "childfailederror_sigabrt_multi_rank": the agent's summary, which hides the cause."""
    d = _dt(c["t"])
    exitcode = c.get("exitcode", -6)
    sig = {-6: "Signal 6 (SIGABRT) received by PID {pid}", -9: "Signal 9 (SIGKILL) received by PID {pid}"}
    parts = ["torch.distributed.elastic.multiprocessing.errors.ChildFailedError: ",
             "========================================================", f"{c.get('script', 'train.py')} FAILED",
             "--------------------------------------------------------", "Failures:"]
    base_pid = c.get("pid", r.randint(100000, 3999999))
    ranks = c.get("failed_ranks") or [c["rank"]]
    for i, rk in enumerate(ranks[1:4], start=1):
        tb = sig.get(exitcode, "To enable traceback see: https://pytorch.org/docs/stable/elastic/errors.html")
        parts += [f"[{i}]:", f"  time      : {d:%Y-%m-%d_%H:%M:%S}", f"  host      : {c['host']}",
                  f"  rank      : {rk} (local_rank: {rk % 8})", f"  exitcode  : {exitcode} (pid: {base_pid + i})",
                  "  error_file: <N/A>", f"  traceback : {tb.format(pid=base_pid + i)}"]
    if len(ranks) <= 1:
        parts.append("  <NO_OTHER_FAILURES>")
    parts += ["--------------------------------------------------------", "Root Cause (first observed failure):", "[0]:",
              f"  time      : {d:%Y-%m-%d_%H:%M:%S}", f"  host      : {c['host']}",
              f"  rank      : {ranks[0]} (local_rank: {ranks[0] % 8})", f"  exitcode  : {exitcode} (pid: {base_pid})",
              "  error_file: <N/A>"]
    return "\n".join(parts)


def nccl_take_process_down(r: random.Random, c: dict) -> str:
    """exemplar "flight_recorder_disabled_take_process_down"."""
    return (f"[rank{c['rank']}]:[{_glog(c['t'])} ProcessGroupNCCL.cpp:684] [Rank {c['rank']}] Some NCCL operations have "
            "failed or timed out. Due to the asynchronous nature of CUDA kernels, subsequent GPU operations might run "
            f"on corrupted/incomplete data.\n[rank{c['rank']}]:[{_glog(c['t'] + 0.0001)} ProcessGroupNCCL.cpp:698] "
            f"[Rank {c['rank']}] To avoid data inconsistency, we are taking the entire process down.")


# ---------------------------------------------------------------- kernel / Xid lines

def _kern_prefix(r: random.Random, c: dict) -> str:
    """Kernel lines arrive in the fleet's agent format: dmesg uptime, journald, or Talos (host prefix)."""
    style = c.get("kern_style", "dmesg")
    t = c["t"]
    if style == "journal":
        return f"{_dt(t):%b %d %H:%M:%S} {c['host']} kernel: "
    if style == "talos":
        return f"{c['host']}: kern:     err: [{_dt(t):%Y-%m-%dT%H:%M:%S}.{int((t % 1) * 1e9):09d}Z]: "
    return f"[{c.get('uptime', 100000.0) + (t % 1000):.6f}] "


def _pci_short(pci: str) -> str:
    return pci[:-2] if pci.endswith(".0") else pci  # NVRM writes PCI:0000:91:00


def _gpu_uuid(r: random.Random) -> str:
    h = f"{r.getrandbits(128):032x}"
    return f"GPU-{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:32]}"


def xid79_fell_off_bus(r: random.Random, c: dict) -> str:
    p = _kern_prefix(r, c)
    pci, serial = c["pci"], c.get("serial", str(r.randint(1560000000000, 1659999999999)))
    return (f"{p}NVRM: GPU at PCI:{_pci_short(pci)}: {c.get('uuid') or _gpu_uuid(r)}\n"
            f"{p}NVRM: GPU Board Serial Number: {serial}\n"
            f"{p}NVRM: Xid (PCI:{_pci_short(pci)}): 79, pid='<unknown>', name=<unknown>, GPU has fallen off the bus.\n"
            f"{p}NVRM: GPU {pci}: GPU has fallen off the bus.")


def xid48_dbe(r: random.Random, c: dict) -> str:
    p = _kern_prefix(r, c)
    return (f"{p}NVRM: Xid (PCI:{_pci_short(c['pci'])}): 48, pid={c.get('pid', r.randint(2000, 3999999))}, "
            f"name=pt_main_thread, An uncorrectable double bit error (DBE) has been detected on GPU in the "
            f"framebuffer at partition {r.randint(0, 15)}, subpartition {r.randint(0, 1)}.")


def xid94_contained(r: random.Random, c: dict) -> str:
    p = _kern_prefix(r, c)
    return (f"{p}NVRM: Xid (PCI:{_pci_short(c['pci'])}): 94, pid={c.get('pid', r.randint(2000, 3999999))}, "
            f"name=pt_main_thread, Contained: {r.choice(['SM', 'CE'])} (0x{r.randint(1, 255):x}). "
            f"RST: No, D-RST: No")


def xid63_row_remap(r: random.Random, c: dict) -> str:
    """exemplar "xid_63_row_remap"."""
    p = _kern_prefix(r, c)
    return (f"{p}NVRM: Xid (PCI:{_pci_short(c['pci'])}): 63, pid={r.randint(1000, 9999)}, Row Remapper: New row "
            "marked for remapping, reset gpu to activate.")


def xid119_gsp(r: random.Random, c: dict) -> str:
    """exemplar "xid_119_gsp_rpc_timeout"."""
    p = _kern_prefix(r, c)
    fn = r.choice([(103, "GSP_RM_ALLOC", "0x2081 0x4"), (76, "GSP_RM_CONTROL", "0x20800a4c 0x4"),
                   (10, "FREE", "0xa55a0040 0x0")])
    return (f"{p}NVRM: Xid (PCI:{_pci_short(c['pci'])}): 119, pid={r.randint(2000, 3999999)}, name=nvidia-smi, "
            f"Timeout after {r.choice([6, 6, 45])}s of waiting for RPC response from GPU{c['local_rank']} GSP! "
            f"Expected function {fn[0]} ({fn[1]}) ({fn[2]}).\n"
            f"{p}NVRM: GPU{c['local_rank']} GSP RPC buffer contains function {fn[0]} ({fn[1]}) and data "
            f"0x{r.getrandbits(64):016x} 0x{r.randint(0, 16):016x}.")


def xid74_nvlink(r: random.Random, c: dict) -> str:
    p = _kern_prefix(r, c)
    return (f"{p}NVRM: Xid (PCI:{_pci_short(c['pci'])}): 74, pid={r.randint(2000, 3999999)}, name=pt_main_thread, "
            f"NVLink: fatal error detected on link {r.randint(0, 17)}(0x{r.getrandbits(24):x}, 0x0, 0x0, 0x0, 0x0, 0x0, 0x0)")


def xid13_sm_exception(r: random.Random, c: dict) -> str:
    """exemplar "xid_13_sm_exceptions_then_xid_43"."""
    p = _kern_prefix(r, c)
    gpc, tpc, sm = r.randint(0, 9), r.randint(0, 8), r.randint(0, 1)
    kind = r.choice(["Out Of Range Address", "Illegal Instruction Parameter", "Misaligned Address"])
    return (f"{p}NVRM: Xid (PCI:{_pci_short(c['pci'])}): 13, pid='<unknown>', name=<unknown>, Graphics SM Warp "
            f"Exception on (GPC {gpc}, TPC {tpc}, SM {sm}): {kind}\n"
            f"{p}NVRM: Xid (PCI:{_pci_short(c['pci'])}): 13, pid='<unknown>', name=<unknown>, Graphics SM Global "
            f"Exception on (GPC {gpc}, TPC {tpc}, SM {sm}): Multiple Warp Errors\n"
            f"{p}NVRM: Xid (PCI:{_pci_short(c['pci'])}): 43, pid={r.randint(2000, 3999999)}, name=pt_main_thread, "
            f"Ch {r.randint(1, 60):08x}")


def xid_unexplained(r: random.Random, c: dict) -> str:
    """Xid lines with no failure attached (exemplars "xid_149..._xid_154", NVSentinel#1748 Xid 45)."""
    p = _kern_prefix(r, c)
    code = c["xid"]
    pci = _pci_short(c["pci"])
    if code == 154:
        frm, to = r.choice([("0x0 (None)", "0x4 (Drain and Reset)"), ("0x4 (Drain and Reset)", "0x1 (GPU Reset Required)"),
                            ("0x0 (None)", "0x1 (GPU Reset Required)")])
        return f"{p}NVRM: Xid (PCI:{pci}): 154, GPU recovery action changed from {frm} to {to}"
    if code == 45:
        return f"{p}NVRM: Xid (PCI:{pci}): 45, pid={r.randint(2000, 3999999)}, name=pt_main_thread, Ch {r.randint(1, 60):08x}"
    if code == 137:
        return (f"{p}NVRM: Xid (PCI:{pci}): 137, RLW_RXPIPE interrupt hit on link {r.randint(0, 17)} on "
                f"GPU{c['local_rank']}: PRIV Error")
    return (f"{p}NVRM: Xid (PCI:{pci}): 145, pid={r.randint(2000, 3999999)}, name=pt_main_thread, RLW_RXPIPE Nonfatal "
            f"XC0 i0 Link {r.randint(0, 17):02d} (0x{r.getrandbits(32):08x} 0x00000008 0x00000001 0x00000000 0x00100000 0x00000004)")


def xid149_nvlink5(r: random.Random, c: dict) -> str:
    p = _kern_prefix(r, c)
    return (f"{p}NVRM: Xid (PCI:{_pci_short(c['pci'])}): 149, NETIR_LINK_EVT  Fatal   XC0 i0 Link {r.randint(0, 17):02d} "
            f"(0x{r.getrandbits(32):08x} 0x00000000 0x00000000 0x00000000 0x00000000 0x00000000)")


# ---------------------------------------------------------------- CUDA errors seen by the rank

def cuda_unknown_error(r: random.Random, c: dict) -> str:
    """exemplar "cuda_unknown_error_in_nccl_watchdog" (bigscience 2022-03-21)."""
    lr = c["local_rank"]
    env = _pyenv(r, c)
    return (f"[default{lr}]:terminate called after throwing an instance of 'c10::CUDAError'\n"
            f"[default{lr}]:  what():  CUDA error: unknown error\n"
            f"[default{lr}]:Exception raised from query at ../aten/src/ATen/cuda/CUDAEvent.h:95 (most recent call first):\n"
            f"[default{lr}]:frame #0: c10::Error::Error(c10::SourceLocation, std::string) + 0x42 ({_addr(r)} in {env}/torch/lib/libc10.so)\n"
            f"[default{lr}]:frame #1: c10d::ProcessGroupNCCL::WorkNCCL::finishedGPUExecutionInternal() const + 0x11a "
            f"({_addr(r)} in {env}/torch/lib/libtorch_cuda.so)")


def cuda_ecc_uncorrectable(r: random.Random, c: dict) -> str:
    """exemplar "uncorrectable_ecc"."""
    where = r.choice(["torch.cuda.synchronize()", "loss.backward()", "optimizer.step()"])
    return (f"[rank{c['rank']}]: Traceback (most recent call last):\n[rank{c['rank']}]:   File \"{c.get('script', 'train.py')}\", "
            f"line {r.randint(180, 640)}, in train_step\n[rank{c['rank']}]:     {where}\n"
            f"[rank{c['rank']}]: RuntimeError: CUDA error: uncorrectable ECC error encountered\n"
            f"[rank{c['rank']}]: CUDA kernel errors might be asynchronously reported at some other API call, so the "
            "stacktrace below might be incorrect.")


def cuda_nvlink_uncorrectable(r: random.Random, c: dict) -> str:
    """exemplar "uncorrectable_nvlink_error"."""
    return (f"[rank{c['rank']}]: RuntimeError: CUDA error: uncorrectable NVLink error detected during the execution\n"
            f"[rank{c['rank']}]: CUDA kernel errors might be asynchronously reported at some other API call, so the "
            "stacktrace below might be incorrect.\n[rank{0}]: For debugging consider passing CUDA_LAUNCH_BLOCKING=1".format(c['rank']))


_IMA_SITES = [
    ("megablocks/backend/kernels.py", "padded_gather", "output_rows = padded_bins[-1].cpu().item()"),
    ("torch/nn/functional.py", "scaled_dot_product_attention", "return torch._C._nn.scaled_dot_product_attention(q, k, v)"),
    ("transformer_engine/pytorch/module/linear.py", "forward", "out = gemm(weight, inp, workspace)"),
    ("model/layers.py", "forward", "hidden = self.mlp(self.norm(hidden))"),
    ("torch/_tensor.py", "backward", "torch.autograd.backward(self, gradient, retain_graph, create_graph)"),
]


def cuda_illegal_memory_access(r: random.Random, c: dict) -> str:
    """exemplars "illegal_memory_access_moe_kernel_8x8_a100" and "..._watchdog_terminated": the same
    text whether the GPU is bad or a kernel is; only the surrounding frames vary."""
    f, fn, src = r.choice(_IMA_SITES)
    env = _pyenv(r, c)
    rk = c["rank"]
    if r.random() < 0.35:
        _, line2, pg = _pg_lines(c.get("torch", "2.4.1"))
        return (f"[rank{rk}]:[{_glog(c['t'])} ProcessGroupNCCL.cpp:{line2}] [{pg}Rank {rk}] Process group watchdog "
                "thread terminated with exception: CUDA error: an illegal memory access was encountered\n"
                "CUDA kernel errors might be asynchronously reported at some other API call, so the stacktrace below "
                "might be incorrect.\nFor debugging consider passing CUDA_LAUNCH_BLOCKING=1\n"
                "Compile with `TORCH_USE_CUDA_DSA` to enable device-side assertions.")
    return (f"[rank{rk}]:   File \"{env}/{f}\", line {r.randint(30, 900)}, in {fn}\n[rank{rk}]:     {src}\n"
            f"[rank{rk}]: RuntimeError: CUDA error: an illegal memory access was encountered\n"
            f"[rank{rk}]: CUDA kernel errors might be asynchronously reported at some other API call, so the stacktrace "
            f"below might be incorrect.\n[rank{rk}]: For debugging consider passing CUDA_LAUNCH_BLOCKING=1")


def cublas_exec_failed(r: random.Random, c: dict) -> str:
    """exemplar "cublas_status_execution_failed_gemmex_fp16"."""
    dt = r.choice(["CUDA_R_16F", "CUDA_R_16BF"])
    return (f"[rank{c['rank']}]: RuntimeError: CUDA error: CUBLAS_STATUS_EXECUTION_FAILED when calling `cublasGemmEx( "
            f"handle, opa, opb, m, n, k, &falpha, a, {dt}, lda, b, {dt}, ldb, &fbeta, c, {dt}, ldc, CUDA_R_32F, "
            "CUBLAS_GEMM_DEFAULT_TENSOR_OP)`")


def device_side_assert(r: random.Random, c: dict) -> str:
    """exemplars "device_side_assert_index_out_of_bounds" (+ old torch): the source line differs by torch."""
    line = {"2.3": 92, "2.4": 92, "2.5": 93, "2.6": 94}.get(c.get("torch", "2.4")[:3], 92)
    b = r.randint(0, 300)
    th = r.randint(0, 120)
    lines = [f"../aten/src/ATen/native/cuda/IndexKernel.cu:{line}: operator(): block: [{b},0,0], thread: [{th + i},0,0] "
             "Assertion `-sizes[i] <= index && index < sizes[i] && \"index out of bounds\"` failed." for i in range(r.randint(2, 4))]
    lines.append(f"[rank{c['rank']}]: RuntimeError: CUDA error: device-side assert triggered")
    return "\n".join(lines)


def nan_loss(r: random.Random, c: dict) -> str:
    """Megatron iteration line with a NaN loss (exemplar "lm_loss_spike_grad_norm_explosion" shape)."""
    it = c["step"]
    return (f"[default{c['local_rank']}]: iteration {it:>8d}/ {c.get('train_iters', 250000):>7d} | consumed samples: "
            f"{it * c.get('gbs', 2048):>12d} | elapsed time per iteration (s): {c.get('step_s', 5.0) * r.uniform(0.97, 1.05):.2f} | "
            f"learning rate: {r.uniform(1e-5, 3e-4):.3E} | global batch size: {c.get('gbs', 2048):5d} | lm loss: nan | "
            f"grad norm: nan | number of skipped iterations:   1 | number of nan iterations:   1 |")


def loss_spike(r: random.Random, c: dict) -> str:
    it = c["step"]
    return (f"[default{c['local_rank']}]: iteration {it:>8d}/ {c.get('train_iters', 250000):>7d} | consumed samples: "
            f"{it * c.get('gbs', 2048):>12d} | elapsed time per iteration (s): {c.get('step_s', 5.0) * r.uniform(0.97, 1.05):.2f} | "
            f"learning rate: {r.uniform(1e-5, 3e-4):.3E} | global batch size: {c.get('gbs', 2048):5d} | lm loss: "
            f"{r.uniform(7.5, 12.0):.6E} | grad norm: {r.uniform(40, 900):.3f} | number of skipped iterations:   0 | "
            "number of nan iterations:   0 |\n"
            f"[default{c['local_rank']}]: WARNING: loss spike detected at iteration {it} (x{r.uniform(3.1, 5.4):.1f} of the "
            "running mean)")


def nan_grad_norm_assert(r: random.Random, c: dict) -> str:
    """exemplar "megatron_nan_in_local_grad_norm_assert"."""
    return (f"AssertionError: Rank {c['rank']}: found NaN in local grad norm in backward pass before data-parallel "
            f"communication collective. Device: {c['local_rank']}")


def sdc_rerun_not_reproducible(r: random.Random, c: dict) -> str:
    """exemplar "megatron_rerun_state_machine_nan_reproducible", the non-reproducible branch: the
    signature of silent data corruption."""
    it = c["step"]
    return (f"ERROR:megatron.core.rerun_state_machine:Unexpected result nan on rank {c['rank']} at iteration #{it} "
            f"invocation #{r.randint(1, 3)} (message='found NaN in local grad norm for bucket #{r.randint(0, 7)} in "
            "backward pass before data-parallel communication collective')\n"
            f"ERROR:megatron.core.rerun_state_machine:Rank {c['rank']}, node {c['host']}, device {c['local_rank']}, "
            f"iteration #{it}: First rerun: unexpected result is not reproducible within the tolerance "
            f"(nan != {r.uniform(1.5, 3.5):.4f}). Possible transient error on this GPU.")


# ---------------------------------------------------------------- network

def ib_completion_error(r: random.Random, c: dict) -> str:
    """exemplars "nccl_ib_status12_vendor129_recv_ipv6_gid" and "ncclRemoteError_IB_error12_vendor129"."""
    pid = c.get("pid", r.randint(2000, 999999))
    tid = pid + r.randint(50, 900)
    h = c["host"]
    peer = c.get("peer_ip", "10.0.0.1")
    direction = r.choice(["Recv", "Send"])
    return (f"{h}:{pid}:{tid} [{c['local_rank']}] transport/net_ib.cc:{r.choice([1295, 1615, 1696])} NCCL WARN NET/IB : "
            f"Got completion from peer {peer}<{r.randint(30000, 65000)}> with status=12 opcode={r.choice([0, 32613, 32698])} "
            f"len=0 vendor err 129 ({direction}) localGid ::ffff:{c.get('ip', '10.0.0.2')} remoteGids::ffff:{peer}\n"
            f"{h}:{pid}:{tid} [{c['local_rank']}] NCCL INFO transport/net.cc:1302 -> 6\n"
            f"{h}:{pid}:{tid} [{c['local_rank']}] NCCL INFO proxy.cc:698 -> 6")


def nccl_remote_error(r: random.Random, c: dict) -> str:
    """exemplar "ncclRemoteError_IB_error12_vendor129"."""
    return ("terminate called after throwing an instance of 'std::runtime_error' what(): NCCL error: remote process "
            f"exited or there was a network error, NCCL version {c.get('nccl', '2.21.5')} ncclRemoteError: A call failed "
            "possibly due to a network error or a remote process exiting prematurely. Last error: NET/IB : Got completion "
            f"from peer {c.get('peer_ip', '10.0.0.1')}<{r.randint(30000, 65000)}> with error 12, opcode 0, len 0, vendor err 129")


def mlx5_link_flap(r: random.Random, c: dict) -> str:
    """exemplar "mlx5_ib_port_link_state_transitions"."""
    p = _kern_prefix(r, c)
    nic = c["nic"]
    pci = c["nic_pci"]
    seq = r.choice([["DOWN", "INIT", "ACTIVE"], ["DOWN", "INIT"], ["INIT", "ACTIVE"], ["DOWN"]])
    return "\n".join(f"{p}mlx5_core {pci} {nic}: Port: 1 Link {s}" for s in seq)


def mlx5_cable_error(r: random.Random, c: dict) -> str:
    """exemplar "mlx5_port_module_cable_error_high_temperature"."""
    p = _kern_prefix(r, c)
    what = r.choice(["Cable error, High Temperature", "Cable error, Bad or shorted cable/module",
                     "Cable error, Power budget exceeded"])
    return (f"{p}mlx5_core {c['nic_pci']}: mlx5_port_module_event:1131:(pid 0): Port module event[error]: module "
            f"{c['nic_index']}, {what}")


def nccl_warn_connect(r: random.Random, c: dict) -> str:
    """exemplar "socket_connect_refused"."""
    pid = r.randint(2000, 999999)
    return (f"{c['host']}:{pid}:{pid + r.randint(50, 400)} [{c['local_rank']}] misc/socket.cc:{r.choice([403, 483, 567])} "
            f"NCCL WARN socketStartConnect: Connect to {c.get('peer_ip', '10.0.0.1')}<{r.randint(30000, 65000)}> failed : "
            f"{r.choice(['Connection refused', 'Software caused connection abort', 'Connection timed out'])}")


def nccl_proxy_connect_failed(r: random.Random, c: dict) -> str:
    """exemplar "proxy_service_connect_failed_invalid_argument": the NCCL-upgrade regression."""
    pid = r.randint(2000, 999999)
    h = c["host"]
    lr = c["local_rank"]
    return (f"{h}:{pid}:{pid + 31040} [{lr}] transport.cc:154 NCCL WARN Cuda failure 'invalid argument'\n"
            f"{h}:{pid}:{pid + 31057} [{lr}] proxy.cc:1485 NCCL WARN [Service thread] Error encountered progressing "
            "operation=Connect, res=3, closing connection\n"
            f"{h}:{pid}:{pid + 31057} [{lr}] proxy.cc:1519 NCCL WARN [Proxy Service {c['rank']}] Failed to execute "
            f"operation Connect from rank {c['rank']}, retcode 3")


def nccl_ibv_modify_qp(r: random.Random, c: dict) -> str:
    """exemplar "ibv_modify_qp_connection_timed_out"."""
    pid = r.randint(2000, 999999)
    return (f"{c['host']}:{pid}:{pid + r.randint(50, 900)} [{c['local_rank']}] ibvwrap.c:160 NCCL WARN Call to "
            "ibv_modify_qp failed with error Connection timed out")


# ---------------------------------------------------------------- storage / checkpoint

def checkpoint_write_failed(r: random.Random, c: dict) -> str:
    """exemplar "torch_save_stream_writer_failed_shared_fs"."""
    n = r.randint(3, 2000)
    return ("Traceback (most recent call last):\n  File \".../torch/serialization.py\", line 965, in save\n"
            "    _save(obj, opened_zipfile, ...)\n  File \".../torch/serialization.py\", line 1266, in _save\n"
            f"    zip_file.write_record(name, storage, num_bytes)\nRuntimeError: [enforce fail at inline_container.cc:"
            f"{r.choice([471, 857])}] . PytorchStreamWriter failed writing file data/{n}: file write failed")


def storage_io_error(r: random.Random, c: dict) -> str:
    """exemplar "torch_save_io_error_fd"."""
    return f"RuntimeError: write(): fd {r.randint(12, 240)} failed with Input/output error"


def gloo_barrier_timeout(r: random.Random, c: dict) -> str:
    """exemplar "gloo_barrier_recv_timeout_during_checkpoint"."""
    rk = c["rank"]
    return (f"[rank{rk}]:     torch.distributed.barrier()\n[rank{rk}]:   File \"{_pyenv(r, c)}/torch/distributed/"
            f"distributed_c10d.py\", line {r.choice([4156, 4556, 4635])}, in barrier\n[rank{rk}]:     work.wait()\n"
            f"[rank{rk}]: RuntimeError: [/pytorch/third_party/gloo/gloo/transport/tcp/unbound_buffer.cc:81] Timed out "
            f"waiting {c['timeout_ms']}ms for recv operation to complete")


def fs_server_not_responding(r: random.Random, c: dict) -> str:
    p = _kern_prefix(r, c)
    if c.get("fs", "lustre") == "nfs":
        return f"{p}nfs: server {c['storage']} not responding, still trying"
    return (f"{p}LustreError: 11-0: {c['fsname']}-OST{r.randint(0, 95):04x}-osc-ffff{r.getrandbits(32):08x}: "
            f"operation ost_write to node {c['storage']}@o2ib failed: rc = -110")


# ---------------------------------------------------------------- host, memory, scheduler

def host_oom_cgroup(r: random.Random, c: dict) -> str:
    """exemplar "batch_oom_kill_python_killed"."""
    return (f"slurmstepd: error: Detected {r.randint(1, 3)} oom-kill event(s) in StepId={c['job_num']}.{r.randint(0, 1)} "
            "cgroup. Some of your processes may have been killed by the cgroup out-of-memory handler.")


def elastic_exitcode_9(r: random.Random, c: dict) -> str:
    """exemplar "elastic_failed_exitcode_minus9_new_log_format"."""
    d = _dt(c["t"])
    return (f"[{d:%Y-%m-%d %H:%M:%S},{d.microsecond // 1000:03d}] torch.distributed.elastic.multiprocessing.api: [ERROR] "
            f"failed (exitcode: -9) local_rank: {c['local_rank']} (pid: {r.randint(10000, 3999999)}) of binary: "
            f"{c.get('python', '/usr/bin/python')}")


def kernel_oom_kill(r: random.Random, c: dict) -> str:
    p = _kern_prefix(r, c)
    pid = r.randint(10000, 3999999)
    rss = r.randint(180, 1400) * 1024 * 1024
    return (f"{p}Out of memory: Killed process {pid} (pt_main_thread) total-vm:{rss + r.randint(1, 9) * 10 ** 8}kB, "
            f"anon-rss:{rss}kB, file-rss:{r.randint(100000, 900000)}kB, shmem-rss:{r.randint(1000, 90000)}kB, UID:"
            f"{r.randint(1000, 60000)} pgtables:{r.randint(2000, 9000)}kB oom_score_adj:0")


def edac_ue(r: random.Random, c: dict) -> str:
    """exemplar "edac_ue_and_apei_pcie_mce"."""
    p = _kern_prefix(r, c)
    return (f"{p}EDAC MC{r.randint(0, 3)}: 1 UE memory read error on CPU_SrcID#{r.randint(0, 1)}_MC#{r.randint(0, 1)}_Chan#"
            f"{r.randint(0, 3)}_DIMM#0 (channel:{r.randint(0, 3)} slot:0 page:0x{r.getrandbits(28):x} offset:0x"
            f"{r.randint(0, 4095):x} grain:32 -  err_code:0101:0092 socket:{r.randint(0, 1)} imc:1 rank:0)\n"
            f"{p}mce: [Hardware Error]: Machine check events logged")


def nvme_io_error(r: random.Random, c: dict) -> str:
    """exemplar "nvme_write_io_error_xfs_log"."""
    p = _kern_prefix(r, c)
    dev = f"nvme{c.get('nvme', 2)}n1"
    lines = [f"{p}blk_update_request: I/O error, dev {dev}, sector {r.randint(10 ** 5, 10 ** 10)} op 0x1:(WRITE) flags "
             f"0x1000 phys_seg {r.choice([4, 8])} prio class 0" for _ in range(r.randint(1, 3))]
    lines.append(f"{p}XFS (md127): log I/O error -5")
    return "\n".join(lines)


def pcie_aer(r: random.Random, c: dict) -> str:
    """exemplar "pcie_aer_corrected_data_link_layer_timeout"."""
    port = c.get("port", "0000:00:03.0")
    return (f"pcieport {port}: AER: Uncorrected (Fatal) error received: {port}\n"
            f"pcieport {port}: PCIe Bus Error: severity=Uncorrected (Fatal), type=Transaction Layer, (Receiver ID)\n"
            f"pcieport {port}:   device [8086:{r.choice(['6f08', '347a', '352a'])}] error status/mask=00004000/00000000\n"
            f"pcieport {port}:    [14] CmplTO")


def nvml_gpu_lost(r: random.Random, c: dict) -> str:
    """exemplar "slurmstepd_nvml_gpu_is_lost"."""
    return f"slurmstepd: error: NVML: Failed to get usage({r.choice([15, 15, 999])}): GPU is lost"


def smi_device_handle(r: random.Random, c: dict) -> str:
    """exemplar "nvidia_smi_unable_to_determine_device_handle"."""
    return f"Unable to determine the device handle for GPU{c['pci']}: Unknown Error"


def dcgm_row_remap_pending(r: random.Random, c: dict) -> str:
    """exemplar "dcgmi_diag_row_remap_pending", with the bus id next to the index (as DCGM reports it)."""
    return (f"dcgmi diag -r 2: Deployment: Error: GPU {c['local_rank']} ({c['pci']}) has uncorrectable memory errors "
            "and row remappings are pending")


def smi_sram_uncorrectable(r: random.Random, c: dict) -> str:
    """exemplar "nvidia_smi_sram_uncorrectable"."""
    v = r.randint(1, 3)
    return (f"GPU {c['pci']}\n    ECC Errors\n        Volatile\n            SRAM Correctable              : 0\n"
            f"            SRAM Uncorrectable            : {v}\n            DRAM Correctable              : 0\n"
            f"            DRAM Uncorrectable            : 0\n        Aggregate\n            SRAM Correctable              : 0\n"
            f"            SRAM Uncorrectable            : {v + r.randint(0, 6)}")


def dcgm_thermal(r: random.Random, c: dict) -> str:
    """exemplar "dcgmi_diag_r2_memory_fail_thermal"."""
    return (f"Warning: GPU {c['local_rank']} Thermal violations totaling {r.uniform(3, 40):.1f} seconds started at "
            f"{r.uniform(1, 20):.1f} seconds into the test for GPU {c['local_rank']} Verify that the cooling on this "
            "machine is functional, including external, thermal material interface, fans, and any other components.")


def slurm_node_fail(r: random.Random, c: dict) -> str:
    d = _dt(c["t"])
    return (f"srun: error: Node failure on {c['node']}\nslurmstepd: error: *** JOB {c['job_num']} ON {c['nodelist']} "
            f"CANCELLED AT {d:%Y-%m-%dT%H:%M:%S} DUE TO NODE FAILURE, SEE SLURMCTLD LOG FOR DETAILS ***")


def k8s_node_notready(r: random.Random, c: dict) -> str:
    return (f"Warning  NodeNotReady  pod/{c['pod']}  Node is not ready\n"
            f"Warning  FailedKillPod  pod/{c['pod']}  error killing pod: node \"{c['node']}\" is unreachable")


def slurm_time_limit(r: random.Random, c: dict) -> str:
    """exemplar "job_cancelled_time_limit"."""
    d = _dt(c["t"])
    return (f"srun: Job step aborted: Waiting up to {r.choice([32, 47, 62])} seconds for job step to finish.\n"
            f"slurmstepd: error: *** JOB {c['job_num']} ON {c['nodelist']} CANCELLED AT {d:%Y-%m-%dT%H:%M:%S} DUE TO "
            "TIME LIMIT ***")


def slurmctld_wtermsig9(r: random.Random, c: dict) -> str:
    """exemplar "slurmctld_job_complete_wtermsig9_silent_kill": only the controller saw it."""
    d = _dt(c["t"])
    ms = f"{d.microsecond // 1000:03d}"
    return (f"[{d:%Y-%m-%dT%H:%M:%S}.{ms}] _job_complete: JobId={c['job_num']} WTERMSIG 9\n"
            f"[{d:%Y-%m-%dT%H:%M:%S}.{ms}] _job_complete: JobId={c['job_num']} done")


def k8s_evicted(r: random.Random, c: dict) -> str:
    return (f"Warning  Evicted  pod/{c['pod']}  The node was low on resource: ephemeral-storage. Threshold quantity: "
            f"{r.choice([10, 20, 50])}Gi, available: {r.randint(100, 9000)}Mi.")


# ---------------------------------------------------------------- data

def data_shard_error(r: random.Random, c: dict) -> str:
    """A bad sample in one shard: the reader fails on whichever rank reads it."""
    shard = c["shard"]
    style = c.get("data_style", 0)
    if style == 0:
        return (f"[rank{c['rank']}]: Traceback (most recent call last):\n[rank{c['rank']}]:   File \"data/indexed_dataset.py\", "
                f"line {r.choice([512, 517])}, in __getitem__\n[rank{c['rank']}]: ValueError: sample {c['sample']} in {shard} "
                f"decodes to {r.randint(0, 3)} tokens (expected {c.get('seq_len', 4096)})")
    return (f"[rank{c['rank']}]: UnicodeDecodeError: 'utf-8' codec can't decode byte 0x{r.choice(['8b', 'ff', 'c3'])} in "
            f"position {r.randint(1, 9000)}: invalid start byte (while reading {shard}, record {c['sample']})")


def dataloader_worker_exited(r: random.Random, c: dict) -> str:
    """exemplar "shm_bus_error_then_worker_exited" (last line)."""
    return f"RuntimeError: DataLoader worker (pid(s) {r.randint(2000, 999999)}) exited unexpectedly"


# ---------------------------------------------------------------- benign noise (known by meaning)

def nccl_info(r: random.Random, c: dict) -> str:
    pid = c.get("pid", r.randint(2000, 999999))
    h = c["host"]
    lr = c["local_rank"]
    kind = r.randrange(4)
    if kind == 0:
        nics = ",".join(f"[{i}]mlx5_{i}:1/IB" for i in range(8))
        return f"{h}:{pid}:{pid} [{lr}] NCCL INFO NET/IB : Using {nics} ; OOB {c.get('oob', 'eth0')}:{c.get('ip', '10.0.0.2')}<0>"
    if kind == 1:
        return f"{h}:{pid}:{pid + r.randint(40, 400)} [{lr}] NCCL INFO Channel {r.randint(0, 31):02d}/{r.choice([16, 32])} : " + \
            " ".join(str((lr + k) % 8) for k in range(8))
    if kind == 2:
        return f"{h}:{pid}:{pid} [{lr}] NCCL INFO comm 0x{r.getrandbits(40):x} rank {c['rank']} nranks {c['world']} cudaDev {lr} busId {c['pci'][5:].replace(':', '').replace('.', '')}0 - Init COMPLETE"
    return f"{h}:{pid}:{pid} [{lr}] NCCL INFO Bootstrap : Using {c.get('oob', 'eth0')}:{c.get('ip', '10.0.0.2')}<0>"


def checkpoint_slow(r: random.Random, c: dict) -> str:
    """exemplar "deepspeed_optim_state_save_write_failed" first line, plus the slow-save warning."""
    d = _dt(c["t"])
    s = r.uniform(301, 900)
    return (f"[{d:%Y-%m-%d %H:%M:%S},{d.microsecond // 1000:03d}] [WARNING] [checkpointing.py:{r.choice([212, 219])}:save] "
            f"checkpoint global_step{c['step']} took {s:.1f}s to save (> 300s budget); consider async save")


def mlx5_access_reg(r: random.Random, c: dict) -> str:
    """exemplar "mlx5_access_reg_failed_noise": benign, from monitoring agents reading counters."""
    p = _kern_prefix(r, c)
    return (f"{p}mlx5_core {c['nic_pci']}: mlx5_cmd_out_err:838:(pid {r.randint(1000, 2999999)}): ACCESS_REG(0x805) op_mod(0x1) "
            f"failed, status bad resource(0x5), syndrome (0x{r.getrandbits(24):x}), err(-22)")


def dcgm_imex_false_positive(r: random.Random, c: dict) -> str:
    """exemplar "dcgm_fr_imex_unhealthy_false_positive"."""
    return (f"ErrorCode:DCGM_FR_IMEX_UNHEALTHY GPU:{c['local_rank']} IMEX daemon status is -3 (not READY)\nCheck IMEX "
            "installation, configuration, domain and daemon status, and network\nconnectivity. Recommended Action=CONTACT_SUPPORT;")


def ds_overflow(r: random.Random, c: dict) -> str:
    """exemplar "deepspeed_overflow_hysteresis": benign at the start of fp16 training."""
    d = _dt(c["t"])
    scale = 2 ** r.randint(12, 16)
    return (f"[{d:%Y-%m-%d %H:%M:%S},{d.microsecond // 1000:03d}] [INFO] [loss_scaler.py:181:update_scale] [deepspeed] "
            f"OVERFLOW! Rank {c['rank']} Skipping step. Attempted loss scale: {scale}, reducing to {scale // 2}")


def ib_hogged_cpu(r: random.Random, c: dict) -> str:
    p = _kern_prefix(r, c)
    return (f"{p}workqueue: ib_cache_event_task [ib_core] hogged CPU for >10000us {r.randint(4, 64)} times, consider "
            "switching to WQ_UNBOUND")


def progress(r: random.Random, c: dict) -> str:
    return (f"step {c['step']} ok | loss {c.get('loss', 2.3):.4f} | {c.get('tflops', 400.0):.1f} TFLOPs | "
            f"{c.get('step_s', 5.0):.2f} s/step")


TEMPLATES: dict[str, Template] = {
    name: fn for name, fn in globals().items()
    if callable(fn) and not name.startswith("_") and getattr(fn, "__module__", None) == __name__
    and name not in {"TEMPLATES"}
}
NOISE = ["nccl_info", "checkpoint_slow", "mlx5_access_reg", "dcgm_imex_false_positive", "ds_overflow", "ib_hogged_cpu"]
