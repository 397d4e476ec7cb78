"""What the operating system lets a sandbox process do, beyond QuickJS's own limits.

QuickJS contains a function's code; an engine exploit would hand that code the whole
sandbox process. The steps here decide what it would find there. A sandbox process takes
them before it reads any tenant code, and each reports whether it held: a step the system
refuses (not root, no namespaces, no seccomp) is skipped, never fatal, and the pool logs it
once (the report travels in the process's ``ready`` message).

The pool's own process (``protect_host``) becomes not dumpable: no process of the same user
(a sandbox process that could not switch to another user) can then read its
``/proc/<pid>/environ`` or ``mem``, where the service's keys and URLs are, nor ptrace it.
The pool starts each sandbox process with a clean environment, in ``/`` (``pool.child_spec``).

A sandbox process takes these ``STEPS``, in this order:

``netns``
    a network namespace of its own, whose only interface is a loopback that is down:
    nothing to connect to. Root: ``unshare(CLONE_NEWNET)``; any other user: together with a
    user namespace of its own, where the kernel allows unprivileged ones.
``no_new_privs``
    nothing it could execute gains privileges; it also lets a user other than root
    install the filter.
``seccomp``
    a filter that refuses ``socket()`` for every family (the process talks only over the
    pipes it was started with; fetch and neo.call are performed by the pool), opening a
    file for writing, and creating, renaming, removing or changing any file; signals and
    resource limits for any process but itself; io_uring (which would get around the
    filter), ptrace and other processes' memory, keyrings, bpf, perf events, userfaultfd,
    and namespaces and mounts.
    This and ``netns`` come before the process has a second thread (importing quickjs
    starts one): a namespace or a filter binds the thread that takes it, and the threads
    that thread creates afterwards.
``user``
    as root only: the sandbox user (``nobody`` unless configured), with no supplementary
    groups. It comes after the imports, so the interpreter and the packages need not be
    readable by that user.
``rlimits``
    no file can grow (``RLIMIT_FSIZE`` 0: the process writes only to pipes), no core dump,
    at most ``MAX_FILES`` descriptors, no new process or thread (``RLIMIT_NPROC`` 0, set once
    its threads exist; a limit of the process, so the pool's other sandbox processes of
    the same user still start), and an address space of what it has mapped by then plus
    ``MAX_MEMORY_MB`` plus ``ADDRESS_SPACE_HEADROOM_MB``.
``dumpable``
    not dumpable: other sandbox processes, the same user, cannot read its memory, which
    holds the secrets of the run it serves.

``probe`` tells what the system then still allows: the tests run it in a sandbox process
started exactly as the pool starts one (``python -m neosl.functions.sandbox.child --probe``).
"""

from __future__ import annotations

import contextlib
import ctypes
import errno
import functools
import os
import platform
import pwd
import resource
import socket
import struct
import sys
import threading
from collections.abc import Callable, Collection, Iterable
from dataclasses import dataclass
from typing import Any

from neosl.functions.sandbox.types import MAX_MEMORY_MB

STEPS = ("netns", "no_new_privs", "seccomp", "user", "rlimits", "dumpable")
# What a step that held reports; one that did not says why, in at most MAX_REASON_CHARS
# printable ASCII characters.
HELD = "held"
MAX_REASON_CHARS = 200
# What a probe reports of a step it was told to leave out.
SKIPPED = "left out (--skip)"

DEFAULT_USER = "nobody"
_NOBODY = 65534
MB = 1024 * 1024
# Address space on top of what the process has mapped once it is ready (about 90 MB: the
# interpreter, quickjs and its thread's stack, glibc's arenas): the largest JS heap a
# function may have (MAX_MEMORY_MB), plus the engine's and Python's working memory
# (messages, fetch bodies, logs). About 990 MB in all.
ADDRESS_SPACE_HEADROOM_MB = 384
# Descriptors: stdin, stdout, stderr, the two protocol pipes and /dev/null while it opens.
MAX_FILES = 32

