"""One video stream decoded on several cores, its frames handed out in order.

    for item in analysed_frames(container, stream, analyse, workers=2):
        ...

The stream is demuxed once and cut at its keyframes into segments of whole GOPs. Each
segment is decoded by a decoder of its own, single-threaded, in one of `workers` threads,
and `analyse(frame, number)` runs in that thread on each decoded frame (`number` counts
the segment's frames from 0); what it returns comes back to the caller in presentation
order, segment after segment. FFmpeg's frame threading keeps only ~1.5 of 2 cores busy
and spends ~20-30 % more CPU per frame (HEVC) waiting on reference rows; independent
segments keep every core busy with no such waits.

Exactly the frames of a sequential decode come out, in the same order:

* a segment starts at a keyframe packet with a timestamp; frames shown before that
  keyframe belong to the previous segment. In an open GOP (HEVC CRA, H.264 recovery
  points) the pictures right after the keyframe in decode order may be shown before it
  and reference the previous GOP: the previous segment's decoder also gets the keyframe
  and those leading packets, keeps their frames and drops the keyframe's; the next
  segment drops them (FFmpeg does not even output the undecodable ones);
* an FFmpeg error is raised to the caller where it happened in the order, after every
  frame decoded before it; nothing after it is handed out.

Memory is bounded whatever the length of the video: at most `2 * workers` segments of
packets are read ahead, and what `analyse` returns waits in a buffer capped at
`budget_bytes` (the caller says what each item weighs); a decoder running ahead waits
for the caller, the one the caller is reading from never does.

Codecs outside `SPLITTABLE_CODECS`, `workers=1`, or a stream without timestamps decode as
one segment on the stream's own decoder with FFmpeg's threads (a stream whose timestamps
stop is not split from there on). Once the demuxer is done, a segment with more packets than
all those after it (the last one always) will end last, with the cores to itself once the
others are done: it also gets FFmpeg's threads.
"""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

import av

# Decoders known to start cleanly at a keyframe packet with only the stream's extradata.
SPLITTABLE_CODECS = frozenset({"h264", "hevc", "vp8", "vp9", "av1", "libdav1d", "mpeg4", "mpeg2video", "mpeg1video", "mjpeg"})
MIN_SEGMENT_PACKETS = 24  # shorter GOPs join the next one: each segment costs a decoder reset
BATCH_FRAMES = 8


@dataclass
class _Segment:
    number: int
    packets: list = field(default_factory=list)  # decode order, starting at a keyframe (but the first)
    tail: list = field(default_factory=list)  # the next keyframe and its leading pictures (open GOP)
    start_pts: int | None = None  # frames shown before this are the previous segment's
    end_pts: int | None = None  # frames shown from this on are the next segment's
    items: deque = field(default_factory=deque)  # (batch of items, their bytes), or an exception
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
        self.next_to_decode = 0
        self.reading = 0  # the segment the consumer reads now
        self.buffered = 0
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
                if (splitting and waiting is None and packet.is_keyframe and packet.pts is not None
                        and len(current.packets) >= MIN_SEGMENT_PACKETS):
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
            while not self.stop and segment.number - self.reading > 2 * self.workers:
                self.lock.wait(0.1)
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
            threaded = ends_last or not self.split
            if segment.number == 0:
                codec = self.stream.codec_context  # carries the stream's side data (rotation) to the first frame
                if threaded:
                    codec.thread_type = "AUTO"
                else:
                    codec.thread_count = 1
            elif threaded:
                codec = _decoder_like(self.stream.codec_context, threads=0)
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
                                or (segment.end_pts is not None and frame.pts >= segment.end_pts)):
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
                    self.lock.notify_all()

    def _take_segment(self) -> tuple[_Segment, bool] | None:
        """The next segment to decode, and whether it will likely end last: the demuxer is
        done and the segments after it have fewer packets than it (the last one always)."""
        with self.lock:
            while not self.stop:
                if self.next_to_decode < self.demuxed:
                    segment = self.segments[self.next_to_decode]
                    self.next_to_decode += 1
                    after = sum(len(self.segments[n].packets) for n in range(self.next_to_decode, self.demuxed))
                    return segment, self.demux_done and after < len(segment.packets)
                if self.demux_done:
                    return None
                self.lock.wait(0.1)
            return None

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
    """A fresh decoder for the template's stream; `threads` 0: FFmpeg's frame and slice threads."""
    codec = av.CodecContext.create(template.name, "r")
    if template.extradata:
        codec.extradata = template.extradata
    codec.width, codec.height = template.width, template.height
    if template.pix_fmt:
        codec.pix_fmt = template.pix_fmt
    if threads:
        codec.thread_count = threads
    else:
        codec.thread_type = "AUTO"
    return codec


def analysed_frames(container, stream, analyse: Callable, *, workers: int = 2,
                    budget_bytes: int = 128 * 2**20) -> Iterator:
    """`analyse(frame, number)` -> (item, nbytes) on every frame, items in presentation order."""
    pipeline = _Pipeline(container, stream, analyse, max(1, workers), budget_bytes)
    threads = [threading.Thread(target=pipeline.demux, name="skyscript-demux", daemon=True)]
    threads += [threading.Thread(target=pipeline.decode, name=f"skyscript-decode-{n}", daemon=True)
                for n in range(pipeline.workers if pipeline.split else 1)]
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
