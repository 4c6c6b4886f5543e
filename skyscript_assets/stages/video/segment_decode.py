"""One video stream decoded on several cores, its frames handed out in order.

    for item in analysed_frames(container, stream, analyse, workers=2):
        ...

The stream is demuxed once and cut at its keyframes into segments of whole GOPs. Each
segment is decoded by a decoder of its own, single-threaded, in one of `workers` threads,
and `analyse(frame, number)` runs in that thread on each decoded frame (`number` counts
the segment's frames from 0); what it returns comes back to the caller in presentation
order, segment after segment. FFmpeg's frame threads wait on each other's reference rows
(2 cores, HEVC 1440x1074: two frame threads ~15 % slower than two segments; its automatic
choice, three threads, ~25 % slower still); independent segments keep every core busy with
no such waits.

Exactly the frames of a sequential decode come out, in the same order:

* a segment starts at a keyframe packet with a timestamp; frames shown before that
  keyframe belong to the previous segment. In an open GOP (HEVC CRA, H.264 recovery
  points) the pictures right after the keyframe in decode order may be shown before it
  and reference the previous GOP: the previous segment's decoder also gets the keyframe
  and those leading packets, keeps their frames and drops the keyframe's; the next
  segment drops them (FFmpeg does not even output the undecodable ones);
* an FFmpeg error is raised to the caller where it happened in the order, after every
  frame decoded before it; nothing after it is handed out.

Segments are not all alike (an encoder puts a keyframe at each scene change, so one GOP
may be ten times the next), and the one decoded last is decoded alone while the other
cores idle. So a decoder takes the first segment not yet taken only when no other decoder
is still on an earlier one; otherwise the longest of those read ahead, as long as what it
will hand out fits in the room left (judged from the items handed out so far: in order
until there are some). One decoder always stays on the earliest segment, so the one the
caller reads next is always being decoded. Once the demuxer is done, a segment with more
packets than all the others left (the last one always) will end last, with the cores to
itself: it gets FFmpeg's frame threads, one per worker.

Memory is bounded whatever the length of the video: at most `4 * workers` segments are
read ahead, and 64 MiB of packets waiting for a decoder (but always the next segment); what
`analyse` returns waits in a buffer capped at `budget_bytes` (the caller says what each
item weighs); a decoder running ahead waits for the caller, the one the caller is reading
from never does.

Codecs outside `SPLITTABLE_CODECS`, `workers=1`, or a stream without timestamps decode as
one segment on the stream's own decoder, with `workers` frame threads (a stream whose
timestamps stop is not split from there on).
"""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

import av

# Decoders known to start cleanly at a keyframe packet with only the stream's extradata.
SPLITTABLE_CODECS = frozenset(
    {"h264", "hevc", "vp8", "vp9", "av1", "libdav1d", "mpeg4", "mpeg2video", "mpeg1video", "mjpeg"}
)
MIN_SEGMENT_PACKETS = 24  # shorter GOPs join the next one: each segment costs a decoder reset
BATCH_FRAMES = 8
# Segments of packets read ahead of the consumer: 4 a decoder, so that the longest can be
# taken early; at most 64 MiB of packets waiting for a decoder (high bit rates), though
# always the next segment.
READ_AHEAD_PER_WORKER = 4
READ_AHEAD_BYTES = 64 * 2**20


@dataclass
class _Segment:
    number: int
    packets: list = field(default_factory=list)  # decode order, starting at a keyframe (but the first)
    tail: list = field(default_factory=list)  # the next keyframe and its leading pictures (open GOP)
    start_pts: int | None = None  # frames shown before this are the previous segment's
    end_pts: int | None = None  # frames shown from this on are the next segment's
    packet_bytes: int = 0
    items: deque = field(default_factory=deque)  # (batch of items, their bytes), or an exception
    taken: bool = False  # a decoder has it
    decoded: bool = False