# <linux/prctl.h>, <linux/sched.h>, <linux/seccomp.h>, <linux/filter.h>, <linux/audit.h>
_PR_GET_DUMPABLE = 3
_PR_SET_DUMPABLE = 4
_PR_SET_SECCOMP = 22
_PR_SET_NO_NEW_PRIVS = 38
_PR_GET_NO_NEW_PRIVS = 39
_SECCOMP_MODE_FILTER = 2
_CLONE_NEWUSER = 0x10000000
_CLONE_NEWNET = 0x40000000
_BPF_LD_W_ABS = 0x20
_BPF_JEQ_K = 0x15
_BPF_JGE_K = 0x35
_BPF_JSET_K = 0x45
_BPF_RET_K = 0x06
_RET_ALLOW = 0x7FFF0000
_RET_ERRNO = 0x00050000
_RET_KILL_PROCESS = 0x80000000
# seccomp_data: the call's number, its ABI, then its six arguments (64 bits each; the low
# half first on the little-endian machines below).
_NR_OFFSET = 0
_ARCH_OFFSET = 4
_ARGS_OFFSET = 16
# open flags that ask for writing: O_WRONLY | O_RDWR | O_CREAT | O_TRUNC (O_TMPFILE needs
# one of the first two).
_WRITE_FLAGS = 0o1 | 0o2 | 0o100 | 0o1000
# x86_64's x32 ABI: the same numbers with this bit set.
_X32_BIT = 0x40000000


@dataclass(frozen=True)
class _Machine:
    """The seccomp view of one machine: its AUDIT_ARCH, and its system call numbers."""

    arch: int
    numbers: dict[str, int]
    has_x32: bool = False


