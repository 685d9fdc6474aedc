// FFmpeg (libavcodec, libavformat, libswscale, libswresample, libavutil) for Swift, with
// functions standing in for the macros Swift cannot import (AVERROR, av_err2str, ...).
#ifndef CFFMPEG_SHIM_H
#define CFFMPEG_SHIM_H

#include <errno.h>
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

#endif
