"""Media: MIDI and audio files and what can be measured from them.

* :mod:`accord.media.render`: MIDI to WAV (FluidSynth, or a simple numpy synthesizer);
* :mod:`accord.media.pianoroll`: MIDI to a piano-roll PNG;
* :mod:`accord.media.features`: musical statistics of a MIDI file, and distances between sets.

Submodules are imported on demand (symusic and SciPy are heavy), never from here.
"""
