#!/usr/bin/env python3
"""Boot the node lab's guest under QEMU and serve its requests (standard library only).

The guest asks for what only the host can do through a virtio-serial port
(`/dev/virtio-ports/nodelab.ctl` in the guest, `ctl.sock` here), one line per request:

    REQ <id> plug <name>            plug the USB disk <name> into the xHCI controller
    REQ <id> unplug <name>          unplug it again
    REQ <id> throttle <drive>       hold every write to a virtio disk (a hung disk)
    REQ <id> unthrottle <drive>     let them through again

and gets `ACK <id> ok|error <text>` back. Each request becomes a command on QEMU's
human monitor (`mon.sock`). The guest writes its results as a tar onto the disk with
serial `nodelab-out`; after the guest powers off, that tar is unpacked into OUT.

Exit status: 0 when the guest reached the end of its scenario list, 1 otherwise.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import re
import select
import shutil
import signal
import socket
import subprocess
import sys
import tarfile
import time

DONE_MARK = "] ALL DONE in "
START_MARK = "] guest started ("
DATA_DISKS = 4
DATA_DISK_MB = 64
USB_DISKS = {"backup": "6f1c2d3e-4b5a-4c69-8d7e-0a1b2c3d4e5f", "other": None}
USB_DISK_MB = 128


def log(message: str) -> None:
    """Print one progress line on stderr."""
    sys.stderr.write(f"[node-lab vm] {message}\n")
    sys.stderr.flush()


class Monitor:
    """QEMU's human monitor over a unix socket."""

    def __init__(self, path: str, timeout: float = 30.0) -> None:
        deadline = time.monotonic() + timeout
        while True:
            try:
                self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
                self.sock.connect(path)
                break
            except OSError:
                self.sock.close()
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.2)
        self.sock.settimeout(30.0)
        self._read_prompt()

    def _read_prompt(self) -> str:
        data = b""
        while not data.endswith(b"(qemu) "):
            chunk = self.sock.recv(4096)
            if not chunk:
                raise OSError("monitor closed")
            data += chunk
        text = data.decode("utf-8", "replace")
        text = re.sub(r"\x1b\[[0-9;]*[A-Za-z]|\r", "", text)
        return text[: -len("(qemu) ")]

    def command(self, line: str) -> str:
        """Run one monitor command and return what it printed (without the echo)."""
        self.sock.sendall(line.encode() + b"\n")
        text = self._read_prompt()
        lines = [x for x in text.splitlines() if x.strip() and not x.strip().endswith(line)]
        return "\n".join(lines).strip()


