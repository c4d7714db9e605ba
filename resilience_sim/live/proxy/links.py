"""One proxied connection: a client socket, an upstream socket and the two links between them.

The *upstream* link carries client → server, the *downstream* link server → client. Each link has a
reader thread and, only once a toxic is active on it, a writer thread; so a connection runs at most
four threads. What holds:

* **pass-through is a tight loop**: while no stage is active and nothing is queued or in flight
  (:attr:`Link.direct`), the reader sends each chunk itself, right after ``recv``, with no lock, no
  timestamp and no hand-off;
* otherwise the reader timestamps each chunk (up to 32 KiB) and queues it (at most 1024 queued:
  beyond that it stops reading, so the sender feels the back-pressure); the writer passes each
  chunk through the active stages in order, then sends it. Order is kept across the switch both
  ways: the reader goes back to sending itself only once the writer has sent everything queued;
* stages are added, restarted and removed on live links (under the connection's lock); a stage
  waiting in :meth:`Link.wait` wakes when that happens, or when the link ends;
* **ends**: a link's end (its source's EOF through the chain, or a toxic closing it) shuts its
  destination socket down, so the peer sees a FIN and the other link reads EOF and follows; a reset
  sets ``SO_LINGER`` 0 on both sockets and wakes every reader without a FIN, so the close is an RST;
  :meth:`Connection.stop` ends both links and shuts both sockets. The last of the connection's
  threads to finish closes both sockets and tells the proxy (``on_close``).

Differences from Toxiproxy's link: the stages of one link run in one writer thread, one after the
other, so the waits of two toxics on the same link add up where Toxiproxy's goroutines overlap them
(latency is counted from the chunk's arrival, so it overlaps anyway); a chunk that comes out of a
latency toxic carries its release time (Toxiproxy's timestamp arithmetic differs).
"""
from __future__ import annotations

import random
import socket
import struct
import threading
import time
from collections import deque

from .toxics import EndLink, LinkGone, ResetLink, Stage

CHUNK = 32 * 1024
QUEUE_LIMIT = 1024
MAX_WAIT = 3600.0                     # one wait's longest sleep (a latency of years is waited in hours)
_END = object()                       # queued after a link's last chunk: its source reached EOF
_LINGER_ZERO = struct.pack("ii", 1, 0)


def shutdown(sock: socket.socket, how: int = socket.SHUT_RDWR) -> None:
    try:
        sock.shutdown(how)
    except OSError:
        pass


