"""Syscall filter for sandboxed programs: a seccomp BPF denylist installed by the in-sandbox worker (stdlib only).

Shipped as source into both sandboxes (the bubblewrap worker and the container's supervisor), so it must run on
Python 3.8 and import nothing outside the standard library. The worker installs the filter on itself once, before
it forks any program; every program inherits it and can never remove it (seccomp filters only accumulate).

What it refuses, and why (docs/execution.md, "Syscall filter"):
- tracing and reading or writing another process: ptrace, process_vm_readv/writev, kcmp, pidfd_getfd,
  process_madvise (a program must not reach the worker that reports verdicts, nor its pipes);
- kernel attack surface no program needs: perf_event_open, bpf, userfaultfd, io_uring_*, keyctl, add_key,
  request_key, syslog, module, kexec, swap, reboot, accounting and quota calls;
- new namespaces and mounts: unshare, setns, clone with a CLONE_NEW* flag, the mount family; clone3 answers
  ENOSYS (its flags sit in memory a filter cannot read), so the C library falls back to clone, which is checked;
- creating AF_UNIX sockets: a Unix socket file anywhere in the read-only view of the host (a container engine's
  API socket, a desktop bus) would otherwise be one connect() away. socketpair() still works (it can only
  connect its own two ends), so pipes between a program's processes, asyncio and multiprocessing pools work.
Any other architecture's syscalls (i386 through int 0x80 on x86_64, x32) are refused outright.
"""

from __future__ import annotations

import ctypes
import errno
import struct
import sys

# struct seccomp_data: int nr; __u32 arch; __u64 instruction_pointer; __u64 args[6].
_OFF_NR, _OFF_ARCH, _OFF_ARG0 = 0, 4, 16
_LD_W_ABS = 0x20  # BPF_LD | BPF_W | BPF_ABS
_JEQ_K = 0x15  # BPF_JMP | BPF_JEQ | BPF_K
_JGE_K = 0x35  # BPF_JMP | BPF_JGE | BPF_K
_JSET_K = 0x45  # BPF_JMP | BPF_JSET | BPF_K
_RET_K = 0x06  # BPF_RET | BPF_K
_RET_ALLOW = 0x7FFF0000
_RET_ERRNO = 0x00050000
_PR_SET_NO_NEW_PRIVS = 38
_PR_SET_SECCOMP = 22
_SECCOMP_MODE_FILTER = 2
_X32_SYSCALL_BIT = 0x40000000
_AF_UNIX = 1
# CLONE_NEWNS | CLONE_NEWCGROUP | CLONE_NEWUTS | CLONE_NEWIPC | CLONE_NEWUSER | CLONE_NEWPID | CLONE_NEWNET
_CLONE_NEW_ANY = 0x00020000 | 0x02000000 | 0x04000000 | 0x08000000 | 0x10000000 | 0x20000000 | 0x40000000

DENIED = (
    "ptrace", "process_vm_readv", "process_vm_writev", "kcmp", "pidfd_getfd", "process_madvise",
    "perf_event_open", "bpf", "userfaultfd", "io_uring_setup", "io_uring_enter", "io_uring_register",
    "keyctl", "add_key", "request_key", "syslog", "init_module", "finit_module", "delete_module", "kexec_load",
    "kexec_file_load", "reboot", "swapon", "swapoff", "acct", "quotactl",
    "unshare", "setns", "mount", "umount2", "pivot_root", "open_tree", "move_mount", "fsopen", "fsconfig",
    "fsmount", "fspick", "mount_setattr",
)  # fmt: skip

# Syscall numbers from the kernel's uapi headers (asm/unistd_64.h; asm-generic/unistd.h for aarch64).
TABLES = {
    "x86_64": (0xC000003E, {
        "ptrace": 101, "process_vm_readv": 310, "process_vm_writev": 311, "kcmp": 312, "pidfd_getfd": 438,
        "process_madvise": 440, "perf_event_open": 298, "bpf": 321, "userfaultfd": 323, "io_uring_setup": 425,
        "io_uring_enter": 426, "io_uring_register": 427, "keyctl": 250, "add_key": 248, "request_key": 249,
        "syslog": 103, "init_module": 175, "finit_module": 313, "delete_module": 176, "kexec_load": 246,
        "kexec_file_load": 320, "reboot": 169, "swapon": 167, "swapoff": 168, "acct": 163, "quotactl": 179,
        "unshare": 272, "setns": 308, "mount": 165, "umount2": 166, "pivot_root": 155, "open_tree": 428,
        "move_mount": 429, "fsopen": 430, "fsconfig": 431, "fsmount": 432, "fspick": 433, "mount_setattr": 442,
        "clone3": 435, "socket": 41, "clone": 56,
    }),
    "aarch64": (0xC00000B7, {
        "ptrace": 117, "process_vm_readv": 270, "process_vm_writev": 271, "kcmp": 272, "pidfd_getfd": 438,
        "process_madvise": 440, "perf_event_open": 241, "bpf": 280, "userfaultfd": 282, "io_uring_setup": 425,
        "io_uring_enter": 426, "io_uring_register": 427, "keyctl": 219, "add_key": 217, "request_key": 218,
        "syslog": 116, "init_module": 105, "finit_module": 273, "delete_module": 106, "kexec_load": 104,
        "kexec_file_load": 294, "reboot": 142, "swapon": 224, "swapoff": 225, "acct": 89, "quotactl": 60,
        "unshare": 97, "setns": 268, "mount": 40, "umount2": 39, "pivot_root": 41, "open_tree": 428,
        "move_mount": 429, "fsopen": 430, "fsconfig": 431, "fsmount": 432, "fspick": 433, "mount_setattr": 442,
        "clone3": 435, "socket": 198, "clone": 220,
    }),
}  # fmt: skip


