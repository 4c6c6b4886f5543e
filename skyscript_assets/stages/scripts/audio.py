"""Audio signals per shot: loudness, whether music plays, and its tempo.

One decode of the episode's first audio stream to mono 16 kHz (PyAV), then per time range:

    loudness_db     RMS level in dBFS (the highlight score's fallback)
    music           sustained tonal energy: a spectrum that keeps a few strong, stable
                    peaks frame after frame (speech and noise do not)
    tempo_bpm       the period of the onset-strength envelope (spectral flux), 60..180 BPM
"""

from __future__ import annotations

from dataclasses import dataclass

import av
import numpy as np

SAMPLE_RATE = 16_000
FRAME = 1024
HOP = 512
MIN_BPM, MAX_BPM = 60.0, 180.0
SILENCE_DB = -50.0
TONALITY_MUSIC = 0.5


@dataclass(frozen=True)
class AudioSignals:
    loudness_db: float
    music: bool
    tonality: float  # 0..1, how much of the energy sits in stable spectral peaks
    tempo_bpm: float | None


def decode_mono(source, sample_rate: int = SAMPLE_RATE) -> np.ndarray | None:
    """The whole first audio stream as float32 mono at `sample_rate`; None without audio."""
    with av.open(source) as container:
        if not container.streams.audio:
            return None
        resampler = av.AudioResampler(format="flt", layout="mono", rate=sample_rate)
        chunks = []
        for frame in container.decode(container.streams.audio[0]):
            for out in resampler.resample(frame):
                chunks.append(out.to_ndarray().reshape(-1))
        for out in resampler.resample(None):
            chunks.append(out.to_ndarray().reshape(-1))
    return np.concatenate(chunks).astype(np.float32) if chunks else np.zeros(0, np.float32)


def analyse(samples: np.ndarray, sample_rate: int = SAMPLE_RATE) -> AudioSignals:
    if len(samples) < FRAME * 4:
        return AudioSignals(SILENCE_DB if not len(samples) else _db(samples), False, 0.0, None)
    loudness = _db(samples)
    spectra = _spectrogram(samples)
    tonality = _tonality(spectra)
    music = loudness > SILENCE_DB and tonality >= TONALITY_MUSIC
    tempo = _tempo(spectra, sample_rate) if loudness > SILENCE_DB else None
    return AudioSignals(round(loudness, 2), bool(music), round(tonality, 3), tempo)


def analyse_range(samples: np.ndarray, start_s: float, end_s: float, sample_rate: int = SAMPLE_RATE) -> AudioSignals:
    return analyse(samples[int(start_s * sample_rate) : int(end_s * sample_rate)], sample_rate)


def _db(samples: np.ndarray) -> float:
    rms = float(np.sqrt(np.mean(np.square(samples, dtype=np.float64))))
    return max(SILENCE_DB * 2, 20 * np.log10(max(rms, 1e-10)))


def _spectrogram(samples: np.ndarray) -> np.ndarray:
    count = 1 + (len(samples) - FRAME) // HOP
    index = np.arange(FRAME)[None, :] + HOP * np.arange(count)[:, None]
    return np.abs(np.fft.rfft(samples[index] * np.hanning(FRAME), axis=1))


def _tonality(spectra: np.ndarray) -> float:
    """Share of energy in the strongest bins that stay the strongest across frames."""
    energy = spectra**2
    total = energy.sum(axis=1) + 1e-12
    peaks = np.argsort(energy, axis=1)[:, -8:]
    stable = []
    for previous, current, e, t in zip(peaks, peaks[1:], energy[1:], total[1:]):
        shared = np.intersect1d(previous, current)
        stable.append(e[shared].sum() / t)
    return float(np.median(stable)) if stable else 0.0


def _tempo(spectra: np.ndarray, sample_rate: int) -> float | None:
    flux = np.maximum(np.diff(np.log1p(spectra), axis=0), 0).sum(axis=1)
    flux = flux - flux.mean()
    if not np.any(flux):
        return None
    autocorrelation = np.correlate(flux, flux, mode="full")[len(flux) - 1 :]
    frames_per_s = sample_rate / HOP
    lags = np.arange(len(autocorrelation))
    valid = (lags >= frames_per_s * 60 / MAX_BPM) & (lags <= frames_per_s * 60 / MIN_BPM)
    if not valid.any():
        return None
    candidates = lags[valid]
    bpm = 60 * frames_per_s / candidates
    # A beat repeats at 2x and 3x its period too; a log-normal prior around 120 BPM (as in
    # common beat trackers) picks the musically likely octave.
    prior = np.exp(-0.5 * (np.log2(bpm / 120.0)) ** 2)
    best = candidates[np.argmax(autocorrelation[valid] * prior)]
    return round(float(60 * frames_per_s / best), 1)