class Link:
    """One direction of a connection: ``src`` → active stages → ``dst`` (see the module docstring)."""

    def __init__(self, connection: "Connection", direction: str, src, dst, seed: int):
        self.connection, self.direction, self.src, self.dst = connection, direction, src, dst
        self.cond = threading.Condition(connection.lock)
        self.stages: list[Stage] = []
        self.queue: deque = deque()
        self.direct = True             # the reader sends itself: no active stage, nothing queued or in flight
        self.busy = False              # the writer holds a chunk
        self.ended = False
        self.writer: threading.Thread | None = None
        self._seed, self._rng = seed, None

    @property
    def rng(self) -> random.Random:
        """This link's own stream (jitter, slicer cuts), derived from the proxy's at the connection's start."""
        if self._rng is None:
            self._rng = random.Random(self._seed)
        return self._rng

    # --- stages, changed under the connection's lock ------------------------------------------------
    def begin(self, toxics, draw) -> None:
        """The stages of ``toxics`` (the chain when the connection starts), each drawing its toxicity."""
        with self.cond:
            for toxic in toxics:
                self._start(self._stage(toxic), draw)
            self._refresh()

    def attach(self, toxic, draw) -> None:
        """Append ``toxic``'s stage; the stage before it restarts, as in Toxiproxy."""
        with self.cond:
            if self.ended:
                return
            if self.stages:
                self._start(self.stages[-1], draw)
            self._start(self._stage(toxic), draw)
            self._refresh()

    def restart(self, toxic, draw) -> None:
        """``toxic`` was updated: its stage restarts with the new settings and draws again."""
        with self.cond:
            for stage in self.stages:
                if stage.toxic is toxic:
                    self._start(stage, draw)
            self._refresh()

    def detach(self, toxic, draw) -> None:
        """Remove ``toxic``'s stage (what it holds goes on); the stage before it restarts. Removing a
        timeout toxic ends the link, whatever its draw."""
        with self.cond:
            index = next((i for i, s in enumerate(self.stages) if s.toxic is toxic), None)
            if index is None:
                return
            stage = self.stages.pop(index)
            stage.removed, stage.generation = True, stage.generation + 1
            if index:
                self._start(self.stages[index - 1], draw)
            self._refresh()
            self.cond.notify_all()
        if stage.closes_when_removed:
            self.finish()

    def _stage(self, toxic) -> Stage:
        stage = toxic.kind.stage(toxic, self)
        self.stages.append(stage)
        return stage

    def _start(self, stage: Stage, draw) -> None:
        stage.generation += 1
        stage.active = draw() < stage.toxic.toxicity
        stage.start(time.monotonic())
        self.cond.notify_all()

    def _refresh(self) -> None:
        if self.ended:
            return
        if any(stage.runs for stage in self.stages):
            self.direct = False
            self._ensure_writer()
        elif not self.queue and not self.busy:
            self.direct = True

    def _ensure_writer(self) -> None:
        if self.writer is None and not self.ended:
            self.writer = self.connection.spawn(self._write_loop, f"{self.direction}-writer")

    # --- the reader ------------------------------------------------------------------------------------
    def read_loop(self) -> None:
        src, dst = self.src, self.dst
        while True:
            try:
                data = src.recv(CHUNK)
            except OSError:
                break
            if not data:
                break
            if self.direct:
                try:
                    dst.sendall(data)
                except OSError:
                    self.finish()
                continue
            self._push(data, time.monotonic())
        self._end_of_input()

    def _push(self, item, arrived: float) -> None:
        with self.cond:
            while len(self.queue) >= QUEUE_LIMIT and not self.ended:
                self.cond.wait()
            if self.ended:
                return                                  # the link is closed: what still comes is dropped
            self.direct = False
            self.queue.append((item, arrived))
            self.cond.notify_all()

    def _end_of_input(self) -> None:
        with self.cond:
            if self.ended:
                return
            if not self.direct:
                self.queue.append((_END, time.monotonic()))
                self.cond.notify_all()
                return
        self.finish()

    # --- the writer ------------------------------------------------------------------------------------
    def _write_loop(self) -> None:
        try:
            while True:
                with self.cond:
                    item, arrived = self._next()
                    self.busy = True
                    stages = list(self.stages)
                try:
                    if item is _END:
                        self._end(stages, 0)
                    else:
                        self._chunk(stages, 0, item, arrived)
                finally:
                    with self.cond:
                        self.busy = False
                        self._refresh()
        except EndLink:
            self.finish()
        except ResetLink:
            self.connection.reset()
        except LinkGone:
            pass
        except BaseException:
            self.finish()                               # a bug must not leave the connection hanging
            raise

    def _next(self):
        """The next queued item (the lock held); ends the link when a timeout toxic's silence ran out."""
        while True:
            if self.ended:
                raise LinkGone
            if self.queue:
                self.cond.notify_all()                  # room for the reader again
                return self.queue.popleft()
            deadline = self._deadline()
            now = time.monotonic()
            if deadline is not None and now >= deadline:
                raise EndLink
            self.cond.wait(None if deadline is None else min(deadline - now, MAX_WAIT))

    def _deadline(self) -> float | None:
        deadlines = [s.deadline for s in self.stages if s.runs and s.deadline is not None]
        return min(deadlines) if deadlines else None

    def _chunk(self, stages: list[Stage], i: int, data: bytes, arrived: float) -> None:
        while i < len(stages) and not stages[i].runs:
            i += 1
        if i == len(stages):
            try:
                self.dst.sendall(data)
            except OSError:
                raise EndLink from None
            return
        stages[i].chunk(data, arrived, lambda d, t: self._chunk(stages, i + 1, d, t))

    def _end(self, stages: list[Stage], i: int) -> None:
        while i < len(stages) and not stages[i].runs:
            i += 1
        if i == len(stages):
            raise EndLink
        stages[i].end(lambda: self._end(stages, i + 1))

    def wait(self, until: float, stage: Stage, interruptible: bool = True) -> bool:
        """Wait until ``until`` (monotonic seconds): True when that moment came; False at once when
        ``stage`` restarts or is removed (unless not ``interruptible``). Raises :class:`LinkGone`
        when the link ends meanwhile and :class:`EndLink` when a timeout toxic's silence runs out."""
        generation = stage.generation
        with self.cond:
            while True:
                if self.ended:
                    raise LinkGone
                if interruptible and stage.generation != generation:
                    return False
                now = time.monotonic()
                deadline = self._deadline()
                if deadline is not None and now >= deadline:
                    raise EndLink
                if now >= until:
                    return True
                self.cond.wait(min((until if deadline is None else min(until, deadline)) - now, MAX_WAIT))

    # --- ending ------------------------------------------------------------------------------------------
    def _close(self) -> None:
        """Mark the link ended (the lock held): nothing more is queued or sent; waiters wake."""
        self.ended, self.direct = True, False
        self.queue.clear()
        self.cond.notify_all()

    def finish(self) -> None:
        """End this link with an ordinary close: its destination is shut down (a FIN), unless the
        connection is being reset."""
        with self.cond:
            if self.ended:
                return
            self._close()
            quiet = self.connection.resetting
        if not quiet:
            shutdown(self.dst)


