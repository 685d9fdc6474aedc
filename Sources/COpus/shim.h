// libopus for Swift: opus_encoder_ctl and opus_decoder_ctl are variadic, so each request we
// use gets a typed function here.
#ifndef COPUS_SHIM_H
#define COPUS_SHIM_H

#include <opus/opus.h>

static inline int xt_opus_set_bitrate(OpusEncoder *encoder, opus_int32 bitrate) {
    return opus_encoder_ctl(encoder, OPUS_SET_BITRATE(bitrate));
}
static inline int xt_opus_set_complexity(OpusEncoder *encoder, opus_int32 complexity) {
    return opus_encoder_ctl(encoder, OPUS_SET_COMPLEXITY(complexity));
}
static inline int xt_opus_set_inband_fec(OpusEncoder *encoder, opus_int32 on) {
    return opus_encoder_ctl(encoder, OPUS_SET_INBAND_FEC(on));
}
static inline int xt_opus_set_packet_loss_perc(OpusEncoder *encoder, opus_int32 percent) {
    return opus_encoder_ctl(encoder, OPUS_SET_PACKET_LOSS_PERC(percent));
}
static inline int xt_opus_set_dtx(OpusEncoder *encoder, opus_int32 on) {
    return opus_encoder_ctl(encoder, OPUS_SET_DTX(on));
}
/// Tells the encoder it codes speech (OPUS_SIGNAL_VOICE) or leaves it to decide (0).
static inline int xt_opus_set_signal_voice(OpusEncoder *encoder, int voice) {
    return opus_encoder_ctl(encoder, OPUS_SET_SIGNAL(voice ? OPUS_SIGNAL_VOICE : OPUS_AUTO));
}
/// Whether the last frame encoded was a DTX frame (silence: nothing worth sending).
static inline int xt_opus_get_in_dtx(OpusEncoder *encoder, opus_int32 *in_dtx) {
    return opus_encoder_ctl(encoder, OPUS_GET_IN_DTX(in_dtx));
}
static inline int xt_opus_application_voip(void) { return OPUS_APPLICATION_VOIP; }
static inline int xt_opus_application_audio(void) { return OPUS_APPLICATION_AUDIO; }
/// Samples (at 48 kHz) the encoder delays its output by: the Ogg/MP4 "pre-skip".
static inline int xt_opus_get_lookahead(OpusEncoder *encoder, opus_int32 *lookahead) {
    return opus_encoder_ctl(encoder, OPUS_GET_LOOKAHEAD(lookahead));
}

#endif
