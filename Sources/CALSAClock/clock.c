// The xtclock PCM: see include/CALSAClock.h. Built on ALSA's ioplug API: ALSA asks where the
// "hardware" is (`pointer`), which here is how many frames of wall-clock time have passed since
// start; a timerfd that fires every period is what a blocking read waits on.
#include "CALSAClock.h"

#include <alsa/asoundlib.h>
#include <alsa/pcm_external.h>
#include <alsa/pcm_ioplug.h>
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/timerfd.h>
#include <time.h>
#include <stdio.h>
#include <unistd.h>

struct xt_clock {
    snd_pcm_ioplug_t io;
    int timer;
    uint64_t started;
    /// ALSA's position (its hw_ptr) at the current start: after an xrun ALSA prepares the
    /// stream where it stopped, not at 0, and the clock counts on from there.
    snd_pcm_uframes_t offset;
    /// ALSA's position now (as last computed).
    snd_pcm_uframes_t produced;
    /// Frames of the file in front of this PCM before the current start (what was written to
    /// it, or read from its infile): ALSA's positions restart after an xrun, the file does not.
    snd_pcm_uframes_t base;
    /// With `stamp "PATH"`: each time the clock is (re)anchored, a line "FRAME NANOSECONDS" is
    /// appended there: frame FRAME of the stream (counted from the first start, across xruns)
    /// plays, or was captured, at CLOCK_MONOTONIC NANOSECONDS. A bench maps positions in the recorded file to times
    /// with it (mouth-to-ear).
    FILE *stamps;
    /// With `stall_after FRAMES`: the clock stops after that many frames, as a device whose
    /// driver hangs (tests of what the reader does then). 0: never.
    snd_pcm_uframes_t stall_after;
};

/// Logs the current start: the file's frame `base` plays, or was captured, at `started`.
static void note_anchor(struct xt_clock *clock) {
    if (!clock->stamps) return;
    fprintf(clock->stamps, "%lu %llu\n", (unsigned long)clock->base, (unsigned long long)clock->started);
    fflush(clock->stamps);
}

static uint64_t monotonic_ns(void) {
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    return (uint64_t)now.tv_sec * 1000000000ull + (uint64_t)now.tv_nsec;
}

static int clock_start(snd_pcm_ioplug_t *io) {
    struct xt_clock *clock = io->private_data;
    clock->started = monotonic_ns();
    clock->offset = io->hw_ptr;
    clock->produced = io->hw_ptr;
    note_anchor(clock);
    // A tick at every period boundary after the start, as a card interrupts when its position
    // crosses one.
    uint64_t period = (uint64_t)io->period_size * 1000000000ull / io->rate;
    struct itimerspec every = {
        .it_interval = { (time_t)(period / 1000000000ull), (long)(period % 1000000000ull) },
        .it_value = { (time_t)(period / 1000000000ull), (long)(period % 1000000000ull) },
    };
    return timerfd_settime(clock->timer, 0, &every, NULL) == 0 ? 0 : -errno;
}

static int clock_stop(snd_pcm_ioplug_t *io) {
    struct xt_clock *clock = io->private_data;
    struct itimerspec off = { { 0, 0 }, { 0, 0 } };
    timerfd_settime(clock->timer, 0, &off, NULL);
    return 0;
}

/// Where the "hardware" is in the buffer: frames of real time since start.
static snd_pcm_sframes_t clock_pointer(snd_pcm_ioplug_t *io) {
    struct xt_clock *clock = io->private_data;
    if (io->state != SND_PCM_STATE_RUNNING && io->state != SND_PCM_STATE_DRAINING) {
        return (snd_pcm_sframes_t)(clock->produced % io->buffer_size);
    }
    uint64_t now = monotonic_ns();
    uint64_t elapsed = now - clock->started;
    snd_pcm_uframes_t frames = clock->offset + (snd_pcm_uframes_t)(elapsed * io->rate / 1000000000ull);
    if (io->stream == SND_PCM_STREAM_PLAYBACK) {
        if (frames >= io->appl_ptr && io->state == SND_PCM_STATE_DRAINING) {
            frames = io->appl_ptr;  // drained: all of it played
        } else if (frames > io->appl_ptr) {
            // The "speaker" played all it was given and ran dry: an underrun, as a card reports
            // it (the writer recovers, and the next start re-anchors the clock). Everything
            // written was heard, so the stamps count it all. (Playing on from the last sample
            // instead, unseen by ALSA, moved its position back, and later samples were heard
            // up to 100 ms later than stamped.)
            clock->base += io->appl_ptr - clock->offset;
            clock->produced = io->appl_ptr;
            return -EPIPE;
        }
    } else if (clock->stall_after > 0 && frames > clock->offset + clock->stall_after) {
        frames = clock->offset + clock->stall_after;
    } else if (frames >= io->appl_ptr + io->buffer_size) {
        // The reader fell a whole buffer behind: an overrun, as a card reports it. (Holding the
        // clock at a full buffer instead read as an empty one, a buffer being a whole turn of
        // the ring: the reader then waited for ever.) What was read is what the file plugin
        // in front took from its infile: the stamps count that, so that a file's frame maps to
        // its capture time across the restart.
        clock->base += io->appl_ptr - clock->offset;
        clock->produced = io->appl_ptr;
        return -EPIPE;
    }
    clock->produced = frames;
    return (snd_pcm_sframes_t)(frames % io->buffer_size);
}

