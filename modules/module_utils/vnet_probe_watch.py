"""The capture side of `path_probe`: a detached watcher per probe and host that reads
every frame of the path's devices here (AF_PACKET, both directions) and counts the
probe's frames by sequence number, until `count` were seen on every device, the
controller asks it to stop (collect), or its time bound ends, whichever comes first.

start() returns once every socket is bound, so frames injected after it are seen. The
watcher is a grandchild (double fork: init reaps it), in a session of its own, its
standard streams on /dev/null and every inherited descriptor closed (the host lock the
play holds included). Its state is /run/vnetctl/path-probe/MARKER/: `watcher` (pid, start
time, deadline), `stop` (from collect: when to stop), `result`, and `helpers` (the links
an inject into a tap made, vnet_probe_tap): the watcher removes those when it ends, so an
inject killed mid-way leaves nothing past the watch's time bound. collect() removes it all.
Standard library only (runs on the host).
"""

import json
import os
import select
import socket
import struct
import time

try:  # under ansible-playbook, module_utils files travel with the module
    from ansible.module_utils import vnet_probe_frames as frames
    from ansible.module_utils import vnet_probe_tap as tap
except ImportError:  # vnetctl's runner preloads every module_utils file
    import vnet_probe_frames as frames
    import vnet_probe_tap as tap

STATE_ROOT = "/run/vnetctl/path-probe"
ETH_P_ALL = 0x0003
PACKET_OUTGOING = 4
SOL_PACKET, PACKET_STATISTICS = 263, 6
READY_S = 5.0  # for the watcher to bind its sockets
POLL_S = 0.05
GRACE_S = 0.5  # after collect: frames still in flight
MARGIN_S = 2.0  # past the deadline, collect gives up on the watcher
STALE_S = 600  # a state directory no collect took (the controller went away)
RCVBUF = 4 << 20
FRAME_MAX = 65536 + 128


def state_dir(marker):
    return os.path.join(STATE_ROOT, marker)


def start(marker, devices, count, timeout):
    """Fork the watcher of `devices` (existing links) for at most `timeout` s; returns
    {"watched": [dev], "not_watched": {dev: why}} once its sockets are bound."""
    sweep()
    directory = state_dir(marker)
    os.makedirs(directory, mode=0o700)
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:  # first child: fork the watcher and go, so init reaps it
        try:
            os.close(read_end)
            os.setsid()
            if os.fork() == 0:
                _detach(write_end)
                try:
                    _watch(directory, marker, devices, count, timeout, write_end)
                except Exception as exc:  # noqa: BLE001 -- said in the result, for collect
                    tap.remove_recorded(directory)
                    _write(os.path.join(directory, "result"),
                           {"error": "%s: %s" % (type(exc).__name__, exc)})  # fmt: skip
        finally:
            os._exit(0)
    os.close(write_end)
    os.waitpid(pid, 0)
    ready = _read_ready(read_end)
    if ready is None:  # nothing left behind: a watcher that did start is stopped
        _kill(_read_json(os.path.join(directory, "watcher")) or {})
        _remove(directory)
        raise OSError("the watcher did not bind its sockets within %g s" % READY_S)
    return ready


def _read_ready(fd):
    data, deadline = b"", time.monotonic() + READY_S
    try:
        while time.monotonic() < deadline:
            if not select.select([fd], [], [], max(deadline - time.monotonic(), 0))[0]:
                return None
            chunk = os.read(fd, 65536)
            if not chunk:
                break
            data += chunk
    finally:
        os.close(fd)
    try:
        return json.loads(data.decode())
    except ValueError:
        return None


def _detach(keep):
    null = os.open(os.devnull, os.O_RDWR)
    for fd in (0, 1, 2):
        os.dup2(null, fd)
    for name in os.listdir("/proc/self/fd"):
        fd = int(name)
        if fd > 2 and fd != keep:
            try:
                os.close(fd)
            except OSError:
                pass  # the listing's own descriptor, closed already


def _start_ticks(pid):
    """The process's start time (clock ticks since boot): a pid with another start time
    is another process."""
    with open("/proc/%d/stat" % pid) as stat:
        return int(stat.read().rsplit(")", 1)[1].split()[19])


def _write(path, doc):
    tmp = path + ".tmp"
    with open(tmp, "w") as out:
        json.dump(doc, out)
    os.replace(tmp, path)