# Every call with a number at or above 424 has the same one on every machine.
_COMMON = {
    "pidfd_send_signal": 424,
    "pidfd_open": 434,
    "pidfd_getfd": 438,
    "io_uring_setup": 425,
    "io_uring_enter": 426,
    "io_uring_register": 427,
    "open_tree": 428,
    "move_mount": 429,
    "fsopen": 430,
    "fsconfig": 431,
    "fsmount": 432,
    "fspick": 433,
    "openat2": 437,
    "mount_setattr": 442,
    "fchmodat2": 452,
    "setxattrat": 463,
    "removexattrat": 466,
    "open_tree_attr": 467,
}
# From the kernel's unistd_64.h (x86_64) and asm-generic/unistd.h (aarch64).
_MACHINES = {
    "x86_64": _Machine(
        0xC000003E,
        {
            **_COMMON,
            "socket": 41,
            "kill": 62,
            "tkill": 200,
            "tgkill": 234,
            "rt_sigqueueinfo": 129,
            "rt_tgsigqueueinfo": 297,
            "prlimit64": 302,
            "open": 2,
            "openat": 257,
            "creat": 85,
            "truncate": 76,
            "ftruncate": 77,
            "fallocate": 285,
            "rename": 82,
            "renameat": 264,
            "renameat2": 316,
            "mkdir": 83,
            "mkdirat": 258,
            "rmdir": 84,
            "link": 86,
            "linkat": 265,
            "unlink": 87,
            "unlinkat": 263,
            "symlink": 88,
            "symlinkat": 266,
            "mknod": 133,
            "mknodat": 259,
            "chmod": 90,
            "fchmod": 91,
            "fchmodat": 268,
            "chown": 92,
            "fchown": 93,
            "lchown": 94,
            "fchownat": 260,
            "utime": 132,
            "utimes": 235,
            "futimesat": 261,
            "utimensat": 280,
            "setxattr": 188,
            "lsetxattr": 189,
            "fsetxattr": 190,
            "removexattr": 197,
            "lremovexattr": 198,
            "fremovexattr": 199,
            "ptrace": 101,
            "process_vm_readv": 310,
            "process_vm_writev": 311,
            "bpf": 321,
            "perf_event_open": 298,
            "userfaultfd": 323,
            "add_key": 248,
            "request_key": 249,
            "keyctl": 250,
            "unshare": 272,
            "setns": 308,
            "mount": 165,
            "umount2": 166,
            "pivot_root": 155,
            "chroot": 161,
            "name_to_handle_at": 303,
            "open_by_handle_at": 304,
        },
        has_x32=True,
    ),
    "aarch64": _Machine(
        0xC00000B7,
        {
            **_COMMON,
            "socket": 198,
            "kill": 129,
            "tkill": 130,
            "tgkill": 131,
            "rt_sigqueueinfo": 138,
            "rt_tgsigqueueinfo": 240,
            "prlimit64": 261,
            "openat": 56,
            "truncate": 45,
            "ftruncate": 46,
            "fallocate": 47,
            "renameat": 38,
            "renameat2": 276,
            "mkdirat": 34,
            "linkat": 37,
            "unlinkat": 35,
            "symlinkat": 36,
            "mknodat": 33,
            "fchmod": 52,
            "fchmodat": 53,
            "fchown": 55,
            "fchownat": 54,
            "utimensat": 88,
            "setxattr": 5,
            "lsetxattr": 6,
            "fsetxattr": 7,
            "removexattr": 14,
            "lremovexattr": 15,
            "fremovexattr": 16,
            "ptrace": 117,
            "process_vm_readv": 270,
            "process_vm_writev": 271,
            "bpf": 280,
            "perf_event_open": 241,
            "userfaultfd": 282,
            "add_key": 217,
            "request_key": 218,
            "keyctl": 219,
            "unshare": 97,
            "setns": 268,
            "mount": 40,
            "umount2": 39,
            "pivot_root": 41,
            "chroot": 51,
            "name_to_handle_at": 264,
            "open_by_handle_at": 265,
        },
    ),
}
# Opening calls refused when they ask for writing: the index of their flags argument.
_OPENS = {"open": 1, "openat": 2}
# Calls allowed only on this process itself (its pid as their first argument; 0 too where
# that means this process): other sandbox processes, and the pool itself where the user
# could not be switched, are of the same user; kill(-1) or kill(0) would reach them all.
_ON_SELF = {
    "kill": False,
    "tgkill": False,
    "rt_sigqueueinfo": False,
    "rt_tgsigqueueinfo": False,
    "prlimit64": True,
}
# What the filter answers to the calls it refuses. ENOSYS where a caller may fall back to
# another call (openat2 to openat), so that nothing breaks that never meant harm.
_REFUSED = {
    "socket": errno.EACCES,
    **dict.fromkeys(
        (
            "creat",
            "truncate",
            "ftruncate",
            "fallocate",
            "rename",
            "renameat",
            "renameat2",
            "mkdir",
            "mkdirat",
            "rmdir",
            "link",
            "linkat",
            "unlink",
            "unlinkat",
            "symlink",
            "symlinkat",
            "mknod",
            "mknodat",
            "chmod",
            "fchmod",
            "fchmodat",
            "fchmodat2",
            "chown",
            "fchown",
            "lchown",
            "fchownat",
            "utime",
            "utimes",
            "futimesat",
            "utimensat",
            "setxattr",
            "lsetxattr",
            "fsetxattr",
            "setxattrat",
            "removexattr",
            "lremovexattr",
            "fremovexattr",
            "removexattrat",
        ),
        errno.EACCES,
    ),
    **dict.fromkeys(
        ("openat2", "io_uring_setup", "io_uring_enter", "io_uring_register"), errno.ENOSYS
    ),
    **dict.fromkeys(
        (
            "tkill",
            "pidfd_open",
            "pidfd_send_signal",
            "ptrace",
            "process_vm_readv",
            "process_vm_writev",
            "pidfd_getfd",
            "bpf",
            "perf_event_open",
            "userfaultfd",
            "add_key",
            "request_key",
            "keyctl",
            "unshare",
            "setns",
            "mount",
            "umount2",
            "pivot_root",
            "chroot",
            "open_tree",
            "open_tree_attr",
            "move_mount",
            "fsopen",
            "fsconfig",
            "fsmount",
            "fspick",
            "mount_setattr",
            "name_to_handle_at",
            "open_by_handle_at",
        ),
        errno.EPERM,
    ),
}