/// ALSA prepares the stream afresh after an xrun (its positions back at 0): the position this
/// clock reports until the next start is 0 too. (Reporting where the last run stopped made ALSA
/// count that much of the first write after a restart as already played: the speaker then ran
/// half a buffer deeper than ALSA said, and the stamps put every later sample 10 ms late per
/// restart.)
static int clock_prepare(snd_pcm_ioplug_t *io) {
    struct xt_clock *clock = io->private_data;
    clock->produced = 0;
    return 0;
}

static snd_pcm_sframes_t clock_transfer(snd_pcm_ioplug_t *io, const snd_pcm_channel_area_t *areas,
                                        snd_pcm_uframes_t offset, snd_pcm_uframes_t size) {
    // Capture: silence (the file plugin in front replaces it with its infile). Playback: the
    // samples go nowhere (the file plugin in front has written them to its file).
    if (io->stream == SND_PCM_STREAM_CAPTURE) snd_pcm_areas_silence(areas, offset, io->channels, size, io->format);
    return (snd_pcm_sframes_t)size;
}

static int clock_poll_revents(snd_pcm_ioplug_t *io, struct pollfd *descriptors, unsigned int count, unsigned short *revents) {
    struct xt_clock *clock = io->private_data;
    uint64_t expirations;
    (void)descriptors;
    (void)count;
    while (read(clock->timer, &expirations, sizeof expirations) > 0) {}
    *revents = io->stream == SND_PCM_STREAM_PLAYBACK ? POLLOUT : POLLIN;
    return 0;
}

static int clock_close(snd_pcm_ioplug_t *io) {
    struct xt_clock *clock = io->private_data;
    close(clock->timer);
    if (clock->stamps) fclose(clock->stamps);
    free(clock);
    return 0;
}

static const snd_pcm_ioplug_callback_t callbacks = {
    .start = clock_start,
    .stop = clock_stop,
    .pointer = clock_pointer,
    .prepare = clock_prepare,
    .transfer = clock_transfer,
    .close = clock_close,
    .poll_revents = clock_poll_revents,
};

SND_PCM_PLUGIN_DEFINE_FUNC(xtclock) {
    (void)root;
    const char *stamp_path = NULL;
    long stall_after = 0;
    snd_config_iterator_t i, next;
    snd_config_for_each(i, next, conf) {
        snd_config_t *entry = snd_config_iterator_entry(i);
        const char *id;
        if (snd_config_get_id(entry, &id) < 0) continue;
        if (strcmp(id, "comment") == 0 || strcmp(id, "type") == 0 || strcmp(id, "hint") == 0) continue;
        if (strcmp(id, "stamp") == 0 && snd_config_get_string(entry, &stamp_path) >= 0) continue;
        if (strcmp(id, "stall_after") == 0 && snd_config_get_integer(entry, &stall_after) >= 0 && stall_after >= 0) continue;
        SNDERR("xtclock: unknown or bad field %s (it takes stamp \"PATH\" and stall_after FRAMES)", id);
        return -EINVAL;
    }
    struct xt_clock *clock = calloc(1, sizeof *clock);
    if (!clock) return -ENOMEM;
    if (stamp_path) clock->stamps = fopen(stamp_path, "a");
    clock->stall_after = (snd_pcm_uframes_t)stall_after;
    clock->timer = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
    if (clock->timer < 0) {
        if (clock->stamps) fclose(clock->stamps);
        free(clock);
        return -errno;
    }
    clock->io.version = SND_PCM_IOPLUG_VERSION;
    clock->io.name = "XTransport real-time clock";
    clock->io.callback = &callbacks;
    clock->io.private_data = clock;
    clock->io.poll_fd = clock->timer;
    clock->io.poll_events = POLLIN;
    int error = snd_pcm_ioplug_create(&clock->io, name, stream, mode);
    if (error < 0) {
        close(clock->timer);
        if (clock->stamps) fclose(clock->stamps);
        free(clock);
        return error;
    }
    static const unsigned int accesses[] = { SND_PCM_ACCESS_RW_INTERLEAVED };
    static const unsigned int formats[] = { SND_PCM_FORMAT_S16_LE };
    if ((error = snd_pcm_ioplug_set_param_list(&clock->io, SND_PCM_IOPLUG_HW_ACCESS, 1, accesses)) < 0 ||
        (error = snd_pcm_ioplug_set_param_list(&clock->io, SND_PCM_IOPLUG_HW_FORMAT, 1, formats)) < 0 ||
        (error = snd_pcm_ioplug_set_param_minmax(&clock->io, SND_PCM_IOPLUG_HW_CHANNELS, 1, 2)) < 0 ||
        (error = snd_pcm_ioplug_set_param_minmax(&clock->io, SND_PCM_IOPLUG_HW_RATE, 8000, 48000)) < 0 ||
        (error = snd_pcm_ioplug_set_param_minmax(&clock->io, SND_PCM_IOPLUG_HW_PERIOD_BYTES, 64, 65536)) < 0 ||
        (error = snd_pcm_ioplug_set_param_minmax(&clock->io, SND_PCM_IOPLUG_HW_PERIODS, 2, 64)) < 0) {
        snd_pcm_ioplug_delete(&clock->io);
        return error;
    }
    *pcmp = clock->io.pcm;
    return 0;
}

SND_PCM_PLUGIN_SYMBOL(xtclock);