class Connection:
    """A client socket and an upstream socket joined by two links (see the module docstring)."""

    def __init__(self, name: str, client: socket.socket, upstream: socket.socket, seeds, on_close):
        self.name, self.client, self.upstream = name, client, upstream
        self.lock = threading.Lock()
        self.resetting = False
        self.links = {"upstream": Link(self, "upstream", client, upstream, seeds[0]),
                      "downstream": Link(self, "downstream", upstream, client, seeds[1])}
        self.threads: list[threading.Thread] = []
        self._alive = 0
        self._closed = False
        self._on_close = on_close

    def start(self) -> None:
        """Start both readers (the writers start with the first active toxic of their link)."""
        with self.lock:
            threads = [self._thread(link.read_loop, f"{link.direction}-reader") for link in self.links.values()]
        for thread in threads:
            thread.start()

    def spawn(self, target, role: str) -> threading.Thread:
        """Start a thread of this connection (the lock held)."""
        thread = self._thread(target, role)
        thread.start()
        return thread

    def _thread(self, target, role: str) -> threading.Thread:
        thread = threading.Thread(target=self._run, args=(target,), daemon=True, name=f"proxy-{self.name}-{role}")
        self._alive += 1
        self.threads.append(thread)
        return thread

    def _run(self, target) -> None:
        try:
            target()
        finally:
            with self.lock:
                self._alive -= 1
                last = self._alive == 0 and not self._closed
                self._closed = self._closed or last
            if last:
                self.client.close()
                self.upstream.close()
                self._on_close(self)

    def reset(self) -> None:
        """End the connection with a TCP reset to both peers (``SO_LINGER`` 0, no FIN first)."""
        with self.lock:
            if self.resetting or self._closed:
                return
            self.resetting = True
            for link in self.links.values():
                link._close()
        for sock in (self.client, self.upstream):
            try:
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, _LINGER_ZERO)
            except OSError:
                pass
            shutdown(sock, socket.SHUT_RD)          # wakes the readers; sends nothing

    def stop(self) -> None:
        """End both links and shut both sockets down: every thread of it wakes and finishes."""
        with self.lock:
            for link in self.links.values():
                link._close()
        shutdown(self.client)
        shutdown(self.upstream)

    def join(self, timeout: float) -> None:
        for thread in list(self.threads):
            if thread is not threading.current_thread():
                thread.join(timeout)