@dataclass(frozen=True)
class SandboxUser:
    """The user a sandbox process switches to when it starts as root."""

    uid: int
    gid: int

    def __str__(self) -> str:
        return f"{self.uid}:{self.gid}"


def resolve_user(spec: str) -> SandboxUser:
    """The user ``spec`` names: a user name, ``UID`` (its group the same number) or
    ``UID:GID``. ``nobody`` is 65534 where the system has no such name.

    Raises:
        ValueError: no such user, or root.
    """
    name, _, group = spec.strip().partition(":")
    if name.isdigit() and (not group or group.isdigit()):
        user = SandboxUser(int(name), int(group or name))
    elif group:
        raise ValueError(f"not a sandbox user: {spec!r} (a name, UID or UID:GID)")
    else:
        try:
            entry = pwd.getpwnam(name)
        except KeyError:
            if name != DEFAULT_USER:
                raise ValueError(f"no such sandbox user: {name!r}") from None
            user = SandboxUser(_NOBODY, _NOBODY)
        else:
            user = SandboxUser(entry.pw_uid, entry.pw_gid)
    if user.uid == 0 or user.gid == 0:
        raise ValueError("the sandbox user must not be root, nor in root's group")
    return user


# -- the pool's process


def protect_host() -> str:
    """Make this process not dumpable: HELD, or why it is not.

    Then no other process of its user can read its ``/proc/<pid>/environ`` or ``mem``, or
    ptrace it (root still can). It also means no core dump of this process, and a debugger
    or profiler attaches to it only as root.
    """
    return _cut(_undumpable()) if sys.platform == "linux" else "not Linux"


# -- a sandbox process


def before_threads(skip: Collection[str] = ()) -> dict[str, str]:
    """``netns``, ``no_new_privs`` and ``seccomp``, but those in ``skip`` (a probe's, to show
    what the others hold alone): what each one came to.

    Raises:
        RuntimeError: the process has a second thread already (a bug of the caller's).
    """
    if sys.platform != "linux":
        return dict.fromkeys(("netns", "no_new_privs", "seccomp"), "not Linux")
    threads = _status().get("Threads", "1")
    if threads != "1":
        raise RuntimeError(f"containment must start before any thread ({threads} running)")
    steps = {"netns": _enter_netns, "no_new_privs": _no_new_privs, "seccomp": _install_filter}
    return {step: SKIPPED if step in skip else _cut(take()) for step, take in steps.items()}


def after_imports(user: SandboxUser, skip: Collection[str] = ()) -> dict[str, str]:
    """``user``, ``rlimits`` and ``dumpable``, but those in ``skip``: what each one came to.
    Called once every module the process needs is imported, before it reads any tenant
    code."""
    if sys.platform != "linux":
        return dict.fromkeys(("user", "rlimits", "dumpable"), "not Linux")
    steps: dict[str, Callable[[], str]] = {
        "user": functools.partial(_switch_user, user),
        "rlimits": _limit_resources,
        "dumpable": _undumpable,
    }
    return {step: SKIPPED if step in skip else _cut(take()) for step, take in steps.items()}


def _enter_netns() -> str:
    root = os.geteuid() == 0
    uid, gid = os.getuid(), os.getgid()
    try:
        _call("unshare", _CLONE_NEWNET if root else _CLONE_NEWUSER | _CLONE_NEWNET)
    except OSError as exc:
        if root:
            return f"unshare(CLONE_NEWNET) refused ({_why(exc)})"
        return f"not root, and no user namespace allowed ({_why(exc)})"
    if not root:
        # The process keeps its own ids in its user namespace (it would show as 65534).
        with contextlib.suppress(OSError):
            _write("/proc/self/setgroups", "deny")
            _write("/proc/self/uid_map", f"{uid} {uid} 1")
            _write("/proc/self/gid_map", f"{gid} {gid} 1")
    interfaces = _interfaces()
    if interfaces != ["lo"]:
        return f"the new network namespace has {', '.join(interfaces) or 'no interface'}"
    return HELD


