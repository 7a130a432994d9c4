/* Magnetic stripe track rules shared by the MSR decoder (msr.c, docs/protocols/msr.md) and the scanner decoder's
 * track-shaped labels (scanner.c, docs/protocols/scanner.md section 5): where a track's PAN is, and the one
 * msr.swipe writer, so both build {pan (masked), tracks} alike. The Python twin is protocols/msr/track.py. */
#ifndef TW_MSR_TRACK_H
#define TW_MSR_TRACK_H

#include <stddef.h>
#include <stdint.h>

#include "tw_msgpack.h"

/* Digits a PAN may have (ISO/IEC 7812, ISO 7813). */
#define TW_MSR_PAN_MAX 19

/* The PAN of a track s[0..n) that starts with its start sentinel: track 1 (number 1) "%B" + 1..19 digits + "^",
 * track 2 (number 2) ";" + 1..19 digits + "=". Returns the PAN's length (0: no PAN) and its offset in *at. */
size_t tw_msr_track_pan(const uint8_t *s, size_t n, int number, size_t *at);

/* msr.swipe {pan: masked PAN (only when pan_len > 0), tracks: [numbers]}; nothing on OOM (the tw_out's flag). */
void tw_msr_write_swipe(tw_out *o, const uint8_t *pan, size_t pan_len, const uint8_t *tracks, unsigned n_tracks);

#endif