def machine() -> str:
    import platform

    name = platform.machine().lower()
    return {"amd64": "x86_64", "arm64": "aarch64"}.get(name, name)


def program(arch: str) -> list[tuple[int, int, int, int]]:
    """The filter for `arch` as (code, jt, jf, k) instructions; KeyError for an architecture without a table."""
    audit_arch, nr = TABLES[arch]
    deny = _RET_ERRNO | errno.EPERM
    # Instructions with symbolic jump targets, resolved below: ("jeq", k, target_if_true) falls through otherwise.
    code: list[tuple[object, ...]] = [
        ("ld", _OFF_ARCH),
        ("jne", audit_arch, "enosys"),
        ("ld", _OFF_NR),
    ]
    if arch == "x86_64":
        code.append(("jge", _X32_SYSCALL_BIT, "enosys"))
    code += [("jeq", nr[name], "eperm") for name in DENIED]
    code += [
        ("jeq", nr["clone3"], "enosys"),
        ("jeq", nr["socket"], "socket"),
        ("jeq", nr["clone"], "clone"),
        ("ret", _RET_ALLOW),
        ("label", "socket"),
        ("ld", _OFF_ARG0),
        ("jeq", _AF_UNIX, "eacces"),
        ("ret", _RET_ALLOW),
        ("label", "clone"),
        ("ld", _OFF_ARG0),
        ("jset", _CLONE_NEW_ANY, "eperm"),
        ("ret", _RET_ALLOW),
        ("label", "eperm"),
        ("ret", deny),
        ("label", "eacces"),
        ("ret", _RET_ERRNO | errno.EACCES),
        ("label", "enosys"),
        ("ret", _RET_ERRNO | errno.ENOSYS),
    ]
    labels: dict[object, int] = {}
    position = 0
    for item in code:
        if item[0] == "label":
            labels[item[1]] = position
        else:
            position += 1
    out: list[tuple[int, int, int, int]] = []
    for item in code:
        op = item[0]
        if op == "label":
            continue
        here = len(out)
        if op == "ld":
            out.append((_LD_W_ABS, 0, 0, int(item[1])))  # type: ignore[call-overload]
        elif op == "ret":
            out.append((_RET_K, 0, 0, int(item[1])))  # type: ignore[call-overload]
        else:
            skip = labels[item[2]] - here - 1
            if not 0 <= skip <= 255:
                raise ValueError("seccomp filter: jump out of range")
            k = int(item[1])  # type: ignore[call-overload]
            if op == "jne":
                out.append((_JEQ_K, 0, skip, k))
            else:
                out.append(({"jeq": _JEQ_K, "jge": _JGE_K, "jset": _JSET_K}[str(op)], skip, 0, k))
    return out


def install() -> str:
    """Install the filter on the calling process (and so on everything it forks from now on).

    Returns "" on success, else why the filter is not in effect (the caller records and reports it; a sandbox
    must never claim a layer it does not have).
    """
    arch = machine()
    if arch not in TABLES:
        return f"no syscall table for {arch}"
    if sys.byteorder != "little":
        return "big-endian machine (the filter reads the low word of arguments)"
    instructions = program(arch)
    raw = b"".join(struct.pack("=HBBI", *ins) for ins in instructions)
    buffer = ctypes.create_string_buffer(raw, len(raw))

    class _Prog(ctypes.Structure):
        _fields_ = [("len", ctypes.c_ushort), ("filter", ctypes.c_void_p)]

    prog = _Prog(len(instructions), ctypes.cast(buffer, ctypes.c_void_p))
    try:
        libc = ctypes.CDLL(None, use_errno=True)
    except OSError as e:
        return f"no C library ({e})"
    prctl = libc.prctl
    prctl.restype = ctypes.c_int
    if prctl(_PR_SET_NO_NEW_PRIVS, ctypes.c_ulong(1), ctypes.c_ulong(0), ctypes.c_ulong(0), ctypes.c_ulong(0)) != 0:
        return "prctl(PR_SET_NO_NEW_PRIVS): " + errno.errorcode.get(ctypes.get_errno(), "?")
    if prctl(_PR_SET_SECCOMP, ctypes.c_ulong(_SECCOMP_MODE_FILTER), ctypes.byref(prog), ctypes.c_ulong(0),
             ctypes.c_ulong(0)) != 0:  # fmt: skip
        return "prctl(PR_SET_SECCOMP): " + errno.errorcode.get(ctypes.get_errno(), "?")
    return ""


def describe(reason: str) -> str:
    """The provenance line for the filter, given install()'s result."""
    if reason:
        return f"OFF ({reason})"
    return f"on ({len(DENIED) + 1} syscalls refused, clone3 ENOSYS, no new namespaces, no AF_UNIX sockets)"