def _no_new_privs() -> str:
    try:
        _prctl(_PR_SET_NO_NEW_PRIVS, 1)
        return HELD if _prctl(_PR_GET_NO_NEW_PRIVS) == 1 else "PR_SET_NO_NEW_PRIVS did not take"
    except OSError as exc:
        return f"PR_SET_NO_NEW_PRIVS refused ({_why(exc)})"


def _install_filter() -> str:
    machine = platform.machine()
    table = _MACHINES.get(machine)
    if table is None or struct.calcsize("P") != 8 or sys.byteorder != "little":
        return f"no seccomp filter for this machine ({machine}, {struct.calcsize('P') * 8}-bit)"
    instructions = _program(table, os.getpid())
    filters = (_SockFilter * len(instructions))(*(_SockFilter(*i) for i in instructions))
    program = _SockFprog(len(instructions), filters)
    try:
        _prctl(_PR_SET_SECCOMP, _SECCOMP_MODE_FILTER, ctypes.addressof(program))
    except OSError as exc:
        return f"PR_SET_SECCOMP refused ({_why(exc)})"
    mode = _status().get("Seccomp")
    return HELD if mode in (None, "2") else f"the filter did not take (Seccomp: {mode})"


class _SockFilter(ctypes.Structure):
    _fields_ = (
        ("code", ctypes.c_uint16),
        ("jt", ctypes.c_uint8),
        ("jf", ctypes.c_uint8),
        ("k", ctypes.c_uint32),
    )


class _SockFprog(ctypes.Structure):
    _fields_ = (("len", ctypes.c_ushort), ("filter", ctypes.POINTER(_SockFilter)))


def _program(machine: _Machine, pid: int) -> list[tuple[int, int, int, int]]:
    """The classic BPF program of the filter for the process ``pid``: (code, jt, jf, k)
    each."""

    def stmt(code: int, k: int) -> tuple[int, int, int, int]:
        return (code, 0, 0, k)

    def jump(code: int, k: int, jt: int, jf: int) -> tuple[int, int, int, int]:
        return (code, jt, jf, k)

    program = [
        stmt(_BPF_LD_W_ABS, _ARCH_OFFSET),
        # Another ABI of the same kernel (i386 on x86_64) has other numbers: never allowed.
        jump(_BPF_JEQ_K, machine.arch, 1, 0),
        stmt(_BPF_RET_K, _RET_KILL_PROCESS),
        stmt(_BPF_LD_W_ABS, _NR_OFFSET),
    ]
    if machine.has_x32:
        program += [jump(_BPF_JGE_K, _X32_BIT, 0, 1), stmt(_BPF_RET_K, _RET_ERRNO | errno.ENOSYS)]
    for name, index in _OPENS.items():
        if name not in machine.numbers:
            continue
        check = [
            stmt(_BPF_LD_W_ABS, _ARGS_OFFSET + 8 * index),
            jump(_BPF_JSET_K, _WRITE_FLAGS, 0, 1),
            stmt(_BPF_RET_K, _RET_ERRNO | errno.EACCES),
            stmt(_BPF_RET_K, _RET_ALLOW),
        ]
        program += [jump(_BPF_JEQ_K, machine.numbers[name], 0, len(check)), *check]
    for name, zero_is_self in _ON_SELF.items():
        if name not in machine.numbers:
            continue
        check = [
            stmt(_BPF_LD_W_ABS, _ARGS_OFFSET),
            jump(_BPF_JEQ_K, pid, 0, 1),
            stmt(_BPF_RET_K, _RET_ALLOW),
        ]
        if zero_is_self:
            check += [jump(_BPF_JEQ_K, 0, 0, 1), stmt(_BPF_RET_K, _RET_ALLOW)]
        check.append(stmt(_BPF_RET_K, _RET_ERRNO | errno.EPERM))
        program += [jump(_BPF_JEQ_K, machine.numbers[name], 0, len(check)), *check]
    for name, code in _REFUSED.items():
        if name in machine.numbers:
            program += [
                jump(_BPF_JEQ_K, machine.numbers[name], 0, 1),
                stmt(_BPF_RET_K, _RET_ERRNO | code),
            ]
    program.append(stmt(_BPF_RET_K, _RET_ALLOW))
    return program