class Lab:
    """One QEMU run of the guest, with the host side of its requests."""

    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.work = os.path.abspath(args.work)
        self.console = os.path.join(self.work, "console.log")
        self.plugs: dict[str, int] = {}
        self.proc: subprocess.Popen[bytes] | None = None
        self.ctl: socket.socket | None = None
        self.monitor: Monitor | None = None

    # ------------------------------------------------------------------ disks
    def make_disks(self) -> None:
        disks = os.path.join(self.work, "disks")
        shutil.rmtree(disks, ignore_errors=True)
        os.makedirs(disks)
        for i in range(DATA_DISKS):
            with open(os.path.join(disks, f"d{i}.img"), "wb") as handle:
                handle.truncate(DATA_DISK_MB << 20)
        with open(os.path.join(disks, "out.img"), "wb") as handle:
            handle.truncate(256 << 20)
        for name, uuid in USB_DISKS.items():
            path = os.path.join(disks, f"usb-{name}.img")
            with open(path, "wb") as handle:
                handle.truncate(USB_DISK_MB << 20)
            argv = ["mkfs.ext4", "-q", "-F", "-L", name.upper(), "-E", "root_owner=0:0"]
            if uuid:
                argv += ["-U", uuid]
            subprocess.run([*argv, path], check=True)

    def disk(self, name: str) -> str:
        return os.path.join(self.work, "disks", name)

    # ------------------------------------------------------------------ qemu
    def argv(self, accel: str) -> list[str]:
        image = self.args.image
        cpu = ["-accel", accel, "-cpu", "host" if accel == "kvm" else "max"]
        append = (
            "root=LABEL=nodelab rw console=ttyS0 loglevel=3 panic=1 net.ifnames=0 "
            "modprobe.blacklist=kvm,kvm_amd,kvm_intel systemd.show_status=auto"
        )
        argv = [
            "qemu-system-x86_64", *cpu, "-machine", "pc", "-m", str(self.args.mem),
            "-smp", str(self.args.smp), "-nodefaults", "-display", "none", "-no-reboot",
            "-serial", f"file:{self.console}",
            "-monitor", f"unix:{self.work}/mon.sock,server=on,wait=off",
            "-pidfile", f"{self.work}/qemu.pid",
            "-kernel", os.path.join(image, "vmlinuz"),
            "-initrd", os.path.join(image, "initrd.img"),
            "-append", append,
            "-chardev", f"socket,id=ctl,path={self.work}/ctl.sock,server=on,wait=off",
            "-device", "virtio-serial-pci",
            "-device", "virtserialport,chardev=ctl,name=nodelab.ctl",
        ]
        drives = [
            ("root", os.path.join(image, "root.img"), "snapshot=on"),
            *((f"d{i}", self.disk(f"d{i}.img"), "cache=unsafe") for i in range(DATA_DISKS)),
            ("payload", os.path.abspath(self.args.payload), "readonly=on"),
            ("out", self.disk("out.img"), "cache=writeback"),
        ]
        for ident, path, extra in drives:
            argv += [
                "-drive", f"file={path},format=raw,if=none,id={ident},{extra}",
                "-device", f"virtio-blk-pci,drive={ident},serial=nodelab-{ident}",
            ]
        argv += ["-device", "qemu-xhci,id=xhci"]
        for name in USB_DISKS:
            path = self.disk(f"usb-{name}.img")
            argv += ["-drive", f"file={path},format=raw,if=none,id=usb-{name}"]
        return argv

    def start(self, accel: str) -> None:
        self.make_disks()
        for name in ("mon.sock", "ctl.sock", "qemu.pid"):
            with contextlib.suppress(FileNotFoundError):
                os.unlink(os.path.join(self.work, name))
        open(self.console, "w").close()
        self.plugs = {}
        log(f"starting qemu ({accel}), console in {self.console}")
        with open(os.path.join(self.work, f"qemu-{accel}.log"), "wb") as qlog:
            self.proc = subprocess.Popen(self.argv(accel), stdin=subprocess.DEVNULL,
                                         stdout=qlog, stderr=subprocess.STDOUT)
        try:
            self.monitor = Monitor(os.path.join(self.work, "mon.sock"))
            self.ctl = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            self.ctl.connect(os.path.join(self.work, "ctl.sock"))
        except OSError as error:
            log(f"cannot reach qemu's sockets: {error}")
            self.monitor = None
            self.ctl = None

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            log(f"stopping qemu (pid {self.proc.pid})")
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        for sock in (self.ctl, self.monitor.sock if self.monitor else None):
            if sock is not None:
                sock.close()
        self.ctl = None
        self.monitor = None

    def console_text(self) -> str:
        with open(self.console, encoding="utf-8", errors="replace") as handle:
            return handle.read()

    # ------------------------------------------------------------------ requests
    def handle(self, verb: str, args: list[str]) -> tuple[bool, str]:
        assert self.monitor is not None
        if verb == "plug" and len(args) == 1 and args[0] in USB_DISKS:
            name = args[0]
            count = self.plugs.get(name, 0)
            drive = f"usb-{name}"
            if count:
                drive = f"usb-{name}-{count}"
                out = self.monitor.command(
                    f"drive_add 0 if=none,id={drive},format=raw,file={self.disk(f'usb-{name}.img')}"
                )
                if "OK" not in out:
                    return False, out
            self.plugs[name] = count + 1
            out = self.monitor.command(
                f"device_add usb-storage,bus=xhci.0,drive={drive},id=dev-{name},"
                f"serial=NODELAB-{name.upper()}"
            )
            return (not out), out or f"{name} plugged ({drive})"
        if verb == "unplug" and len(args) == 1 and args[0] in USB_DISKS:
            out = self.monitor.command(f"device_del dev-{args[0]}")
            return (not out), out or f"{args[0]} unplugged"
        if verb in ("throttle", "unthrottle") and len(args) == 1 and re.fullmatch(r"d\d", args[0]):
            # bps_wr 1: the first write goes through, every later one waits for days.
            limits = "0 0 1 0 0 0" if verb == "throttle" else "0 0 0 0 0 0"
            out = self.monitor.command(f"block_set_io_throttle {args[0]} {limits}")
            return (not out), out or f"{args[0]} {verb}d"
        return False, f"unknown request {verb} {' '.join(args)}"

    def serve(self, deadline: float, probe: float | None) -> str:
        """Serve requests until qemu exits; return 'done', 'probe-failed' or 'timeout'."""
        assert self.proc is not None
        buffer = b""
        started = time.monotonic()
        while self.proc.poll() is None:
            now = time.monotonic()
            if now > deadline:
                return "timeout"
            late = probe is not None and now - started > probe
            if late and START_MARK not in self.console_text():
                return "probe-failed"
            if self.ctl is None:
                time.sleep(1)
                continue
            ready, _, _ = select.select([self.ctl], [], [], 1.0)
            if not ready:
                continue
            chunk = self.ctl.recv(4096)
            if not chunk:
                self.ctl = None
                continue
            buffer += chunk
            while b"\n" in buffer:
                raw, buffer = buffer.split(b"\n", 1)
                words = raw.decode("utf-8", "replace").split()
                if len(words) < 3 or words[0] != "REQ":
                    continue
                ident, verb, rest = words[1], words[2], words[3:]
                try:
                    ok, text = self.handle(verb, rest)
                except OSError as error:
                    ok, text = False, f"monitor: {error}"
                text = " ".join(text.split())
                log(f"guest asked: {verb} {' '.join(rest)} -> {'ok' if ok else 'error'} {text}")
                self.ctl.sendall(f"ACK {ident} {'ok' if ok else 'error'} {text}\n".encode())
        return "done"

    def run(self, accel: str, probe: float | None) -> str:
        deadline = time.monotonic() + self.args.timeout
        self.start(accel)
        try:
            return self.serve(deadline, probe)
        finally:
            self.stop()