class _Pipeline:
    """Demuxer thread, decoder threads and the consumer, meeting under one condition."""

    def __init__(self, container, stream, analyse: Callable, workers: int, budget_bytes: int):
        self.container, self.stream, self.analyse = container, stream, analyse
        self.workers, self.budget_bytes = workers, budget_bytes
        codec = stream.codec_context
        self.split = workers > 1 and codec.name in SPLITTABLE_CODECS
        self.lock = threading.Condition()
        self.segments: dict[int, _Segment] = {}  # demuxed, not yet fully read by the consumer
        self.demuxed = 0  # segments the demuxer finished
        self.demux_done = False
        self.demux_error: BaseException | None = None
        self.reading = 0  # the segment the consumer reads now
        self.packet_bytes = 0  # of the segments read ahead and not yet decoded
        self.buffered = 0
        self.handed_bytes = self.handed_frames = 0  # all items so far: what a frame's item weighs
        self.stop = False

    # -- demuxer ------------------------------------------------------------------------

    def demux(self) -> None:
        current = _Segment(0)
        splitting = self.split
        waiting: _Segment | None = None  # closed at a keyframe, still collecting that keyframe's leading packets
        try:
            for packet in self.container.demux(self.stream):
                if self.stop:
                    return  # the consumer is gone
                if packet.size == 0:
                    continue  # the demuxer's end-of-stream packet
                if packet.pts is None:
                    splitting = False  # frames without timestamps cannot be assigned to a side of a split
                if waiting is not None and not (packet.pts is not None and packet.pts < current.start_pts):
                    waiting.tail = current.packets[:] if len(current.packets) > 1 else []
                    self._publish(waiting)
                    waiting = None
                if (
                    splitting
                    and waiting is None
                    and packet.is_keyframe
                    and packet.pts is not None
                    and len(current.packets) >= MIN_SEGMENT_PACKETS
                ):
                    current.end_pts = packet.pts
                    waiting, current = current, _Segment(current.number + 1, start_pts=packet.pts)
                current.packets.append(packet)
        except BaseException as exc:  # noqa: BLE001 - a damaged file: raised after what was read before it
            self.demux_error = exc
        if waiting is not None:
            waiting.tail = current.packets[:] if len(current.packets) > 1 else []
            self._publish(waiting, last=not current.packets)
        if current.packets:
            self._publish(current, last=True)
        with self.lock:
            self.demux_done = True
            self.lock.notify_all()

    def _publish(self, segment: _Segment, last: bool = False) -> None:
        with self.lock:
            # Read ahead a bounded number of segments: packets of a whole file are not kept.
            while (
                not self.stop
                and segment.number > self.reading + 1
                and (
                    segment.number - self.reading > READ_AHEAD_PER_WORKER * self.workers
                    or self.packet_bytes > READ_AHEAD_BYTES
                )
            ):
                self.lock.wait(0.1)
            segment.packet_bytes = sum(packet.size for packet in segment.packets)
            self.packet_bytes += segment.packet_bytes
            self.segments[segment.number] = segment
            self.demuxed = segment.number + 1
            self.demux_done = last  # set with the last segment, so a decoder taking it knows
            self.lock.notify_all()

    # -- decoders -----------------------------------------------------------------------

    def decode(self) -> None:
        own: av.CodecContext | None = None
        while (taken := self._take_segment()) is not None:
            segment, ends_last = taken
            # The segment that ends last has the cores to itself once the others are done:
            # FFmpeg's threads then beat one thread (a video of a single GOP is all of it).
            threads = self.workers if ends_last or not self.split else 1
            if segment.number == 0:
                codec = self.stream.codec_context  # carries the stream's side data (rotation) to the first frame
                _set_threads(codec, threads)
            elif threads > 1:
                codec = _decoder_like(self.stream.codec_context, threads)
            else:
                own = own or _decoder_like(self.stream.codec_context, threads=1)
                codec = own
            count = 0
            batch: list = []  # handed over a few frames at a time: one lock round per batch, not per frame
            batch_bytes = 0
            try:
                for packet in [*segment.packets, *segment.tail, None]:
                    for frame in codec.decode(packet):
                        if frame.pts is not None and (
                            (segment.start_pts is not None and frame.pts < segment.start_pts)
                            or (segment.end_pts is not None and frame.pts >= segment.end_pts)
                        ):
                            continue  # shown in the neighbouring segment
                        item, nbytes = self.analyse(frame, count)
                        count += 1
                        batch.append(item)
                        batch_bytes += nbytes
                        if len(batch) == BATCH_FRAMES:
                            if not self._put(segment, (batch, batch_bytes)):
                                return
                            batch, batch_bytes = [], 0
                if batch and not self._put(segment, (batch, batch_bytes)):
                    return
                if codec is own:
                    codec.flush_buffers()  # drained: ready for the next segment's keyframe
            except BaseException as exc:  # noqa: BLE001 - handed to the consumer, raised in its place
                if not batch or self._put(segment, (batch, batch_bytes)):
                    self._put(segment, exc)
                return
            finally:
                with self.lock:
                    segment.decoded = True
                    segment.packets, segment.tail = [], []
                    self.packet_bytes -= segment.packet_bytes
                    self.lock.notify_all()

    def _take_segment(self) -> tuple[_Segment, bool] | None:
        """The next segment to decode, and whether it will likely end last: the demuxer is
        done and the other segments left have fewer packets than it (the last one always)."""
        with self.lock:
            while not self.stop:
                untaken = [segment for segment in self.segments.values() if not segment.taken]  # in order
                if untaken:
                    segment = self._choose(untaken)
                    segment.taken = True
                    rest = sum(len(other.packets) for other in untaken if other is not segment)
                    return segment, self.demux_done and rest < len(segment.packets)
                if self.demux_done:
                    return None
                self.lock.wait(0.1)
            return None

    def _choose(self, untaken: list[_Segment]) -> _Segment:
        """The first segment not taken, unless another decoder is still on an earlier one
        and items have been handed out to weigh by: then the one with most packets among
        those read ahead whose items should fit in the room left. Longest first keeps a long
        GOP from being decoded alone at the end while the other cores idle; the decoder kept
        on the earliest segment means the one the consumer reads next is always being
        decoded, so no budget wait can block it."""
        first = untaken[0]
        if not self.handed_frames:  # what an item weighs is not known yet: nothing can be said to fit
            return first
        if not any(s.taken and not s.decoded and s.number < first.number for s in self.segments.values()):
            return first
        room = self.budget_bytes - self.buffered
        per_frame = self.handed_bytes / self.handed_frames
        # The first is read next whatever its size (and its decoder never waits for room).
        fitting = [first] + [segment for segment in untaken[1:] if len(segment.packets) * per_frame <= room]
        return max(fitting, key=lambda segment: len(segment.packets))  # ties: the earliest

    def _put(self, segment: _Segment, entry) -> bool:
        with self.lock:
            # Only a decoder ahead of the consumer waits for room; the one it reads from must go on.
            while not self.stop and segment.number != self.reading and self.buffered > self.budget_bytes:
                self.lock.wait(0.1)
            if self.stop:
                return False
            segment.items.append(entry)
            if not isinstance(entry, BaseException):
                self.buffered += entry[1]
                self.handed_bytes += entry[1]
                self.handed_frames += len(entry[0])
            self.lock.notify_all()
            return True

    # -- consumer -----------------------------------------------------------------------

    def items(self) -> Iterator:
        while True:
            with self.lock:
                while not (self.reading in self.segments or self.demux_done):
                    self.lock.wait(0.1)
                segment = self.segments.get(self.reading)
                if segment is None:
                    break  # every segment read
                self.lock.notify_all()
            while True:
                with self.lock:
                    while not segment.items and not segment.decoded:
                        self.lock.wait(0.1)
                    if not segment.items:
                        break
                    entry = segment.items.popleft()
                    if not isinstance(entry, BaseException):
                        self.buffered -= entry[1]
                    self.lock.notify_all()
                if isinstance(entry, BaseException):
                    raise entry
                yield from entry[0]
            with self.lock:
                del self.segments[self.reading]
                self.reading += 1
                self.lock.notify_all()
        if self.demux_error is not None:
            raise self.demux_error