def _watch(directory, marker, devices, count, timeout, ready_fd):
    started = time.time()
    deadline = started + timeout
    sockets, not_watched = {}, {}
    for dev in devices:
        try:
            sock = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(ETH_P_ALL))
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, RCVBUF)
            sock.bind((dev, 0))
            sock.setblocking(False)
            sockets[sock] = dev
        except OSError as exc:
            not_watched[dev] = exc.strerror or str(exc)
    me = {"pid": os.getpid(), "ticks": _start_ticks(os.getpid()), "deadline": deadline}
    _write(os.path.join(directory, "watcher"), me)
    watched = [d for d in devices if d in sockets.values()]
    os.write(ready_fd, json.dumps({"watched": watched, "not_watched": not_watched}).encode())
    os.close(ready_fd)
    seen = {dev: {} for dev in watched}  # dev: {seq: direction}
    problems = {}  # dev: what its socket reported (ENETDOWN: the device is down)
    needle, end = bytes.fromhex(marker), "time"
    stop_file = os.path.join(directory, "stop")
    while time.time() < deadline:
        if os.path.exists(stop_file):
            deadline, end = min(deadline, _stop_at(stop_file)), "collected"
        ready = select.select(list(sockets), [], [], max(min(POLL_S, deadline - time.time()), 0))
        for sock in ready[0]:
            try:
                _drain(sock, needle, seen[sockets[sock]])
            except OSError as exc:
                problems[sockets[sock]] = exc.strerror or str(exc)
        if all(len(s) >= count for s in seen.values()):
            end = "all seen"
            break
    result = {"end": end, "elapsed_s": round(time.time() - started, 3), "devices": {}}
    for sock, dev in sockets.items():
        result["devices"][dev] = {
            "count": len(seen[dev]),
            "directions": sorted(set(seen[dev].values())),
            "capture_drops": _drops(sock),
        }
        if dev in problems:
            result["devices"][dev]["problem"] = problems[dev]
        sock.close()
    result["not_watched"] = not_watched
    tap.remove_recorded(directory)  # an inject cut off before its own cleanup
    _write(os.path.join(directory, "result"), result)


def _stop_at(path):
    try:
        with open(path) as stop:
            return float(stop.read().strip())
    except (OSError, ValueError):
        return time.time()


def _drain(sock, needle, seen, most=10000):
    for _ in range(most):  # bounded: a busy device must not starve the clock
        try:
            data, address = sock.recvfrom(FRAME_MAX)
        except (BlockingIOError, InterruptedError):
            return
        for seq in frames.sequences(data, needle):
            seen.setdefault(seq, "out" if address[2] == PACKET_OUTGOING else "in")


def _drops(sock):
    """Frames the kernel dropped because this socket fell behind (a busy device): a
    probe frame among them would be missed."""
    try:
        return struct.unpack("II", sock.getsockopt(SOL_PACKET, PACKET_STATISTICS, 8))[1]
    except OSError:
        return None


def collect(marker):
    """Stop the watcher after GRACE_S, wait for its result (bounded by its own deadline),
    remove its state; the result, or raise OSError saying why there is none."""
    directory = state_dir(marker)
    if not os.path.isdir(directory):
        raise OSError("no watcher for this probe here (never started, or collected)")
    try:
        with open(os.path.join(directory, "stop.tmp"), "w") as out:
            out.write("%f" % (time.time() + GRACE_S))
        os.replace(os.path.join(directory, "stop.tmp"), os.path.join(directory, "stop"))
        about = _read_json(os.path.join(directory, "watcher")) or {}
        give_up = min(about.get("deadline", 0), time.time() + GRACE_S) + MARGIN_S
        result_path = os.path.join(directory, "result")
        while not os.path.exists(result_path) and time.time() < give_up:
            time.sleep(POLL_S)
        result = _read_json(result_path)
        if result is not None and "error" in result:
            raise OSError("the watcher failed: %s" % result["error"])
        if result is None:
            _kill(about)
            raise OSError("the watcher wrote no result (stopped by its pid)")
        return result
    finally:
        tap.remove_recorded(directory)
        _remove(directory)


def watching(marker):
    """A watcher of this probe runs here (started, its watch not ended)."""
    directory = state_dir(marker)
    return os.path.isdir(directory) and not os.path.exists(os.path.join(directory, "result"))


def _read_json(path):
    try:
        with open(path) as src:
            return json.load(src)
    except (OSError, ValueError):
        return None


def _kill(about):
    pid = about.get("pid")
    try:
        if pid and _start_ticks(pid) == about.get("ticks"):
            os.kill(pid, 9)
    except (OSError, ValueError, IndexError):
        pass  # gone already


def _remove(directory):
    for name in os.listdir(directory):
        try:
            os.unlink(os.path.join(directory, name))
        except FileNotFoundError:
            pass  # a temporary file, renamed meanwhile
    os.rmdir(directory)


def sweep():
    """State directories no collect took (the controller went away mid-probe), once they
    are older than any watcher can live."""
    try:
        names = os.listdir(STATE_ROOT)
    except OSError:
        return
    for name in names:
        path = os.path.join(STATE_ROOT, name)
        try:
            if frames.MARKER.match(name) and time.time() - os.stat(path).st_mtime > STALE_S:
                tap.remove_recorded(path)
                _remove(path)
        except OSError:
            pass