def kvm_usable() -> bool:
    """Return True when /dev/kvm exists and can be opened read/write."""
    try:
        fd = os.open("/dev/kvm", os.O_RDWR)
    except OSError:
        return False
    os.close(fd)
    return True


def unpack(work: str, out: str) -> None:
    """Unpack the guest's result tar into OUT (refusing paths outside it)."""
    os.makedirs(out, exist_ok=True)
    path = os.path.join(work, "disks", "out.img")
    with open(path, "rb") as handle:
        if not handle.read(512).strip(b"\0"):
            log("the guest wrote no results onto the out disk")
            return
    try:
        with tarfile.open(path, "r:") as archive:
            archive.extractall(out, filter="data")
    except (tarfile.TarError, OSError) as error:
        log(f"no results on the out disk: {error}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--image", required=True, help="folder with root.img, vmlinuz, initrd.img")
    parser.add_argument("--payload", required=True, help="tar file given to the guest")
    parser.add_argument("--work", required=True, help="folder for disks, sockets and logs")
    parser.add_argument("--out", required=True, help="folder for the guest's results")
    parser.add_argument("--accel", choices=("auto", "kvm", "tcg"), default="auto")
    parser.add_argument("--timeout", type=float, default=2700.0, help="hard limit of one boot (s)")
    parser.add_argument(
        "--kvm-probe", type=float, default=45.0, help="seconds KVM gets to start the lab"
    )
    parser.add_argument("--mem", type=int, default=1024)
    parser.add_argument("--smp", type=int, default=2)
    args = parser.parse_args()
    os.makedirs(args.work, exist_ok=True)
    lab = Lab(args)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(130))
    state = ""
    try:
        if args.accel in ("auto", "kvm") and kvm_usable():
            state = lab.run("kvm", args.kvm_probe)
            if state == "done" and START_MARK not in lab.console_text():
                state = "probe-failed"
            if state == "probe-failed":
                if args.accel == "kvm":
                    log("KVM did not boot the guest")
                    return 1
                log("KVM did not boot the guest; falling back to TCG (software emulation)")
        elif args.accel == "kvm":
            log("/dev/kvm is not usable")
            return 1
        elif args.accel == "auto":
            log("/dev/kvm is not usable; using TCG (software emulation)")
        if state in ("", "probe-failed"):
            state = lab.run("tcg", None)
    except KeyboardInterrupt:
        lab.stop()
        return 130
    finally:
        lab.stop()
    if state == "timeout":
        log(f"the guest did not finish within {args.timeout:.0f}s (see {lab.console})")
    unpack(lab.work, args.out)
    shutil.copy(lab.console, os.path.join(args.out, "console.log"))
    if DONE_MARK not in lab.console_text():
        log(f"the guest did not reach the end of its scenarios (see {lab.console})")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
