// speexdsp (echo canceller, preprocessor: noise suppression, automatic gain, residual echo
// suppression) for Swift, with typed wrappers for its int-pointer ctl calls.
#ifndef CSPEEXDSP_SHIM_H
#define CSPEEXDSP_SHIM_H

#include <speex/speex_echo.h>
#include <speex/speex_preprocess.h>

/// speex_echo_ctl(SPEEX_ECHO_SET_SAMPLING_RATE).
static inline int xt_speex_echo_set_rate(SpeexEchoState *state, int rate) {
    return speex_echo_ctl(state, SPEEX_ECHO_SET_SAMPLING_RATE, &rate);
}

/// speex_preprocess_ctl with an int argument (SPEEX_PREPROCESS_SET_DENOISE, _AGC, ...).
static inline int xt_speex_preprocess_set_int(SpeexPreprocessState *state, int request, int value) {
    return speex_preprocess_ctl(state, request, &value);
}

/// speex_preprocess_ctl with a float argument (SPEEX_PREPROCESS_SET_AGC_LEVEL).
static inline int xt_speex_preprocess_set_float(SpeexPreprocessState *state, int request, float value) {
    return speex_preprocess_ctl(state, request, &value);
}

/// Links the preprocessor to the echo canceller, for residual echo suppression.
static inline int xt_speex_preprocess_set_echo(SpeexPreprocessState *state, SpeexEchoState *echo) {
    return speex_preprocess_ctl(state, SPEEX_PREPROCESS_SET_ECHO_STATE, echo);
}

static inline int xt_speex_preprocess_denoise(void) { return SPEEX_PREPROCESS_SET_DENOISE; }
static inline int xt_speex_preprocess_agc(void) { return SPEEX_PREPROCESS_SET_AGC; }
static inline int xt_speex_preprocess_agc_level(void) { return SPEEX_PREPROCESS_SET_AGC_LEVEL; }
static inline int xt_speex_preprocess_noise_suppress(void) { return SPEEX_PREPROCESS_SET_NOISE_SUPPRESS; }
static inline int xt_speex_preprocess_echo_suppress(void) { return SPEEX_PREPROCESS_SET_ECHO_SUPPRESS; }
static inline int xt_speex_preprocess_echo_suppress_active(void) { return SPEEX_PREPROCESS_SET_ECHO_SUPPRESS_ACTIVE; }

#endif
