// "xtclock": an ALSA PCM that captures silence, or plays to nowhere, at real time, for tests
// on machines with no sound card. ALSA's `null` PCM answers at once, as fast as it is read, so it cannot stand in
// for a microphone; this one delivers one period per period of wall-clock time. Put ALSA's
// `file` plugin in front of it with an `infile` and the agent captures that file (a speech WAV
// made by espeak-ng, converted to raw) as if a microphone heard it, at the speed of speech:
//
//   pcm_type.xtclock { lib "/path/to/libxtalsaclock.so" }
//   pcm.xtmic { type file; slave.pcm { type xtclock } file "/dev/null" infile "speech.raw" format "raw" }
//
// Played, it consumes one period per period of wall-clock time, and the `file` plugin in front
// records what was played (a speaker a test can listen to). Like a card, it reports an
// underrun when its writer falls behind, and an overrun when its reader falls a buffer behind:
//
//   pcm.xtspeaker { type file; slave.pcm { type xtclock } file "heard.raw" format "raw" }
#ifndef CALSACLOCK_H
#define CALSACLOCK_H
#endif