def _switch_user(user: SandboxUser) -> str:
    euid = os.geteuid()
    if euid != 0:
        return f"not root: runs as the pool's user ({euid})"
    try:
        os.setgroups([])
        os.setresgid(user.gid, user.gid, user.gid)
        os.setresuid(user.uid, user.uid, user.uid)
    except OSError as exc:
        return f"cannot switch to {user} ({_why(exc)})"
    try:
        os.setuid(0)
    except PermissionError:
        return HELD
    return "switched, yet it could become root again"


def _limit_resources() -> str:
    limits = [
        ("RLIMIT_FSIZE", resource.RLIMIT_FSIZE, 0),
        # A core dump would hold the secrets of whatever ran here.
        ("RLIMIT_CORE", resource.RLIMIT_CORE, 0),
        ("RLIMIT_NOFILE", resource.RLIMIT_NOFILE, MAX_FILES),
        ("RLIMIT_NPROC", resource.RLIMIT_NPROC, 0),
    ]
    mapped = _vm_bytes()
    if mapped is not None:
        # The engine's memory limit is the real bound; this one catches what escapes it
        # (an engine bug, Python itself) before the machine suffers.
        headroom = (MAX_MEMORY_MB + ADDRESS_SPACE_HEADROOM_MB) * MB
        limits.append(("RLIMIT_AS", resource.RLIMIT_AS, mapped + headroom))
    refused = []
    for name, kind, value in limits:
        _soft, hard = resource.getrlimit(kind)
        if hard != resource.RLIM_INFINITY:
            value = min(value, hard)
        try:
            resource.setrlimit(kind, (value, value))
        except (OSError, ValueError) as exc:
            refused.append(f"{name} ({exc})")
    if mapped is None:
        refused.append("RLIMIT_AS (no /proc/self/status)")
    return f"not set: {', '.join(refused)}" if refused else HELD


def _undumpable() -> str:
    try:
        _prctl(_PR_SET_DUMPABLE, 0)
        return HELD if _prctl(_PR_GET_DUMPABLE) == 0 else "PR_SET_DUMPABLE did not take"
    except OSError as exc:
        return f"PR_SET_DUMPABLE refused ({_why(exc)})"


# -- what the system allows: for the tests, from inside a sandbox process


def probe(connect: Iterable[tuple[str, int]] = ()) -> dict[str, Any]:
    """What this process may do now: who it runs as, its environment, its limits, and for
    each attempt ``"allowed"`` or ``"refused: <the error>"``: reading its parent's
    environment and memory, making sockets and connecting to each of ``connect``, creating
    a file in its working directory and in /tmp, starting a process or a thread, and
    allocating a run's largest heap and more than its address space."""
    parent = os.getppid()
    status = _status()
    limits = {
        name: list(resource.getrlimit(getattr(resource, name)))
        for name in ("RLIMIT_FSIZE", "RLIMIT_CORE", "RLIMIT_NOFILE", "RLIMIT_NPROC", "RLIMIT_AS")
    }
    return {
        "uid": os.getuid(),
        "euid": os.geteuid(),
        "gid": os.getgid(),
        "groups": os.getgroups(),
        "cwd": os.getcwd(),
        "environment": dict(os.environ),
        "interfaces": _interfaces(),
        "seccomp": status.get("Seccomp"),
        "no_new_privs": status.get("NoNewPrivs"),
        "capabilities": status.get("CapEff"),
        "dumpable": _prctl(_PR_GET_DUMPABLE) if sys.platform == "linux" else None,
        "rlimits": limits,
        "read_parent_environ": _attempt(lambda: _read(f"/proc/{parent}/environ")),
        "read_parent_memory": _attempt(lambda: _read(f"/proc/{parent}/mem")),
        "signal_parent": _attempt(lambda: os.kill(parent, 0)),
        "signal_itself": _attempt(lambda: os.kill(os.getpid(), 0)),
        "socket_inet": _attempt(lambda: socket.socket(socket.AF_INET).close()),
        "socket_inet6": _attempt(lambda: socket.socket(socket.AF_INET6).close()),
        "socket_unix": _attempt(lambda: socket.socket(socket.AF_UNIX).close()),
        "connect": {
            f"{host}:{port}": _attempt(functools.partial(_connect, host, port))
            for host, port in connect
        },
        "create_file_in_cwd": _attempt(lambda: _create(os.getcwd())),
        "create_file_in_tmp": _attempt(lambda: _create("/tmp")),  # noqa: S108 - only a probe
        "fork": _attempt(_fork),
        "thread": _attempt(_thread),
        "allocate_largest_heap": _attempt(lambda: bytearray(MAX_MEMORY_MB * MB)),
        "allocate_past_limit": _attempt(
            lambda: bytearray((MAX_MEMORY_MB + ADDRESS_SPACE_HEADROOM_MB) * MB)
        ),
    }