def _decoder_like(template, threads: int) -> av.CodecContext:
    """A fresh decoder for the template's stream, on `threads` threads."""
    codec = av.CodecContext.create(template.name, "r")
    if template.extradata:
        codec.extradata = template.extradata
    codec.width, codec.height = template.width, template.height
    if template.pix_fmt:
        codec.pix_fmt = template.pix_fmt
    _set_threads(codec, threads)
    return codec


def _set_threads(codec, threads: int) -> None:
    # FFmpeg's frame threads, as many as the cores this decode may use. Its automatic
    # choice (thread_type AUTO) starts one more than the machine has cores: measured on
    # 2 cores, HEVC 1440x1074, 3 frame threads ~25 % slower in wall time than 2.
    codec.thread_count = threads
    if threads > 1:
        codec.thread_type = "FRAME"


def analysed_frames(
    container, stream, analyse: Callable, *, workers: int = 2, budget_bytes: int = 128 * 2**20
) -> Iterator:
    """`analyse(frame, number)` -> (item, nbytes) on every frame, items in presentation order."""
    pipeline = _Pipeline(container, stream, analyse, max(1, workers), budget_bytes)
    threads = [threading.Thread(target=pipeline.demux, name="skyscript-demux", daemon=True)]
    threads += [
        threading.Thread(target=pipeline.decode, name=f"skyscript-decode-{n}", daemon=True)
        for n in range(pipeline.workers if pipeline.split else 1)
    ]
    for thread in threads:
        thread.start()
    try:
        yield from pipeline.items()
    finally:  # done, failed or closed early: every thread ends before the container closes
        with pipeline.lock:
            pipeline.stop = True
            pipeline.lock.notify_all()
        for thread in threads:
            thread.join()
