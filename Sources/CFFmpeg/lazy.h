// Loading FFmpeg on first use: XT_FORWARD(library, name) is the real `name` in `library`, looked
// up once (the first call loads the library) and kept in a static pointer per function.
#ifndef CFFMPEG_LAZY_H
#define CFFMPEG_LAZY_H

#include <stdatomic.h>

enum xt_ffmpeg_library { xt_avutil, xt_avcodec, xt_avformat, xt_swscale, xt_swresample };

/// The address of `name` in `library`, loading the library (and what it needs) on first use.
/// Never returns NULL: if the library or the function is missing, it says which and how to
/// install it on standard error and exits with status 1 (as the dynamic loader would at start).
void *xt_ffmpeg_symbol(enum xt_ffmpeg_library library, const char *name);

#define XT_FORWARD(library, name) \
    (({ \
        static _Atomic(__typeof__(&name)) xt_real; \
        __typeof__(&name) xt_function = atomic_load_explicit(&xt_real, memory_order_acquire); \
        if (!xt_function) { \
            xt_function = (__typeof__(&name))xt_ffmpeg_symbol(xt_##library, #name); \
            atomic_store_explicit(&xt_real, xt_function, memory_order_release); \
        } \
        xt_function; \
    }))

#endif
