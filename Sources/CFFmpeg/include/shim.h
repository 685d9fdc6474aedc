// FFmpeg (libavcodec, libavformat, libswscale, libswresample, libavutil) for Swift, with
// functions standing in for the macros Swift cannot import (AVERROR, av_err2str, ...).
#ifndef CFFMPEG_SHIM_H
#define CFFMPEG_SHIM_H

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <libavcodec/avcodec.h>
#include <libavcodec/bsf.h>
#include <libavformat/avformat.h>
#include <libavutil/avutil.h>
#include <libavutil/channel_layout.h>
#include <libavutil/error.h>
#include <libavutil/imgutils.h>
#include <libavutil/log.h>
#include <libavutil/opt.h>
#include <libavutil/samplefmt.h>
#include <libswresample/swresample.h>
#include <libswscale/swscale.h>

/// AVERROR(EAGAIN): the codec wants input (or output) first.
static inline int xt_averror_eagain(void) { return AVERROR(EAGAIN); }
/// AVERROR_EOF: the codec or demuxer has nothing more.
static inline int xt_averror_eof(void) { return AVERROR_EOF; }
/// AVERROR(ENOENT), AVERROR(ENOMEM), ... for any errno.
static inline int xt_averror(int posix_errno) { return AVERROR(posix_errno); }
/// AV_NOPTS_VALUE: no timestamp.
static inline int64_t xt_av_nopts_value(void) { return AV_NOPTS_VALUE; }
/// AV_TIME_BASE: libavformat's internal microsecond time base.
static inline int xt_av_time_base(void) { return AV_TIME_BASE; }

/// FFmpeg's message for an error code, into `buffer` (at least 64 bytes).
static inline const char *xt_av_error_string(int code, char *buffer, size_t size) {
    av_strerror(code, buffer, size);
    return buffer;
}

/// Where FFmpeg's formatted log lines go (set by xt_av_log_route; Swift cannot take a va_list).
static void (*xt_av_log_sink)(int level, const char *line) = 0;

static void xt_av_log_callback(void *avcl, int level, const char *format, va_list arguments) {
    (void)avcl;
    if (level > av_log_get_level() || !xt_av_log_sink) return;
    char line[1024];
    vsnprintf(line, sizeof line, format, arguments);
    xt_av_log_sink(level, line);
}

/// Sends FFmpeg's log lines (at or above the set level) to `sink`, one formatted piece at a
/// time. Call it from one Swift file only: the sink lives in that file's copy of this header.
static inline void xt_av_log_route(void (*sink)(int level, const char *line)) {
    xt_av_log_sink = sink;
    av_log_set_callback(xt_av_log_callback);
}

#endif