def _attempt(action: Callable[[], object]) -> str:
    try:
        action()
    except (OSError, MemoryError, RuntimeError) as exc:
        return f"refused: {type(exc).__name__}: {exc}"
    return "allowed"


def _read(path: str) -> None:
    with open(path, "rb") as file:
        file.read(1)


def _connect(host: str, port: int) -> None:
    # An address, not a name: resolving one would need modules this user may not read.
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family) as connection:
        connection.settimeout(2)
        connection.connect((host.encode(), port))


def _create(directory: str) -> None:
    """Create a file and write a byte to it."""
    path = os.path.join(directory, f"neosl-probe-{os.getpid()}")
    try:
        with open(path, "x") as file:
            file.write("x")
    finally:
        with contextlib.suppress(OSError):
            os.unlink(path)


def _fork() -> None:
    pid = os.fork()
    if pid == 0:
        os._exit(0)
    os.waitpid(pid, 0)


def _thread() -> None:
    thread = threading.Thread(target=lambda: None)
    thread.start()
    thread.join()


# -- plumbing


@functools.cache
def _libc() -> ctypes.CDLL:
    return ctypes.CDLL(None, use_errno=True)


def _call(name: str, *args: int) -> int:
    """Raises:
    OSError: the call returned -1 (with its errno).
    """
    result: int = getattr(_libc(), name)(*(ctypes.c_ulong(a) for a in args))
    if result == -1:
        code = ctypes.get_errno()
        raise OSError(code, os.strerror(code))
    return result


def _prctl(option: int, *args: int) -> int:
    return _call("prctl", option, *args, *[0] * (4 - len(args)))


def _why(exc: OSError) -> str:
    name = errno.errorcode.get(exc.errno or 0, str(exc.errno))
    return f"{name}: {exc.strerror}"


def _cut(reason: str) -> str:
    """``reason`` as the protocol carries one: printable ASCII, MAX_REASON_CHARS at most."""
    text = "".join(c if c.isascii() and c.isprintable() else "?" for c in reason)
    return text[:MAX_REASON_CHARS] or "?"


def _write(path: str, text: str) -> None:
    with open(path, "w") as file:
        file.write(text)


def _status() -> dict[str, str]:
    try:
        with open("/proc/self/status") as status:
            return {
                key: value.strip() for key, _, value in (line.partition(":") for line in status)
            }
    except OSError:
        return {}


def _vm_bytes() -> int | None:
    size = _status().get("VmSize")
    return int(size.split()[0]) * 1024 if size else None


def _interfaces() -> list[str]:
    """The network interfaces of this process's namespace."""
    try:
        with open("/proc/self/net/dev") as dev:
            return sorted(line.split(":")[0].strip() for line in dev.readlines()[2:])
    except OSError:
        return []
