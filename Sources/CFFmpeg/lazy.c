// FFmpeg is loaded when media is first used, not when xt starts. Debian's libavformat and
// libavcodec pull in about 130 more libraries (codecs, TLS, X11, ...); loading them costs every
// start ~40 ms on a 2-core x86 machine and far more on a Raspberry Pi, also for `xt send`,
// `xt status` or `xt msg`, which never touch media. stubs.c (generated) forwards each FFmpeg
// function XTMedia calls to the real one found here.
#define _GNU_SOURCE
#include <dlfcn.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>

#include "shim.h"
#include "lazy.h"

#define XT_TEXT(x) #x
#define XT_NUMBER(x) XT_TEXT(x)

static const char *const sonames[] = {
    [xt_avutil] = "libavutil.so." XT_NUMBER(LIBAVUTIL_VERSION_MAJOR),
    [xt_avcodec] = "libavcodec.so." XT_NUMBER(LIBAVCODEC_VERSION_MAJOR),
    [xt_avformat] = "libavformat.so." XT_NUMBER(LIBAVFORMAT_VERSION_MAJOR),
    [xt_swscale] = "libswscale.so." XT_NUMBER(LIBSWSCALE_VERSION_MAJOR),
    [xt_swresample] = "libswresample.so." XT_NUMBER(LIBSWRESAMPLE_VERSION_MAJOR),
};

static void *handles[sizeof sonames / sizeof sonames[0]];
static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;

void *xt_ffmpeg_symbol(enum xt_ffmpeg_library library, const char *name) {
    pthread_mutex_lock(&lock);
    if (!handles[library]) {
        // RTLD_GLOBAL: the libraries share one copy of libavutil, as when linked at start.
        handles[library] = dlopen(sonames[library], RTLD_NOW | RTLD_GLOBAL);
        if (!handles[library]) {
            fprintf(stderr, "xt: cannot load %s (%s): install FFmpeg's libraries (Debian: apt-get install"
                            " libavformat" XT_NUMBER(LIBAVFORMAT_VERSION_MAJOR) " libavcodec" XT_NUMBER(LIBAVCODEC_VERSION_MAJOR)
                            " libswscale" XT_NUMBER(LIBSWSCALE_VERSION_MAJOR) " libswresample" XT_NUMBER(LIBSWRESAMPLE_VERSION_MAJOR) ")\n",
                    sonames[library], dlerror());
            exit(1);
        }
    }
    void *function = dlsym(handles[library], name);
    pthread_mutex_unlock(&lock);
    if (!function) {
        fprintf(stderr, "xt: %s has no %s: install the FFmpeg version xt was built with (%s)\n",
                sonames[library], name, "the libraries named above");
        exit(1);
    }
    return function;
}
